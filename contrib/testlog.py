#!/usr/bin/env python3
"""Turns meson's testlog.json into one line per test case: "pass|fail|skip NAME".

Check programs print a line per test case ("file:line:P:tcase:test:0: Passed" with
CK_VERBOSITY=verbose, failures always); for them each case counts. A test that crashed,
timed out or is not a Check program counts once, by its meson result."""
import json
import re
import sys

CASE = re.compile(r"^[^:\s]+:\d+:([PFE]):([^:]*):([^:]*):")


def cases(build, test):
    out = (test.get("stdout") or "") + (test.get("stderr") or "")
    seen = {}
    for line in out.splitlines():
        m = CASE.match(line)
        if m:
            seen[f"{build}/{test['name']}/{m.group(2)}/{m.group(3)}"] = m.group(1)
    return seen


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
        for case, status in found.items():
            print(f"{'pass' if status == 'P' else 'fail'} {case}")
        if result != "OK" and all(s == "P" for s in found.values()):
            print(f"fail {name} ({result.lower()})")
        elif not found:
            print(f"pass {name}")


if __name__ == "__main__":
    main()
