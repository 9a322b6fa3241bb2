#!/usr/bin/env python3
"""Find the shim's JSON exit events in a log and check them.

  events.py LOG [--count N] KEY=VALUE...

Reads LOG (a file, or - for stdin), keeps the lines that are JSON objects
with an "event" field, and selects those whose fields match every KEY=VALUE
(VALUE compared with the field as text: strings bare, null as null, numbers
and booleans as JSON). Prints the matching lines. Exits 0 when at least one
matches (exactly N with --count N), 1 otherwise, printing every event seen.
"""
import json
import sys

args = sys.argv[1:]
path = args.pop(0)
count = None
if args and args[0] == "--count":
    args.pop(0)
    count = int(args.pop(0))
want = dict(a.split("=", 1) for a in args)
text = sys.stdin.read() if path == "-" else open(path, errors="replace").read()
events = []
for line in text.splitlines():
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if isinstance(e, dict) and "event" in e:
        events.append((line, e))


def show(v):
    return v if isinstance(v, str) else json.dumps(v)


hits = [line for line, e in events if all(k in e and show(e[k]) == v for k, v in want.items())]
good = len(hits) == count if count is not None else bool(hits)
for h in hits:
    print(h)
if not good:
    print(f"wanted {count if count is not None else '>=1'} event(s) with {want}, found {len(hits)}; events seen:")
    for line, _ in events:
        print("  " + line)
sys.exit(0 if good else 1)
