#!/usr/bin/env python3
"""bench/wake: how late an idle service wakes for its timer event, beside the host's own
clock_nanosleep lateness measured in the same run.

Usage: wake.py DENALI_RUN EVENTS_IMAGE [PERIOD_MS] [COUNT]

The guest (`events timer`) idles in its event loop with a one-shot timer as the deadline; on
each expiry it records now - deadline, i.e. the latency from the event being due to the guest
running its callback. The baseline is a host thread doing the same with clock_nanosleep.
"""
import ctypes
import os
import re
import subprocess
import sys
import tempfile
import time


def host_lateness_us(period_ms, count):
    libc = ctypes.CDLL(None, use_errno=True)

    class timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    late = []
    deadline = time.monotonic_ns() + period_ms * 1000000
    for _ in range(count):
        ts = timespec(deadline // 1000000000, deadline % 1000000000)
        libc.clock_nanosleep(1, 1, ctypes.byref(ts), None)  # CLOCK_MONOTONIC, TIMER_ABSTIME
        late.append((time.monotonic_ns() - deadline) / 1000)
        deadline += period_ms * 1000000
    late.sort()
    return late[len(late) // 2], late[len(late) * 99 // 100]


def main():
    denali_run, image = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    period = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    with tempfile.TemporaryDirectory(prefix="denali-wake-") as tmp:
        svc = os.path.join(tmp, "wake.json")
        with open(svc, "w") as f:
            f.write('{"name": "wake", "image": "%s", "memory": "4M", "args": ["timer", "%d", "%d"]}'
                    % (image, period, count))
        out = subprocess.run([denali_run, "--state-dir", os.path.join(tmp, "s"), svc],
                             capture_output=True, check=True).stdout.decode()
    g50, g99 = [int(x) for x in re.search(r"p50 (\d+) us p99 (\d+) us", out).groups()]
    h50, h99 = host_lateness_us(period, count)
    print("bench/wake: %d timer wakes every %d ms, lateness in us" % (count, period))
    print("host clock_nanosleep (baseline): p50 %8.1f  p99 %8.1f" % (h50, h99))
    print("denali idle service, timer event: p50 %8.1f  p99 %8.1f" % (g50, g99))
    print("extra latency of a wake (p50): %.1f us" % (g50 - h50))


if __name__ == "__main__":
    main()
