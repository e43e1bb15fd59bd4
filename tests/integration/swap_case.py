#!/usr/bin/env python3
"""Swap integration tests: services swapped out of memory when idle and back in when woken,
checked from their consoles, exit statuses and --stats counters.

Usage: swap_case.py DENALI_RUN SWAPTEST HTTPD CASE   (--list prints the cases)
Guest-booting cases exit 77 (skip) only when /dev/kvm does not exist. Swapping needs a state
directory on a disk-backed filesystem: DENALI_SWAP_DIR, else /var/tmp.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

import caselib
from caselib import SKIP, children, expect, fail, free_port, wait_for_line


class Env(caselib.Env):
    def __init__(self, binaries, tmp, state):
        denali_run, self.swaptest, self.httpd = (os.path.abspath(b) for b in binaries)
        super().__init__(denali_run, tmp, state)

    def service(self, name, args, idle_after, memory="32M"):
        return self.write_service(name, self.swaptest, args, memory=memory, swap={"idle_after": idle_after})

    def run(self, files, opts=(), state=None, timeout=240):
        """denali-run with --stats (and state in place of the Env's): status, stdout, stderr
        and the services' stats by name ({} where it wrote none)."""
        stats = os.path.join(self.tmp, "stats.json")
        cmd = [self.denali_run, "--state-dir", state or self.state, "--stats", stats] + list(opts) + files
        status, out, err = caselib.run_command(cmd, timeout)
        st = {}
        if os.path.exists(stats):
            st = caselib.read_stats(stats)
            os.unlink(stats)
        return status, out, err, st


def case_swap_pattern(env):
    """A guest fills 8 MiB, is swapped out and in 20 times, and finds every byte each time;
    its pages really leave memory and its working set comes back in one prefetch."""
    f = env.service("filler", ["pattern", "8", "20", "150"], 0.02)
    status, out, err, st = env.run([f])
    expect(status == 0 and out.count("MiB intact") == 20, "20 rounds intact", status, out, err)
    sw = st["filler"]["swap"]
    print("swap: %r" % sw)
    expect(sw["outs"] >= 20 and sw["ins"] >= 20, "swapped out and in at least 20 times", status, out, err)
    expect(sw["working_set_pages"] >= 2048, "the working set holds the 8 MiB", status, out, repr(sw))
    expect(sw["resident_after_out_max"] < sw["working_set_pages"] // 4,
           "swapped out, most pages left memory", status, out, repr(sw))
    expect(sw["prefetched_pages"] >= 20 * 2048, "the working set was prefetched", status, out, repr(sw))
    expect(sw["spare_ins"] >= sw["ins"] // 2, "most swap-ins found a spare VM made ahead", status, out, repr(sw))


def case_swap_timer(env):
    """A timer that fires while its service is swapped out wakes it, swapped in, on time."""
    f = env.service("sleeper", ["timer", "10", "200"], 0.02)
    status, out, err, st = env.run([f])
    expect(status == 0 and out.count("timer fired") == 10, "ten timers fired", status, out, err)
    lates = [int(x) for x in re.findall(r"fired (\d+) us late", out)]
    expect(max(lates) < 2000000, "each within 2 s (emulated host): %r" % lates, status, out, err)
    expect(st["sleeper"]["swap"]["outs"] >= 10, "it was swapped out while waiting", status, out, err)


def http_get(port, path):
    """One HTTP/1.1 GET; returns the status line and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


def case_swap_httpd(env):
    """An httpd swapped out while idle answers its next request, which swaps it back in, with
    the right content; three times over."""
    port = free_port()
    path = env.write_service("web", env.httpd, memory="16M", net={"forward": ["tcp:%d:80" % port]},
                             swap={"idle_after": 0.05})
    stats = os.path.join(env.tmp, "web-stats.json")
    proc = env.start([path], ["--stats", stats])
    try:
        line = proc.stdout.readline().decode()
        if "listening" not in line:
            fail("httpd did not start: %r %r" % (line, proc.stderr.read()))
        for i in range(3):
            status, body = http_get(port, "/")
            expect(status == "HTTP/1.1 200 OK" and b"Hello from web on Denali" in body,
                   "request %d answered" % i, status, body[:200], "")
            time.sleep(1.5)  # idle far past idle_after: swapped out before the next one
        status, body = http_get(port, "/big")
        expect(status == "HTTP/1.1 200 OK" and len(body) == 1 << 20 and
               all(body[i] == (i * 31 + 7) & 0xff for i in range(0, 1 << 20, 4099)),
               "/big after a swap-in", status, len(body), "")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    expect(proc.returncode == 0, "httpd exits 0 on SIGTERM", proc.returncode, out.decode(), err.decode())
    with open(stats) as f:
        svc = json.load(f)["services"][0]
    sw, nic = svc["swap"], svc["nic"]
    print("swap: %r nic: %r" % (sw, nic))
    expect(sw["outs"] >= 3 and sw["ins"] >= 3, "swapped out and back in for the requests", proc.returncode,
           repr(sw), err.decode())
    expect(nic["held"] >= 3 and nic["held_dropped"] == 0,
           "the frames that woke it were held by the switch, none lost", proc.returncode, repr(nic), err.decode())


def case_swap_stop(env):
    """A service stopped while swapped out is not brought back in to be stopped: its stop
    event swaps it in (it must see it), a forced stop while it is out does not."""
    f = env.service("napper", ["timer", "1", "600000"], 0.02)
    stats = os.path.join(env.tmp, "napper-stats.json")
    proc = env.start([f], ["--stats", stats, "--grace", "600"])
    time.sleep(3)  # long swapped out by now
    proc.send_signal(signal.SIGINT)  # DN_EV_STOP: in, and (ignored) out again
    time.sleep(3)
    proc.send_signal(signal.SIGINT)  # the second stops it at once, while it is out
    out, err = proc.communicate(timeout=60)
    out, err = out.decode(), err.decode()
    expect(proc.returncode == 130 and "napper: stopped: Interrupt at rip=0x" in err,
           "stopped by the second SIGINT, with the guest's RIP", proc.returncode, out, err)
    with open(stats) as fs:
        sw = json.load(fs)["services"][0]["swap"]
    expect(sw["outs"] == 2 and sw["ins"] == 1, "out, in for the stop event, out, and not in again: %r" % sw,
           proc.returncode, out, err)


def cell_view(pid):
    """What a cell process holds now: its threads, its fds (by target), and the guest memory
    files it maps with the KiB of them resident."""
    threads = len(os.listdir("/proc/%d/task" % pid))
    fds = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    maps, rss, current = [], 0, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                current = parts[5] if len(parts) > 5 and parts[5].endswith("/mem") else None
                if current:
                    maps.append(current)
            elif current and parts[0] == "Rss:":
                rss += int(parts[1])
    return threads, fds, maps, rss


def case_swap_release(env, spares=0):
    """Sleeping services hold nothing in their cell: no vcpu thread, no VM or vcpu fd, no
    mapping and no fd of their memory; they wake on their timers and finish. With spares, the
    cell holds that many VMs (each with its vcpu) made ahead, and the swap-ins use them."""
    n = 6
    files = [env.service("idler%d" % i, ["timer", "2", "5000"], 0.02, memory="8M") for i in range(n)]
    stats = os.path.join(env.tmp, "release-stats.json")
    proc = env.start(files, ["--stats", stats, "--spare-vms", str(spares)])
    spare = sorted(["anon_inode:kvm-vm", "anon_inode:kvm-vcpu:0"] * spares)

    def kept(fds):
        return sorted(f for f in fds if f.endswith("/mem") or "kvm-" in f)
    try:
        seen = None
        deadline = time.time() + 4.5
        while time.time() < deadline:
            cells = children(proc.pid)
            if cells:
                threads, fds, maps, rss = cell_view(cells[0])
                seen = (threads, fds, maps, rss)
                # The spare is made just after the last sleeper's thread ends.
                if threads == 1 and not maps and kept(fds) == spare:
                    break
            time.sleep(0.05)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = out.decode(), err.decode()
    expect(proc.returncode == 0 and out.count("timer fired") == 2 * n, "every timer fired",
           proc.returncode, out, err)
    expect(seen is not None, "a cell was seen", proc.returncode, out, err)
    threads, fds, maps, rss = seen
    print("asleep, the cell had %d thread(s), fds %r, maps %r" % (threads, fds, maps))
    expect(threads == 1, "only the cell's main thread while all sleep (saw %d)" % threads,
           proc.returncode, out, err)
    expect(not maps, "no guest memory mapped while all sleep: %r" % maps, proc.returncode, out, err)
    held = kept(fds)
    expect(held == spare, "no memory file, and no VM or vcpu fd but %d spare(s), while all sleep: %r"
           % (spares, held), proc.returncode, out, err)
    spare_ins = 0
    with open(stats) as fs:
        for svc in json.load(fs)["services"]:
            expect(svc["swap"]["outs"] >= 2 and svc["swap"]["ins"] >= 2,
                   "%s slept and woke twice: %r" % (svc["name"], svc["swap"]), proc.returncode, out, err)
            spare_ins += svc["swap"]["spare_ins"]
    expect((spare_ins > 0) == (spares > 0), "%d swap-ins into a spare VM" % spare_ins, proc.returncode, out, err)


def fleet_rss_kib(pid):
    """KiB of guest memory resident in all the cells of the denali-run pid."""
    total = 0
    for cell in children(pid):
        try:
            total += cell_view(cell)[3]
        except OSError:
            pass  # it ended meanwhile
    return total


def httpd_fleet(env, n, opts):
    """Starts n httpd services; returns the process, their names and host ports."""
    names, ports, files = [], [], []
    for i in range(n):
        name, port = "web%d" % i, free_port()
        path = env.write_service(name, env.httpd, memory="16M", net={"forward": ["tcp:%d:80" % port]})
        names.append(name)
        ports.append(port)
        files.append(path)
    stats = os.path.join(env.tmp, "fleet-stats.json")
    proc = env.start(files, ["--stats", stats] + list(opts))
    for _ in range(n):
        line = proc.stdout.readline().decode()
        if "listening" not in line:
            proc.kill()
            fail("the fleet did not start: %r %r" % (line, proc.stderr.read()))
    return proc, names, ports, stats


def ask_fleet(names, ports, rounds):
    """GET / from every service, round after round; each must answer with its own page."""
    for r in range(rounds):
        for name, port in zip(names, ports):
            status, body = http_get(port, "/")
            if status != "HTTP/1.1 200 OK" or ("Hello from %s on Denali" % name).encode() not in body:
                fail("round %d: %s answered %r %r" % (r, name, status, body[:200]))


def stop_fleet(proc, names, stats):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    out, err = out.decode(), err.decode()
    expect(proc.returncode == 0 and err.count("exited with status 0") == len(names),
           "every service exits 0 on SIGTERM", proc.returncode, out, err)
    with open(stats) as f:
        return json.load(f)["services"]


def wait_under(pid, budget, what, timeout=60):
    """Samples the fleet's resident memory until it is at most budget KiB (the budget has sent
    enough services away); fails if it is not within timeout s. Returns the last sample."""
    deadline = time.time() + timeout
    while True:
        kib = fleet_rss_kib(pid)
        if kib <= budget:
            return kib
        if time.time() > deadline:
            fail("%s: still %d KiB resident after %d s, over the budget of %d KiB" % (what, kib, timeout, budget))
        time.sleep(0.02)


def fleet_resident_kib(env, n):
    """The resident guest memory of n httpds that each answered once, with no budget: what a
    budget is then set against."""
    proc, names, ports, stats = httpd_fleet(env, n, [])
    try:
        ask_fleet(names, ports, 1)
        time.sleep(0.5)
        return fleet_rss_kib(proc.pid)
    finally:
        if proc.poll() is None:
            stop_fleet(proc, names, stats)


def case_swap_budget(env):
    """A memory budget of half the fleet's resident memory keeps the guest pages resident in the
    cells under it (beyond it only while a woken service waits for another to go), while every
    service still answers every request."""
    n = 6
    total = fleet_resident_kib(env, n)
    budget = total // 2
    print("fleet resident %d KiB; budget %d KiB" % (total, budget))
    proc, names, ports, stats = httpd_fleet(env, n, ["--memory-budget", "%dK" % budget])
    samples, done = [], []

    def sample():
        while not done:
            samples.append(fleet_rss_kib(proc.pid))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    sampler.start()
    # How long the fleet stays over the budget after a wake is how soon the cells measure and
    # the supervisor acts (50 ms ticks), which a busy machine stretches: a time average of the
    # samples (this case's old check) measured the machine's load as much as the budget, and
    # requests sent while an earlier wake was still over the budget stacked their transients.
    # So each request waits for the fleet to be back under the budget (the budget works: it
    # fails if it never is), one wake at a time; the sampler, running all along, then sees each
    # transient alone, and it must stay within two services' worth of the budget however slowly
    # the supervisor gets to it.
    settled = []
    try:
        settled.append(wait_under(proc.pid, budget, "at the start"))
        del samples[:]
        for r in range(3):
            for name, port in zip(names, ports):
                ask_fleet([name], [port], 1)
                settled.append(wait_under(proc.pid, budget, "after %s answered in round %d" % (name, r)))
    finally:
        done.append(1)
        sampler.join()
        services = stop_fleet(proc, names, stats)
    over = [s for s in samples if s > budget]
    per_service = total // n
    print("samples %d, mean %d KiB, max %d KiB, %d over budget; settled at %r KiB" %
          (len(samples), sum(samples) / max(len(samples), 1), max(samples + [0]), len(over), settled))
    outs = sum(s["swap"]["outs"] for s in services)
    ins = sum(s["swap"]["ins"] for s in services)
    print("swap-outs %d, swap-ins %d" % (outs, ins))
    expect(outs >= n and ins >= n, "services were swapped out and in for the budget", outs, ins, "")
    expect(max(samples + settled) <= budget + 2 * per_service,
           "never more than two services' worth over the budget (%d KiB)" % max(samples + settled),
           samples, budget, "")


def big_ok(status, body):
    """/big: 1 MiB of the httpd's pattern, checked whole by its SHA-256."""
    want = hashlib.sha256(bytes((i * 31 + 7) & 0xff for i in range(1 << 20))).hexdigest()
    return status == "HTTP/1.1 200 OK" and hashlib.sha256(body).hexdigest() == want


def case_swap_held(env):
    """Frames for a sleeping or waking service are never lost: a fleet of httpds under a budget
    with room for about two of them, asked by concurrent clients with a Zipf-like mix of / and
    /big (1 MiB, checked by SHA-256), answers every request, and the switch dropped no frame it
    held for a sleeper (held_dropped 0)."""
    n, clients, per_client = 12, 16, 4
    total = fleet_resident_kib(env, n)
    budget = 2 * total // n
    print("fleet resident %d KiB; budget %d KiB" % (total, budget))
    proc, names, ports, stats = httpd_fleet(env, n, ["--memory-budget", "%dK" % budget])
    weights = [1.0 / (k + 1) for k in range(n)]
    failures, done = [], []

    def client(c):
        rng = random.Random(c)
        for r in range(per_client):
            k = rng.choices(range(n), weights)[0]
            path = "/big" if (c + r) % 2 == 0 else "/"
            try:
                status, body = http_get(ports[k], path)
            except OSError as e:
                failures.append("%s %s: %s" % (names[k], path, e))
                continue
            ok = big_ok(status, body) if path == "/big" else (
                status == "HTTP/1.1 200 OK" and ("Hello from %s on Denali" % names[k]).encode() in body)
            if not ok:
                failures.append("%s %s: %r, %d bytes" % (names[k], path, status, len(body)))
            done.append(path)
    try:
        time.sleep(2)  # the budget brings the fleet under it: most sleep
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        services = stop_fleet(proc, names, stats)
    outs = sum(s["swap"]["outs"] for s in services)
    held = sum(s["nic"]["held"] for s in services)
    blocked = sum(s["nic"]["tx_blocked"] for s in services)
    dropped = {s["name"]: s["nic"]["held_dropped"] for s in services if s["nic"]["held_dropped"]}
    print("%d requests (%d /big), swap-outs %d, frames held %d, sends blocked %d, held_dropped %r" %
          (len(done), done.count("/big"), outs, held, blocked, dropped))
    expect(not failures, "every request answered, every /big intact", failures, "", "")
    expect(outs >= n, "services were swapped out for the budget", outs, "", "")
    expect(not dropped, "no frame held for a sleeper was dropped", dropped, "", "")


def resumable(env, name, args, swap=True):
    keys = {"swap": {"idle_after": 0.05}} if swap else {}
    return env.write_service(name, env.swaptest, args, memory="32M", **keys)


def start_resume(env, f):
    return env.start([f], ["--resume"])


def finish(proc, timeout=180):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def resume_pattern(env, stop):
    """Runs the pattern guest with --resume until it sleeps saved after round 1 (or a later one),
    stops the run with stop(proc), and checks that a second run goes on from the next round with
    every byte intact."""
    f = resumable(env, "keeper", ["pattern", "8", "5", "4000"])
    proc = start_resume(env, f)
    first = wait_for_line(proc, "round 1:")
    state = os.path.join(env.state, "services", "keeper")
    # Each round idles 4 s, saved once swapped out. No deadline on when round 2's idle starts
    # (writing 8 MiB is slow on a busy machine): a checkpoint missed is caught at the next
    # round's idle, and the runs are checked against each other.
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(state, "state")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    expect(os.path.exists(os.path.join(state, "state")), "a checkpoint beside the memory file while it sleeps",
           proc.poll(), first, os.listdir(state))
    stop(proc)
    status, out, err = finish(proc)
    first += out
    expect(os.path.exists(os.path.join(state, "mem")) and os.path.exists(os.path.join(state, "state")),
           "its memory file and checkpoint are kept for --resume", status, first, err)
    status2, out2, err2 = finish(start_resume(env, f))
    print("first run: %r\nsecond run: %r" % (first, out2))
    done = [r for r in range(5) if "round %d: 8 MiB intact" % r in first]
    rest = [r for r in range(5) if "round %d:" % r in out2]
    expect(status2 == 0 and done and rest and done + rest == list(range(5)) and
           all("round %d: 8 MiB intact" % r in out2 for r in rest),
           "the second run went on from round %d, every byte intact" % (len(done)), status2, out2, err2)
    expect(not os.path.exists(state), "its files are gone once it exited", status2, out2, os.listdir(env.state))
    return status, err


def case_resume_clean(env):
    """--resume: a stop (SIGTERM) saves the sleeping service instead of ending it; the next run
    with --resume goes on exactly where it was."""
    status, err = resume_pattern(env, lambda p: p.send_signal(signal.SIGTERM))
    expect(status == 0 and "keeper: saved; --resume goes on with it" in err, "saved by the stop", status, "", err)


def case_resume_kill(env):
    """--resume after SIGKILL of denali-run (its cells die with it) while the service sleeps:
    the last checkpoint brings it back."""
    status, err = resume_pattern(env, lambda p: p.send_signal(signal.SIGKILL))
    expect(status == -signal.SIGKILL, "denali-run was killed", status, "", err)


LOST = (r"%s: no checkpoint to resume \(lost when the last run was killed while it ran\): "
        r"starting afresh")


def case_resume_lost(env):
    """A service that was running (not saved) when denali-run was killed has no checkpoint: the
    next --resume says so in one line and starts it afresh in that same run."""
    f = resumable(env, "busy", ["pattern", "4", "100000", "20"], swap=False)
    proc = start_resume(env, f)
    wait_for_line(proc, "round 3:")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    proc = start_resume(env, f)
    seen = wait_for_line(proc, "round 0:")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc)
    expect(re.search(LOST % "busy", err) and "lost:" not in err, "said why, in one line", status, seen + out, err)
    expect("round 0:" in seen, "started afresh in the same run", status, seen + out, err)


