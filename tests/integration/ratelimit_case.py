#!/usr/bin/env python3
"""Per-service rate limits with real guests: a limited service is slowed to its limit, never
fails, and its unlimited neighbours go on at their own pace. Everything is counted (the
switch's and the disk's counters in --stats), not timed: each guest drives its device as fast
as it can for 10 s of its own clock.

Usage: ratelimit_case.py DENALI_RUN NETTEST DISKTEST EVENTS CASE, or --list."""
import os
import re

import caselib
from caselib import expect

SECONDS = 10
# The limits: 50 frames a second and 50 disk requests a second, far below what even the slow
# test VM does unthrottled (thousands of each: 5,900-10,000 frames/s and 1,500-9,600 reads/s
# measured). The bucket holds two seconds' worth: a device thread (or the whole VM) that a
# loaded host runs late loses no token unless it is late by more (a bucket of 200 ms lost a
# fifth of them there, one of a second up to 8%).
RATE = 50
BUCKET = {"size": 100, "refill_time_ms": 2000}


class Env(caselib.Env):
    timeout = 240

    def __init__(self, binaries, tmp):
        denali_run, self.nettest, self.disktest, self.events = (os.path.abspath(b) for b in binaries)
        super().__init__(denali_run, tmp)

    def service(self, name, image, args, **keys):
        return self.write_service(name, image, args, memory="8M", **keys)


def within(count, limit_total, burst):
    """count is within 10% of what the limit allows over the run (its bucket's first fill
    included)."""
    expected = limit_total + burst
    return abs(count - expected) <= 0.1 * limit_total


