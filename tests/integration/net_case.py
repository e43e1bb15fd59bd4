#!/usr/bin/env python3
"""Network integration tests: guests on the virtual switch, checked from their consoles, exit
statuses and --stats counters.

Usage: net_case.py DENALI_RUN NETTEST CASE     (net_case.py --list prints the cases)
Guest-booting cases exit 77 (skip) only when /dev/kvm does not exist.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, what, status, out, err):
    if not cond:
        fail("%s\nstatus %d\nstdout: %r\nstderr: %r" % (what, status, out, err))


def run(cmd, timeout=120):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        fail("%s did not finish in %d s\nstdout: %r\nstderr: %r" % (cmd[0], timeout, e.stdout, e.stderr))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Env:
    def __init__(self, denali_run, nettest, tmp):
        self.denali_run, self.nettest, self.tmp = denali_run, nettest, tmp
        self.state = os.path.join(tmp, "state")

    def service(self, name, args, net=None, image=None):
        spec = {"name": name, "image": image or self.nettest, "memory": "8M", "args": args}
        if net is not None:
            spec["net"] = net
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(spec, f)
        return path

    def run(self, files, opts=(), timeout=120):
        return run([self.denali_run, "--state-dir", self.state] + list(opts) + files, timeout)

    def stats(self, files, opts=(), timeout=120):
        path = os.path.join(self.tmp, "stats.json")
        status, out, err = self.run(files, ["--stats", path] + list(opts), timeout)
        with open(path) as f:
            by_name = {s["name"]: s for s in json.load(f)["services"]}
        return status, out, err, by_name


LAN = {"uplink": "none"}


def case_frames(e):
    """A broadcast frame from one guest reaches the others; counters agree."""
    files = [e.service("tx", ["send", "40", "20"], LAN), e.service("rx1", ["recv", "5", "10000"], LAN),
             e.service("rx2", ["recv", "5", "10000"], {})]
    status, out, err, st = e.stats(files)
    expect(status == 0, "every service exited 0", status, out, err)
    for rx in ("rx1", "rx2"):
        expect("[%s] received 5 test frames, the last from tx\n" % rx in out, rx + " got tx's frames",
               status, out, err)
        expect(st[rx]["nic"]["rx_frames"] >= 5, rx + " counted its frames", status, out, err)
    expect(st["tx"]["nic"]["tx_frames"] >= 5 and st["tx"]["nic"]["tx_spoofed"] == 0,
           "tx's frames counted as sent", status, out, err)


def case_spoof(e):
    """Frames with a source MAC that is not the port's own never arrive, and are counted."""
    files = [e.service("liar", ["spoof", "20", "20"], LAN), e.service("victim", ["recv", "1", "2500"], LAN)]
    status, out, err, st = e.stats(files)
    expect("[victim] received 0 test frames, the last from nobody\n" in out, "nothing arrived",
           status, out, err)
    expect(st["liar"]["nic"]["tx_spoofed"] == 20 and st["liar"]["nic"]["tx_frames"] == 0,
           "all 20 counted as spoofed", status, out, err)


def bad_ring(e, mode, last):
    files = [e.service("bad", [mode], LAN), e.service("tx", ["send", "40", "20"], LAN),
             e.service("rx", ["recv", "10", "10000"], LAN)]
    status, out, err = e.run(files)
    expect(re.search(r"^denali-run: bad: stopped: virtual NIC: 64 ring errors \(the last: %s\) at rip=0x[0-9a-f]+$"
                     % last, err, re.M), "the corrupting guest is stopped with the reason", status, out, err)
    expect("[rx] received 10 test frames, the last from tx\n" in out and
           "denali-run: rx: exited with status 0\n" in err, "its neighbours never notice", status, out, err)


def case_bad_desc(e):
    bad_ring(e, "bad-desc", r"TX descriptor \d+: offset 0x10 length 64 outside the frame buffers")