def case_resume_kill_fleet(env):
    """denali-run killed (SIGKILL) while one service sleeps, saved, and another runs: the next
    --resume run brings the sleeper back where it was and starts the other afresh, both in that
    one run."""
    keeper = resumable(env, "keeper", ["pattern", "8", "5", "4000"])
    busy = resumable(env, "busy", ["pattern", "4", "100000", "20"], swap=False)
    proc = env.start([keeper, busy], ["--resume"])
    wait_for_line(proc, "[keeper] round 1:")
    saved = os.path.join(env.state, "services", "keeper", "state")
    deadline = time.time() + 3.5  # round 2 idles 4 s: it writes its pattern, sleeps, is saved
    while not os.path.exists(saved) and time.time() < deadline:
        time.sleep(0.02)
    expect(os.path.exists(saved), "keeper saved while it sleeps", proc.poll(), "", "")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    proc = env.start([keeper, busy], ["--resume"])
    seen = wait_for_line(proc, "[keeper] round 4:")
    if "[busy] round 0:" not in seen:
        seen += wait_for_line(proc, "[busy] round 0:")
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    status, out, err = finish(proc)
    print("second run, stderr: %r" % err)
    expect(all("[keeper] round %d: 8 MiB intact" % r in seen for r in (2, 3, 4)) and
           "[keeper] round 1:" not in seen, "keeper went on from round 2, every byte intact", status, seen, err)
    expect("[busy] round 0:" in seen and re.search(LOST % "busy", err), "busy started afresh in the same run, "
           "and said so", status, seen, err)
    expect("keeper: no checkpoint" not in err and "lost:" not in err, "nothing else lost", status, seen, err)


