#!/usr/bin/env python3
"""bench/http: requests per second and latency of httpd in a VM, through the user uplink's
port forward, beside the same load against a trivial host-native server (http_native) in the
same run, as a ratio.

Two loads, each against both servers: keep-alive (wrk, Debian package "wrk"; skipped without
it) and one request per connection, the server closing first (bench/zipf_load with --close: the
load of ab without -k and of httperf, the Denali paper's), both GET /hello.txt.

Usage: http.py DENALI_RUN HTTPD HTTP_NATIVE [--zipf-load ZIPF_LOAD] [--seconds 10]
               [--connections 4,32]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("nothing listens on port %d" % port)


def to_us(text):
    value, unit = float(text[:-2] if text.endswith("us") or text.endswith("ms") else text[:-1]), text[-2:]
    if unit == "us":
        return value
    if unit == "ms":
        return value * 1000
    return value * 1e6  # "s"


def wrk(port, seconds, conns):
    out = subprocess.run(["wrk", "-t", "1", "-c", str(conns), "-d", "%ds" % seconds, "--latency",
                          "http://127.0.0.1:%d/hello.txt" % port], capture_output=True, check=True).stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_us(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_us(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return rps, p50, p99, errors.group(0) if errors else ""


HELLO = "Hello, world! This is a text file served by denali-httpd."


def short_load(zipf_load, tmp, port, seconds, conns):
    """One GET per connection, "Connection: close": (req/s, p50 us, p99 us, failures)."""
    targets = os.path.join(tmp, "targets-%d" % port)
    with open(targets, "w") as f:
        f.write("127.0.0.1 %d web\n" % port)
    out = subprocess.run([zipf_load, targets, str(seconds), str(conns), "0", "--path", "/hello.txt",
                          "--expect", HELLO, "--close"], capture_output=True, check=True).stdout.decode()
    v = dict(zip(out.split()[1::2], out.split()[2::2]))
    failed = int(v["errors"]) + int(v["timeouts"])
    note = "" if not failed else "(%d failed: %s resets, %s connects, %s timeouts)" % (
        failed, v["err_reset"], v["err_connect"], v["timeouts"])
    return float(v["rps"]), float(v["p50_us"]), float(v["p99_us"]), note


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("httpd")
    ap.add_argument("native")
    ap.add_argument("--zipf-load", help="bench/zipf_load, for the one-request-per-connection load "
                    "(default: beside HTTP_NATIVE)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", default="4,32")
    a = ap.parse_args()
    zipf_load = os.path.abspath(a.zipf_load or os.path.join(os.path.dirname(a.native), "zipf_load"))
    if not os.access(zipf_load, os.X_OK):
        raise SystemExit("bench/http needs bench/zipf_load (build it, or give --zipf-load)")
    have_wrk = shutil.which("wrk") is not None
    vm_port, host_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="denali-bench-http-") as tmp:
        svc = os.path.join(tmp, "web.json")
        with open(svc, "w") as f:
            json.dump({"name": "web", "image": os.path.abspath(a.httpd), "memory": "16M",
                       "net": {"forward": ["tcp:%d:80" % vm_port]}}, f)
        vm = subprocess.Popen([os.path.abspath(a.denali_run), "--quiet", "--state-dir", os.path.join(tmp, "s"), svc],
                              stdout=subprocess.DEVNULL)
        native = subprocess.Popen([os.path.abspath(a.native), str(host_port)], stdout=subprocess.DEVNULL)
        try:
            wait_listening(vm_port)
            wait_listening(host_port)
            conns = [int(x) for x in a.connections.split(",")]
            loads = [("keep-alive (wrk)", wrk)] if have_wrk else []
            loads.append(("new connection per request (zipf_load --close)",
                          lambda port, secs, c: short_load(zipf_load, tmp, port, secs, c)))
            if not have_wrk:
                print("bench/http: no wrk (sudo apt-get install wrk): keep-alive load skipped")
            for name, load in loads:
                print("bench/http: %s, GET /hello.txt, %d s per point" % (name, a.seconds))
                print("%5s %12s %10s %10s %12s %10s %10s %8s" % ("conns", "vm req/s", "p50 us", "p99 us",
                                                              "native req/s", "p50 us", "p99 us", "ratio"))
                for c in conns:
                    v = load(vm_port, a.seconds, c)
                    n = load(host_port, a.seconds, c)
                    print("%5d %12.0f %10.0f %10.0f %12.0f %10.0f %10.0f %7.3fx %s %s" %
                          (c, v[0], v[1], v[2], n[0], n[1], n[2], v[0] / n[0], v[3], n[3]), flush=True)
        finally:
            vm.send_signal(signal.SIGTERM)
            native.kill()
            vm.wait(timeout=30)
            native.wait()


if __name__ == "__main__":
    main()
