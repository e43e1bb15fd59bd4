#!/usr/bin/env python3
"""bench/ablation: what idle-with-timeout buys as services scale (Denali measured more than 2x).

Usage: ablation.py DENALI_RUN EVENTS_IMAGE [--counts 10,100,1000] [--period-ms 10] [--units 50]
                   [--spin 1000000]

N services each do a unit of work every PERIOD ms, UNITS times (`events work`). Between units
they either idle until the next deadline (the Denali way) or busy-yield (a loop of zero-deadline
idles, as a guest without idle-with-timeout would). Each unit burns SPIN loop iterations, so a
large enough fleet saturates the CPU. Each guest times its own span of work (VM creation does
not count); fleet throughput is all units over the longest span; the ratio compares the two
modes in the same run, with the host CPU each mode kept busy (the idle mode's real win on a
fleet that does not saturate the machine). The batching ablation on the NIC (one kick per
frame against batched kicks) is in bench/net.py; the one for events (one delivery
per event) is the second table: each service has --streams timer-driven streams of work;
batched, the guest handles every unit due at a wake-up; unbatched, it goes back to the monitor
after each unit, as a guest would if every event needed its own delivery.
"""
import argparse
import os
import re
import resource
import subprocess
import tempfile
import time


def run(denali_run, image, n, period, units, mode, spin, streams=1):
    with tempfile.TemporaryDirectory(prefix="denali-ablation-") as tmp:
        for i in range(n):
            with open(os.path.join(tmp, "w%04d.json" % i), "w") as f:
                f.write('{"name": "w%04d", "image": "%s", "memory": "4M", "args": ["work", "%d", "%d", "%s", "%d", "%d"]}'
                        % (i, image, period, units, mode, spin, streams))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        out = subprocess.run([denali_run, "--quiet", "--state-dir", os.path.join(tmp, "s"), "--fleet", tmp],
                             check=True, capture_output=True).stdout.decode()
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        spans = [int(x) for x in re.findall(r"work: \d+ units in (\d+) us", out)]
        assert len(spans) == n, out
        return n * units * streams / (max(spans) / 1e6), cpu / wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("image")
    ap.add_argument("--counts", default="10,100,1000")
    ap.add_argument("--period-ms", type=int, default=10)
    ap.add_argument("--units", type=int, default=50)
    ap.add_argument("--spin", type=int, default=1000000)
    ap.add_argument("--streams", type=int, default=4)
    a = ap.parse_args()
    dr, img = os.path.abspath(a.denali_run), os.path.abspath(a.image)
    ideal = 1000.0 / a.period_ms
    print("bench/ablation: units of work per second, %d ms period, %d units per service" % (a.period_ms, a.units))
    print("(cpus: host CPUs the whole run kept busy on average, from getrusage of denali-run and its cells)")
    print("%6s %14s %6s %14s %6s %8s %16s" % ("N", "idle-timeout", "cpus", "busy-yield", "cpus", "ratio",
                                              "ideal (N*1/period)"))
    for n in [int(x) for x in a.counts.split(",")]:
        idle, idle_cpu = run(dr, img, n, a.period_ms, a.units, "idle", a.spin)
        busy, busy_cpu = run(dr, img, n, a.period_ms, a.units, "busy", a.spin)
        print("%6d %14.1f %6.2f %14.1f %6.2f %7.2fx %16.1f" % (n, idle, idle_cpu, busy, busy_cpu, idle / busy,
                                                                 n * ideal), flush=True)
    k = a.streams
    print("\nbatching: %d timer-driven streams per service; batched handles every due unit per wake-up,"
          "\nunbatched goes back to the monitor after each unit (one delivery per event)" % k)
    print("%6s %14s %6s %14s %6s %8s %16s" % ("N", "batched", "cpus", "unbatched", "cpus", "ratio",
                                              "ideal"))
    for n in [int(x) for x in a.counts.split(",")]:
        bat, bat_cpu = run(dr, img, n, a.period_ms, a.units, "idle", a.spin, k)
        unb, unb_cpu = run(dr, img, n, a.period_ms, a.units, "unbatched", a.spin, k)
        print("%6d %14.1f %6.2f %14.1f %6.2f %7.2fx %16.1f" % (n, bat, bat_cpu, unb, unb_cpu, bat / unb,
                                                                 n * k * ideal), flush=True)


if __name__ == "__main__":
    main()
