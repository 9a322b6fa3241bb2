#!/usr/bin/env python3
"""Lint, render and check charts/shim offline with helm-python-sdk.

helm-python-sdk ships no helm binary: its wheel bundles libhelm_c.so (Helm's
Go SDK behind a C ABI) and calls it through ctypes, so linting, schema
validation and rendering need no network and no cluster.

  chart.py CHART VALUES_DIR OUT_DIR
  chart.py --graces CHART SHIM
  chart.py --fields CHART

Every VALUES_DIR/*.yaml not named bad-* is a good value set: it must lint
cleanly (strict) and render; the rendered manifests go to OUT_DIR/NAME.yaml
(for kubernetes-validate and yamllint) and are checked here for what the
chart promises: the init container (and that it meets the restricted Pod
Security Standard), each wrapped command, the derived
terminationGracePeriodSeconds (twice the grace with native sidecars, plus
preStop sleeps), native sidecars for a Job, names and labels that are the
app's, every container and pod field of the values passed through, a Job's
backoffLimit, and, for a container with notify or a watchdog, the shim's
--notify/--ready-file/--watchdog options, its in-memory ready-file volume and
the readinessProbe running `shim probe` (unless the values give one). A set with a "# restricted" line must meet the restricted Pod
Security Standard as a whole pod. Every bad-*.yaml must be refused (by
values.schema.json or by the templates' own checks), with a message
containing its "# expect: TEXT" line. (helm lint cannot do this: in lint
mode Helm only logs a template's `fail`.)

--graces: every grace in GRACES is tried with the chart and with the shim
binary SHIM: what the binary accepts, the chart must accept (and the other
way round, but for the known exceptions in CHART_ONLY), and the chart's
terminationGracePeriodSeconds must be the binary's own grace (from its -v
log), rounded up, plus the margin. Each is tried as app.watchdog too, which
the chart must accept exactly when the binary's --watchdog does (the same
exceptions; zero is refused by both).

--fields: the schema names every field of the newest Kubernetes schemas
that kubernetes-validate bundles (Container, PodSpec, JobSpec,
DeploymentSpec), or the chart sets the field itself.

Prints one line per check and "N passed, M failed" last; exits 1 on a failure.
"""
import hashlib
import json
import math
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import helm_python as helm
import yaml

RELEASE = "demo"
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


# The shim's durations (src/cli.rs parse_duration: bare seconds as an f64,
# else humantime), for the forms the chart accepts.
F64 = r"\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NEG_ZERO = r"-(?:0+\.?0*|\.0+)(?:[eE][+-]?[0-9]+)?"
UNIT = {}
for names, secs in [
    ("nanos nsec ns", Fraction(1, 10**9)),
    ("usec us µs", Fraction(1, 10**6)),
    ("millis msec ms", Fraction(1, 1000)),
    ("seconds second secs sec s", 1),
    ("minutes minute mins min m", 60),
    ("hours hour hrs hr h", 3600),
    ("days day d", 86400),
    ("weeks week wks wk w", 604800),
    ("months month M", 2630016),
    ("years year yrs yr y", 31557600),
]:
    for n in names.split():
        UNIT[n] = Fraction(secs)


def grace_fraction(g):
    """The duration in seconds, exactly."""
    if isinstance(g, (int, float)):
        return Fraction(g)
    t = g.strip()
    if re.fullmatch(F64, t):
        return Fraction(t.lstrip("+"))
    if re.fullmatch(NEG_ZERO, t):
        return Fraction(0)
    terms = re.findall(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Zµ]+)", re.sub(r"\s", "", t))
    assert terms, f"not a duration: {g!r}"
    return sum((Fraction(n) * UNIT[u] for n, u in terms), Fraction(0))


def grace_seconds(g):
    return math.ceil(grace_fraction(g))


def present(v):
    """What the chart renders: not null, not an empty string, map or list."""
    return v is not None and (isinstance(v, (bool, int, float)) or bool(v))


