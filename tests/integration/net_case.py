#!/usr/bin/env python3
"""Network integration tests: guests on the virtual switch, checked from their consoles, exit
statuses and --stats counters.

Usage: net_case.py DENALI_RUN NETTEST NETCLIENT ECHO HTTPD CASE   (--list prints the cases)
Guest-booting cases exit 77 (skip) only when /dev/kvm does not exist.
"""
import errno
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import caselib
from caselib import where_threads, SKIP, expect, fail, free_port, is_nat_process


class Env(caselib.Env):
    timeout = 120

    def __init__(self, binaries, tmp):
        denali_run, self.nettest, self.netclient, self.echo, self.httpd = (os.path.abspath(b) for b in binaries)
        super().__init__(denali_run, tmp)

    def run_until(self, files, want, opts=(), timeout=180):
        """Runs a fleet until every string in want has appeared on stdout, then sends SIGTERM
        (servers exit on DN_EV_STOP); returns status, stdout and stderr."""
        proc = self.start(files, opts)
        err_chunks, lines = [], queue.Queue()
        reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
        reader.start()
        threading.Thread(target=lambda: [lines.put(l) for l in iter(proc.stdout.readline, b"")] + [lines.put(b"")],
                         daemon=True).start()
        out = ""

        def give_up(why):
            threads = where_threads(proc.pid)
            proc.kill()
            proc.wait()
            reader.join()
            fail("%s\nthreads:\n%s\nstdout: %r\nstderr: %r" % (why, threads, out, b"".join(err_chunks)))
        deadline = time.time() + timeout
        while not all(w in out for w in want):
            try:
                line = lines.get(timeout=max(deadline - time.time(), 0.01)).decode("utf-8", "replace")
            except queue.Empty:
                line = None
            if not line:
                give_up("never saw %r" % (want,))
            out += line
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            give_up("denali-run did not end 60 s after SIGTERM")
        reader.join()
        while True:  # the rest of stdout, to end of file
            line = lines.get(timeout=10)
            if not line:
                break
            out += line.decode("utf-8", "replace")
        return proc.returncode, out, b"".join(err_chunks).decode()

    def service(self, name, args, net=None, image=None):
        keys = {} if net is None else {"net": net}
        return self.write_service(name, image or self.nettest, args, memory="8M", **keys)


LAN = {"uplink": "none"}


def case_frames(e):
    """A broadcast frame from one guest reaches the others; counters agree."""
    files = [e.service("tx", ["send", "40", "20"], LAN), e.service("rx1", ["recv", "5", "10000"], LAN),
             e.service("rx2", ["recv", "5", "10000"], {})]
    status, out, err, st = e.run_stats(files)
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
    status, out, err, st = e.run_stats(files)
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


def case_bad_rx(e):
    """A guest that keeps its RX ring full of bad buffers from its vcpu is stopped at the limit,
    counted inside the delivery that reaches it: exactly 64 errors."""
    bad_ring(e, "bad-rx", r"RX descriptor \d+: offset 0x10 length 2048 outside the frame buffers")


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
    refused(e, {"uplink": "none", "ip": "10.0.0.1"}, '"net.ip"', "10.0.0.0 to 10.0.0.15 are reserved")
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


SERVER = {"ip": "10.0.0.20"}


def case_ping(e):
    """Two guests: ICMP echo across the switch, ARP on the way."""
    files = [e.service("srv", [], SERVER, e.echo),
             e.service("pinger", ["ping", "10.0.0.20", "20", "50"], {}, e.netclient)]
    status, out, err = e.run_until(files, ["[pinger] ping:"])
    expect(re.search(r"^\[pinger\] ping: 20/20 replies", out, re.M), "every ping answered", status, out, err)
    expect("denali-run: pinger: exited with status 0\n" in err and "denali-run: srv: exited with status 0\n" in err,
           "both exited 0 (the server on DN_EV_STOP)", status, out, err)


def case_echo(e):
    """UDP and TCP echo between guests: 20 datagrams and 1 MiB, compared on return."""
    files = [e.service("srv", [], SERVER, e.echo),
             e.service("udp", ["udp-echo", "10.0.0.20", "7", "20"], {}, e.netclient),
             e.service("tcp", ["tcp-echo", "10.0.0.20", "7", "1048576"], {}, e.netclient)]
    status, out, err = e.run_until(files, ["[udp] udp-echo:", "[tcp] tcp-echo:"])
    expect("[udp] udp-echo: 20/20 datagrams came back intact\n" in out, "UDP echo", status, out, err)
    expect("[tcp] tcp-echo: 1048576 bytes came back, 0 wrong\n" in out, "TCP echo", status, out, err)


