#!/usr/bin/env python3
"""bench/natcount: what the user uplink costs per request and per MB, counted, not timed.

For a fixed workload through the user uplink (N HTTP requests to httpd through its port forward,
keep-alive and one per connection, C at a time; then one TCP transfer of BYTES from a guest to a
host socket) it reads, before and after, the counters of the supervisor's network thread, of the
NAT process (denali-nat, absent in a tree from before it) and of the guests' cells, and prints
them per request or per MB:

  vcsw, ivcsw   voluntary and involuntary context switches (/proc/.../status): a voluntary one
                is a sleep, so each is one wake-up
  slices        times the task was put on a CPU (/proc/.../schedstat)
  cpu_us        CPU time (schedstat)
  sys           system calls (--strace only: strace -c attached to the network thread and the
                NAT process for the workload; it slows them, so the other counts of that pass are
                not those of a run without it, and they are printed apart)
and from the NAT's own counters (the control socket's stats: `nat`), frames each way and frames
per sendmmsg (to the NAT) and per recvmmsg (from it).

Usage: natcount.py DENALI_RUN HTTPD NETCLIENT [--requests 1000] [--connections 4]
                   [--bytes 4194304] [--strace]
The same command works on a tree from before the NAT process (no NAT columns then): run both
in the same VM, interleaved, and compare.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

HELLO = b"Hello, world! This is a text file served by denali-httpd."


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def task_counts(pid, tid):
    """A task's counters, or None if it is gone."""
    try:
        with open("/proc/%d/task/%d/status" % (pid, tid)) as f:
            st = f.read()
        with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
            run_ns, _, slices = map(int, f.read().split())
    except OSError:
        return None
    vcsw = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
    ivcsw = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", st, re.M).group(1))
    return {"vcsw": vcsw, "ivcsw": ivcsw, "slices": slices, "cpu_us": run_ns / 1000}


def proc_counts(pid):
    """The sum over a process's tasks."""
    total = {"vcsw": 0, "ivcsw": 0, "slices": 0, "cpu_us": 0}
    try:
        tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return total
    for tid in tids:
        c = task_counts(pid, tid)
        for k in total:
            total[k] += c[k] if c else 0
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.append((int(d), comm))
    return out


class Fleet:
    """A running denali-run, its tasks found, its control socket to ask for the NAT's counters."""

    def __init__(self, denali_run, tmp, svc_files, wait_control=True):
        self.ctl = os.path.join(tmp, "ctl", "control")
        os.makedirs(os.path.dirname(self.ctl), mode=0o700, exist_ok=True)
        self.proc = subprocess.Popen([denali_run, "--quiet", "--state-dir", os.path.join(tmp, "s"),
                                      "--control", self.ctl] + svc_files, stdout=subprocess.PIPE)
        self.pid = self.proc.pid
        deadline = time.time() + 120
        while wait_control and not os.path.exists(self.ctl) and time.time() < deadline:
            time.sleep(0.01)
        # Its network thread (and NAT process, if the tree has one) started: a moment.
        deadline = time.time() + 5
        while not wait_control and time.time() < deadline and len(os.listdir("/proc/%d/task" % self.pid)) < 2:
            time.sleep(0.01)
        deadline = time.time() + 0.5
        while not wait_control and time.time() < deadline and not any(
                comm == "denali-nat" for _, comm in children(self.pid)):
            time.sleep(0.01)

    def nat_stats(self):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.ctl)
            s.sendall(b'{"cmd":"stats","name":"all"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                d = s.recv(1 << 16)
                if not d:
                    break
                buf += d
            s.close()
            return json.loads(buf).get("nat")
        except (OSError, ValueError):
            return None

    def snapshot(self, ask_nat=True):
        """Every task of the supervisor apart, the NAT process and the cells summed; the NAT's
        counters unless not ask_nat (a stats request waits for every cell: while they boot, its
        answer comes late, with counters of later than the rest)."""
        snap = {"tasks": {}, "nat": None, "cells": {"vcsw": 0, "ivcsw": 0, "slices": 0, "cpu_us": 0}}
        for t in os.listdir("/proc/%d/task" % self.pid):
            c = task_counts(self.pid, int(t))
            if c:
                snap["tasks"][int(t)] = c
        for cpid, comm in children(self.pid):
            c = proc_counts(cpid)
            if comm == "denali-nat":
                snap["nat"] = c
                snap["nat_pid"] = cpid
            else:
                for k in c:
                    snap["cells"][k] += c[k]
        snap["natstats"] = self.nat_stats() if ask_nat else None
        return snap

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def diff(a, b):
    return {k: b[k] - a[k] for k in a}


def network_thread(before, after, pid):
    """The supervisor's task, other than its main thread, that switched most: the network thread
    (the same in a tree that names no thread)."""
    best, most = None, -1
    for tid, b in after["tasks"].items():
        a = before["tasks"].get(tid)
        if tid == pid or not a:
            continue
        n = b["vcsw"] + b["ivcsw"] - a["vcsw"] - a["ivcsw"]
        if n > most:
            best, most = tid, n
    return best


class Strace:
    """strace -c on some tasks for the workload: their system calls, counted."""

    def __init__(self, tmp, name, tids, follow):
        self.out = os.path.join(tmp, "strace-%s.txt" % name)
        args = ["strace", "-c", "-o", self.out] + (["-f"] if follow else [])
        for t in tids:
            args += ["-p", str(t)]
        self.p = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=60)
        calls = {}
        with open(self.out) as f:
            for line in f:
                w = line.split()
                if len(w) >= 5 and w[0][0].isdigit() and not line.startswith("---"):
                    name = w[-1]
                    calls[name] = int(w[3])
        return calls