def case_resume_discard(env):
    """A run without --resume on a state folder that holds a saved service says, in one line, that
    its saved state is discarded, removes its checkpoint, and leaves nothing behind; a saved
    service it does not run is left for a later --resume."""
    keeper = resumable(env, "keeper", ["pattern", "8", "3", "4000"])
    other = resumable(env, "other", ["pattern", "8", "3", "4000"])
    for f in (keeper, other):
        proc = start_resume(env, f)
        wait_for_line(proc, "round 0:")
        saved = os.path.join(env.state, "services", os.path.basename(f)[:-5], "state")
        deadline = time.time() + 3.5
        while not os.path.exists(saved) and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        status, out, err = finish(proc)
        expect(status == 0 and "saved; --resume goes on with it" in err, "saved", status, out, err)
    status, out, err, st = env.run([keeper])
    expect(status == 0 and "round 0:" in out, "it ran afresh", status, out, err)
    expect(re.search(r"warning: no --resume: the saved state of keeper in \S+ is discarded; it starts "
                     r"afresh", err) and "other" not in err, "said so, naming it alone", status, out, err)
    expect(not os.path.exists(os.path.join(env.state, "services", "keeper")), "nothing of it left behind", status, out,
           os.listdir(env.state))
    expect(os.path.exists(os.path.join(env.state, "services", "other", "state")), "the other's checkpoint is kept", status,
           out, os.listdir(env.state))


