#!/usr/bin/env python3
"""bench/zipf: a fleet of N httpd services under Zipf-popular load, with a fleet memory budget
(denali-run --memory-budget), beside the same load against the fleet with no budget (nothing
swapped) and against one always-resident service, measured in the same run, as ratios.

Usage: zipf.py DENALI_RUN HTTPD ZIPF_LOAD [--services 100,300] [--alphas 1.0,0.8]
               [--budgets 100,50,25,10] [--seconds 20] [--warmup 10] [--clients 4]
               [--memory 16M] [--uplink user|tap] [--cell-size 64] [--spare-vms 1]
               [--dir /var/tmp] [--timeout-ms 10000] [--seed 1]

First, one always-resident httpd under the same load: the single-service baseline, and its
resident guest memory after the load (--stats resident_peak_bytes) is the working set of one
httpd after requests. The fleet's resident memory is N times that. Then, for each N, N httpd
services (GET / answers "Hello from NAME on Denali") start under one denali-run per budget:
first with no budget (the fleet baseline: nothing swapped), then with each --budgets percentage
of the fleet's resident memory (denali-run --memory-budget). The host reaches each service
directly at 10.99.x.y on a TAP device (--uplink tap, the default as root: the script creates
dnzipf0 and raises the kernel's ARP table limits when N needs it), or through the user uplink's
port forward 127.0.0.1:(20000+i) -> guest port 80 (--uplink user: no root needed, but libslirp
keeps 16 ARP entries, so most connections to a fleet of more than 16 start with an ARP
broadcast that the switch floods to every awake service).

Per alpha, zipf_load (bench/zipf_load.c) runs --warmup seconds of the same load (not reported)
and then --seconds measured: --clients closed-loop clients, one GET / per new TCP connection,
each to a service drawn with Zipf popularity (rank k has weight 1/k^alpha; ranks are a seeded
shuffle of the services). Per point: requests/s, p50 and p99 latency, swap-ins per second,
hit rate (1 - swap-ins / requests: requests that found their service resident), errors and
timeouts (the first few named), the most services awake at once; then the ratios to the fleet
baseline at the same alpha. Per run: start rate, --stats swap totals, frames each request cost
the fleet (floods included).

Swap-ins are counted per point as the VMs KVM created during it (its uevents' CREATED counter:
once the fleet is up, a VM is created only to swap a service in), and the VMs alive (COUNT) are
the services awake, but for the spare VMs cells keep for swap-ins (--spare-vms, passed to
denali-run): a cell makes its spares once one of its services has slept, and the next as soon as
one is taken, so the VMs alive overcount the awake by at most cells x spares, and the VMs created
count each swap-in once, give or take the spares made at the point's edges. A run ends with two
SIGTERMs, 0.2 s apart: the first raises DN_EV_STOP
(a sleeping service is swapped in to see it), the second stops whatever still runs. Its --stats
swap.ins total is then the swap-ins counted under load plus the services asleep at the end.
Memory files go to --dir (default /var/tmp; not tmpfs: swapping refuses it).
"""
import argparse
import errno
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from hostfs import filesystem

PORT_BASE = 20000
TAP = "dnzipf0"
TAP_HOST = "10.99.0.1"
NETLINK_KOBJECT_UEVENT = 15
SO_RCVBUFFORCE = 33
LOAD = re.compile(r"zipf_load: requests (\d+) errors (\d+) timeouts (\d+) seconds ([\d.]+) "
                  r"rps ([\d.]+) p50_us (\d+) p99_us (\d+) mean_us (\d+) max_us (\d+)(.*)")


class KvmEvents:
    """KVM's uevents: CREATED counts every VM created since boot, COUNT the VMs alive."""

    def __init__(self):
        self.created = self.alive = None
        self.peak = 0  # the most VMs alive seen since reset_peak
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
            self.sock.bind((0, 1))
        except OSError:
            self.sock = None
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
        except OSError:  # not root: as large as allowed
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)

    def poll(self):
        """Reads every event queued; returns (created, alive), None for what was never seen."""
        while self.sock:
            try:
                msg = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    continue  # some were dropped; the next ones carry the totals
                raise
            fields = dict(f.split(b"=", 1) for f in msg.split(b"\0") if b"=" in f)
            if b"CREATED" in fields and fields.get(b"SUBSYSTEM") == b"misc":
                self.created, self.alive = int(fields[b"CREATED"]), int(fields[b"COUNT"])
                self.peak = max(self.peak, self.alive)
        return self.created, self.alive

    def reset_peak(self):
        self.poll()
        self.peak = self.alive or 0


