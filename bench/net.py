#!/usr/bin/env python3
"""bench/net: the virtual network between guests and to the host, beside host baselines
measured in the same run.

Usage: net.py DENALI_RUN NETTEST NETCLIENT [--frames 20000] [--bytes 10485760]

1. Frames per second from one guest to another through the switch (64-byte test frames, sent
   as fast as the TX ring takes them), and exits per frame: the sender's kicks (in-kernel
   ioeventfd exits) plus the userspace exits of both guests, from --stats; then the same with a
   kick after every frame (the batching ablation: what one kick per frame would cost).
2. TCP throughput guest to guest (netclient tcp-send -> tcp-sink) and guest to host (through
   the user uplink's NAT to a host socket), beside host loopback TCP throughput (same byte
   count, Python sockets, same run).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time


def service(tmp, name, image, args, net):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump({"name": name, "image": image, "memory": "16M", "args": args, "net": net}, f)
    return path


def run(denali_run, tmp, files, may_fail=False):
    stats = os.path.join(tmp, "stats.json")
    p = subprocess.run([denali_run, "--quiet", "--state-dir", os.path.join(tmp, "s"), "--stats", stats] + files,
                       capture_output=True, timeout=600)
    out = p.stdout.decode()
    if p.returncode != 0 and not may_fail:
        raise SystemExit("denali-run failed (%d):\n%s\n%s" % (p.returncode, out, p.stderr.decode()))
    with open(stats) as f:
        return out, {s["name"]: s for s in json.load(f)["services"]}


def frames(a, tmp, mode):
    extra = ["kick-each"] if mode == "unbatched" else []
    files = [service(tmp, "tx", a.nettest, ["send", str(a.frames), "0"] + extra, {"uplink": "none"}),
             service(tmp, "rx", a.nettest, ["recv", str(a.frames), "60000", "timed"], {"uplink": "none"})]
    out, st = run(a.denali_run, tmp, files, may_fail=True)  # the receiver may drop some (counted)
    got, us = map(int, re.search(r"\[rx\] received (\d+) frames in (\d+) us", out).groups())
    kicks = int(re.search(r"\[tx\] sent \d+ frames in \d+ us, (\d+) kicks", out).group(1))
    exits = sum(sum(st[n]["exits"].values()) for n in ("tx", "rx"))
    rate = got / (us / 1e6)
    print("guest -> guest frames, %-9s: %d of %d delivered, %.0f frames/s; per frame: %.3f kicks + "
          "%.3f userspace exits (both guests)" % (mode, got, a.frames, rate, kicks / got, exits / got))
    return rate


class HostSink:
    """A host socket that counts the bytes of one connection, timed from the first byte."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self):
        c, _ = self.srv.accept()
        self.bytes, first = 0, None
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            first = first or time.time()
            self.bytes += len(d)
        self.seconds = time.time() - first

    def mbps(self):
        self.thread.join()
        self.srv.close()
        return self.bytes / self.seconds / 1e6


def loopback_mbps(nbytes):
    sink = HostSink()
    c = socket.create_connection(("127.0.0.1", sink.port))
    chunk = b"x" * 4096
    for _ in range(nbytes // len(chunk)):
        c.sendall(chunk)
    c.close()
    return sink.mbps()


def tcp(a, tmp):
    files = [service(tmp, "sink", a.netclient, ["tcp-sink", "0.0.0.0", "9000"], {"ip": "10.0.0.20"}),
             service(tmp, "src", a.netclient, ["tcp-send", "10.0.0.20", "9000", str(a.bytes)], {})]
    out, _ = run(a.denali_run, tmp, files)
    n, us = map(int, re.search(r"tcp-sink: (\d+) bytes in (\d+) us", out).groups())
    g2g = n / (us / 1e6) / 1e6
    sink = HostSink()
    run(a.denali_run, tmp, [service(tmp, "up", a.netclient, ["tcp-send", "10.0.0.1", str(sink.port), str(a.bytes)],
                                    {})])
    g2h = sink.mbps()
    base = loopback_mbps(a.bytes)
    print("TCP guest -> guest: %.1f MB/s; guest -> host (NAT): %.1f MB/s; host loopback (baseline): "
          "%.1f MB/s; ratios %.3f and %.3f" % (g2g, g2h, base, g2g / base, g2h / base))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("nettest")
    ap.add_argument("netclient")
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--bytes", type=int, default=10 * 1024 * 1024)
    a = ap.parse_args()
    a.denali_run, a.nettest, a.netclient = map(os.path.abspath, (a.denali_run, a.nettest, a.netclient))
    with tempfile.TemporaryDirectory(prefix="denali-bench-net-") as tmp:
        batched = frames(a, tmp, "batched")
        unbatched = frames(a, tmp, "unbatched")
        print("kick batching: %.2fx the frame rate of one kick per frame" % (batched / unbatched))
        tcp(a, tmp)


if __name__ == "__main__":
    main()