def case_bad_index(e):
    bad_ring(e, "bad-index", r"TX ring: avail \d+ is more than 128 ahead of used \d+")


def case_no_nic(e):
    status, out, err = e.run([e.service("plain", ["recv"])])
    expect(status == 3 and out == "nettest: this service has no NIC\n", "no net key: no NIC", status, out, err)


def refused(e, net, key, message, others=()):
    files = [e.service("svc", ["recv"], net)] + [e.service(n, ["recv"], o) for n, o in others]
    status, out, err = e.run(files)
    expect(status == 2 and out == "" and key in err and re.search(message, err),
           "refused with %s" % key, status, out, err)


def case_config(e):
    refused(e, {"mac": "01:00:00:00:00:01"}, '"net.mac"', "not a unicast address")
    refused(e, {"mac": "02:00:00:00:00"}, '"net.mac"', "expected a MAC address")
    refused(e, {"ip": "10.0.0.300"}, '"net.ip"', "expected an IPv4 address")
    refused(e, {"ip": "192.168.1.5"}, '"net.ip"', "not in the user uplink's LAN")
    refused(e, {"ip": "10.0.0.20/24"}, '"net.ip"', "the prefix must be 16")
    refused(e, {"uplink": "wifi"}, '"net.uplink"', 'expected "user", "tap:NAME" or "none"')
    refused(e, {"uplink": "tap:"}, '"net.uplink"', "not a valid interface name")
    refused(e, {"uplink": "none", "forward": ["tcp:8080:80"]}, '"net.forward"', 'needs the "user" uplink')
    refused(e, {"forward": ["tcp:8080"]}, '"net.forward"', "element 0: expected")
    refused(e, {"forward": ["sctp:1:2"]}, '"net.forward"', "element 0: expected")
    refused(e, {"forward": ["tcp:0:80"]}, '"net.forward"', "element 0: expected")
    refused(e, {"forward": ["tcp:8080:80", "tcp:8080:81"]}, '"net.forward"', "forwarded twice")
    refused(e, {"colour": "blue"}, '"net.colour"', "unknown key")
    refused(e, [], '"net"', "expected an object")
    refused(e, {"mac": "02:00:00:00:00:09"}, "same MAC", r'"svc" and "twin" have the same MAC',
            [("twin", {"mac": "02:00:00:00:00:09"})])
    refused(e, {"ip": "10.0.0.99"}, "address", r'"svc" and "twin" both use address 10\.0\.0\.99',
            [("twin", {"ip": "10.0.0.99"})])
    refused(e, {"forward": ["tcp:18080:80"]}, "host port", "forward the same host port",
            [("twin", {"forward": ["tcp:18080:81"]})])


def case_forward_busy(e):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    status, out, err = e.run([e.service("web", ["recv"], {"forward": ["tcp:%d:80" % port]})])
    expect(status != 0 and out == "" and
           re.search(r'key "net.forward": cannot listen on TCP port 127\.0\.0\.1:%d' % port, err),
           "a forward on a busy port refuses the run before anything starts", status, out, err)
    s.close()


CASES = {
    "net-frames": case_frames,
    "net-spoof": case_spoof,
    "net-bad-desc": case_bad_desc,
    "net-bad-index": case_bad_index,
    "net-no-nic": case_no_nic,
    "net-config": case_config,
    "net-forward-busy": case_forward_busy,
}
NO_KVM = {"net-config"}


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return
    if len(sys.argv) != 4 or sys.argv[3] not in CASES:
        fail("usage: net_case.py DENALI_RUN NETTEST CASE")
    name = sys.argv[3]
    if name not in NO_KVM and not os.path.exists("/dev/kvm"):
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    with tempfile.TemporaryDirectory(prefix="denali-net-") as tmp:
        CASES[name](Env(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), tmp))
    print("PASS: " + name)


if __name__ == "__main__":
    main()
