#!/usr/bin/env python3
"""Virtual disk integration tests: guests reading and writing their disks under KVM, checked
from their consoles, exit statuses, --stats counters and the disk images themselves.

Usage: disk_case.py DENALI_RUN DISKTEST KV CASE   (--list prints the cases)
Guest-booting cases exit 77 (skip) only when /dev/kvm does not exist.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import caselib
from caselib import SKIP, children, expect, fail, free_port, wait_for_cell, wait_for_line


class Env(caselib.Env):
    def __init__(self, binaries, tmp):
        denali_run, self.disktest, self.kv = (os.path.abspath(b) for b in binaries)
        super().__init__(denali_run, tmp)

    def service(self, name, args, disk, image=None, **extra):
        """Writes NAME.json for a disktest (or image) service with the given disk object."""
        return self.write_service(name, image or self.disktest, args, disk=disk, **extra)


def pattern_block(block, seed):
    """disktest's pattern, computed here to check the image from the host."""
    words = []
    for word in range(1024):
        x = ((block * 2654435761) & 0xffffffff) ^ (word * 40503) ^ seed
        x &= 0xffffffff
        x ^= x >> 15
        x = (x * 2246822519) & 0xffffffff
        words.append(x ^ (x >> 13))
    return b"".join(w.to_bytes(4, "little") for w in words)


def case_disk_persist(env):
    """Write and flush, stop denali-run (SIGTERM), start it again: the data is there, on the
    image as on the guest's disk."""
    disk = {"path": "persist.img", "size": "16M"}
    f = env.service("writer", ["write-hold", "10", "600", "77"], disk)
    proc = env.start([f])
    wait_for_line(proc, "flushed 600 blocks")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    expect(proc.returncode == 0, "the writer exited on DN_EV_STOP", proc.returncode, out, err)
    img = os.path.join(env.tmp, "persist.img")
    expect(os.path.getsize(img) == 16 << 20, "the image was created with its size", 0, "", "")
    expect(os.stat(img).st_blocks * 512 < 8 << 20, "the image is sparse", 0, "", "")
    with open(img, "rb") as fimg:
        fimg.seek(10 * 4096)
        expect(fimg.read(4096) == pattern_block(10, 77) and
               fimg.seek(609 * 4096) and fimg.read(4096) == pattern_block(609, 77),
               "the image holds the pattern", 0, "", "")
    f = env.service("reader", ["verify", "10", "600", "77"], disk)
    status, out, err = env.run([f])
    expect(status == 0 and "verified 600 blocks" in out, "the data is there after a restart", status, out, err)