def service_name(i):
    return "z%05d" % i


def guest_ip(i):
    k = i + 2  # 10.99.0.1 is the host's end of the TAP device
    return "10.99.%d.%d" % (k >> 8, k & 255)


def write_fleet(a, folder, n, first_port):
    """n service files in folder; returns the targets (ip, port, name), by index."""
    os.makedirs(folder)
    targets = []
    for i in range(n):
        name = service_name(i)
        if a.uplink == "tap":
            net = {"uplink": "tap:" + TAP, "ip": guest_ip(i) + "/16"}
            targets.append((guest_ip(i), 80, name))
        else:
            net = {"forward": ["tcp:%d:80" % (first_port + i)]}
            targets.append(("127.0.0.1", first_port + i, name))
        with open(os.path.join(folder, name + ".json"), "w") as f:
            json.dump({"name": name, "image": a.httpd, "memory": a.memory, "net": net}, f)
    return targets


def write_targets(path, targets, seed):
    """The targets in popularity order: a seeded shuffle, so rank is not start order."""
    ranked = list(targets)
    random.Random(seed).shuffle(ranked)
    with open(path, "w") as f:
        for ip, port, name in ranked:
            f.write("%s %d %s\n" % (ip, port, name))


def thread_states(pid):
    """Where the threads of pid and its children wait, counted: for a run that hangs."""
    counts = {}
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids = [pid] + [int(c) for c in f.read().split()]
    except OSError:
        pids = [pid]
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (p, tid)) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
                with open("/proc/%d/task/%s/wchan" % (p, tid)) as f:
                    wchan = f.read().strip() or "-"
            except (OSError, IndexError):
                continue
            key = "%s %s %s" % ("supervisor" if p == pid else "cell", state, wchan)
            counts[key] = counts.get(key, 0) + 1
    return ", ".join("%d x %s" % (n, k) for k, n in sorted(counts.items()))


def drain(stream, on_line):
    for line in stream:
        on_line(line.decode("utf-8", "replace"))


