"""What every integration-case script shares: the skip status, failing with the evidence, free
ports and a process's children."""
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


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(p) for p in f.read().split()]
