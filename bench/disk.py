#!/usr/bin/env python3
"""bench/disk: the virtual disk from a guest, beside the same access pattern from a host process
on the same image file with io_uring (bench/disk_native.c), measured in the same run, as ratios.

Usage: disk.py DENALI_RUN DISKTEST DISK_NATIVE [--size 256M] [--seconds 3] [--batches 1,4,16,64]
                 [--modes randread,randwrite,seqread,seqwrite] [--flushes 200 (0: none)] [--dir DIR]

One image of --size is created in a temporary directory under --dir (default: $TMPDIR) and
written through with data, so every read hits a real block. Both sides then use it with buffered
I/O (as the monitor does), the same page cache for both, nothing dirty (the image is synced
before each run); the output says how much of the image was resident (warm) at start and end.
For each mode (randread, randwrite: 4 KiB requests; seqread, seqwrite: 128 KiB) and batch size
(requests kept in flight, refilled as each completes), the host baseline runs, then the guest
(disktest bench MODE BATCH SECONDS). Per point: ops/s and MB/s of each, guest/host, and per
request: the host's io_uring_enter calls; the guest's kicks (its `outl` to the kick port, an
in-kernel exit) and userspace exits (all KVM exits to the monitor from --stats, as bench/net.py
counts them: hypercalls, mostly idles, are among them; a signal that interrupts a running guest
to tell it of completions is not); the device's io_uring submits (stats disk.batches) and its
completion notifications (events_raised: one per publish of completions). Then the latency of
one 4 KiB write followed by a FLUSH (host: IORING_OP_WRITE then IORING_OP_FSYNC with DATASYNC),
each waited for, one at a time.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

from hostfs import filesystem

MODES = ("randread", "randwrite", "seqread", "seqwrite")
LINE = re.compile(r"bench (\S+) batch (\d+): (\d+) ops in (\d+) ms: (\d+) ops/s, (\d+) KB/s, "
                  r"(\d+) errors, (\d+) kicks")
FLUSH = re.compile(r"bench-flush: (\d+) write\+flush in (\d+) ms: ([\d.]+) us each, (\d+) errors, "
                   r"(\d+) kicks")


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def make_image(path, size):
    """An image of size bytes, every block written (not sparse), synced."""
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n
        f.flush()
        os.fsync(f.fileno())


def resident(path):
    """The share of path's pages in the page cache (util-linux fincore), or None."""
    if not shutil.which("fincore"):
        return None
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", path],
                         capture_output=True, text=True)
    try:
        res, size = map(int, out.stdout.split())
    except ValueError:
        return None
    return res / size if size else None