class Run:
    """One denali-run over a fleet folder; its console and messages read as they come."""

    def __init__(self, a, folder, n, budget, stats, state):
        self.n, self.stats, self.up, self.errors = n, stats, 0, []
        self.all_up = threading.Event()
        cmd = [a.denali_run, "--quiet", "--grace", "60", "--cell-size", str(a.cell_size),
               "--spare-vms", str(a.spare_vms),
               "--state-dir", state, "--stats", stats, "--fleet", folder]
        if budget:
            cmd[1:1] = ["--memory-budget", str(budget)]
        self.began = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for stream, fn in ((self.proc.stdout, self.on_out), (self.proc.stderr, self.errors.append)):
            threading.Thread(target=drain, args=(stream, fn), daemon=True).start()

    def on_out(self, line):
        if "httpd: listening on port" in line:
            self.up += 1
            if self.up == self.n:
                self.all_up.set()

    def wait_up(self, timeout):
        """Seconds until every service listened; exits with the evidence if they did not."""
        deadline = time.monotonic() + timeout
        while not self.all_up.wait(0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                where = thread_states(self.proc.pid) if self.proc.poll() is None else "-"
                self.kill()
                raise SystemExit("only %d of %d services started in %.0f s (exit %s); threads: "
                                 "%s\n%s" % (self.up, self.n, time.monotonic() - self.began,
                                             self.proc.returncode, where,
                                             "".join(self.errors[-20:])))
        return time.monotonic() - self.began

    def stop(self):
        """DN_EV_STOP, and 0.2 s later a stop of whatever still runs (a second SIGTERM); then
        the --stats services (a list)."""
        self.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            where = thread_states(self.proc.pid)
            self.kill()
            raise SystemExit("denali-run did not stop in 300 s; threads: %s\n%s" %
                             (where, "".join(self.errors[-20:])))
        with open(self.stats) as f:
            return json.load(f)["services"]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def zipf_load(a, targets, seconds, alpha, pid):
    """One load phase against the fleet of denali-run pid (whose threads are shown if the load
    generator does not finish)."""
    cmd = [a.zipf_load, targets, str(seconds), str(a.clients), str(alpha), "--seed", str(a.seed),
           "--timeout-ms", str(a.timeout_ms)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=seconds + a.timeout_ms / 1000 + 60)
    except subprocess.TimeoutExpired:
        raise SystemExit("zipf_load did not finish; denali-run threads: " + thread_states(pid))
    m = LOAD.search(p.stdout)
    if p.returncode != 0 or not m:
        raise SystemExit("zipf_load failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    keys = ("requests", "errors", "timeouts", "seconds", "rps", "p50", "p99", "mean", "max")
    r = {k: float(v) for k, v in zip(keys, m.groups())}
    r["kinds"] = m.group(10).strip()
    r["failures"] = [l for l in p.stderr.splitlines() if l.startswith("zipf_load: ")]
    return r


def tap_setup(n):
    """The host's end of the TAP device, and an ARP table that holds every guest."""
    subprocess.run(["ip", "link", "del", TAP], capture_output=True)  # left by a killed run
    subprocess.run(["ip", "tuntap", "add", "dev", TAP, "mode", "tap"], check=True)
    subprocess.run(["ip", "addr", "add", TAP_HOST + "/16", "dev", TAP], check=True)
    subprocess.run(["ip", "link", "set", TAP, "up"], check=True)
    saved = {}
    for k, want in (("gc_thresh1", n * 2), ("gc_thresh2", n * 4), ("gc_thresh3", n * 8)):
        path = "/proc/sys/net/ipv4/neigh/default/" + k
        with open(path) as f:
            saved[path] = f.read().strip()
        if int(saved[path]) < want:
            with open(path, "w") as f:
                f.write(str(want))
    return saved


def tap_teardown(saved):
    subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    for path, value in saved.items():
        with open(path, "w") as f:
            f.write(value)


def raise_fd_limit(n):
    """Each service holds a few fds in the supervisor (and a forward its listening socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, 8 * n + 4096)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def totals(services):
    """What the --stats of a run add up to."""
    t = {"ins": 0, "outs": 0, "rx": 0, "bad": []}
    for s in services:
        sw = s.get("swap", {})
        t["ins"] += sw.get("ins", 0)
        t["outs"] += sw.get("outs", 0)
        t["rx"] += s.get("nic", {}).get("rx_frames", 0)
        if s["outcome"] not in ("exited", "signaled"):  # signaled: by the stop
            t["bad"].append("%s %s %s" % (s["name"], s["outcome"], s.get("reason", s["status"])))
    return t


def measure_point(a, kvm, targets, alpha, pid):
    """Warm-up, then the measured load, with the swap-ins (VMs created) during it and the
    most services awake at once (VMs alive) during it. Returns (warm-up, measured)."""
    warm = zipf_load(a, targets, a.warmup, alpha, pid)
    kvm.reset_peak()
    created, _ = kvm.poll()
    r = zipf_load(a, targets, a.seconds, alpha, pid)
    time.sleep(0.2)  # the last swap-ins' events
    created2, alive = kvm.poll()
    r["swapins"] = created2 - created if None not in (created, created2) else None
    r["awake"] = kvm.peak - 1 if alive is not None else None  # minus the sentinel VM
    return warm, r


def fleet_run(a, tmp, folder, n, budget, targets, kvm, alphas):
    """Starts the fleet, loads it at every alpha, stops it: what it measured, as a dict."""
    stats = os.path.join(tmp, "stats.json")
    with tempfile.TemporaryDirectory(prefix="state-", dir=a.workdir) as state:
        created0, _ = kvm.poll()
        run = Run(a, folder, n, budget, stats, state)
        try:
            started = run.wait_up(a.start_timeout)
            time.sleep(0.5)
            up_created, _ = kvm.poll()
            points, requests = {}, 0
            for alpha in alphas:
                warm, points[alpha] = measure_point(a, kvm, targets, alpha, run.proc.pid)
                requests += warm["requests"] + points[alpha]["requests"]
            end_created, end_alive = kvm.poll()
        except BaseException:
            run.kill()
            raise
        if run.proc.poll() is not None:
            raise SystemExit("denali-run ended early (%d):\n%s" %
                             (run.proc.returncode, "".join(run.errors[-20:])))
        services = run.stop()
    out = {"started": started, "points": points, "totals": totals(services), "vms": None,
           "errors": run.errors, "requests": requests, "services": services}
    if None not in (up_created, end_created):
        # created0 is None when no VM was created since the socket opened (then the start
        # count is unknown); the sentinel VM is one of those created at start.
        at_start = up_created - created0 - 1 if created0 is not None else None
        out["vms"] = (at_start, end_created - up_created, end_alive - 1)
    return out


def fmt_ratio(x, base):
    return "%6.2fx" % (x / base) if base else "     - "


def print_header():
    print("%6s %5s %7s %13s %7s %8s %8s %8s %6s %5s %4s %6s | %7s %7s %7s" %
          ("N", "alpha", "budget", "MiB (fits)", "req/s", "p50 ms", "p99 ms", "swapin/s", "hit%",
           "errs", "tmo", "awake", "req/s", "p50", "p99"), flush=True)


def print_point(n, alpha, label, budget, per_service, r, base):
    swaps = r["swapins"]
    hit = 100.0 * max(0.0, 1 - swaps / r["requests"]) if swaps is not None and r["requests"] else 0
    size = "%.1f (%d)" % (budget / 2**20, budget // per_service) if budget else "-"
    print("%6d %5.2f %7s %13s %7.1f %8.1f %8.1f %8s %6.1f %5d %4d %6s | %7s %7s %7s" %
          (n, alpha, label, size, r["rps"], r["p50"] / 1000,
           r["p99"] / 1000, "%.1f" % (swaps / r["seconds"]) if swaps is not None else "?", hit,
           r["errors"], r["timeouts"], r["awake"] if r["awake"] is not None else "?",
           fmt_ratio(r["rps"], base["rps"]), fmt_ratio(r["p50"], base["p50"]),
           fmt_ratio(r["p99"], base["p99"])), flush=True)
    if r["errors"] or r["timeouts"]:
        print("%14s%s; first: %s" % ("", r["kinds"], "; ".join(f[len("zipf_load: "):]
                                                           for f in r["failures"][:3])))


def describe_run(n, label, run):
    t = run["totals"]
    line = ("  N=%d %s: started in %.1f s (%.1f services/s); --stats: swap ins %d, outs %d; "
            "frames received %.1f per request" %
            (n, label, run["started"], n / run["started"], t["ins"], t["outs"],
             t["rx"] / run["requests"] if run["requests"] else 0))
    if run["vms"]:
        line += "; VMs created: %s at start, %d under load, %d awake at the end" % run["vms"]
    print(line, flush=True)
    for bad in t["bad"][:5]:
        print("  not stopped cleanly: " + bad)
    # A service still up at the second SIGTERM is "stopped: Terminated": that is the stop.
    for e in [e for e in run["errors"]
              if ("exited with status" not in e or "denali-run: cell " in e) and
              ": stopped: Terminated at" not in e][:5]:
        print("  " + e.rstrip())


def single_baseline(a, tmp, kvm):
    """One always-resident service under the same load (rank 1 is all there is). Returns its
    figures and its resident guest memory at the end."""
    folder = os.path.join(tmp, "single")
    targets = write_fleet(a, folder, 1, PORT_BASE)
    path = os.path.join(tmp, "single.txt")
    write_targets(path, targets, a.seed)
    run = fleet_run(a, tmp, folder, 1, None, path, kvm, a.alphas[:1])
    r = run["points"][a.alphas[0]]
    resident = run["services"][0]["resident_peak_bytes"]
    print("single always-resident service: %.1f req/s, p50 %.1f ms, p99 %.1f ms, %d errors, "
          "%d timeouts; resident after the load %.0f KiB" %
          (r["rps"], r["p50"] / 1000, r["p99"] / 1000, r["errors"], r["timeouts"],
           resident / 1024), flush=True)
    return r, resident


def sweep(a, tmp, n, kvm, single, per_service):
    folder = os.path.join(tmp, "fleet-%d" % n)
    targets = write_fleet(a, folder, n, PORT_BASE)
    path = os.path.join(tmp, "targets-%d.txt" % n)
    write_targets(path, targets, a.seed)
    fleet_bytes = per_service * n
    print("N=%d: fleet resident memory %.1f MiB (%d x the single service's %.0f KiB)" %
          (n, fleet_bytes / 2**20, n, per_service / 1024), flush=True)
    run = fleet_run(a, tmp, folder, n, None, path, kvm, a.alphas)
    base = run["points"]
    describe_run(n, "no budget", run)
    for alpha in a.alphas:
        print_point(n, alpha, "none", 0, per_service, base[alpha], base[alpha])
    a.start_timeout = max(a.start_timeout, 3 * run["started"] + 120)
    for pct in a.budgets:
        budget = max(4096, fleet_bytes * pct // 100 // 4096 * 4096)
        run = fleet_run(a, tmp, folder, n, budget, path, kvm, a.alphas)
        describe_run(n, "budget %d%%" % pct, run)
        for alpha in a.alphas:
            print_point(n, alpha, "%d%%" % pct, budget, per_service, run["points"][alpha],
                        base[alpha])
    for alpha in a.alphas:
        r = base[alpha]
        print("N=%d alpha %.2f, no budget against the single service: req/s %.2fx, p50 %.2fx, "
              "p99 %.2fx" % (n, alpha, r["rps"] / single["rps"], r["p50"] / single["p50"],
                             r["p99"] / single["p99"]), flush=True)


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("httpd")
    ap.add_argument("zipf_load")
    ap.add_argument("--services", default="100,300")
    ap.add_argument("--alphas", default="1.0,0.8")
    ap.add_argument("--budgets", default="100,50,25,10")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--memory", default="16M")
    ap.add_argument("--uplink", choices=("user", "tap"),
                    default="tap" if os.geteuid() == 0 else "user")
    ap.add_argument("--cell-size", type=int, default=64)
    ap.add_argument("--spare-vms", type=int, default=1)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.denali_run, a.httpd, a.zipf_load = map(os.path.abspath, (a.denali_run, a.httpd, a.zipf_load))
    a.counts = [int(x) for x in a.services.split(",")]
    a.alphas = [float(x) for x in a.alphas.split(",")]
    a.budgets = [int(x) for x in a.budgets.split(",")]
    a.start_timeout = 300
    return a


def check(a):
    """Refuses what cannot work, before anything starts. Returns the filesystem of --dir."""
    fs = filesystem(a.dir)
    if fs == "tmpfs":
        raise SystemExit("--dir %s is on tmpfs: swapping frees nothing there" % a.dir)
    if a.uplink == "user" and PORT_BASE + max(a.counts) > 32768:
        raise SystemExit("at most %d services with the user uplink (host ports from %d)" %
                         (32768 - PORT_BASE, PORT_BASE))
    if a.uplink == "tap" and (os.geteuid() != 0 or max(a.counts) > 65000):
        raise SystemExit("--uplink tap needs root (and at most 65,000 services)")
    return fs


def main():
    a = parse_args()
    fs = check(a)
    fds = raise_fd_limit(max(a.counts))
    kvm = KvmEvents()
    saved = tap_setup(max(a.counts)) if a.uplink == "tap" else None
    try:
        with tempfile.TemporaryDirectory(prefix="denali-bench-zipf-") as tmp, \
                tempfile.TemporaryDirectory(prefix="denali-bench-zipf-", dir=a.dir) as workdir:
            a.workdir = workdir
            print("bench/zipf: httpd fleets (%s each, cell size %d, %d spare VM(s) per cell, %s uplink), "
                  "memory files in "
                  "%s (%s); %d closed-loop clients, one GET / per connection, warm-up %g s then "
                  "%g s per point; fd limit %d; swap-ins counted from KVM uevents: %s" %
                  (a.memory, a.cell_size, a.spare_vms, a.uplink, a.dir, fs, a.clients, a.warmup, a.seconds,
                   fds, "yes" if kvm.sock else "no (unavailable)"), flush=True)
            single, per_service = single_baseline(a, tmp, kvm)
            print_header()
            for n in a.counts:
                sweep(a, tmp, n, kvm, single, per_service)
    finally:
        if saved is not None:
            tap_teardown(saved)


if __name__ == "__main__":
    sys.exit(main())