def pattern_sha(n):
    return hashlib.sha256(bytes(((i * 31 + 7) & 0xFF) for i in range(n))).hexdigest()


def case_host_send(e):
    """10 MiB from a guest to a host socket through the user uplink (the gateway is the host)."""
    size = 10 * 1024 * 1024
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def sink():
        c, _ = srv.accept()
        h, n, t = hashlib.sha256(), 0, time.time()
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            h.update(d)
            n += len(d)
        got.update(bytes=n, sha=h.hexdigest(), seconds=time.time() - t)
    th = threading.Thread(target=sink, daemon=True)
    th.start()
    status, out, err = e.run([e.service("sender", ["tcp-send", "10.0.0.1", str(port), str(size)], {}, e.netclient)],
                             timeout=240)
    th.join(60)
    expect(status == 0 and got.get("bytes") == size and got.get("sha") == pattern_sha(size),
           "10 MiB arrived intact (got %r)" % {k: v for k, v in got.items() if k != "sha"}, status, out, err)
    print("guest-to-host: %.1f MB/s" % (size / got["seconds"] / 1e6))


def curl(*args):
    p = subprocess.run(["curl", "-sS", "-m", "60"] + list(args), capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def case_httpd(e):
    """A real curl through a user-uplink forward: the page, keep-alive, 1 MiB by checksum,
    404, HEAD and 405."""
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    proc = e.start([e.service("web", [], {"forward": ["tcp:%d:80" % port]}, e.httpd)])
    try:
        line = proc.stdout.readline().decode()
        if "listening" not in line:
            fail("httpd did not start: %r %r" % (line, proc.stderr.read()))
        rc, body, cerr = curl(base + "/")
        if rc != 0 or b"Hello from web on Denali" not in body:
            fail("GET / failed: %d %r %s" % (rc, body[:200], cerr))
        rc, body, cerr = curl("-w", "\n%{num_connects} %{http_code}", base + "/hello.txt", base + "/hello.txt",
                              base + "/nope")
        codes = ["%s %s" % m for m in re.findall(r"\n(\d) (\d{3})", body.decode())]
        if codes != ["1 200", "0 200", "0 404"]:
            fail("keep-alive: expected one connection for three requests, got %r (%s)" % (codes, cerr))
        rc, body, cerr = curl(base + "/big")
        if rc != 0 or len(body) != 1 << 20 or hashlib.sha256(body).hexdigest() != pattern_sha(1 << 20):
            fail("/big: %d bytes, rc %d %s" % (len(body), rc, cerr))
        rc, head, cerr = curl("-I", base + "/big")
        if b"HTTP/1.1 200" not in head or b"Content-Length: 1048576" not in head:
            fail("HEAD /big: %r" % head)
        rc, body, cerr = curl("-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", base + "/")
        if body != b"405":
            fail("DELETE: %r" % body)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    expect(proc.returncode == 0, "httpd exits 0 on SIGTERM", proc.returncode, out.decode(), err.decode())


def short_get(port, path, sport):
    """One request on a new connection from 127.0.0.1:sport, HTTP/1.0 without keep-alive (ab's
    and httperf's load): returns (seconds to the last byte, the reply up to the server's close).
    A dropped or refused SYN toward the guest costs slirp's retransmission timeout (6 s), far
    past the 5 s a request may take."""
    t0 = time.monotonic()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(5)
        s.bind(("127.0.0.1", sport))
        for _ in range(100):  # our last socket on the port may not be quite gone
            try:
                s.connect(("127.0.0.1", port))
                break
            except OSError as err:
                if err.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
                    raise
                time.sleep(0.01)
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return time.monotonic() - t0, reply
            reply += chunk


def case_httpd_short(e):
    """One request per connection, 8 clients at once, 300 connections: far more than the
    guest stack's 64 connection slots, each ending in TIME_WAIT on the guest (the server closes
    first). Each client keeps its source port, as a busy host reuses ports, so slirp opens each
    connection over the guest's TIME_WAIT for the same ports. Every reply must be whole and
    right; none may be reset, refused or stalled."""
    port = free_port()
    proc = e.start([e.service("web", [], {"forward": ["tcp:%d:80" % port]}, e.httpd)])
    total, threads = 300, 8
    want = b"Hello, world! This is a text file served by denali-httpd.\n"
    todo = queue.Queue()
    for i in range(total):
        todo.put(i)
    lock = threading.Lock()
    failures, connects = [], []

    def client(sport):
        while len(failures) < 10:  # enough to tell; a stalled run would take minutes
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                took, reply = short_get(port, "/hello.txt", sport)
            except OSError as err:  # a reset, a refusal, a timeout
                with lock:
                    failures.append("connection %d: %r" % (i, err))
                continue
            head, _, body = reply.partition(b"\r\n\r\n")
            with lock:
                connects.append(took)
                if not head.startswith(b"HTTP/1.1 200 ") or body != want:
                    failures.append("connection %d: %r" % (i, reply[:200]))
    try:
        line = proc.stdout.readline().decode()
        if "listening" not in line:
            fail("httpd did not start: %r %r" % (line, proc.stderr.read()))
        start = time.monotonic()
        pool = [threading.Thread(target=client, args=(free_port(),)) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        took = time.monotonic() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    connects.sort()
    print("%d short connections, %d at a time: %.1f s, %.0f req/s; request p50 %.1f ms, max %.1f ms" %
          (total, threads, took, total / took, 1e3 * connects[len(connects) // 2] if connects else 0,
           1e3 * connects[-1] if connects else 0))
    expect(not failures, "every short connection answered, none reset (%d failed: %s)" %
           (len(failures), "; ".join(failures[:5])), proc.returncode, out.decode(), err.decode())
    expect(proc.returncode == 0, "httpd exits 0 on SIGTERM", proc.returncode, out.decode(), err.decode())


def case_flood(e):
    """A guest flooding the switch cannot starve its neighbours: their pings keep coming back."""
    files = [e.service("srv", [], SERVER, e.echo),
             e.service("sink", ["9"], {"ip": "10.0.0.30"}, e.echo),
             e.service("flooder", ["udp-flood", "10.0.0.30", "9", "20"], {}, e.netclient),
             e.service("pinger", ["ping", "10.0.0.20", "50", "100", "90"], {}, e.netclient)]
    status, out, err = e.run_until(files, ["[pinger] ping:"], opts=["--stats", os.path.join(e.tmp, "st.json")])
    m = re.search(r"^\[pinger\] ping: (\d+)/50 replies, rtt p50 (\d+) us p99 (\d+) us", out, re.M)
    expect(m, "the pinger reported", status, out, err)
    got, p50, p99 = int(m.group(1)), int(m.group(2)), int(m.group(3))
    print("beside a flood: %d/50 pings answered, rtt p50 %d us, p99 %d us" % (got, p50, p99))
    expect(got >= 45 and p99 < 2000000, "loss at most 10%, p99 under 2 s", status, out, err)
    stats = {s["name"]: s for s in json.load(open(os.path.join(e.tmp, "st.json")))["services"]}
    expect(stats["flooder"]["nic"]["tx_frames"] > 10 * stats["pinger"]["nic"]["tx_frames"],
           "the flooder really flooded", status, out, err)


def case_fuzz(e):
    """Random and mutated frames through the switch never crash a guest: it keeps answering."""
    files = [e.service("srv", [], SERVER, e.echo),
             e.service("fuzzer", ["fuzz", "10.0.0.20", "5"], {}, e.netclient),
             e.service("pinger", ["ping", "10.0.0.20", "60", "100", "90"], {}, e.netclient)]
    status, out, err = e.run_until(files, ["[pinger] ping:", "[fuzzer] fuzz:"])
    expect(re.search(r"^\[fuzzer\] fuzz: \d{3,} hostile frames sent$", out, re.M), "the fuzzer ran", status, out, err)
    expect(re.search(r"^\[pinger\] ping: (5[4-9]|60)/60 replies", out, re.M), "pings answered throughout",
           status, out, err)
    expect("denali-run: srv: exited with status 0\n" in err, "the target is alive at the end", status, out, err)


def case_tap(e):
    """A TAP uplink (needs root): the guest reaches the host's address on the TAP device."""
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("SKIP: the TAP uplink needs root and /dev/net/tun")
        sys.exit(SKIP)
    tap = "dntest%d" % (os.getpid() % 1000)
    f = e.service("tapper", ["ping", "10.99.0.1", "40", "100", "50"],
                  {"uplink": "tap:" + tap, "ip": "10.99.0.2/24"}, e.netclient)
    proc = e.start([f], ["--timeout", "90"])
    deadline = time.time() + 30
    while subprocess.run(["ip", "link", "show", tap], capture_output=True).returncode != 0:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            fail("the TAP device never appeared: %r" % (proc.communicate(),))
        time.sleep(0.05)
    subprocess.run(["ip", "addr", "add", "10.99.0.1/24", "dev", tap], check=True)
    subprocess.run(["ip", "link", "set", tap, "up"], check=True)
    try:
        out, err = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        # --timeout 90 should have ended it: keep what it said, and where its threads were.
        threads = where_threads(proc.pid)
        proc.kill()
        out, err = proc.communicate()
        fail("denali-run --timeout 90 still ran after 150 s\nthreads:\n%s\nstdout: %r\nstderr: %r" %
             (threads, out, err))
    out, err = out.decode(), err.decode()
    expect(proc.returncode == 0 and re.search(r"ping: \d+/40 replies", out), "the host answered through TAP",
           proc.returncode, out, err)


def case_tap_unprivileged(e):
    """Without CAP_NET_ADMIN a TAP uplink is a clear error before anything starts."""
    if os.geteuid() == 0:
        try:
            import pwd
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            print("SKIP: no unprivileged user")
            sys.exit(SKIP)
        st = os.stat("/dev/kvm")
        if not st.st_mode & 0o006:
            print("SKIP: only root may use /dev/kvm here, and root may create TAP devices")
            sys.exit(SKIP)
        os.chmod(e.tmp, 0o755)
        f = e.service("tapper", ["recv"], {"uplink": "tap:dnnope0", "ip": "10.99.0.2/24"})
        os.chmod(f, 0o644)
        p = subprocess.run([e.denali_run, "--state-dir", os.path.join("/tmp", "dn-nobody-%d" % os.getpid()), f],
                           capture_output=True, preexec_fn=lambda: (os.setgid(nobody.pw_gid), os.setuid(nobody.pw_uid)))
    else:
        f = e.service("tapper", ["recv"], {"uplink": "tap:dnnope0", "ip": "10.99.0.2/24"})
        p = subprocess.run([e.denali_run, "--state-dir", e.state, f], capture_output=True)
    err = p.stderr.decode()
    expect(p.returncode != 0 and p.stdout == b"" and "tap:dnnope0: " in err and "needs root or CAP_NET_ADMIN" in err,
           "refused with the reason", p.returncode, p.stdout.decode(), err)


EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def case_examples(e):
    """The README's examples, as written: hello's output, httpd on 8080, echo on 7007."""
    status, out, err = e.run([os.path.join(EXAMPLES, "hello.json")])
    expect(status == 0 and out == "Hello from hello on Denali!\narg 1: world\narg 2: from service.json\n",
           "examples/hello.json prints what the README shows", status, out, err)
    if not port_free(8080) or not port_free(7007):
        print("SKIP: port 8080 or 7007 is taken on this host")
        sys.exit(SKIP)
    proc = e.start([os.path.join(EXAMPLES, "httpd.json"), os.path.join(EXAMPLES, "echo.json")])
    try:
        seen = ""
        while "[httpd] httpd: listening" not in seen or "[echo] echo: listening" not in seen:
            line = proc.stdout.readline().decode()
            if not line:
                fail("the examples did not start: %r %r" % (seen, proc.stderr.read()))
            seen += line
        rc, body, cerr = curl("http://127.0.0.1:8080/")
        if rc != 0 or b"<h1>Hello from httpd on Denali</h1>" not in body:
            fail("curl http://127.0.0.1:8080/ (the README's command): %d %r %s" % (rc, body[:200], cerr))
        t = socket.create_connection(("127.0.0.1", 7007), timeout=30)
        t.sendall(b"hello, echo\n")
        got = b""
        while len(got) < 12:
            got += t.recv(100)
        t.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        for _ in range(10):  # the first datagram may wait for ARP
            u.sendto(b"ping", ("127.0.0.1", 7007))
            try:
                if u.recvfrom(100)[0] == b"ping":
                    break
            except socket.timeout:
                continue
        else:
            fail("no UDP echo from examples/echo.json")
        if got != b"hello, echo\n":
            fail("TCP echo returned %r" % got)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    expect(proc.returncode == 0, "both exit 0 on SIGTERM: a stop that lost nothing is status 0",
           proc.returncode, out.decode(), err.decode())


def control(path, request):
    """One request on the control socket (docs/control.md), its answer."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(60)
        c.connect(path)
        c.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def parent_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"PPid:\s+(\d+)", f.read()).group(1))


def case_nat_restart(e):
    """The NAT process killed (SIGKILL) during a transfer through a forward: the transfer is
    cut, the supervisor says so and starts another, `stats` counts one restart, the forward is
    published again and a new connection through it works; the fleet goes on and exits 0."""
    port = free_port()
    base = "http://127.0.0.1:%d" % port
    ctl = os.path.join(e.tmp, "ctl.sock")
    proc = e.start([e.service("web", [], {"forward": ["tcp:%d:80" % port]}, e.httpd)], ["--control", ctl])
    err_chunks = []
    reader = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    reader.start()
    try:
        line = proc.stdout.readline().decode()
        if "listening" not in line:
            fail("httpd did not start: %r" % line)
        nat = control(ctl, {"cmd": "stats", "name": "all"}).get("nat")
        if not nat or nat["pid"] <= 0 or nat["restarts"] != 0:
            fail("stats names the NAT process, not yet restarted: %r" % nat)
        old = nat["pid"]
        # The NAT launcher's child (denali-nat, itself denali-run's), not denali-run's.
        ppid = parent_of(old)
        if not is_nat_process(ppid) or parent_of(ppid) != proc.pid:
            fail("the NAT process %d is not the child of denali-run's NAT launcher (its parent: %d)"
                 % (old, ppid))
        # A slow download of 1 MiB through the forward, cut by the kill.
        body = os.path.join(e.tmp, "big")
        transfer = subprocess.Popen(["curl", "-sS", "-m", "120", "--limit-rate", "32K", "-o", body,
                                     base + "/big"], stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while (not os.path.exists(body) or os.path.getsize(body) == 0) and time.time() < deadline:
            time.sleep(0.05)
        if not os.path.exists(body) or os.path.getsize(body) == 0:
            fail("the transfer through the forward never started")
        os.kill(old, signal.SIGKILL)
        transfer.wait(timeout=120)
        got = os.path.getsize(body)
        if transfer.returncode == 0 and got == 1 << 20:
            fail("the transfer went on through a killed NAT process")
        # Replaced: a new pid, one restart, and the forward works again.
        deadline, nat = time.time() + 60, None
        while time.time() < deadline:
            nat = control(ctl, {"cmd": "stats", "name": "all"}).get("nat")
            if nat and nat["pid"] > 0 and nat["pid"] != old:
                break
            time.sleep(0.1)
        if not nat or nat["pid"] in (0, old) or nat["restarts"] != 1:
            fail("stats after the kill: %r" % nat)
        rc, page, cerr = 1, b"", ""
        deadline = time.time() + 60
        while time.time() < deadline:
            rc, page, cerr = curl(base + "/")
            if rc == 0:
                break
            time.sleep(0.2)
        if rc != 0 or b"Hello from web on Denali" not in page:
            fail("GET / after the restart: %d %r %s" % (rc, page[:200], cerr))
        rc, big, cerr = curl(base + "/big")
        if rc != 0 or hashlib.sha256(big).hexdigest() != pattern_sha(1 << 20):
            fail("/big after the restart: %d bytes, rc %d %s" % (len(big), rc, cerr))
        metrics = control(ctl, {"cmd": "metrics"}).get("text", "")
        if "\ndenali_nat_restarts_total 1\n" not in metrics or "\ndenali_nat_up 1\n" not in metrics:
            fail("metrics: %r" % [l for l in metrics.splitlines() if "nat" in l])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out = proc.stdout.read().decode()
            proc.wait(timeout=60)
        finally:
            reader.join(10)
    err = b"".join(err_chunks).decode()
    expect(proc.returncode == 0 and
           re.search(r"denali-run: the NAT process \(pid %d\) was killed by signal 9 \(Killed\); "
                     r"connections through the user uplink are reset; restarting it" % old, err) and
           "the NAT process restarted (pid %d); forwards restored: 1" % nat["pid"] in err,
           "the death and the restart are said once, and the fleet exits 0", proc.returncode, out, err)
    print("cut after %d of %d bytes; restarted as pid %d" % (got, 1 << 20, nat["pid"]))


CASES = {
    "net-frames": case_frames,
    "net-spoof": case_spoof,
    "net-bad-desc": case_bad_desc,
    "net-bad-index": case_bad_index,
    "net-bad-rx": case_bad_rx,
    "net-no-nic": case_no_nic,
    "net-config": case_config,
    "net-forward-busy": case_forward_busy,
    "net-ping": case_ping,
    "net-echo": case_echo,
    "net-host-send": case_host_send,
    "net-httpd": case_httpd,
    "net-httpd-short": case_httpd_short,
    "net-nat-restart": case_nat_restart,
    "net-flood": case_flood,
    "net-fuzz": case_fuzz,
    "net-tap": case_tap,
    "net-tap-unprivileged": case_tap_unprivileged,
    "net-examples": case_examples,
}
NO_KVM = {"net-config"}


def main():
    caselib.main(CASES, "net_case.py DENALI_RUN NETTEST NETCLIENT ECHO HTTPD CASE", Env, NO_KVM, "denali-net-")


if __name__ == "__main__":
    main()
