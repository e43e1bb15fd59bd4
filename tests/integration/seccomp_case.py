#!/usr/bin/env python3
"""Integration tests of the seccomp filters: with DENALI_SECCOMP_PROBE=ROLE[:WHO], the thread of
that role calls, once sealed, what no role allows (docs/security.md). Its process must end with
the one-line message naming it, and the fleet must report it: a cell's death loses only that
cell's services, a supervisor thread's ends denali-run with the forbidden-call status.

Usage: seccomp_case.py DENALI_RUN EVENTS DISKTEST ECHO CASE
"""
import os
import re

import caselib
from caselib import expect

FORBIDDEN = 127  # SANDBOX_EXIT_FORBIDDEN
CALL = r"forbidden system call syslog \(103\): ending the process\n"


class Env(caselib.Env):
    def __init__(self, binaries, tmp):
        denali_run, self.events, self.disktest, self.echo = (os.path.abspath(b) for b in binaries)
        super().__init__(denali_run, tmp)

    def service(self, name, image, args, **keys):
        return self.write_service(name, image, args, memory="8M", **keys)

    def run(self, files, probe=None, opts=()):
        """denali-run with DENALI_SECCOMP_PROBE set to probe (unset without one)."""
        env = dict(os.environ)
        env.pop("DENALI_SECCOMP_PROBE", None)
        if probe:
            env["DENALI_SECCOMP_PROBE"] = probe
        return super().run(files, opts, env=env)


def cell_dies(env, probe, victim, line):
    """Cell 0 (victim) breaks its filter; cell 1's service runs to its end."""
    survivor = env.service("survivor", env.events, ["timer", "100", "10"])
    status, out, err = env.run([victim, survivor], probe=probe, opts=["--cell-size", "1"])
    expect(re.search("^" + line + CALL, err, re.M), "the forbidden call's line", status, out, err)
    expect(re.search(r"^denali-run: cell 0 \(pid \d+\) made a forbidden system call \(exit status %d\); "
                     r"its services are lost: victim\n" % FORBIDDEN, err, re.M),
           "the supervisor reports the cell's death", status, out, err)
    expect("[survivor] timer: 10 fired" in out and "denali-run: survivor: exited with status 0\n" in err,
           "the other cell's service ran to its end", status, out, err)
    expect(status == 1, "status 1 (a service did not exit 0)", status, out, err)
    expect(err.count("forbidden system call syslog") == 1, "one line from the probe", status, out, err)


def case_vcpu(env):
    victim = env.service("victim", env.events, ["timer", "100", "10"])
    cell_dies(env, "vcpu:victim", victim, r"denali-run: cell 0: vcpu thread \(service victim\): ")


def case_cell(env):
    victim = env.service("victim", env.events, ["timer", "100", "10"])
    cell_dies(env, "cell:0", victim, r"denali-run: cell 0: cell thread: ")


def case_disk(env):
    victim = env.service("victim", env.disktest, ["write", "0", "16", "3"],
                         disk={"path": os.path.join(env.tmp, "victim.img"), "size": "1M"})
    cell_dies(env, "disk:0", victim, r"denali-run: cell 0: disk thread: ")


def supervisor_dies(env, probe, files, line):
    status, out, err = env.run(files, probe=probe)
    expect(re.search("^" + line + CALL, err, re.M), "the forbidden call's line", status, out, err)
    expect(status == FORBIDDEN, "denali-run's status is the forbidden call's", status, out, err)


def case_supervisor(env):
    supervisor_dies(env, "supervisor", [env.service("s", env.events, ["timer", "100", "10"])],
                    r"denali-run: supervisor: supervisor thread: ")


def case_net(env):
    echo = env.service("echo", env.echo, [], net={})
    supervisor_dies(env, "net", [echo], r"denali-run: supervisor: net thread: ")


def case_nat(env):
    """The NAT process breaks its filter: it ends with the line, the network thread reports it
    and starts another (which the probe ends too), and the fleet's service runs to its end."""
    s = env.service("s", env.events, ["timer", "100", "10"], net={})
    status, out, err = env.run([s], probe="nat")
    expect(re.search(r"^denali-run: nat: nat thread: " + CALL, err, re.M), "the forbidden call's line",
           status, out, err)
    expect(re.search(r"^denali-run: the NAT process \(pid \d+\) exited with status %d; " % FORBIDDEN, err, re.M),
           "the network thread reports the NAT's death", status, out, err)
    expect("timer: 10 fired" in out and status == 0, "the service ran to its end", status, out, err)


def case_off(env):
    """--seccomp off: it says it is unsafe, and the probe's call goes through."""
    s = env.service("s", env.events, ["timer", "10", "5"])
    status, out, err = env.run([s], probe="vcpu", opts=["--seccomp", "off"])
    expect(re.search(r"^denali-run: warning: --seccomp off: .* unsafe \(debugging only\)\n", err),
           "the warning", status, out, err)
    expect("forbidden" not in err and "timer: 5 fired" in out and status == 0, "the service ran", status, out, err)


def case_usage(env):
    s = env.service("s", env.events, ["timer", "10", "5"])
    status, out, err = env.run([s], opts=["--seccomp", "maybe"])
    expect(status == 2 and err == 'denali-run: --seccomp: "maybe" is neither on nor off\n',
           "refused", status, out, err)


CASES = {
    "seccomp-vcpu": case_vcpu,
    "seccomp-cell": case_cell,
    "seccomp-disk": case_disk,
    "seccomp-supervisor": case_supervisor,
    "seccomp-net": case_net,
    "seccomp-nat": case_nat,
    "seccomp-off": case_off,
    "seccomp-usage": case_usage,
}


def main():
    caselib.main(CASES, "seccomp_case.py DENALI_RUN EVENTS DISKTEST ECHO CASE", Env, {"seccomp-usage"})


if __name__ == "__main__":
    main()
