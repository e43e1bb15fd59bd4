"""What every integration-case script shares: the skip status, failing with the evidence, free
ports and a process's children."""
import os
import socket
import sys

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def expect(cond, what, status, out, err):
    if not cond:
        fail("%s\nstatus %s\nstdout: %r\nstderr: %r" % (what, status, out, err))


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
