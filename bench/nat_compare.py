#!/usr/bin/env python3
"""bench/nat_compare: bench/net's TCP guest -> host and bench/http through the user uplink, for
several builds in one run, interleaved (round 1: every build once, round 2: again, ...), with
medians per build and each build's median over the first's. Interleaving spreads a loaded
host's swings over all builds alike; on a shared machine use 3 rounds or more.

Usage: nat_compare.py [--rounds 3] [--seconds 5] [--bytes 4194304] [--frames 200] NAME=SRC:BUILD ...
       nat_compare.py --log FILE        (the medians of a run's saved output)
SRC is the tree whose bench/*.py run (a build's own scripts), BUILD its build folder. Example,
inside the test VM (tests/vm/kvm-vm.sh, DENALI_VM_CPUS=2 for two vCPUs):
  python3 bench/nat_compare.py base=/work/wt/nat-base2:/work/wt/nat-base2/build-base now=.:build
Each block of output starts with "=== NAME net" or "=== NAME http": --log reads those back.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys


def run_net(src, build, nbytes, nframes):
    out = subprocess.run([sys.executable, "bench/net.py", build + "/denali-run", build + "/tests/guests/nettest",
                          build + "/tests/guests/netclient", "--frames", str(nframes), "--bytes", str(nbytes)],
                         cwd=src, capture_output=True, text=True)
    return "\n".join(l for l in (out.stdout + out.stderr).splitlines() if "TCP" in l or "rror" in l)


def run_http(src, build, seconds):
    out = subprocess.run([sys.executable, "bench/http.py", build + "/denali-run", build + "/guest/httpd",
                          build + "/bench/http_native", "--zipf-load", build + "/bench/zipf_load",
                          "--seconds", str(seconds)], cwd=src, capture_output=True, text=True)
    return out.stdout + out.stderr


def parse(text):
    """{(build, metric): [values]} from a run's output."""
    vals = {}
    name = kind = load = None
    for line in text.splitlines():
        m = re.match(r"=== (\S+) (net|http)", line)
        if m:
            name, kind = m.groups()
            continue
        if name is None:
            continue
        m = re.search(r"guest -> host \(NAT\): ([\d.]+) MB/s.*ratios [\d.]+ and ([\d.]+)", line)
        if m:
            vals.setdefault((name, "TCP guest->host MB/s"), []).append(float(m.group(1)))
            vals.setdefault((name, "TCP guest->host / loopback"), []).append(float(m.group(2)))
            continue
        if line.startswith("bench/http: keep-alive"):
            load = "keep-alive"
        elif line.startswith("bench/http: new connection"):
            load = "one per connection"
        m = re.match(r"\s*(\d+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)x", line)
        if m and load:
            conns, vm, _, ratio = m.groups()
            vals.setdefault((name, "http %s, %s conns, req/s" % (load, conns)), []).append(float(vm))
            vals.setdefault((name, "http %s, %s conns, / native" % (load, conns)), []).append(float(ratio))
    return vals


def summarize(text):
    vals = parse(text)
    names = []
    for n, _ in vals:
        if n not in names:
            names.append(n)
    metrics = []
    for _, k in vals:
        if k not in metrics:
            metrics.append(k)
    print("medians (runs in brackets)" + "".join("%22s" % n for n in names) +
          "".join("%14s" % ("%s/%s" % (n, names[0])) for n in names[1:]))
    for k in metrics:
        med = [statistics.median(vals[(n, k)]) if vals.get((n, k)) else None for n in names]
        row = "%-40s" % k
        for n, v in zip(names, med):
            row += "%22s" % ("-" if v is None else "%.3f [%d]" % (v, len(vals[(n, k)])))
        for v in med[1:]:
            row += "%14s" % ("-" if v is None or not med[0] else "%.2fx" % (v / med[0]))
        print(row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="*", help="NAME=SRC:BUILD")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--bytes", type=int, default=4 << 20)
    ap.add_argument("--frames", type=int, default=200, help="bench/net's guest-to-guest frames (not the NAT's)")
    ap.add_argument("--log")
    a = ap.parse_args()
    if a.log:
        with open(a.log) as f:
            summarize(f.read())
        return
    builds = []
    for b in a.builds:
        name, _, rest = b.partition("=")
        src, _, build = rest.partition(":")
        builds.append((name, os.path.abspath(src), os.path.abspath(build)))
    out = []
    print("vCPUs: %d" % os.cpu_count(), flush=True)
    for r in range(a.rounds):
        for kind in ("net", "http"):
            for name, src, build in builds:
                text = "=== %s %s\n" % (name, kind) + (run_net(src, build, a.bytes, a.frames) if kind == "net"
                                                       else run_http(src, build, a.seconds))
                print(text, flush=True)
                out.append(text)
    summarize("\n".join(out))


if __name__ == "__main__":
    main()
