#!/usr/bin/env python3
"""bench/sleepers: what one more service costs the host while it sleeps (swapped out) and while
it is awake, as the marginal cost between two fleet sizes in one cell, in the same run.

Usage: sleepers.py DENALI_RUN EVENTS_IMAGE [--counts 64,512] [--swap-dir /var/tmp]

Each fleet is N `events stop-exit` services (4 MiB, "swap": {"idle_after": 0.01} when asleep)
in a single cell. Once every service has printed its line (and, asleep, once the cell is down to
its main thread: no vcpu thread, VM, mapping or fd left), the script reads the anonymous memory
of the supervisor and of the cell (smaps_rollup) and the kernel's Slab, KernelStack, PageTables
and VmallocUsed (meminfo). The marginal cost per service is the difference between the two
fleet sizes divided by the difference in N, so fixed costs (libraries, the cell's own heap)
cancel. The goal for a sleeping service is under 8 KiB in the monitor (Denali: 8,472 bytes).
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from density import FIELDS, children, meminfo, wait_asleep


def anon_kb(pid):
    try:
        for line in open("/proc/%d/smaps_rollup" % pid):
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(denali_run, image, n, asleep, workdir):
    fleet = os.path.join(workdir, "fleet%d" % n)
    os.mkdir(fleet)
    swap = ', "swap": {"idle_after": 0.01}' if asleep else ""
    for i in range(n):
        with open(os.path.join(fleet, "s%05d.json" % i), "w") as f:
            f.write('{"name": "s%05d", "image": "%s", "memory": "4M", "args": ["stop-exit"]%s}'
                    % (i, image, swap))
    base = meminfo()
    proc = subprocess.Popen([denali_run, "--quiet", "--grace", "60", "--cell-size", str(n),
                             "--state-dir", os.path.join(workdir, "state%d" % n), "--fleet", fleet],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = 0
    for line in proc.stdout:
        ready += b"waiting for stop" in line
        if ready == n:
            break
    if ready < n or (asleep and not wait_asleep(proc)):
        proc.kill()
        raise SystemExit("N=%d: the fleet did not start (or sleep): %s" % (n, proc.stderr.read()[:500]))
    time.sleep(0.5)
    kernel = meminfo()
    cells = children(proc.pid)
    row = {"supervisor": anon_kb(proc.pid), "cell": sum(anon_kb(c) for c in cells)}
    row.update({k: kernel[k] - base[k] for k in FIELDS})
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    proc.wait(timeout=600)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("image")
    ap.add_argument("--counts", default="64,512")
    ap.add_argument("--swap-dir", default="/var/tmp")
    a = ap.parse_args()
    small, large = [int(x) for x in a.counts.split(",")]
    print("bench/sleepers: marginal cost of one service, N=%d vs N=%d in one cell (bytes)" % (small, large))
    keys = ["supervisor", "cell"] + FIELDS
    print("%-7s %s %10s" % ("", " ".join("%11s" % k for k in keys), "monitor"))
    rows = {}
    for asleep in (False, True):
        with tempfile.TemporaryDirectory(prefix="denali-sleepers-", dir=a.swap_dir) as work:
            lo = measure(os.path.abspath(a.denali_run), os.path.abspath(a.image), small, asleep, work)
            hi = measure(os.path.abspath(a.denali_run), os.path.abspath(a.image), large, asleep, work)
        per = {k: (hi[k] - lo[k]) * 1024.0 / (large - small) for k in keys}
        name = "asleep" if asleep else "awake"
        rows[name] = per
        print("%-7s %s %10.0f" % (name, " ".join("%11.0f" % per[k] for k in keys),
                                  per["supervisor"] + per["cell"]), flush=True)
    total = lambda r: sum(r.values())
    print("asleep/awake, monitor + kernel: %.3f" % (total(rows["asleep"]) / total(rows["awake"])))


if __name__ == "__main__":
    sys.exit(main())
