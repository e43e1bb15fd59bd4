#!/usr/bin/env python3
"""Prints one closing line over meson test logs: 'tests: N passed, N failed, N skipped'.
A log that is missing or empty means its suite never ran: that is a failure (exit 1)."""
import json
import sys

counts = {"passed": 0, "failed": 0, "skipped": 0}
missing = False
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        lines = []
    if not lines:
        print("test-summary: %s: no results (the suite did not run)" % path)
        missing = True
    for line in lines:
        result = json.loads(line).get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            counts["passed"] += 1
        elif result == "SKIP":
            counts["skipped"] += 1
        else:
            counts["failed"] += 1
print("tests: %(passed)d passed, %(failed)d failed, %(skipped)d skipped" % counts)
sys.exit(1 if missing or counts["failed"] else 0)