def prestop_sleep(c):
    return int(((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0))


def stop_budget(merged, native):
    """(main, sidecars): seconds the app's and the native sidecars' stops may take."""
    g = grace_seconds(merged["shim"]["grace"])
    main = g + prestop_sleep(merged["app"])
    side = 0
    for s in merged["sidecars"]:
        if native:
            side = max(side, g + prestop_sleep(s))
        else:
            main = max(main, g + prestop_sleep(s))
    return main, side


# Container fields the chart sets itself; every other one is passed through.
OWN_CONTAINER = {"name", "image", "imagePullPolicy", "command", "args", "volumeMounts",
                 "terminationMessagePath", "terminationMessagePolicy",
                 "notify", "notifyAccess", "watchdog", "watchdogSignal"}


def ready_volume(name):
    """The chart's name for a container's ready-file volume (at most 63 characters)."""
    n = f"shim-ready-{name}"
    if len(n) > 63:
        n = f"shim-ready-{name[:43]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return n


def shim_options(v, s):
    """The readiness options the chart gives the shim for container values v."""
    opts = []
    if v.get("notify"):
        opts += ["--notify", "--ready-file", f"{s['readyDir']}/ready"]
    if v.get("notifyAccess"):
        opts += ["--notify-access", v["notifyAccess"]]
    if v.get("watchdog") is not None:
        opts += ["--watchdog", str(v["watchdog"])]
    if v.get("watchdogSignal") is not None:
        opts += ["--watchdog-signal", str(v["watchdogSignal"])]
    return opts
# Top-level values passed into the pod spec under the same name.
POD_FIELDS = ["activeDeadlineSeconds", "affinity", "automountServiceAccountToken", "dnsConfig",
              "dnsPolicy", "enableServiceLinks", "evictionResponders", "hostAliases", "hostIPC",
              "hostNetwork", "hostPID", "hostUsers", "hostname", "hostnameOverride",
              "imagePullSecrets", "nodeName", "nodeSelector", "os", "overhead",
              "preemptionPolicy", "priority", "priorityClassName", "readinessGates",
              "resourceClaims", "runtimeClassName", "schedulerName", "schedulingGates",
              "schedulingGroup", "serviceAccount", "serviceAccountName", "setHostnameAsFQDN",
              "subdomain", "tolerations", "topologySpreadConstraints"]
# Pod-spec fields the chart sets (or takes from another value).
OWN_POD = {"containers", "initContainers", "volumes", "restartPolicy", "shareProcessNamespace",
           "terminationGracePeriodSeconds", "securityContext", "resources", "ephemeralContainers"}


def check_container(c, v, merged, native):
    s = merged["shim"]
    cmd = c["command"]
    exp = [f"{s['installDir']}/shim", "--grace", str(s["grace"]), "--events", s["events"]]
    if s["terminationLog"]:
        exp += ["--termination-log", s["terminationLog"]]
    exp += shim_options(v, s)
    exp += list(s["extraArgs"]) + ["--"] + v["command"] + (v.get("args") or [])
    assert cmd == exp, f"{c['name']}: command {cmd} != {exp}"
    assert "args" not in c, f"{c['name']}: args must be folded into command"
    assert c["image"] == v["image"], c["name"]
    assert c["imagePullPolicy"] == (v.get("imagePullPolicy") or "IfNotPresent"), c["name"]
    if s["terminationLog"]:
        assert c.get("terminationMessagePath") == s["terminationLog"], c["name"]
        assert c.get("terminationMessagePolicy") == (v.get("terminationMessagePolicy") or "File"), c["name"]
    mounts = c["volumeMounts"]
    assert mounts[0] == {"name": "shim", "mountPath": s["installDir"], "readOnly": True}, c["name"]
    own_mounts = 1
    chart_set = {"restartPolicy"}
    if v.get("notify"):
        assert mounts[1] == {"name": ready_volume(v["name"]), "mountPath": s["readyDir"]}, \
            f"{c['name']}: the ready file's mount: {mounts[1]}"
        own_mounts = 2
        if not present(v.get("readinessProbe")):
            want = {"exec": {"command": [f"{s['installDir']}/shim", "probe", f"{s['readyDir']}/ready"]},
                    "periodSeconds": 2, "failureThreshold": 1}
            assert c.get("readinessProbe") == want, f"{c['name']}: readinessProbe {c.get('readinessProbe')} != {want}"
            chart_set.add("readinessProbe")
    else:
        assert "readinessProbe" in v or "readinessProbe" not in c, f"{c['name']}: a readinessProbe without notify"
    assert mounts[own_mounts:] == (v.get("volumeMounts") or []), f"{c['name']}: volumeMounts"
    assert (c.get("restartPolicy") == "Always") == native, f"{c['name']}: restartPolicy"
    passed_through = []
    for k, val in v.items():
        if k in OWN_CONTAINER or not present(val):
            continue
        assert c.get(k) == val, f"{c['name']}.{k}: {c.get(k)!r} != {val!r} (not passed through)"
        passed_through.append(k)
    extra = set(c) - set(v) - OWN_CONTAINER - chart_set
    assert not extra, f"{c['name']}: fields from nowhere: {extra}"
    return passed_through


def restricted_container(c):
    """What the restricted Pod Security Standard asks of a container (with the pod's context)."""
    sc = c.get("securityContext") or {}
    why = []
    if sc.get("allowPrivilegeEscalation") is not False:
        why.append("allowPrivilegeEscalation is not false")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        why.append("capabilities.drop lacks ALL")
    if set((sc.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}:
        why.append("capabilities.add beyond NET_BIND_SERVICE")
    if sc.get("privileged"):
        why.append("privileged")
    return [f"{c['name']}: {w}" for w in why]


def restricted_pod(spec):
    """The restricted Pod Security Standard (v1.29+ rules), for the whole pod: [] when it passes."""
    psc = spec.get("securityContext") or {}
    why = []
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(k):
            why.append(k)
    for v in spec.get("volumes", []):
        allowed = {"name", "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}
        if set(v) - allowed:
            why.append(f"volume {v['name']}: {set(v) - allowed}")
    for c in spec.get("initContainers", []) + spec["containers"]:
        why += restricted_container(c)
        sc = c.get("securityContext") or {}
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            why.append(f"{c['name']}: runAsNonRoot not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            why.append(f"{c['name']}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            why.append(f"{c['name']}: seccompProfile {seccomp}")
    return why


def check_names(merged, w, tpl):
    """Names and labels are the app's: nameOverride, else app.name (but for
    the placeholder "app"), else the release's name."""
    fo = merged["fullnameOverride"]
    name = merged["nameOverride"] or (merged["app"]["name"] if merged["app"]["name"] != "app" else "") or RELEASE
    if fo:
        full = fo
    elif name not in RELEASE:
        full = f"{RELEASE}-{name}"
    else:
        full = RELEASE
    assert w["metadata"]["name"] == full, f"workload name {w['metadata']['name']} != {full}"
    labels = w["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == name, f"name label {labels['app.kubernetes.io/name']} != {name}"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["helm.sh/chart"].startswith("shim-")
    tag = re.sub(r"@.*", "", merged["app"]["image"]).split("/")[-1].partition(":")[2]
    if tag and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", tag):
        assert labels.get("app.kubernetes.io/version") == tag, "version label: the app image's tag"
    else:
        assert "app.kubernetes.io/version" not in labels, "version label without a tag"
    sel = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": RELEASE}
    if w["kind"] == "Deployment":
        assert w["spec"]["selector"]["matchLabels"] == sel, "selector"
    plabels = tpl["metadata"]["labels"]
    assert {k: plabels.get(k) for k in sel} == sel, "pod labels"
    for k, v in (merged.get("podLabels") or {}).items():
        assert plabels[k] == v, f"podLabels {k}"
    return name, full


def check_render(name, merged, docs, text):
    workloads = [d for d in docs if d and d.get("kind") in ("Deployment", "Job")]
    assert len(workloads) == 1, f"{len(workloads)} workloads"
    w = workloads[0]
    assert w["kind"] == merged["kind"], w["kind"]
    tpl = w["spec"]["template"]
    spec = tpl["spec"]
    app_name, full = check_names(merged, w, tpl)
    native = merged["nativeSidecars"] is True or (
        merged["kind"] == "Job" and merged["nativeSidecars"] == "auto")
    main, side = stop_budget(merged, native and bool(merged["sidecars"]))
    want_tgps = merged.get("terminationGracePeriodSeconds")
    if want_tgps is None:
        want_tgps = main + side + merged["shim"]["graceMarginSeconds"]
    tgps = spec["terminationGracePeriodSeconds"]
    assert tgps == want_tgps, f"terminationGracePeriodSeconds {tgps} != {want_tgps}"
    assert tgps > main + side, f"terminationGracePeriodSeconds {tgps} <= {main} + {side}"
    assert spec.get("shareProcessNamespace") is False
    init = spec["initContainers"]
    inst = init[0]
    assert inst["name"] == "shim-install"
    assert inst["command"] == ["/shim", "install", merged["shim"]["installDir"] + "/"], inst["command"]
    assert inst["volumeMounts"][0]["mountPath"] == merged["shim"]["installDir"]
    isc = inst.get("securityContext") or {}
    assert (isc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", "shim-install: seccompProfile"
    assert isc.get("runAsNonRoot") is True and isc.get("readOnlyRootFilesystem") is True, "shim-install: securityContext"
    assert not restricted_container(inst), restricted_container(inst)
    user_init = merged.get("initContainers") or []
    assert init[1:1 + len(user_init)] == user_init, "initContainers passed through after shim-install"
    vols = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in vols["shim"]
    ready = [{"name": ready_volume(x["name"]), "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
             for x in [merged["app"]] + merged["sidecars"] if x.get("notify")]
    assert spec["volumes"][1:1 + len(ready)] == ready, f"the ready files' volumes: {spec['volumes']}"
    assert all(len(r["name"]) <= 63 for r in ready), "a volume name longer than 63"
    assert spec["volumes"][1 + len(ready):] == (merged.get("volumes") or []), "volumes"
    app = spec["containers"][0]
    assert app["name"] == merged["app"]["name"]
    fields = check_container(app, merged["app"], merged, False)
    where = init[1 + len(user_init):] if native else spec["containers"][1:]
    assert len(where) == len(merged["sidecars"]), "sidecar count"
    for c, v in zip(where, merged["sidecars"]):
        assert c["name"] == v["name"]
        fields += check_container(c, v, merged, native)
    # Pod-spec fields passed through.
    pod_fields = []
    for k in POD_FIELDS:
        if present(merged.get(k)):
            assert spec.get(k) == merged[k], f"pod {k}: {spec.get(k)!r} != {merged[k]!r}"
            pod_fields.append(k)
        else:
            assert k not in spec, f"pod {k} without a value"
    assert spec.get("securityContext") == (merged.get("podSecurityContext") or None), "podSecurityContext"
    assert spec.get("resources") == (merged.get("podResources") or None), "podResources"
    extra = set(spec) - set(POD_FIELDS) - OWN_POD
    assert not extra, f"pod: fields from nowhere: {extra}"
    if merged["kind"] == "Job":
        assert spec["restartPolicy"] == merged["job"]["restartPolicy"]
        job = merged["job"]
        want = job.get("backoffLimit")
        if want is None and job.get("backoffLimitPerIndex") is None:
            want = 6
        assert w["spec"].get("backoffLimit") == want, f"backoffLimit {w['spec'].get('backoffLimit')} != {want}"
        for k, v in job.items():
            if k not in ("restartPolicy", "backoffLimit") and present(v):
                assert w["spec"].get(k) == v, f"job {k}"
        extras = f", backoffLimit {w['spec'].get('backoffLimit', 'left to Kubernetes')}"
    else:
        assert spec["restartPolicy"] == "Always"
        assert w["spec"]["replicas"] == merged["replicaCount"]
        for k, v in (merged.get("deployment") or {}).items():
            if present(v):
                assert w["spec"].get(k) == v, f"deployment {k}"
        extras = ""
    if re.search(r"^# restricted\b", text, re.M):
        why = restricted_pod(spec)
        assert not why, f"restricted Pod Security Standard: {why}"
        extras += ", restricted PSS"
    budget = f"{main}" + (f" + {side} (native sidecars)" if side else "") + f" + {merged['shim']['graceMarginSeconds']}"
    if merged.get("terminationGracePeriodSeconds") is not None:
        budget = f"explicit, > {main + side}"
    summary = (f"{w['kind']} {full} (name {app_name}), grace {merged['shim']['grace']} -> "
               f"terminationGracePeriodSeconds {tgps} ({budget}), "
               f"{len(merged['sidecars'])} sidecar(s){' native' if native and merged['sidecars'] else ''}{extras}")
    if fields or pod_fields:
        summary += f"; passed through: {', '.join(sorted(set(fields)) + sorted(pod_fields))}"
    readiness = [f"{x['name']}: " + " ".join(shim_options(x, merged["shim"]))
                 for x in [merged["app"]] + merged["sidecars"] if shim_options(x, merged["shim"])]
    if readiness:
        summary += "; readiness: " + "; ".join(readiness)
    return summary


def render(chart, values):
    with helm.Chart.load(str(chart)) as c:
        c.validate_schema(values)
        merged = c.merge_values(values)
        rendered = c.render(values, name=RELEASE, namespace="default")
    return merged, rendered


def value_sets(chart, vdir, out):
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(vdir.glob("*.yaml")):
        text = f.read_text()
        values = yaml.safe_load(text) or {}
        name = f.stem
        if name.startswith("bad-"):
            expect = re.search(r"^# expect: (.+)$", text, re.M).group(1).strip()
            msg = None
            try:
                render(chart, values)
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
            merged, rendered = render(chart, values)
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
            summary = check_render(name, merged, docs, text)
            notes = (out / f"{name}.NOTES.txt").read_text()
            assert '"event":"exit"' in notes and "kubectl logs" in notes, "NOTES.txt"
            assert """grep -ao '{"ts":.*'""" in notes and "grep '^{" not in notes, "NOTES.txt: the robust grep"
            for x in [merged["app"]] + merged["sidecars"]:
                if x.get("notify"):
                    assert f'"{x["name"]}" is ready exactly while' in notes, f"NOTES.txt: {x['name']}'s readiness"
                if x.get("watchdog") is not None:
                    assert f'"{x["name"]}" must send WATCHDOG=1' in notes, f"NOTES.txt: {x['name']}'s watchdog"
            label = docs[0]["metadata"]["labels"]["app.kubernetes.io/name"]
            assert f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/name={label}" in notes, "NOTES.txt selector"
            ok(f"render {name}: {summary}")
        except (AssertionError, helm.HelmError) as e:
            bad(f"render {name}", repr(e))


# Graces for --graces. Strings, and numbers as YAML gives them.
GRACES = [
    "500ms", "10s", "2m", "1m30s", "1h 30m", "10", "1.5", "0", "1h", "1.5h", "0.5m", "90 s",
    "2 m 3 s", "1h30m15s", "2h 0.5m", "1d", "1w", "1M", "1y", "100us", "1µs", "1ns", "4nsec",
    "250 msec", "3millis", "1.25s", "1.000000001s", "10min", "10mins", "2hours", "1hr", "1sec",
    "3 seconds", "1wk", "2yrs", "1 0s", " 10s ", "1e3", "7E1", "1e-3", "+5", ".5", "5.", "0.001",
    "-0", "-0.0",
    10, 1.5, 0.25, 0, 120, 1000000,
    "", "soon", "10S", "1m30", "-1", "-1s", "-0s", "1.s", "1.5.5s", "1.5ns", "inf", "infinity",
    "nan", "10 parsecs", "1s-", "s", "m", "ms", "1e", "1_000s", "1,5s", "0x10", "1 e3",
    "5 m i n", "+1s", "1s,2s", "1h-30m", "1e30", "99999999999999999999s", -1,
]
# Accepted by the chart, refused by the binary: a fraction finer than
# humantime can represent exactly (a whole number of nanoseconds; of seconds
# for h and longer units). Refused by the chart, accepted by the binary: a
# grace over 2^53 - 1 seconds (285 million years), past which the chart
# cannot compute terminationGracePeriodSeconds exactly. Both documented in
# docs/packaging.md.
CHART_ONLY = {"1.0001h", "0.1234567891s"}
BINARY_ONLY = {"1e16", "300000000y"}
GRACES += sorted(CHART_ONLY) + sorted(BINARY_ONLY)


def binary_grace(shim, arg):
    """(accepted, seconds or None) for the shim given --grace ARG."""
    try:
        r = subprocess.run([shim, "-v", "--events", "off", "--grace", arg, "--",
                            "/bin/sh", "-c", "kill -TERM $PPID; sleep 5"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None, None
    if r.returncode == 2:
        return False, None
    m = re.search(r"SIGKILL in ([0-9.]+)(ns|µs|ms|s)\b", r.stderr)
    if not m:
        return True, None
    return True, Fraction(m.group(1)) * {"ns": Fraction(1, 10**9), "µs": Fraction(1, 10**6),
                                          "ms": Fraction(1, 1000), "s": 1}[m.group(2)]


def binary_watchdog(shim, arg):
    """Whether the shim takes --watchdog ARG (None: it did not end)."""
    try:
        r = subprocess.run([shim, "--events", "off", "--watchdog", arg, "--", "/bin/true"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    return r.returncode != 2


def watchdogs(chart, shim):
    for g in GRACES:
        label = json.dumps(g, ensure_ascii=False)
        values = {"app": {"image": "registry.example.com/team/server:1", "command": ["/server"],
                          "watchdog": g}}
        try:
            _, rendered = render(chart, values)
            docs = [d for p, b in rendered.items() if p.endswith(".yaml") for d in yaml.safe_load_all(b) if d]
            cmd = docs[0]["spec"]["template"]["spec"]["containers"][0]["command"]
            arg = cmd[cmd.index("--watchdog") + 1]
            chart_ok, err = True, None
        except helm.HelmError as e:
            chart_ok, err = False, str(e).strip().splitlines()[-1]
            arg = str(g)
        bin_ok = binary_watchdog(shim, arg)
        if bin_ok is None:
            bad(f"watchdog {label}", "the shim did not end within 20 s")
        elif bin_ok == chart_ok:
            ok(f"watchdog {label}: {'accepted' if bin_ok else 'refused'} by both"
               + (f" (--watchdog {json.dumps(arg, ensure_ascii=False)})" if bin_ok else ""))
        elif bin_ok and g in BINARY_ONLY:
            ok(f"watchdog {label}: refused by the chart, accepted by the shim (known: too long for the chart): {err}")
        elif chart_ok and g in CHART_ONLY:
            ok(f"watchdog {label}: accepted by the chart, refused by the shim (known: a fraction finer than it represents)")
        elif bin_ok:
            bad(f"watchdog {label}", f"the shim accepts it, the chart refuses it: {err}")
        else:
            bad(f"watchdog {label}", "the chart accepts it, the shim refuses it")


def graces(chart, shim):
    margin = 5
    for g in GRACES:
        label = json.dumps(g, ensure_ascii=False)
        values = {"shim": {"grace": g, "graceMarginSeconds": margin},
                  "app": {"image": "registry.example.com/team/server:1", "command": ["/server"]}}
        try:
            _, rendered = render(chart, values)
            docs = [d for p, b in rendered.items() if p.endswith(".yaml") for d in yaml.safe_load_all(b) if d]
            spec = docs[0]["spec"]["template"]["spec"]
            tgps = spec["terminationGracePeriodSeconds"]
            cmd = spec["containers"][0]["command"]
            arg = cmd[cmd.index("--grace") + 1]
            chart_ok, err = True, None
        except helm.HelmError as e:
            chart_ok, err, tgps = False, str(e).strip().splitlines()[-1], None
            arg = str(g)
        bin_ok, secs = binary_grace(shim, arg)
        if bin_ok is None:
            bad(f"grace {label}", "the shim did not end within 20 s")
        elif bin_ok and not chart_ok:
            if g in BINARY_ONLY:
                ok(f"grace {label}: refused by the chart, accepted by the shim (known: too long for the chart): {err}")
            else:
                bad(f"grace {label}", f"the shim accepts it, the chart refuses it: {err}")
        elif chart_ok and not bin_ok:
            if g in CHART_ONLY:
                ok(f"grace {label}: accepted by the chart, refused by the shim (known: a fraction finer than it represents)")
            else:
                bad(f"grace {label}", "the chart accepts it, the shim refuses it")
        elif not chart_ok:
            ok(f"grace {label}: refused by both")
        elif secs is None:
            bad(f"grace {label}", "the shim's -v log does not say 'SIGKILL in <duration>': cannot compare")
        elif tgps != math.ceil(secs) + margin:
            bad(f"grace {label}", f"terminationGracePeriodSeconds {tgps}, the shim's grace is {float(secs)} s")
        else:
            ok(f"grace {label}: --grace {json.dumps(arg, ensure_ascii=False)}, the shim's {float(secs):.12g} s "
               f"-> terminationGracePeriodSeconds {tgps}")


def fields(chart):
    import kubernetes_validate
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    newest = max((d for d in base.glob("v*-local-strict")),
                 key=lambda d: tuple(int(x) for x in re.findall(r"[0-9]+", d.name)[:3]))
    schema = json.loads((chart / "values.schema.json").read_text())
    top = set(schema["properties"])
    container = set(schema["definitions"]["container"]["properties"])
    job = set(schema["properties"]["job"]["properties"])
    deployment = set(schema["properties"]["deployment"]["properties"])
    for kind, file, have, own in [
        ("Container", "container-v1.json", container, {"restartPolicy"}),
        ("PodSpec", "podspec-v1.json", top, OWN_POD),
        ("JobSpec", "jobspec-batch-v1.json", job, {"template", "selector", "manualSelector"}),
        ("DeploymentSpec", "deploymentspec-apps-v1.json", deployment, {"replicas", "selector", "template"}),
    ]:
        k8s = set(json.loads((newest / file).read_text())["properties"])
        missing = sorted(k8s - have - own)
        if missing:
            bad(f"schema: Kubernetes {newest.name} {kind} fields", f"neither in values.schema.json nor set by the chart: {missing}")
        else:
            ok(f"schema: every {kind} field of Kubernetes {newest.name} ({len(k8s)}) passes through or is the chart's")
    assert set(POD_FIELDS) <= top


def main():
    print(f"helm-python-sdk: libhelm_c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}")
    if sys.argv[1] in ("--graces", "--fields"):
        helm.disable_logging()
    if sys.argv[1] == "--graces":
        graces(Path(sys.argv[2]), sys.argv[3])
        watchdogs(Path(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "--fields":
        fields(Path(sys.argv[2]))
    else:
        value_sets(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(f"chart: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