def http_requests(port, n, conns, keepalive):
    """n GET /hello.txt, conns at a time: on keep-alive connections, or one per connection."""
    req = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n" + (b"" if keepalive else b"Connection: close\r\n") + b"\r\n"
    errors = [0]

    def one_response(s):
        buf = b""
        while True:
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                need = int(m.group(1)) if m else 0
                if len(rest) >= need:
                    return rest[:need]
            d = s.recv(65536)
            if not d:
                return None
            buf += d

    def worker(count):
        s = None
        for _ in range(count):
            if s is None:
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(req)
            body = one_response(s)
            if body is None or HELLO not in body:
                errors[0] += 1
            if not keepalive or body is None:
                s.close()
                s = None
        if s:
            s.close()

    threads = [threading.Thread(target=worker, args=(n // conns + (i < n % conns),)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[0]


def wait_listening(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nothing listens on port %d" % port)


def report(title, unit, units, before, after, pid, sys_calls=None):
    net = network_thread(before, after, pid)
    rows = [("network thread", diff(before["tasks"][net], after["tasks"][net]))]
    if before["nat"] and after["nat"]:
        rows.append(("NAT process", diff(before["nat"], after["nat"])))
    rows.append(("cells (guests)", diff(before["cells"], after["cells"])))
    print("%s: %d %s" % (title, units, unit + "s"))
    print("  %-16s %10s %10s %10s %10s   per %s" % ("", "vcsw", "ivcsw", "slices", "cpu_us", unit))
    for name, d in rows:
        print("  %-16s %10.2f %10.2f %10.2f %10.1f" % (name, d["vcsw"] / units, d["ivcsw"] / units,
                                                      d["slices"] / units, d["cpu_us"] / units))
    a, b = before["natstats"], after["natstats"]
    if b and not a:  # not asked at the fleet's start: nothing had moved yet
        a = {k: 0 for k in b}
    if a and b:
        d = {k: b[k] - a[k] for k in ("tx_frames", "rx_frames", "tx_batches", "rx_batches", "tx_dropped")}
        print("  NAT link: to it %.2f frames per %s, %.2f per sendmmsg; from it %.2f frames per %s, "
              "%.2f per recvmmsg; dropped %d" %
              (d["tx_frames"] / units, unit, d["tx_frames"] / max(d["tx_batches"], 1), d["rx_frames"] / units,
               unit, d["rx_frames"] / max(d["rx_batches"], 1), d["tx_dropped"]))
    for name, calls in (sys_calls or {}).items():
        top = sorted(calls.items(), key=lambda kv: -kv[1])
        total = calls.get("total", 0)
        print("  system calls, %s: %.2f per %s (%s)" % (
            name, total / units, unit,
            ", ".join("%s %.2f" % (k, v / units) for k, v in top if k != "total" and v / units >= 0.05)))
    return net


def http_phase(a, tmp, keepalive):
    port = free_port()
    svc = os.path.join(tmp, "web.json")
    with open(svc, "w") as f:
        json.dump({"name": "web", "image": a.httpd, "memory": "16M", "net": {"forward": ["tcp:%d:80" % port]}}, f)
    fleet = Fleet(a.denali_run, tmp, [svc])
    try:
        wait_listening(port)
        http_requests(port, 20, 2, keepalive)  # warm: ARP, the first connections
        title = "HTTP GET, %s, %d at a time" % ("keep-alive" if keepalive else "one per connection",
                                                a.connections)
        tr = None
        if a.strace:
            # Which task is the network thread: the one that switches for a few requests.
            s0 = fleet.snapshot()
            http_requests(port, 20, 2, keepalive)
            net = network_thread(s0, fleet.snapshot(), fleet.pid)
            tr = {"network thread": Strace(tmp, "net", [net], False)}
            nat = fleet.snapshot().get("nat_pid")
            if nat:
                tr["NAT process"] = Strace(tmp, "nat", [nat], True)
            title += " (under strace)"
        before = fleet.snapshot()
        errors = http_requests(port, a.requests, a.connections, keepalive)
        after = fleet.snapshot()
        calls = {k: v.stop() for k, v in tr.items()} if tr else None
        report(title, "request", a.requests, before, after, fleet.pid, calls)
        if errors:
            print("  (%d requests failed)" % errors)
    finally:
        fleet.stop()


def tcp_phase(a, tmp):
    """netclient tcp-send to a host socket through the NAT; counted from the connection's
    accept to its end of file."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    svc = os.path.join(tmp, "up.json")
    with open(svc, "w") as f:
        json.dump({"name": "up", "image": a.netclient, "memory": "16M",
                   "args": ["tcp-send", "10.0.0.1", str(port), str(a.bytes)], "net": {}}, f)
    fleet = Fleet(a.denali_run, tmp, [svc], wait_control=False)
    try:
        # Counted from the start: the kernel completes the connection, and data flows into the
        # socket's buffer, before accept returns. So the guest's boot is in the cells' figures.
        before = fleet.snapshot(ask_nat=False)  # its counters start at 0
        c, _ = srv.accept()
        got = 0
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            got += len(d)
        after = fleet.snapshot()
        c.close()
        report("TCP guest -> host, %d bytes" % got, "MB", max(got / 1e6, 1e-9), before, after, fleet.pid)
    finally:
        srv.close()
        fleet.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("httpd")
    ap.add_argument("netclient")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--bytes", type=int, default=4 << 20)
    ap.add_argument("--strace", action="store_true")
    a = ap.parse_args()
    a.denali_run, a.httpd, a.netclient = map(os.path.abspath, (a.denali_run, a.httpd, a.netclient))
    with tempfile.TemporaryDirectory(prefix="denali-bench-natcount-") as tmp:
        http_phase(a, tmp, True)
        http_phase(a, tmp, False)
        tcp_phase(a, tmp)


if __name__ == "__main__":
    main()
