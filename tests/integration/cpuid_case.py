#!/usr/bin/env python3
"""CPUID integration tests: what a guest reads with CPUID, compared with the table in
docs/abi.md ("CPUID"), the one statement of it; at boot, and again after swap-ins.

Usage: cpuid_case.py DENALI_RUN CPUIDTEST CASE   (--list prints the cases)
Cases exit 77 (skip) only when /dev/kvm does not exist. The swap case needs a state directory on
a disk-backed filesystem: DENALI_SWAP_DIR, else /var/tmp.
"""
import os
import re
import sys
import tempfile

import caselib
from caselib import SKIP, expect, fail

ABI_MD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "abi.md")
ROW = re.compile(r"^\| `0x([0-9a-f]{8})` \| `0x([0-9a-f]{8})` \| `0x([0-9a-f]{8})` \| `0x([0-9a-f]{8})` \| "
                 r"`0x([0-9a-f]{8})` \|")
LINE = re.compile(r"^cpuid ([0-9a-f]{8}) ([0-9a-f]+): ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})$")
EXT = 0x80000000


def documented():
    """docs/abi.md's CPUID table: {leaf: (eax, ebx, ecx, edx)}."""
    with open(ABI_MD) as f:
        text = f.read()
    section = text.split("\n## CPUID\n", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            leaf, *regs = (int(x, 16) for x in m.groups())
            if leaf in table:
                fail("docs/abi.md lists leaf %#x twice" % leaf)
            table[leaf] = tuple(regs)
    if 0 not in table or EXT not in table:
        fail("docs/abi.md's CPUID table has no leaf 0 or 0x80000000: %r" % table)
    return table


def in_range(table, leaf):
    return leaf <= table[0][0] or EXT <= leaf <= table[EXT][0]


def expected(table, leaf):
    """What KVM gives for a leaf: its row; a leaf in range that is not listed reads zero (the
    docs list every one); a leaf beyond both ranges reads as the highest basic leaf."""
    if leaf in table:
        return table[leaf]
    if in_range(table, leaf):
        return (0, 0, 0, 0)
    return table[table[0][0]]


def check_tables(out, rounds):
    """out holds rounds + 1 tables, each exactly as documented."""
    table = documented()
    ranges = list(range(0, table[0][0] + 1)) + list(range(EXT, table[EXT][0] + 1))
    missing = [hex(leaf) for leaf in ranges if leaf not in table]
    if missing:
        fail("docs/abi.md's CPUID table leaves out leaves in range: %s" % missing)
    blocks = re.split(r"^round \d+\n", out, flags=re.M)
    if len(blocks) != rounds + 1:
        fail("want %d tables, got %d\nstdout: %r" % (rounds + 1, len(blocks), out))
    for n, block in enumerate(blocks):
        seen = []
        for line in block.splitlines():
            m = LINE.match(line)
            if not m:
                fail("table %d: unexpected line %r" % (n, line))
            leaf, sub, *regs = (int(x, 16) for x in m.groups())
            want = expected(table, leaf)
            if tuple(regs) != want:
                fail("table %d: CPUID %#x.%#x gave %s, docs/abi.md says %s" % (
                    n, leaf, sub, " ".join("%08x" % r for r in regs), " ".join("%08x" % r for r in want)))
            seen.append((leaf, sub))
        first = [leaf for leaf, sub in seen[:len(ranges)]]
        if first != ranges:
            fail("table %d: the guest read leaves %s, the documented ones are %s" % (
                n, [hex(x) for x in first], [hex(x) for x in ranges]))
        beyond = [leaf for leaf, sub in seen[len(ranges):] if not in_range(table, leaf)]
        if not ({0x40000000, table[EXT][0] + 1, table[0][0] + 1} <= set(beyond)):
            fail("table %d: too few leaves beyond the table were read: %s" % (n, [hex(x) for x in beyond]))
    print("%d tables of %d leaves as documented" % (rounds + 1, len(ranges)))


def run(denali_run, tmp, service):
    """denali-run on the one service, with --stats: status, stdout, stderr, stats by name."""
    return caselib.Env(denali_run, tmp).run_stats([service], timeout=240)


def write_service(tmp, name, image, args, swap=None):
    keys = {"swap": swap} if swap else {}
    return caselib.write_service(tmp, name, image, args, memory="8M", **keys)


def case_table(denali_run, cpuidtest, tmp):
    """A guest reads exactly the documented leaves, and leaves beyond them as documented."""
    status, out, err, _ = run(denali_run, tmp, write_service(tmp, "cpuid", cpuidtest, []))
    expect(status == 0 and err == "", "cpuidtest exits 0, quietly", status, out, err)
    check_tables(out, 0)


def case_swap(denali_run, cpuidtest, tmp):
    """A guest swapped out and back in (a new VM each time, a spare made ahead or made then)
    reads the same."""
    status, out, err, st = run(denali_run, tmp,
                               write_service(tmp, "cpuid", cpuidtest, ["3", "300"], {"idle_after": 0.02}))
    expect(status == 0 and err == "", "cpuidtest exits 0, quietly", status, out, err)
    sw = st["cpuid"]["swap"]
    print("swap: %r" % sw)
    expect(sw["ins"] >= 3, "it was swapped out and in 3 times", status, out, err)
    expect(sw["spare_ins"] >= 1, "a swap-in took a spare VM the cell made ahead", status, out, err)
    check_tables(out, 3)


CASES = {"cpuid-table": case_table, "cpuid-swap": case_swap}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(CASES))
        return
    if len(sys.argv) != 4:
        fail("usage: cpuid_case.py DENALI_RUN CPUIDTEST CASE")
    denali_run, cpuidtest = (os.path.abspath(p) for p in sys.argv[1:3])
    if not os.path.exists("/dev/kvm"):
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    base = os.environ.get("DENALI_SWAP_DIR", "/var/tmp")
    with tempfile.TemporaryDirectory(prefix="denali-it-cpuid-", dir=base) as tmp:
        CASES[sys.argv[3]](denali_run, cpuidtest, tmp)


if __name__ == "__main__":
    main()