def case_resume_httpd(env):
    """An httpd saved by a stop answers again after --resume, the same content, its NIC
    connected anew."""
    port = free_port()
    path = env.write_service("web", env.httpd, memory="16M", net={"forward": ["tcp:%d:80" % port]},
                             swap={"idle_after": 0.05})
    for run in range(2):
        proc = start_resume(env, path)
        try:
            if run == 0:
                wait_for_line(proc, "listening")
            deadline = time.time() + 60
            while True:  # the second run prints nothing: wait for its host port
                try:
                    status, body = http_get(port, "/")
                    break
                except ConnectionRefusedError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.1)
            expect(status == "HTTP/1.1 200 OK" and b"Hello from web on Denali" in body,
                   "run %d answered" % run, status, body[:200], "")
            time.sleep(1.0)  # asleep again, saved
        finally:
            proc.send_signal(signal.SIGTERM)
            status, out, err = finish(proc)
        expect(status == 0 and "web: saved" in err, "run %d saved it" % run, status, out, err)
        if run == 1:
            expect("listening" not in out, "the second run did not boot it again", status, out, err)


# The checkpoint file (src/swap/checkpoint.c): an 80-byte header (its checksum at 24, FNV-1a of
# all that follows; the CPUID table's id at 72), then struct checkpoint, whose offsets come from
# <linux/kvm.h>'s fixed ABI.
CKPT_HEADER, CKPT_CHECKSUM, CKPT_CPUID = 80, 24, 72
CKPT_RIP, CKPT_RFLAGS = 8 + 128, 8 + 136  # struct kvm_regs after ram_size
CKPT_SREGS = 8 + 144
SEG_SIZE, SEG_SELECTOR, SEG_DPL = 24, 12, 16  # struct kvm_segment
SREG_CS, SREG_SS, SREG_GDT = 0, 5 * SEG_SIZE, 8 * SEG_SIZE