def case_disk_kill(env):
    """SIGKILL of the cell right after a flushed write: the data is there after a restart."""
    disk = {"path": "kill.img", "size": "8M"}
    f = env.service("victim", ["write-hold", "0", "256", "5"], disk)
    proc = env.start([f])
    seen = wait_for_line(proc, "flushed 256 blocks")
    cells = children(proc.pid)
    expect(len(cells) == 1, "one cell", -1, seen, "")
    os.kill(cells[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    expect("its services are lost: victim" in err, "the killed cell was reported", proc.returncode, seen, err)
    f = env.service("after", ["verify", "0", "256", "5"], disk)
    status, out, err = env.run([f])
    expect(status == 0 and "verified 256 blocks" in out, "the flushed data survived the kill", status, out, err)


def case_disk_hostile(env):
    """Every kind of bad request completes with its error status; the monitor goes on and the
    same ring still serves good requests; nothing outside the disk was touched."""
    img = os.path.join(env.tmp, "hostile.img")
    neighbour = os.path.join(env.tmp, "neighbour")
    with open(neighbour, "wb") as fn:
        fn.write(b"untouched" * 1000)
    f = env.service("hostile", ["hostile"], {"path": img, "size": "1M"})
    status, out, err, stats = env.run_stats([f])
    expect(status == 0 and "WRONG" not in out, "every bad request got its status", status, out, err)
    expect("errors counted: 7, failed: 14" in out,
           "14 requests failed, 7 malformed ones counted as guest errors", status, out, err)
    expect(err == "denali-run: hostile: exited with status 0\n" or err == "",
           "nothing on stderr but the exit", status, out, err)
    d = stats["hostile"]["disk"]
    expect(d["ring_errors"] == 7 and d["failed"] == 14 and d["writes"] == 1 and d["reads"] == 1 and
           d["flushes"] == 1 and d["io_errors"] == 0, "the --stats disk counters: %r" % d, status, out, err)
    with open(neighbour, "rb") as fn:
        expect(fn.read() == b"untouched" * 1000, "the neighbouring file is untouched", status, out, err)
    expect(os.path.getsize(img) == 1 << 20, "the image kept its size", status, out, err)


def case_disk_corrupt(env):
    """A guest that keeps corrupting its ring is stopped with a reason; another service in the
    same cell goes on."""
    bad = env.service("corrupter", ["corrupt"], {"path": "corrupt.img", "size": "1M"})
    good = env.service("bystander", ["write", "0", "64", "3"], {"path": "bystander.img", "size": "1M"})
    status, out, err = env.run([bad, good], opts=["--cell-size", "2"])
    expect(re.search(r"denali-run: corrupter: stopped: virtual disk: 64 ring errors, the last: "
                     r"request counter sq_avail out of range at rip=0x[0-9a-f]+\n", err),
           "the corrupter was stopped with the reason", status, out, err)
    expect("[bystander] flushed 64 blocks" in out and "bystander: exited with status 0" in err,
           "the bystander finished its work", status, out, err)


def case_disk_readonly_shared(env):
    """One image, ten read-only services at once: all read it, none may write it."""
    img = os.path.join(env.tmp, "shared.img")
    f = env.service("seed", ["write", "0", "16", "99"], {"path": img, "size": "4M"})
    status, out, err = env.run([f])
    expect(status == 0, "the image was written", status, out, err)
    files = [env.service("ro%d" % i, ["readonly", "99"], {"path": img, "readonly": True}) for i in range(10)]
    status, out, err = env.run(files, opts=["--cell-size", "5"])
    expect(status == 0, "all ten readers passed", status, out, err)
    for i in range(10):
        expect("[ro%d] verified 16 blocks" % i in out and "[ro%d] WRITE: status 4\n" % i in out,
               "reader %d read the image and was refused a write" % i, status, out, err)


def case_disk_second_writer(env):
    """A writable disk belongs to one service: a second one in the same run is refused before
    anything starts, and so is a second run while the first holds it."""
    img = os.path.join(env.tmp, "owned.img")
    with open(img, "wb") as f:  # there already: each file's own checks pass, the plan's refuses
        f.truncate(1 << 20)
    a = env.service("first", ["write-hold", "0", "1", "1"], {"path": img, "size": "1M"})
    b = env.service("second", ["verify", "0", "1", "1"], {"path": "owned.img"})
    status, out, err = env.run([a, b])
    expect(status == 2 and re.search(r"first and second: both use the disk \S+owned\.img, and a writable "
                                     r"disk belongs to one service only", err),
           "two writers in one run are refused at plan time", status, out, err)
    c = env.service("reader", ["readonly", "1"], {"path": img, "readonly": True})
    status, out, err = env.run([a, c])
    expect(status == 2 and "first and reader: both use the disk" in err,
           "a writer and a reader of one image in one run are refused", status, out, err)
    proc = env.start([a])
    wait_for_line(proc, "flushed 1 blocks")
    status, out, err = env.run([b], opts=["--state-dir", os.path.join(env.tmp, "state2")])
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    expect(status != 0 and re.search(r"second: .*disk \S+owned\.img is in use: a writable disk belongs to one "
                                      r"service, and another service or run has it open", err),
           "a second run is refused the image the first one holds", status, out, err)


def case_disk_config(env):
    """Bad disk keys are refused with the key and the problem named, before KVM is touched."""
    cases = [
        ({"size": "1M"}, r'key "disk.path": missing'),
        ({"path": "x.img", "size": "1000"}, r'key "disk.size": 1000 bytes is not a positive multiple of 4K'),
        ({"path": "x.img", "size": "lots"}, r'key "disk.size": invalid size "lots"'),
        ({"path": "x.img", "readonly": "yes"}, r'key "disk.readonly": expected true or false, got a string'),
        ({"path": "x.img", "sizes": 4096}, r'key "disk.sizes": unknown key'),
        ("x.img", r'key "disk": expected an object, got a string'),
    ]
    for disk, msg in cases:
        f = env.service("cfg", ["verify", "0", "1", "1"], disk)
        status, out, err = env.run([f])
        expect(status == 2 and re.search(msg, err), "refused: %s" % msg, status, out, err)


def case_disk_image_errors(env):
    """Problems with the image itself are found with the service file, before KVM is touched,
    and said clearly (usage: status 2)."""
    with open(os.path.join(env.tmp, "odd.img"), "wb") as f:
        f.truncate(4097)
    for disk, msg in [({"path": "missing.img", "readonly": True}, r'key "disk.path": disk \S+missing\.img does not exist \(a read-only disk must exist\)'),
                      ({"path": "nosize.img"}, r'key "disk.path": disk \S+nosize\.img does not exist \(give a size to create it\)'),
                      ({"path": env.tmp}, r'key "disk.path": disk \S+ is not a regular file'),
                      ({"path": "/dev/null"}, r'key "disk.path": disk /dev/null is not a regular file'),
                      ({"path": "odd.img"}, r'key "disk.path": disk \S+odd\.img is 4097 bytes: not a non-zero multiple of 4K'),
                      ({"path": "odd.img", "size": "8K"}, r'key "disk.path": disk \S+odd\.img is 4097 bytes')]:
        f = env.service("img", ["verify", "0", "1", "1"], disk)
        status, out, err = env.run([f])
        expect(status == 2 and re.search(msg, err), "refused: %s" % msg, status, out, err)
    expect(not os.path.exists(os.path.join(env.tmp, "missing.img")), "no image was created for a reader", 0, "", "")


def case_disk_full(env):
    """A full host filesystem fails the write with DN_DISK_E_IO, denali-run logs it, and the
    service and the monitor go on."""
    if os.geteuid() != 0:
        print("SKIP: needs root to mount a small tmpfs")
        sys.exit(SKIP)
    mnt = os.path.join(env.tmp, "small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", mnt]).returncode != 0:
        print("SKIP: cannot mount a tmpfs here")
        sys.exit(SKIP)
    try:
        f = env.service("filler", ["fill"], {"path": os.path.join(mnt, "full.img"), "size": "16M"})
        status, out, err = env.run([f])
    finally:
        subprocess.run(["umount", mnt])
    expect(status == 0 and re.search(r"WRITE at block \d+: status 5\n", out), "the write failed with E_IO", status, out, err)
    expect("FLUSH: status" in out and "READ: status 0" in out, "the device still answers", status, out, err)
    expect(re.search(r"denali-run: filler: disk \S+full\.img: WRITE of \d+ bytes at offset \d+ failed: "
                     r"No space left on device", err), "denali-run logged the failure", status, out, err)


def case_disk_no_disk(env):
    """A service without a disk sees none."""
    f = env.write_service("nodisk", env.disktest, ["hostile"])
    status, out, err = env.run([f])
    expect(status == 2 and "disktest: no disk" in out, "no disk in the boot info", status, out, err)


# ---- kv: the persistent key-value service over TCP ----
class KvClient:
    """The kv line protocol: PUT/GET/DEL/STATS, answers read strictly."""

    def __init__(self, port):
        deadline = time.time() + 60
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("kv closed the connection (buffered %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("kv closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def put(self, key, value):
        self.send(b"PUT %s %d\r\n%s\r\n" % (key.encode(), len(value), value))
        return self.line()

    def get(self, key):
        self.send(b"GET %s\r\n" % key.encode())
        head = self.line()
        if head == "NOTFOUND":
            return None
        m = re.match(r"VALUE (\d+)$", head)
        if not m:
            fail("GET %s: unexpected answer %r" % (key, head))
        value = self.exact(int(m.group(1)))
        if self.exact(2) != b"\r\n":
            fail("GET %s: value not followed by CRLF" % key)
        return value

    def delete(self, key):
        self.send(b"DEL %s\r\n" % key.encode())
        return self.line()

    def close(self):
        self.sock.close()


def kv_value(i, size=None):
    size = size if size is not None else 10 + (i * 37) % 3000
    return bytes((i * 131 + j * 7) & 0xff for j in range(size))


def kv_start(env, name, disk, port):
    f = env.service(name, [], disk, image=env.kv, net={"forward": ["tcp:%d:6000" % port]})
    proc = env.start([f])
    seen = wait_for_line(proc, "kv: listening")
    return proc, seen


def kv_stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def case_kv_persist(env):
    """PUT, GET, DEL over TCP; stop denali-run; start it again: every acknowledged write is
    there, the deleted key is not."""
    disk = {"path": "kv.img", "size": "16M"}
    port = free_port()
    proc, seen = kv_start(env, "kv", disk, port)
    try:
        c = KvClient(port)
        for i in range(40):
            expect(c.put("key%d" % i, kv_value(i)) == "OK", "PUT key%d" % i, "", seen, "")
        expect(c.put("big", kv_value(7, 65536)) == "OK", "PUT of a 64 KiB value", "", seen, "")
        expect(c.put("empty", b"") == "OK", "PUT of an empty value", "", seen, "")
        expect(c.put("key3", b"overwritten") == "OK", "PUT over a key", "", seen, "")
        expect(c.delete("key5") == "OK", "DEL key5", "", seen, "")
        expect(c.delete("key5") == "NOTFOUND", "DEL of a missing key", "", seen, "")
        expect(c.get("key7") == kv_value(7), "GET before the restart", "", seen, "")
        expect(c.get("nope") is None, "GET of a missing key", "", seen, "")
        c.send(b"FROB x\r\n")
        expect(c.line().startswith("ERR "), "an unknown command is an ERR", "", seen, "")
        c.close()
    finally:
        status, out, err = kv_stop(proc)
    expect(status == 0, "kv exits 0 on SIGTERM", status, seen + out, err)
    proc, seen = kv_start(env, "kv", disk, port)
    try:
        expect(re.search(r"kv: recovered 41 keys", seen), "recovery found 41 live keys", "", seen, "")
        c = KvClient(port)
        for i in range(40):
            want = None if i == 5 else b"overwritten" if i == 3 else kv_value(i)
            got = c.get("key%d" % i)
            expect(got == want, "key%d after the restart: %r" % (i, (got or b"")[:20]), "", seen, "")
        expect(c.get("big") == kv_value(7, 65536), "the 64 KiB value after the restart", "", seen, "")
        expect(c.get("empty") == b"", "the empty value after the restart", "", seen, "")
        c.send(b"STATS\r\n")
        expect(re.match(r"STATS keys=41\b", c.line()), "STATS counts 41 keys", "", seen, "")
        c.close()
    finally:
        kv_stop(proc)


def case_kv_swap(env):
    """kv swapped out between requests (its disk closed and opened again, its NIC asleep in the
    switch): every value written before a sleep reads back after it, and writes go on."""
    port = free_port()
    f = env.service("kv", [], {"path": "kv.img", "size": "16M"}, image=env.kv,
                    net={"forward": ["tcp:%d:6000" % port]}, swap={"idle_after": 0.05})
    stats = os.path.join(env.tmp, "kv-stats.json")
    with tempfile.TemporaryDirectory(prefix="denali-kv-swap-", dir="/var/tmp") as state:
        proc = env.start([f], opts=["--state-dir", state, "--stats", stats])
        seen = wait_for_line(proc, "kv: listening")
        try:
            for rnd in range(3):
                c = KvClient(port)
                for i in range(10):
                    k = rnd * 10 + i
                    expect(c.put("key%d" % k, kv_value(k)) == "OK", "PUT key%d" % k, "", seen, "")
                for k in range((rnd + 1) * 10):
                    expect(c.get("key%d" % k) == kv_value(k), "key%d in round %d" % (k, rnd), "", seen, "")
                c.close()
                time.sleep(1.5)  # idle far past idle_after: swapped out
        finally:
            status, out, err = kv_stop(proc)
    expect(status == 0, "kv exits 0 on SIGTERM", status, seen + out, err)
    st = caselib.read_stats(stats)["kv"]
    print("swap %r disk %r" % (st["swap"], st["disk"]))
    expect(st["swap"]["outs"] >= 3 and st["swap"]["ins"] >= 2, "swapped out and in between rounds",
           status, out, repr(st["swap"]))
    expect(st["disk"]["writes"] >= 30 and st["disk"]["ring_errors"] == 0,
           "the disk's counters carried over the sleeps", status, out, repr(st["disk"]))


def case_kv_kill(env):
    """SIGKILL of the cell right after flushed writes: they are there after a restart; writes
    still in flight may be lost, but every key holds a value it was given, or none."""
    disk = {"path": "kvkill.img", "size": "16M"}
    port = free_port()
    proc, seen = kv_start(env, "kv", disk, port)
    c = KvClient(port)
    for i in range(10):
        expect(c.put("acked%d" % i, kv_value(i)) == "OK", "PUT acked%d" % i, "", seen, "")
    # Fifty more, pipelined; the cell dies after the first ten answers.
    c.send(b"".join(b"PUT maybe%d %d\r\n%s\r\n" % (i, len(kv_value(100 + i)), kv_value(100 + i))
                    for i in range(50)))
    for i in range(10):
        expect(c.line() == "OK", "pipelined PUT %d" % i, "", seen, "")
    os.kill(children(proc.pid)[0], signal.SIGKILL)
    proc.communicate(timeout=60)
    c.close()
    proc, seen = kv_start(env, "kv", disk, port)
    try:
        c = KvClient(port)
        for i in range(10):
            expect(c.get("acked%d" % i) == kv_value(i), "acked%d survived the kill" % i, "", seen, "")
        for i in range(10):
            expect(c.get("maybe%d" % i) == kv_value(100 + i), "acknowledged maybe%d survived" % i, "", seen, "")
        kept = 0
        for i in range(10, 50):
            got = c.get("maybe%d" % i)
            expect(got is None or got == kv_value(100 + i), "maybe%d is whole or absent" % i, "", seen, "")
            kept += got is not None
        print("unacknowledged writes kept after the kill: %d of 40" % kept)
        expect(c.put("after", b"x") == "OK", "the recovered store takes writes", "", seen, "")
        c.close()
    finally:
        kv_stop(proc)


def case_kv_readonly(env):
    """kv on a read-only disk serves GET and refuses PUT and DEL."""
    disk = {"path": "kvro.img", "size": "16M"}
    port = free_port()
    proc, seen = kv_start(env, "kv", disk, port)
    c = KvClient(port)
    expect(c.put("k", b"v") == "OK", "PUT", "", seen, "")
    c.close()
    kv_stop(proc)
    proc, seen = kv_start(env, "kv", {"path": "kvro.img", "readonly": True}, port)
    try:
        c = KvClient(port)
        expect(c.get("k") == b"v", "GET on a read-only disk", "", seen, "")
        expect(c.put("k", b"w").startswith("ERR "), "PUT is refused", "", seen, "")
        expect(c.delete("k").startswith("ERR "), "DEL is refused", "", seen, "")
        expect(c.get("k") == b"v", "the value is unchanged", "", seen, "")
        c.close()
    finally:
        kv_stop(proc)


def case_kv_stop_at_mount(env):
    """A stop under --resume while kv is still mounting its disk (a fresh 64 MiB store, requests
    in flight): kv goes to sleep once its disk is quiet and is saved, and the next --resume run
    goes on with it and serves. (A sleep tried while the disk was busy used to leave the device
    taking no more requests: kv hung in its mount and was killed at the end of --grace.)"""
    port = free_port()
    f = env.service("kv", [], {"path": "kvmount.img", "size": "64M"}, image=env.kv,
                    net={"forward": ["tcp:%d:6000" % port]})
    with tempfile.TemporaryDirectory(prefix="denali-kv-mount-", dir="/var/tmp") as state:
        cmd = [env.denali_run, "--resume", "--grace", "20", "--state-dir", state, f]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_cell(proc)
        time.sleep(0.3)  # the cell is up, kv is formatting its store
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        expect(proc.returncode == 0 and "kv: saved; --resume goes on with it" in err,
               "saved by the stop, its disk's requests done", proc.returncode, out, err)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline, answer = time.time() + 90, None
            while answer is None and time.time() < deadline and proc.poll() is None:
                try:
                    c = KvClient(port)
                    answer = (c.put("after", b"mount"), c.get("after"))
                    c.close()
                except (OSError, EOFError):
                    time.sleep(0.2)  # still mounting, or not listening yet
        finally:
            status, out2, err2 = kv_stop(proc)
    expect(answer == ("OK", b"mount"), "the resumed kv serves", status, out + out2, err + err2)
    expect(status == 0, "and is saved again by the next stop", status, out2, err2)


CASES = {
    "disk-persist": case_disk_persist,
    "disk-kill": case_disk_kill,
    "disk-hostile": case_disk_hostile,
    "disk-corrupt": case_disk_corrupt,
    "disk-readonly-shared": case_disk_readonly_shared,
    "disk-second-writer": case_disk_second_writer,
    "disk-config": case_disk_config,
    "disk-image-errors": case_disk_image_errors,
    "disk-full": case_disk_full,
    "disk-no-disk": case_disk_no_disk,
    "kv-persist": case_kv_persist,
    "kv-kill": case_kv_kill,
    "kv-swap": case_kv_swap,
    "kv-readonly": case_kv_readonly,
    "kv-stop-at-mount": case_kv_stop_at_mount,
}
NO_KVM = {"disk-config", "disk-image-errors"}


def main():
    caselib.main(CASES, "disk_case.py DENALI_RUN DISKTEST KV CASE", Env, NO_KVM, "denali-disk-")


if __name__ == "__main__":
    main()
