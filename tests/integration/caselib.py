"""What every integration-case script shares: the skip status, failing with the evidence,
writing service files and running denali-run on them, reading --stats, free ports and a
process's children."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, what, status, out, err):
    if not cond:
        fail("%s\nstatus %s\nstdout: %r\nstderr: %r" % (what, status, out, err))


def write_service(tmp, name, image, args=None, **keys):
    """Writes TMP/NAME.json: the service NAME running image (with args, where given), and any
    other keys (memory, net, disk...) as given. Returns its path."""
    spec = {"name": name, "image": image}
    if args is not None:
        spec["args"] = args
    spec.update(keys)
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    return path


def run_command(cmd, timeout, env=None):
    """Runs cmd to its end: its status, stdout and stderr (text). Fails, with what it printed,
    if it has not ended in timeout seconds."""
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        fail("%s did not finish in %d s\nstdout: %r\nstderr: %r"
             % (os.path.basename(cmd[0]), timeout, e.stdout, e.stderr))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def read_stats(path):
    """The services of a --stats file, by name."""
    with open(path) as f:
        return {s["name"]: s for s in json.load(f)["services"]}


class Env:
    """A case's scratch folder and denali-run: service files are written in the folder, and
    every run keeps its state in state (the folder's state/ unless given). A case script's own
    Env adds its guests' binaries and how it writes its services."""
    timeout = 180  # seconds for one run of denali-run

    def __init__(self, denali_run, tmp, state=None):
        self.denali_run = os.path.abspath(denali_run)
        self.tmp = tmp
        self.state = state or os.path.join(tmp, "state")

    def write_service(self, name, image, args=None, **keys):
        return write_service(self.tmp, name, image, args, **keys)

    def command(self, files, opts=()):
        return [self.denali_run, "--state-dir", self.state] + list(opts) + list(files)

    def run(self, files, opts=(), timeout=None, env=None):
        """denali-run on the service files to its end: status, stdout, stderr."""
        return run_command(self.command(files, opts), timeout or self.timeout, env)

    def run_stats(self, files, opts=(), timeout=None, env=None):
        """run() with --stats: status, stdout, stderr and the services' stats by name."""
        path = os.path.join(self.tmp, "stats.json")
        status, out, err = self.run(files, ["--stats", path] + list(opts), timeout, env)
        return status, out, err, read_stats(path)

    def start(self, files, opts=()):
        """denali-run started on the service files, its stdout and stderr piped."""
        return subprocess.Popen(self.command(files, opts), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(proc, want, timeout=120):
    """Reads proc's stdout until a line holding want; returns what was read. Fails, with what
    it printed, if proc ends or timeout seconds pass first (then it is killed)."""
    seen = ""
    deadline = time.time() + timeout
    while want not in seen:
        if time.time() > deadline:
            proc.kill()
            fail("never saw %r; got %r" % (want, seen))
        line = proc.stdout.readline().decode("utf-8", "replace")
        if not line:
            proc.wait()
            fail("denali-run ended (status %s) before %r; got %r\nstderr: %r" %
                 (proc.returncode, want, seen, proc.stderr.read()))
        seen += line
    return seen


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def all_children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]


def is_nat_process(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() == "denali-nat"
    except OSError:
        return False


def children(pid):
    """denali-run's cells: its children but the NAT launcher (denali-nat)."""
    return [c for c in all_children(pid) if not is_nat_process(c)]


def wait_for_cell(proc, timeout=60):
    """Waits until denali-run (proc) has forked a cell: from then on it reads SIGTERM and SIGINT
    from its signalfd (it blocked them before), where a signal sent earlier, on a loaded host,
    could still meet the default action and end it with no word. Returns early if it ends."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if children(proc.pid):
                return
        except OSError:  # it ended meanwhile: the caller's checks say so
            return
        time.sleep(0.05)


def where_threads(pid):
    """Where every thread of pid and of its children waits (wchan, syscall, kernel stack): for
    a run that does not end when it should."""
    lines = []
    try:
        pids = [pid] + all_children(pid)
    except OSError:
        pids = [pid]
    for p in pids:
        try:
            tids = os.listdir("/proc/%d/task" % p)
        except OSError:
            continue
        for t in tids:
            info = []
            for what in ("comm", "wchan", "syscall", "stack"):
                try:
                    with open("/proc/%d/task/%s/%s" % (p, t, what)) as f:
                        info.append("%s=%s" % (what, f.read().strip().replace("\n", " | ")[:400]))
                except OSError:
                    pass
            lines.append("pid %d tid %s: %s" % (p, t, " ".join(info)))
    return "\n".join(lines)


def main(cases, usage, make_env, no_kvm=(), prefix="denali-it-"):
    """A case script's main. With --list: the names of the cases. Else the arguments are the
    binaries usage names ("SCRIPT BINARY... CASE") and a case, which runs with
    make_env(binaries, scratch folder), the folder its own; a case not in no_kvm boots guests
    and skips where /dev/kvm does not exist."""
    if sys.argv[1:] == ["--list"]:
        print("\n".join(cases))
        return
    binaries = len(usage.split()) - 2
    if len(sys.argv) != binaries + 2 or sys.argv[-1] not in cases:
        fail("usage: " + usage)
    name = sys.argv[-1]
    if name not in no_kvm and not os.path.exists("/dev/kvm"):
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        cases[name](make_env(sys.argv[1:-1], tmp))
    print("PASS: " + name)
