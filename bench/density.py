#!/usr/bin/env python3
"""bench/density: start N idle services, report the start rate and what each one costs.

Usage: density.py DENALI_RUN EVENTS_IMAGE [--counts 1000,5000,10000] [--cell-sizes 1,16,64,256]

Each service is the `events stop-exit` guest: it prints one line and idles until DN_EV_STOP.
Once all N have printed, the script samples supervisor and cell RSS and /proc/meminfo (Slab,
KernelStack, PageTables, VmallocUsed) against a baseline taken before the run, then sends
SIGTERM and waits for every service to exit. A run that fails to start every service reports
the first error (the resource that ran out) and moves on.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

FIELDS = ["Slab", "KernelStack", "PageTables", "VmallocUsed"]


def meminfo():
    out = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":")
        if k in FIELDS:
            out[k] = int(v.split()[0])
    return out


def rss_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        return [int(p) for p in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        return []


def run(denali_run, image, n, cell_size, tmp):
    files = []
    for i in range(n):
        path = os.path.join(tmp, "d%05d.json" % i)
        with open(path, "w") as f:
            f.write('{"name": "d%05d", "image": "%s", "memory": "4M", "args": ["stop-exit"]}' % (i, image))
        files.append(path)
    state = os.path.join(tmp, "state")
    base = meminfo()
    start = time.monotonic()
    proc = subprocess.Popen([denali_run, "--quiet", "--grace", "30", "--cell-size", str(cell_size),
                             "--state-dir", state, "--fleet", tmp], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    ready = 0
    for line in proc.stdout:
        if b"waiting for stop" in line:
            ready += 1
            if ready == n:
                break
    elapsed = time.monotonic() - start
    if ready < n:
        proc.wait()
        err = proc.stderr.read().decode().strip().splitlines()
        return "N=%d cell=%d: only %d started; first error: %s" % (n, cell_size, ready, err[0] if err else "?")
    time.sleep(0.5)
    now = meminfo()
    sup = rss_kb(proc.pid)
    cells = sum(rss_kb(c) for c in children(proc.pid))
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    proc.wait(timeout=600)
    per = lambda kb: kb * 1024.0 / n / 1024.0
    deltas = " ".join("%s %.1f" % (k, per(now[k] - base[k])) for k in FIELDS)
    return ("N=%-6d cell=%-4d start %7.1f services/s | per service KiB: supervisor RSS %.1f, "
            "cell RSS %.1f, %s | exit status %d" % (n, cell_size, n / elapsed, per(sup), per(cells),
                                                    deltas, proc.returncode))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("image")
    ap.add_argument("--counts", default="1000,5000,10000")
    ap.add_argument("--cell-sizes", default="1,16,64,256")
    a = ap.parse_args()
    print("bench/density: idle services, per-service cost (KiB) and start rate")
    for n in [int(x) for x in a.counts.split(",")]:
        for cell in [int(x) for x in a.cell_sizes.split(",")]:
            with tempfile.TemporaryDirectory(prefix="denali-density-") as tmp:
                print(run(os.path.abspath(a.denali_run), os.path.abspath(a.image), n, cell, tmp), flush=True)


if __name__ == "__main__":
    sys.exit(main())
