#!/usr/bin/env python3
"""Runs tini's own test/run_inner_tests.py, test by test, against the shim.

tini's script is one long main() whose first failed assert ends the run, so a
single difference would hide every later result. This runner does not copy
or change its checks: it reads the script, and wraps each of its sections (a
section starts at one of its own `print("Running ...")` lines and runs up to
the next one, or up to a statement that holds further sections) in
try/except, so each section passes or fails on its own. Every section also
gets a time limit, and the processes it left are killed before the next one.

    tini_inner.py RUN_INNER_TESTS_PY RESULTS_JSONL

SOURCE_DIR, BUILD_DIR and FORCE_SUBREAPER come from the environment, as for
tini's own script. Exit status: 0 when the sections ran (whatever their
results), 3 when the script could not be run at all.
"""
import ast
import json
import os
import re
import signal
import sys
import time
import traceback
import uuid

SECTION_TIMEOUT = int(os.environ.get("PEER_SECTION_TIMEOUT", "60"))
MARK = "SHIM_PEER_RUN"


class SectionTimeout(Exception):
    pass


def _is_marker(stmt):
    """A `print("Running ...")` / `print("running ...".format(...))` line."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    call = stmt.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "print" and call.args):
        return False
    arg = call.args[0]
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Attribute)
        and arg.func.attr == "format"
    ):
        arg = arg.func.value
    return (
        isinstance(arg, ast.Constant)
        and isinstance(arg.value, str)
        and arg.value.lower().startswith("running")
    )


def _holds_markers(stmt):
    return any(
        _is_marker(n) for n in ast.walk(stmt) if n is not stmt and isinstance(n, ast.stmt)
    )


class Sectioner:
    def __init__(self):
        self.n = 0

    def body(self, stmts):
        out, section = [], None
        for stmt in stmts:
            if _is_marker(stmt):
                if section is not None:
                    out.append(self.wrap(section))
                section = [stmt]
            elif _holds_markers(stmt):
                if section is not None:
                    out.append(self.wrap(section))
                    section = None
                for field in ("body", "orelse"):
                    if hasattr(stmt, field):
                        setattr(stmt, field, self.body(getattr(stmt, field)))
                out.append(stmt)
            elif section is not None:
                section.append(stmt)
            else:
                out.append(stmt)
        if section is not None:
            out.append(self.wrap(section))
        return out

    def wrap(self, section):
        self.n += 1
        token = "_peer_t%d" % self.n
        marker, rest = section[0], section[1:]
        begin = ast.Assign(
            targets=[ast.Name(id=token, ctx=ast.Store())],
            value=ast.Call(
                func=ast.Name(id="_peer_begin", ctx=ast.Load()),
                args=[marker.value.args[0]],
                keywords=[],
            ),
        )

        def call(name, *args):
            return ast.Expr(
                value=ast.Call(
                    func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[]
                )
            )

        tok = ast.Name(id=token, ctx=ast.Load())
        handler = ast.ExceptHandler(
            type=ast.Name(id="Exception", ctx=ast.Load()),
            name="_peer_e",
            body=[call("_peer_fail", tok, ast.Name(id="_peer_e", ctx=ast.Load()))],
        )
        guarded = ast.Try(
            body=rest or [ast.Pass()],
            handlers=[handler],
            orelse=[call("_peer_ok", tok)],
            finalbody=[call("_peer_end", tok)],
        )
        return [begin, guarded]


def flatten(stmts):
    out = []
    for s in stmts:
        if isinstance(s, list):
            out.extend(flatten(s))
        else:
            for field in ("body", "orelse"):
                if hasattr(s, field) and isinstance(getattr(s, field), list):
                    setattr(s, field, flatten(getattr(s, field)))
            out.append(s)
    return out


def marked_pids(tag):
    """Processes (other than this one) started during this run."""
    me = os.getpid()
    needle = ("%s=%s" % (MARK, tag)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def main():
    script, results_path = sys.argv[1], sys.argv[2]
    tag = uuid.uuid4().hex
    os.environ[MARK] = tag
    results = open(results_path, "w")
    paths = [os.environ.get("BUILD_DIR", ""), os.environ.get("SOURCE_DIR", "")]

    def short(text):
        # "/tmp/x/build/tini" -> "tini", "/src/test/reaping/stage_1.py" ->
        # "reaping/stage_1.py": names that do not depend on where it ran.
        for p in paths:
            if p:
                text = text.replace(p.rstrip("/") + "/test/", "").replace(p.rstrip("/") + "/", "")
        return re.sub(r"/\S+/", "", text).strip()

    state = {}

    def on_alarm(signum, frame):
        raise SectionTimeout("section took more than %d s" % SECTION_TIMEOUT)

    signal.signal(signal.SIGALRM, on_alarm)

    def begin(message):
        print(message, flush=True)
        name = short(message)
        if name.lower().startswith("running "):
            name = name[len("running "):]
        state[name] = time.monotonic()
        signal.alarm(SECTION_TIMEOUT)
        return name

    def record(name, status, detail=""):
        secs = round(time.monotonic() - state.get(name, time.monotonic()), 2)
        results.write(json.dumps({"name": name, "status": status, "detail": detail, "secs": secs}) + "\n")
        results.flush()
        print("%s: %s%s" % (status.upper(), name, (" -- " + detail) if detail else ""), flush=True)

    def ok(name):
        signal.alarm(0)
        record(name, "passed")

    def fail(name, exc):
        signal.alarm(0)
        detail = "%s: %s" % (type(exc).__name__, str(exc).strip())
        tb = traceback.extract_tb(exc.__traceback__)
        where = [f for f in tb if f.filename == script]
        if where:
            detail += " (run_inner_tests.py line %d)" % where[-1].lineno
        record(name, "failed", detail[:2000])

    def end(name):
        signal.alarm(0)
        # Whatever the section left running (a shim that never exited, an
        # app it did not stop) must not leak into the next one.
        for _ in range(3):
            pids = marked_pids(tag)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.1)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    try:
        source = open(script).read()
        tree = ast.parse(source, filename=script)
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        if not mains:
            raise RuntimeError("no main() in %s" % script)
        sectioner = Sectioner()
        mains[0].body = flatten(sectioner.body(mains[0].body))
        if sectioner.n == 0:
            raise RuntimeError("no sections found in %s" % script)
        ast.fix_missing_locations(tree)
        code = compile(tree, script, "exec")
    except Exception as e:
        print("cannot prepare %s: %s" % (script, e), file=sys.stderr)
        return 3

    namespace = {
        "__name__": "tini_run_inner_tests",
        "__file__": script,
        "_peer_begin": begin,
        "_peer_ok": ok,
        "_peer_fail": fail,
        "_peer_end": end,
    }
    sys.path.insert(0, os.path.dirname(script))
    try:
        exec(code, namespace)
        namespace["main"]()
    except Exception:
        # Outside any section: the script itself could not run.
        traceback.print_exc()
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