def patch_checkpoint(path, patch):
    """Applies patch(payload) to the checkpoint at path and writes its checksum anew: a state
    folder anyone could write."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    payload = bytearray(data[CKPT_HEADER:])
    patch(payload)
    h = 0xcbf29ce484222325
    for b in payload:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    data[CKPT_HEADER:] = payload
    struct.pack_into("<Q", data, CKPT_CHECKSUM, h)
    with open(path, "wb") as f:
        f.write(data)


def ring0(payload):
    """CS and SS to the kernel's selectors (RPL 0, DPL 0), IOPL 0, the GDT moved into guest RAM."""
    for seg, sel in ((SREG_CS, 0x08), (SREG_SS, 0x10)):
        struct.pack_into("<H", payload, CKPT_SREGS + seg + SEG_SELECTOR, sel)
        payload[CKPT_SREGS + seg + SEG_DPL] = 0
    struct.pack_into("<Q", payload, CKPT_SREGS + SREG_GDT, 0x400000)
    rflags = struct.unpack_from("<Q", payload, CKPT_RFLAGS)[0]
    struct.pack_into("<Q", payload, CKPT_RFLAGS, rflags & ~0x3000)


def non_canonical_rip(payload):
    struct.pack_into("<Q", payload, CKPT_RIP, 0x1234567812345678)


