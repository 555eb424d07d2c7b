#!/usr/bin/env python3
"""Turns meson's testlog.json into one line per test case: "pass|fail|skip NAME".

Check programs print a line per test case ("file:line:P:tcase:test:0: Passed" with
CK_VERBOSITY=verbose, failures always); for them each case counts. A test that crashed,
timed out or is not a Check program counts once, by its meson result. A failed case's
line carries its message ("fail NAME: file:line: message"), or, for a whole test, the
last line it printed, so a CI log says why without the full test log."""
import json
import re
import sys

CASE = re.compile(r"^([^:\s]+:\d+):([PFE]):([^:]*):([^:]*):\d+: ?(.*)$")


def output(test):
    return (test.get("stdout") or "") + (test.get("stderr") or "")


def cases(build, test):
    """Maps each case's name to (status letter, "file:line: message")."""
    seen = {}
    for line in output(test).splitlines():
        m = CASE.match(line)
        if m:
            name = f"{build}/{test['name']}/{m.group(3)}/{m.group(4)}"
            seen[name] = (m.group(2), f"{m.group(1)}: {m.group(5)}")
    return seen


def last_line(test):
    lines = [l for l in output(test).splitlines() if l.strip()]
    return lines[-1] if lines else "no output"


def main():
    build, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        tests = [json.loads(line) for line in f if line.strip()]
    for t in tests:
        result = t["result"]
        name = f"{build}/{t['name']}"
        found = cases(build, t)
        if result == "SKIP":
            print(f"skip {name}")
            continue
        for case, (status, message) in found.items():
            print(f"pass {case}" if status == "P" else f"fail {case}: {message}")
        if result != "OK" and all(s == "P" for s, _ in found.values()):
            print(f"fail {name} ({result.lower()}): {last_line(t)}")
        elif not found:
            print(f"pass {name}")


if __name__ == "__main__":
    main()
