#!/usr/bin/env python3
"""Lint, render and check charts/shim offline with helm-python-sdk.

helm-python-sdk ships no helm binary: its wheel bundles libhelm_c.so (Helm's
Go SDK behind a C ABI) and calls it through ctypes, so linting, schema
validation and rendering need no network and no cluster.

  chart.py CHART VALUES_DIR OUT_DIR

Every VALUES_DIR/*.yaml not named bad-* is a good value set: it must lint
cleanly (strict) and render; the rendered manifests go to OUT_DIR/NAME.yaml
(for kubernetes-validate and yamllint) and are checked here for what the
chart promises (the init container, each wrapped command, the derived
terminationGracePeriodSeconds, native sidecars for a Job). Every bad-*.yaml
must be refused (by values.schema.json or by the templates' own checks),
with a message containing its "# expect: TEXT" line. (helm lint cannot do
this: in lint mode Helm only logs a template's `fail`.)

Prints one line per check and "N passed, M failed" last; exits 1 on a failure.
"""
import math
import re
import sys
from pathlib import Path

import helm_python as helm
import yaml

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"ok   {name}")


def bad(name, why):
    global failed
    failed += 1
    print(f"FAIL {name}: {why}")


def grace_seconds(g):
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?", str(g))
    n = float(m.group(1))
    mult = {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    # Round like the chart does (ceil of n/1000 for ms).
    return math.ceil(n / 1000 if m.group(2) == "ms" else n * mult)


def check_container(c, merged, want_cmd, native):
    s = merged["shim"]
    cmd = c["command"]
    exp = [f"{s['installDir']}/shim", "--grace", str(s["grace"]), "--events", s["events"]]
    if s["terminationLog"]:
        exp += ["--termination-log", s["terminationLog"]]
    exp += list(s["extraArgs"]) + ["--"] + want_cmd
    assert cmd == exp, f"{c['name']}: command {cmd} != {exp}"
    assert "args" not in c, f"{c['name']}: args must be folded into command"
    if s["terminationLog"]:
        assert c.get("terminationMessagePath") == s["terminationLog"], c["name"]
    mounts = [m for m in c["volumeMounts"] if m["name"] == "shim"]
    assert mounts and mounts[0]["mountPath"] == s["installDir"] and mounts[0]["readOnly"], c["name"]
    assert (c.get("restartPolicy") == "Always") == native, f"{c['name']}: restartPolicy"


def check_render(name, merged, docs):
    workloads = [d for d in docs if d and d.get("kind") in ("Deployment", "Job")]
    assert len(workloads) == 1, f"{len(workloads)} workloads"
    w = workloads[0]
    assert w["kind"] == merged["kind"], w["kind"]
    spec = w["spec"]["template"]["spec"]
    g = grace_seconds(merged["shim"]["grace"])
    want_tgps = merged.get("terminationGracePeriodSeconds")
    if want_tgps is None:
        want_tgps = g + merged["shim"]["graceMarginSeconds"]
    assert spec["terminationGracePeriodSeconds"] == want_tgps, (
        f"terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} != {want_tgps}")
    assert spec["terminationGracePeriodSeconds"] > g
    assert spec.get("shareProcessNamespace") is False
    init = spec["initContainers"]
    inst = init[0]
    assert inst["name"] == "shim-install"
    assert inst["command"] == ["/shim", "install", merged["shim"]["installDir"] + "/"], inst["command"]
    assert inst["volumeMounts"][0]["mountPath"] == merged["shim"]["installDir"]
    vols = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in vols["shim"]
    native = merged["nativeSidecars"] is True or (
        merged["kind"] == "Job" and merged["nativeSidecars"] == "auto")
    app = spec["containers"][0]
    assert app["name"] == merged["app"]["name"]
    check_container(app, merged, merged["app"]["command"] + merged["app"]["args"], False)
    where = init[1:] if native else spec["containers"][1:]
    assert len(where) == len(merged["sidecars"]), "sidecar count"
    for c, v in zip(where, merged["sidecars"]):
        assert c["name"] == v["name"]
        check_container(c, merged, v["command"] + v.get("args", []), native)
    if merged["kind"] == "Job":
        assert spec["restartPolicy"] in ("Never", "OnFailure")
    else:
        assert spec["restartPolicy"] == "Always"
    return f"{w['kind']}, grace {merged['shim']['grace']} -> terminationGracePeriodSeconds {want_tgps}, " \
           f"{len(merged['sidecars'])} sidecar(s){' native' if native and merged['sidecars'] else ''}"


def main():
    chart, vdir, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    print(f"helm-python-sdk: libhelm_c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}")
    for f in sorted(vdir.glob("*.yaml")):
        text = f.read_text()
        values = yaml.safe_load(text) or {}
        name = f.stem
        if name.startswith("bad-"):
            expect = re.search(r"^# expect: (.+)$", text, re.M).group(1).strip()
            msg = None
            try:
                with helm.Chart.load(str(chart)) as c:
                    c.validate_schema(values)
                    c.render(values, name="demo", namespace="default")
            except helm.HelmError as e:
                msg = str(e)
            if msg is None:
                bad(f"refuse {name}", "accepted")
            elif expect not in msg:
                bad(f"refuse {name}", f"message lacks {expect!r}:\n{msg}")
            else:
                first = next((l.strip() for l in msg.splitlines() if expect in l), msg)
                ok(f"refuse {name}: {first}")
            continue
        try:
            rep = helm.lint(str(chart), values, strict=True)
            problems = [m for m in rep["messages"] if m["severity"] >= 2] + rep["errors"]
            if problems:
                bad(f"lint {name}", problems)
                continue
            ok(f"lint {name} (strict)")
            with helm.Chart.load(str(chart)) as c:
                c.validate_schema(values)
                merged = c.merge_values(values)
                rendered = c.render(values, name="demo", namespace="default")
            manifests = []
            for path in sorted(rendered):
                body = rendered[path]
                if path.endswith("NOTES.txt"):
                    (out / f"{name}.NOTES.txt").write_text(body)
                    continue
                if body.strip():
                    manifests.append(f"---\n# Source: {path}\n{body.strip()}\n")
            (out / f"{name}.yaml").write_text("".join(manifests))
            docs = list(yaml.safe_load_all("".join(manifests)))
            summary = check_render(name, merged, docs)
            notes = (out / f"{name}.NOTES.txt").read_text()
            assert '"event":"exit"' in notes and "kubectl logs" in notes, "NOTES.txt"
            ok(f"render {name}: {summary}")
        except (AssertionError, helm.HelmError) as e:
            bad(f"render {name}", repr(e))
    print(f"chart: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
