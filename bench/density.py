#!/usr/bin/env python3
"""bench/density: start N idle services, report the start rate and what each one costs, awake
(its VM live) and asleep (swapped out: the descriptor a sleeping service leaves behind).

Usage: density.py DENALI_RUN EVENTS_IMAGE [--counts 1000,5000,10000] [--cell-sizes 1,16,64,256]
                  [--modes live,asleep] [--swap-dir /var/tmp]

Each service is the `events stop-exit` guest: it prints one line and idles until DN_EV_STOP.
Once all N have printed, the script samples supervisor and cell RSS and /proc/meminfo (Slab,
KernelStack, PageTables, VmallocUsed) against a baseline taken before the run, then sends
SIGTERM and waits for every service to exit. In the asleep mode every service has
"swap": {"idle_after": 0.01} and its state directory is under --swap-dir (not tmpfs); the
sample is taken once every cell is down to its main thread (every service swapped out: no vcpu
thread, VM, mapping or fd left), so the figures are the cost of a sleeping service. A run that fails to start every service reports
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


def threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def wait_asleep(proc, timeout=600):
    """Waits until every cell is down to its main thread: all services swapped out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cells = children(proc.pid)
        if cells and sum(threads(c) for c in cells) == len(cells):
            return True
        time.sleep(0.2)
    return False


def run(denali_run, image, n, cell_size, tmp, mode, swap_dir):
    files = []
    swap = ', "swap": {"idle_after": 0.01}' if mode == "asleep" else ""
    for i in range(n):
        path = os.path.join(tmp, "d%05d.json" % i)
        with open(path, "w") as f:
            f.write('{"name": "d%05d", "image": "%s", "memory": "4M", "args": ["stop-exit"]%s}'
                    % (i, image, swap))
        files.append(path)
    state = os.path.join(tmp if mode == "live" else swap_dir, "state")
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
    if mode == "asleep" and not wait_asleep(proc):
        proc.kill()
        return "N=%d cell=%d asleep: not every service went to sleep" % (n, cell_size)
    now = meminfo()
    sup = rss_kb(proc.pid)
    cells = sum(rss_kb(c) for c in children(proc.pid))
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    proc.wait(timeout=600)
    per = lambda kb: kb * 1024.0 / n / 1024.0
    deltas = " ".join("%s %.1f" % (k, per(now[k] - base[k])) for k in FIELDS)
    return ("N=%-6d cell=%-4d %-6s start %7.1f services/s | per service KiB: supervisor RSS %.1f, "
            "cell RSS %.1f, %s | exit status %d" % (n, cell_size, mode, n / elapsed, per(sup),
                                                    per(cells), deltas, proc.returncode))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("image")
    ap.add_argument("--counts", default="1000,5000,10000")
    ap.add_argument("--cell-sizes", default="1,16,64,256")
    ap.add_argument("--modes", default="live,asleep")
    ap.add_argument("--swap-dir", default="/var/tmp")
    a = ap.parse_args()
    print("bench/density: idle services, per-service cost (KiB) and start rate")
    for n in [int(x) for x in a.counts.split(",")]:
        for cell in [int(x) for x in a.cell_sizes.split(",")]:
            for mode in a.modes.split(","):
                with tempfile.TemporaryDirectory(prefix="denali-density-") as tmp, \
                        tempfile.TemporaryDirectory(prefix="denali-density-", dir=a.swap_dir) as swap_dir:
                    print(run(os.path.abspath(a.denali_run), os.path.abspath(a.image), n, cell, tmp, mode,
                              swap_dir), flush=True)


if __name__ == "__main__":
    sys.exit(main())