def bench_ms(out, name):
    """The guest's own time for its bench: its 10 s, and the wait for the requests it still
    had in flight then (64 at 50/s: 1.3 s more, and those are counted too)."""
    m = re.search(r"^\[%s\] bench randread batch \d+: (\d+) ops in (\d+) ms" % name, out, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def case_limits(e):
    """One service limited to RATE frames/s and another to RATE disk requests/s, each beside an
    unlimited neighbour doing the same: the limited ones send and read within 10% of
    RATE x 10 s (plus the bucket's first fill), with no error and no dropped frame; the
    neighbours far more."""
    limit = {"ops": BUCKET}
    net = {"uplink": "none"}
    files = [
        e.service("net-limited", e.nettest, ["flood", str(SECONDS)],
                  net=dict(net, tx_rate_limiter=limit)),
        e.service("net-free", e.nettest, ["flood", str(SECONDS)], net=net),
        # 64 requests kept in the ring: the limited guest always has one waiting for the next
        # token, however late the loaded VM runs it.
        e.service("disk-limited", e.disktest, ["bench", "randread", "64", str(SECONDS)],
                  disk={"path": "limited.img", "size": "4M", "rate_limiter": limit}),
        e.service("disk-free", e.disktest, ["bench", "randread", "64", str(SECONDS)],
                  disk={"path": "free.img", "size": "4M"}),
    ]
    status, out, err, stats = e.run_stats(files)
    print(out, end="")
    expect(status == 0, "every service exits 0 (a limited one is slowed, never failed)", status, out, err)
    total = RATE * SECONDS
    burst = BUCKET["size"]

    def frames(name):
        nic = stats[name]["nic"]
        return nic["tx_frames"] + nic["tx_dropped"]  # what the switch took from its ring

    nl, nf = frames("net-limited"), frames("net-free")
    dl, df = stats["disk-limited"]["disk"]["reads"], stats["disk-free"]["disk"]["reads"]
    print("limited to %d/s for %d s: net %d frames (free neighbour %d), disk %d reads (free neighbour %d)"
          % (RATE, SECONDS, nl, nf, dl, df))
    print("throttled: net %d frames for %.1f s, disk %d requests for %.1f s" % (
        stats["net-limited"]["nic"]["tx_throttled"], stats["net-limited"]["nic"]["tx_throttled_ns"] / 1e9,
        stats["disk-limited"]["disk"]["throttled"], stats["disk-limited"]["disk"]["throttled_ns"] / 1e9))
    expect(within(nl, total, burst), "net-limited sent %d frames: within 10%% of %d + %d" % (nl, total, burst),
           status, out, err)
    ops, ms = bench_ms(out, "disk-limited")
    expect(ops == dl, "disk-limited counted %s reads itself, the disk %d" % (ops, dl), status, out, err)
    disk_total = RATE * ms // 1000
    expect(within(dl, disk_total, burst), "disk-limited did %d reads in %d ms of its clock: within 10%% of %d + %d"
           % (dl, ms, disk_total, burst), status, out, err)
    expect(stats["disk-limited"]["disk"]["failed"] == 0, "no limited request failed", status, out, err)
    expect(stats["net-limited"]["nic"]["tx_throttled"] > 0 and stats["disk-limited"]["disk"]["throttled"] > 0,
           "the limits did the slowing (throttled counters)", status, out, err)
    expect(stats["net-free"]["nic"]["tx_throttled"] == 0 and stats["disk-free"]["disk"]["throttled"] == 0,
           "the neighbours were never throttled", status, out, err)
    # The neighbours are not held to their neighbour's limit: several times more.
    expect(nf >= 4 * total and df >= 4 * total,
           "the unlimited neighbours did far more (net %d, disk %d; the limit allows %d)" % (nf, df, total),
           status, out, err)


def case_cpu(e):
    """A service limited to 25% of a CPU, spinning without an exit for 5 s of its own clock
    beside one that spins unlimited: its vcpu used at most its share of its wall time (and a
    little for the timer's granularity), however busy the machine. Where the machine had CPU
    to spare (the neighbour got more than the limit), the limit is what held it back: it slept
    for it, and the neighbour got more than it."""
    # Periods of 200 ms: the kick comes up to a timer tick (4 ms) late each period, 2% here.
    files = [e.service("cpu-limited", e.events, ["cpu", "5000"], cpu_limit={"percent": 25, "period_ms": 200}),
             e.service("cpu-free", e.events, ["cpu", "5000"])]
    status, out, err, stats = e.run_stats(files)
    print(out, end="")
    expect(status == 0, "both exit 0", status, out, err)
    lim, free = stats["cpu-limited"], stats["cpu-free"]
    print("cpu-limited: %.2f s of CPU in %.2f s, slept %.2f s; cpu-free: %.2f s of CPU in %.2f s"
          % (lim["cpu_ns"] / 1e9, lim["wall_ns"] / 1e9, lim["cpu_throttled_ns"] / 1e9,
             free["cpu_ns"] / 1e9, free["wall_ns"] / 1e9))
    expect(lim["cpu_ns"] <= 0.35 * lim["wall_ns"], "the limited vcpu used at most ~25% of its time",
           status, out, err)
    expect(free["cpu_throttled_ns"] == 0, "the neighbour never slept for a limit", status, out, err)
    if free["cpu_ns"] >= 0.4 * free["wall_ns"]:
        expect(lim["cpu_throttled_ns"] > 0 and free["cpu_ns"] > lim["cpu_ns"],
               "with CPU to spare, the limited one slept for its limit and got less", status, out, err)


def case_config(e):
    """A bad limiter is refused before anything starts, with one line naming the file and key."""
    f = e.service("bad", e.nettest, ["flood", "1"],
                  net={"uplink": "none", "rx_rate_limiter": {"ops": {"size": 10}}})
    status, out, err = e.run([f])
    expect(status == 2, "exit status 2", status, out, err)
    expect('bad.json: key "net.rx_rate_limiter.ops.refill_time_ms": missing' in err and err.count("\n") == 1,
           "one line naming the file and the key", status, out, err)


CASES = {
    "ratelimit-limits": case_limits,
    "ratelimit-cpu": case_cpu,
    "ratelimit-config": case_config,
}
NO_KVM = {"ratelimit-config"}


def main():
    caselib.main(CASES, "ratelimit_case.py DENALI_RUN NETTEST DISKTEST EVENTS CASE", Env, NO_KVM, "denali-rl-")


if __name__ == "__main__":
    main()
