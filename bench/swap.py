#!/usr/bin/env python3
"""bench/swap: swap-out and swap-in latency of an idle service, with prefetch and with demand
faulting, beside the bare cost of the same memory work on a file of the same size from a host
process (bench/swap_native.c), measured in the same run, as ratios.

Usage: swap.py DENALI_RUN SWAPTEST SWAP_NATIVE [--sizes 1,4,16,64] [--rounds 5] [--idle-ms 300]
                 [--dir DIR]

For each working-set size (MiB) the host baseline runs first (swap_native DIR SIZE ROUNDS: write
every page, then msync + MADV_DONTNEED + FADV_DONTNEED; MADV_POPULATE_WRITE over the range; one
write per page after a drop), then the guest three times (swaptest pattern SIZE ROUNDS IDLE_MS, memory
SIZE + 16 MiB, swap idle_after 0.02 s): with "prefetch": true and false, and with prefetch but
--spare-vms 0 ("nospare": every swap-in creates its VM; the other rows have the default spare). The guest's state
directory (its memory file) and the baseline's file are both in DIR (default /var/tmp, which must
not be tmpfs). Per row: the guest's mean swap-out and swap-in time from --stats (out_ns/outs,
in_ns/ins; both include parking or rebuilding the VM), swap-ins into a spare VM, pages
prefetched per swap-in, page faults
of the vcpu thread per swap-in (faults_after_in/ins), the working set at the last swap-out, and
the native drop and populate (prefetch rows) or demand-touch (demand rows) times with the ratios
guest/native; then, per size, the swap-in with a spare VM against without.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile

from hostfs import filesystem

NATIVE = re.compile(r"swap_native: (\d+) MiB, (\d+) pages, (\d+) rounds: drop ([\d.]+) us, "
                    r"populate ([\d.]+) us, demand ([\d.]+) us \(populate by (\w+)\)")


def native(a, workdir, mib):
    p = subprocess.run([a.native, workdir, str(mib), str(a.rounds)], capture_output=True,
                       text=True, timeout=600)
    m = NATIVE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise SystemExit("swap_native failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return float(m.group(4)), float(m.group(5)), float(m.group(6)), m.group(7)


def guest(a, tmp, workdir, mib, prefetch, spares=1):
    """Runs swaptest pattern with swapping on; its --stats swap object."""
    memory = (mib + 16 + 1) // 2 * 2
    svc = os.path.join(tmp, "swap.json")
    with open(svc, "w") as f:
        json.dump({"name": "swap", "image": a.swaptest, "memory": "%dM" % memory,
                   "args": ["pattern", str(mib), str(a.rounds), str(a.idle_ms)],
                   "swap": {"idle_after": 0.02, "prefetch": prefetch}}, f)
    stats = os.path.join(tmp, "stats.json")
    with tempfile.TemporaryDirectory(prefix="state-", dir=workdir) as state:
        p = subprocess.run([a.denali_run, "--quiet", "--stats", stats, "--state-dir", state,
                            "--spare-vms", str(spares), svc],
                           capture_output=True, timeout=600)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    intact = out.count("MiB intact")
    if p.returncode != 0 or intact != a.rounds:
        raise SystemExit("denali-run failed (%d, %d of %d rounds intact):\n%s\n%s" %
                         (p.returncode, intact, a.rounds, out, err))
    with open(stats) as f:
        return json.load(f)["services"][0]["swap"]


def row(mib, mode, sw, nat_out, nat_in):
    outs, ins = sw["outs"], sw["ins"]
    out_us = sw["out_ns"] / outs / 1000 if outs else 0
    in_us = sw["in_ns"] / ins / 1000 if ins else 0
    print("%4d %-8s %4d %4d %5d %10.1f %10.1f %9.0f %9.1f %7d %8d %10.1f %10.1f %7.2fx %7.2fx" %
          (mib, mode, outs, ins, sw["spare_ins"], out_us, in_us,
           sw["prefetched_pages"] / ins if ins else 0,
           sw["faults_after_in"] / ins if ins else 0, sw["working_set_pages"],
           sw["resident_after_out_max"], nat_out, nat_in, out_us / nat_out if nat_out else 0,
           in_us / nat_in if nat_in else 0), flush=True)
    return in_us


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("swaptest")
    ap.add_argument("native")
    ap.add_argument("--sizes", default="1,4,16,64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle-ms", type=int, default=300)
    ap.add_argument("--dir", default="/var/tmp")
    a = ap.parse_args()
    a.denali_run, a.swaptest, a.native = map(os.path.abspath, (a.denali_run, a.swaptest, a.native))
    sizes = [int(x) for x in a.sizes.split(",")]
    fs = filesystem(a.dir)
    if fs == "tmpfs":
        raise SystemExit("--dir %s is on tmpfs: swapping frees nothing there (denali-run refuses it)"
                         % a.dir)
    # The service file and stats stay in $TMPDIR; the memory files go to --dir.
    with tempfile.TemporaryDirectory(prefix="denali-bench-swap-") as tmp, \
            tempfile.TemporaryDirectory(prefix="denali-bench-swap-", dir=a.dir) as workdir:
        print("bench/swap: memory files in %s (%s)%s; swaptest pattern MIB %d %d, idle_after 0.02 s; "
              "times in us, mean per operation" %
              (workdir, fs, ", the outer host's disk over 9p" if fs == "9p" else "", a.rounds,
               a.idle_ms), flush=True)
        print("%24s%-66s%-22s%s" % ("", "guest (per swap-in: prefetch, faults)", "native",
                                     "guest/native"))
        print("%4s %-8s %4s %4s %5s %10s %10s %9s %9s %7s %8s %10s %10s %8s %8s" %
              ("MiB", "mode", "outs", "ins", "spare", "swap-out", "swap-in", "prefetch", "faults",
               "wset", "left", "drop", "pop/dem", "out", "in"), flush=True)
        how = "?"
        spare_gain = []
        for mib in sizes:
            nat_drop, nat_pop, nat_demand, how = native(a, workdir, mib)
            with_spare = row(mib, "prefetch", guest(a, tmp, workdir, mib, True), nat_drop, nat_pop)
            row(mib, "demand", guest(a, tmp, workdir, mib, False), nat_drop, nat_demand)
            without = row(mib, "nospare", guest(a, tmp, workdir, mib, True, spares=0), nat_drop, nat_pop)
            spare_gain.append("%d MiB %.2fx" % (mib, with_spare / without if without else 0))
        print("native: drop = msync(MS_SYNC) + MADV_DONTNEED + FADV_DONTNEED; pop/dem = "
              "MADV_POPULATE_WRITE over the range (by %s) on prefetch rows, one write per page "
              "after a drop on demand rows; faults = vcpu-thread page faults per swap-in; "
              "wset = working-set pages at the last swap-out; left = most pages resident right "
              "after a swap-out; spare = swap-ins into a spare VM made ahead" % how)
        print("swap-in with a spare VM / without (prefetch rows): " + ", ".join(spare_gain))


if __name__ == "__main__":
    main()