def other_cpuid(path):
    """The header's CPUID table id, as a monitor with another virtual CPU would have written."""
    with open(path, "r+b") as f:
        f.seek(CKPT_CPUID)
        cpuid_id = struct.unpack("<Q", f.read(8))[0]
        f.seek(CKPT_CPUID)
        f.write(struct.pack("<Q", cpuid_id ^ 1))


def tamper_sysarea(mem):
    """The memory file's page tables: the PML4 zeroed, the GDT's page made user-writable."""
    with open(mem, "r+b") as f:
        f.seek(0x1000)
        f.write(bytes(4096))
        f.seek(0x7000 + (0x8000 // 4096) * 8)
        f.write(struct.pack("<Q", 0x8000 | 0x7))


def case_resume_tampered(env):
    """--resume trusts nothing of the monitor's in the state folder: a checkpoint that puts the
    guest in ring 0 over its own GDT, or a memory file whose page tables were zeroed, resumes it
    in ring 3 over the system area written anew; a checkpoint with a value out of range (a
    non-canonical RIP), or saved under another CPUID table, is refused, on one line naming the
    service and the reason."""
    f = resumable(env, "keeper", ["timer", "1", "15000"])
    proc = start_resume(env, f)
    state = os.path.join(env.state, "services", "keeper")
    ckpt, mem = os.path.join(state, "state"), os.path.join(state, "mem")
    deadline = time.time() + 14  # asleep long before its timer: swapped out, saved
    while not os.path.exists(ckpt) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    status, out, err = finish(proc)
    expect(status == 0 and "keeper: saved" in err, "saved asleep, before its timer", status, out, err)
    backup = os.path.join(env.tmp, "keeper-saved")
    shutil.copytree(state, backup)

    def resume(tamper):
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(os.path.dirname(state), mode=0o700, exist_ok=True)  # gone if it was empty
        shutil.copytree(backup, state)
        tamper()
        return finish(start_resume(env, f))
    for what, tamper in (("ring 0 in the checkpoint", lambda: patch_checkpoint(ckpt, ring0)),
                         ("page tables zeroed in the memory file", lambda: tamper_sysarea(mem))):
        status, out, err = resume(tamper)
        print("%s: status %d, %r" % (what, status, out))
        expect(status == 0 and "round 0: timer fired" in out and "ring" not in out,
               "%s: it went on in ring 3 and exited 0" % what, status, out, err)
    status, out, err = resume(lambda: patch_checkpoint(ckpt, non_canonical_rip))
    lines = [l for l in err.splitlines() if "keeper: cannot resume it" in l]
    expect(status == 0 and len(lines) == 1 and
           re.search(r"its checkpoint \S+ is refused: its saved vcpu has a non-canonical RIP "
                     r"0x1234567812345678: starting afresh$", lines[0]),
           "a non-canonical RIP refused, on one line, and the service started afresh", status, out, err)
    status, out, err = resume(lambda: other_cpuid(ckpt))
    lines = [l for l in err.splitlines() if "keeper: cannot resume it" in l]
    expect(status == 0 and len(lines) == 1 and
           re.search(r"its checkpoint \S+ was saved by a monitor with another virtual CPU \(CPUID table "
                     r"[0-9a-f]{16}, this one's is [0-9a-f]{16}\): starting afresh$", lines[0]),
           "another virtual CPU's checkpoint refused, on one line, and the service started afresh",
           status, out, err)


def case_swap_tmpfs(env):
    """A state directory on tmpfs is refused for swapping services, before anything starts."""
    if not os.path.isdir("/dev/shm"):
        print("SKIP: no /dev/shm here")
        sys.exit(SKIP)
    shm = tempfile.mkdtemp(dir="/dev/shm")
    try:
        f = env.service("swapper", ["timer", "1", "10"], 1)
        status, out, err, st = env.run([f], state=os.path.join(shm, "state"))
    finally:
        os.rmdir(shm)
    expect(status == 2 and re.search(r"the state directory \S+ is on tmpfs: a service swapped out there "
                                     r"would still be in RAM", err), "tmpfs refused", status, out, err)


def case_swap_config(env):
    """Bad swap keys are refused with the key named."""
    for swap, msg in [("x", r'key "swap": expected an object'),
                      ({}, r'key "swap.idle_after": missing'),
                      ({"idle_after": -1}, r'key "swap.idle_after": expected seconds'),
                      ({"idle_after": 0.001}, r'key "swap.idle_after": expected seconds from 0\.01'),
                      ({"idle_after": 1, "budget": 2}, r'key "swap.budget": unknown key')]:
        path = env.write_service("bad", env.swaptest, swap=swap)
        status, out, err, st = env.run([path])
        expect(status == 2 and re.search(msg, err), "refused: " + msg, status, out, err)


CASES = {
    "swap-pattern": (case_swap_pattern, True),
    "swap-timer": (case_swap_timer, True),
    "swap-httpd": (case_swap_httpd, True),
    "swap-stop": (case_swap_stop, True),
    "swap-release": (case_swap_release, True),
    "swap-release-spare": (lambda env: case_swap_release(env, spares=1), True),
    "swap-budget": (case_swap_budget, True),
    "swap-held": (case_swap_held, True),
    "resume-clean": (case_resume_clean, True),
    "resume-kill": (case_resume_kill, True),
    "resume-lost": (case_resume_lost, True),
    "resume-kill-fleet": (case_resume_kill_fleet, True),
    "resume-discard": (case_resume_discard, True),
    "resume-httpd": (case_resume_httpd, True),
    "resume-tampered": (case_resume_tampered, True),
    "swap-tmpfs": (case_swap_tmpfs, False),
    "swap-config": (case_swap_config, False),
}


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return
    if len(sys.argv) != 5 or sys.argv[4] not in CASES:
        sys.exit("usage: swap_case.py DENALI_RUN SWAPTEST HTTPD CASE")
    fn, needs_kvm = CASES[sys.argv[4]]
    if needs_kvm and not os.path.exists("/dev/kvm"):
        print("SKIP: /dev/kvm is absent")
        sys.exit(SKIP)
    base = os.environ.get("DENALI_SWAP_DIR", "/var/tmp")
    with tempfile.TemporaryDirectory(prefix="denali-swap-") as tmp, \
            tempfile.TemporaryDirectory(prefix="denali-swap-state-", dir=base) as state:
        fn(Env(sys.argv[1:4], tmp, state))
    print("PASS")


if __name__ == "__main__":
    main()
