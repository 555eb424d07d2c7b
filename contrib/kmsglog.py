#!/usr/bin/env python3
"""Prints the block "KERNEL WARNINGS during this run: N" for contrib/check.

Arguments: the JSON lines of `sigbus-kmsg --json` (one kernel report each, with an
estimated wall-clock time), then meson testlog.json files as BUILD=PATH. Each report is
attributed to the test that was running at its time (meson runs one test at a time
here), from the tests' start times and durations. The kernel's warnings are listed, not
counted as failures of the project."""
import json
import sys
import time

RULE = "=" * 78


def load_tests(specs):
    """(start, end, "build/name") for every test of every testlog.json given."""
    tests = []
    for spec in specs:
        build, _, path = spec.partition("=")
        try:
            with open(path) as f:
                for line in f:
                    if line.strip():
                        t = json.loads(line)
                        start = t.get("starttime")
                        if start is not None:
                            tests.append((start, start + t.get("duration", 0),
                                          f"{build}/{t['name']}"))
        except OSError:
            continue
    return tests


def running_at(tests, wall):
    # printk's clock and the wall clock are compared through an estimate: allow 1 s
    for start, end, name in tests:
        if start - 1 <= wall <= end + 1:
            return name
    return "no test (building, formatting or fuzzing)"


def main():
    with open(sys.argv[1]) as f:
        reports = [json.loads(line) for line in f if line.strip()]
    tests = load_tests(sys.argv[2:])
    print(RULE)
    print(f"KERNEL WARNINGS during this run: {len(reports)}")
    for i, r in enumerate(reports, 1):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["wall"]))
        ts = r["ts_us"]
        print(f"[{i}] {when}, kernel time {ts // 1000000}.{ts % 1000000:06d} "
              f"(seq {r['seq']}), during {running_at(tests, r['wall'])}:")
        for line in r["lines"]:
            print(f"    {line}")
        if r.get("dropped"):
            print(f"    ... {r['dropped']} more lines: dmesg has them")
    if reports:
        print("These are the kernel's reports, not failures of sigbusfs: they are not "
              "counted below. The kernel log (dmesg) has them in full.")
    print(RULE)


if __name__ == "__main__":
    main()