def settle(img):
    """Writes back what the last run left dirty, so that neither side pays for the other."""
    fd = os.open(img, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def native(a, img, args):
    settle(img)
    p = subprocess.run([a.native, img] + [str(x) for x in args], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0 and not (LINE.search(p.stdout) or FLUSH.search(p.stdout)):
        raise SystemExit("disk_native failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


def guest(a, tmp, img, args):
    """Runs disktest with the image as its disk; its console and its --stats entry."""
    settle(img)
    svc = os.path.join(tmp, "disk.json")
    with open(svc, "w") as f:
        json.dump({"name": "disk", "image": a.disktest, "memory": "16M",
                   "args": [str(x) for x in args], "disk": {"path": img}}, f)
    stats = os.path.join(tmp, "stats.json")
    p = subprocess.run([a.denali_run, "--quiet", "--stats", stats, "--state-dir", os.path.join(tmp, "s"), svc],
                       capture_output=True, timeout=600)
    out = p.stdout.decode()
    if p.returncode != 0 and not (LINE.search(out) or FLUSH.search(out)):
        raise SystemExit("denali-run failed (%d):\n%s\n%s" % (p.returncode, out, p.stderr.decode()))
    with open(stats) as f:
        return out, json.load(f)["services"][0]


def per_request(st, ops):
    """Userspace exits, device io_uring submits and completion notifications per request."""
    exits = sum(st["exits"].values())
    return exits / ops, st["disk"]["batches"] / ops, st["events_raised"] / ops


def point(a, tmp, img, mode, batch):
    h = LINE.search(native(a, img, ["bench", mode, batch, a.seconds]))
    out, st = guest(a, tmp, img, ["bench", mode, batch, a.seconds])
    g = LINE.search(out)
    if not h or not g:
        raise SystemExit("no bench line for %s batch %d:\nhost: %s\nguest: %s" % (mode, batch, h, out))
    hn, hops, hkb, herr, hkicks = (int(h.group(i)) for i in (3, 5, 6, 7, 8))
    gn, gops, gkb, gerr, gkicks = (int(g.group(i)) for i in (3, 5, 6, 7, 8))
    exits, submits, raises = per_request(st, gn)
    note = ""
    if herr or gerr:
        note = "  errors: host %d, guest %d" % (herr, gerr)
    print("%-9s %5d %10d %8.1f %6.3f %11d %8.1f %7.3fx %6.3f %6.3f %7.3f %7.3f%s" %
          (mode, batch, hops, hkb / 1000, hkicks / hn, gops, gkb / 1000, gops / hops if hops else 0,
           gkicks / gn, exits, submits, raises, note), flush=True)


def flush(a, tmp, img):
    h = FLUSH.search(native(a, img, ["bench-flush", a.flushes]))
    out, st = guest(a, tmp, img, ["bench-flush", a.flushes])
    g = FLUSH.search(out)
    if not h or not g:
        raise SystemExit("no bench-flush line:\nhost: %s\nguest: %s" % (h, out))
    hus, gus = float(h.group(3)), float(g.group(3))
    n = int(g.group(1))
    exits, _, raises = per_request(st, n)
    errors = int(h.group(4)) + int(g.group(4))
    print("write 4K + FLUSH, one at a time, %d times: host %.1f us, guest %.1f us, guest/host %.2fx; "
          "per guest write+flush: %.2f kicks, %.2f userspace exits, %.2f notifications%s" %
          (n, hus, gus, gus / hus, int(g.group(5)) / n, exits, raises,
           ", %d errors" % errors if errors else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("denali_run")
    ap.add_argument("disktest")
    ap.add_argument("native")
    ap.add_argument("--size", default="256M")
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--batches", default="1,4,16,64")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--flushes", type=int, default=200)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    a = ap.parse_args()
    a.denali_run, a.disktest, a.native = map(os.path.abspath, (a.denali_run, a.disktest, a.native))
    size = parse_size(a.size)
    if size <= 0 or size % 4096:
        raise SystemExit("--size must be a positive multiple of 4K")
    batches = [int(x) for x in a.batches.split(",")]
    # The service files and state stay in $TMPDIR: only the image goes to --dir.
    with tempfile.TemporaryDirectory(prefix="denali-bench-disk-") as tmp, \
            tempfile.TemporaryDirectory(prefix="denali-bench-disk-", dir=a.dir) as imgdir:
        img = os.path.join(imgdir, "disk.img")
        make_image(img, size)
        before = resident(img)
        fs = filesystem(img)
        warm = "unknown" if before is None else "warm" if before >= 0.99 else "cold" if before < 0.01 \
            else "partly warm"
        print("bench/disk: %d MiB image on %s (%s), buffered I/O on both sides, page cache %s "
              "(%s of the image resident after writing it)%s; %d s per point" %
              (size >> 20, fs, imgdir, warm, "%.0f%%" % (before * 100) if before is not None else "?",
               "; tmpfs has no backing store, so FLUSH writes nothing back" if fs == "tmpfs" else "",
               a.seconds), flush=True)
        print("%-9s %5s %-26s %-20s %8s %s" %
              ("", "", "host (io_uring)", "guest", "", "per guest request"))
        print("%-9s %5s %10s %8s %6s %11s %8s %8s %6s %6s %7s %7s" %
              ("mode", "batch", "ops/s", "MB/s", "enters", "ops/s", "MB/s", "ratio",
               "kicks", "exits", "submits", "notifs"), flush=True)
        for mode in a.modes.split(","):
            for batch in batches:
                point(a, tmp, img, mode, batch)
        if a.flushes:
            flush(a, tmp, img)
        after = resident(img)
        if after is not None:
            print("page cache at the end: %.0f%% of the image resident" % (after * 100))


if __name__ == "__main__":
    main()
