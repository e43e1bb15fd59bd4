#!/usr/bin/env python3
"""Integration cases for the rights layer (docs/security.md#rights): a fleet started as root gives
up every capability and becomes its user (the system user denali by default, --user's, or root
with --user root) in the supervisor and every cell, with NoNewPrivs set, and a cell confined by
Landlock cannot open a file outside its state folder. Whether denali exists is set per case, in
a mount namespace of the run's own (the host's /etc/passwd is not touched); $DENALI_USER, which
the suite sets to root (meson.build), is taken out of each run's environment.
Usage: sandbox_case.py DENALI_RUN DENALI_CTL MISBEHAVE CASE | --list"""
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time

from caselib import SKIP, all_children, children, expect, fail, is_nat_process

PROBE = "DENALI_SANDBOX_PROBE_OPEN"
NO_CAPS = "0000000000000000"
NO_DENALI = ("denali-run: started as root, the fleet runs as the system user denali, which does not "
             "exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin denali), "
             "or name a user with --user (docs/security.md#rights)\n")


def run_env(probe=None):
    """The environment of a run: no $DENALI_USER (each case says whom it wants), and the probe."""
    env = dict(os.environ)
    env.pop("DENALI_USER", None)
    if probe:
        env[PROBE] = probe
    return env


def users_namespace(tmp, with_denali):
    """A command prefix that runs what follows in a mount namespace of its own whose /etc/passwd
    and /etc/group are the host's with the system user denali (with_denali: the host's entry,
    else a free uid and gid) or without it. Returns (prefix, uid, gid)."""
    with open("/etc/passwd") as f:
        users = [line for line in f.read().splitlines() if line]
    with open("/etc/group") as f:
        groups = [line for line in f.read().splitlines() if line]
    mine = [u for u in users if u.startswith("denali:")]
    users = [u for u in users if not u.startswith("denali:")]
    groups = [g for g in groups if not g.startswith("denali:")]
    uid = gid = None
    if with_denali:
        if mine:
            uid, gid = (int(x) for x in mine[0].split(":")[2:4])
        else:
            taken = {int(u.split(":")[2]) for u in users} | {int(g.split(":")[2]) for g in groups}
            uid = gid = next(n for n in range(999, 100, -1) if n not in taken)
        users.append("denali:x:%d:%d::/nonexistent:/usr/sbin/nologin" % (uid, gid))
        if not any(int(g.split(":")[2]) == gid for g in groups):
            groups.append("denali:x:%d:" % gid)
    paths = []
    for name, lines in (("passwd", users), ("group", groups)):
        path = os.path.join(tmp, "etc-" + name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o644)
        paths.append(path)
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"',
              "sh"] + paths
    return prefix, uid, gid


def status_of(pid):
    """The fields of /proc/PID/status, as a dict of strings."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return fields


def service(tmp, name, image, args, net=False):
    """A service file; with net, a NIC on the user uplink (so the fleet has a NAT process)."""
    path = os.path.join(tmp, name + ".json")
    svc = {"name": name, "image": image, "memory": "8M", "args": args}
    if net:
        svc["net"] = {}
    with open(path, "w") as f:
        json.dump(svc, f)
    os.chmod(path, 0o644)
    return path


def start_fleet(cmd, probe, names):
    """Starts denali-run with the probe path set, and waits until each named service spins."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env(probe))
    seen, deadline = "", time.time() + 120
    while not all("[%s] spinning" % n in seen for n in names):
        if time.time() > deadline:
            proc.kill()
            fail("never saw every service spin; got %r" % seen)
        line = proc.stdout.readline().decode()
        if not line:
            _, err = proc.communicate()
            fail("denali-run ended early: status %s\nstdout: %r\nstderr: %r" % (proc.returncode, seen, err))
        seen += line
    return proc, seen


def stop_fleet(proc, seen):
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        fail("denali-run did not stop\nstderr: %r" % err)
    return proc.returncode, seen + out.decode(), err.decode()


def nat_of(pid, seen):
    """The fleet's NAT launcher (denali-nat, a child of the supervisor, started after the drop)
    and the NAT processes it forked (its children, also denali-nat)."""
    launchers = [c for c in all_children(pid) if is_nat_process(c)]
    expect(len(launchers) == 1, "one NAT launcher", -1, seen, repr(all_children(pid)))
    nats = [c for c in all_children(launchers[0]) if is_nat_process(c)]
    expect(len(nats) == 1, "one NAT process, the launcher's child", -1, seen, repr(nats))
    return launchers + nats


def check_rights(pids, uid, gid, what):
    """Each process: no capability in any set, NoNewPrivs 1, and the ids wanted."""
    for pid in pids:
        st = status_of(pid)
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            expect(st.get(cap) == NO_CAPS, "%s (pid %d): %s is empty" % (what, pid, cap), -1, "", repr(st))
        expect(st.get("NoNewPrivs") == "1", "%s (pid %d): NoNewPrivs 1" % (what, pid), -1, "", repr(st))
        ids = "\t".join([str(uid)] * 4)
        expect(st.get("Uid") == ids and st.get("Gid") == "\t".join([str(gid)] * 4),
               "%s (pid %d): uid and gid %d:%d" % (what, pid, uid, gid), -1, "", repr(st))


def refuses_new_tap(denali_ctl, sock, tmp, misbehave):
    """After the drop, a start FILE that needs a new TAP device is refused with one line."""
    path = os.path.join(tmp, "tapper.json")
    with open(path, "w") as f:
        json.dump({"name": "tapper", "image": misbehave, "memory": "8M", "args": ["spin"],
                   "net": {"uplink": "tap:dnsbx0", "ip": "10.99.0.2/24"}}, f)
    os.chmod(path, 0o644)
    p = subprocess.run([denali_ctl, "--socket", sock, "start", path], capture_output=True)
    out = p.stdout.decode()
    try:
        answer = json.loads(out)
    except ValueError:
        answer = {}
    expect(p.returncode != 0 and answer.get("ok") is False and answer.get("error") ==
           "start: tap:dnsbx0: a new TAP device needs root, which the fleet gave up after startup: "
           "name its TAP services at startup", "start of a new TAP refused after the drop",
           p.returncode, out, p.stderr.decode())


def run_case(denali_run, denali_ctl, misbehave, tmp, opts, uid, gid):
    """Two cells of one spinning service each (one with a NIC on the user uplink): the
    supervisor, both cells and the NAT process (the first of which starts before the supervisor's
    drop, and gives up root itself) hold no rights, and
    each cell, confined, is denied /etc/passwd and a file beside its state folder. A second run
    shows the probe itself can open what the cell may: a file inside the state folder."""
    state = os.path.join(tmp, "state")
    beside = os.path.join(tmp, "beside")
    with open(beside, "w") as f:
        f.write("not the cell's\n")
    os.chmod(beside, 0o644)  # readable by anyone: only Landlock keeps the cell out
    files = [service(tmp, "a", misbehave, ["spin"], net=True), service(tmp, "b", misbehave, ["spin"])]
    sock = os.path.join(tmp, "sock")
    cmd = [denali_run, "--state-dir", state, "--cell-size", "1", "--grace", "1", "--control", sock] + opts + files
    for probe in ("/etc/passwd", beside):
        proc, seen = start_fleet(cmd, probe, ["a", "b"])
        cells = children(proc.pid)
        expect(len(cells) == 2, "two cells", -1, seen, "")
        check_rights([proc.pid], uid, gid, "supervisor")
        check_rights(cells, uid, gid, "cell")
        check_rights(nat_of(proc.pid, seen), uid, gid, "NAT process")
        if probe == beside:
            refuses_new_tap(denali_ctl, sock, tmp, misbehave)
        status, out, err = stop_fleet(proc, seen)
        want = "denali-run: cell: sandbox probe: open %s: Permission denied\n" % probe
        expect(err.count(want) == 2, "each cell is denied %s" % probe, status, out, err)
    # Inside the state folder: the log of a --detach run is there; a file of ours made for it.
    inside = os.path.join(state, "probe")
    with open(inside, "w") as f:
        f.write("the cell's\n")
    os.chown(inside, uid, gid)
    os.chmod(inside, 0o600)
    proc, seen = start_fleet(cmd, inside, ["a", "b"])
    status, out, err = stop_fleet(proc, seen)
    want = "denali-run: cell: sandbox probe: open %s: allowed\n" % inside
    expect(err.count(want) == 2, "each cell may open a file in its state folder", status, out, err)
    return state


def case_root(denali_run, denali_ctl, misbehave, tmp):
    """Root with --user root (the opt-out) keeps uid 0 and gives up every capability."""
    run_case(denali_run, denali_ctl, misbehave, tmp, ["--user", "root"], 0, 0)


def case_default(denali_run, denali_ctl, misbehave, tmp):
    """Root without --user, where the system user denali exists: the supervisor, each cell and
    the NAT process run as denali (its primary group) with no capability; the state folder, made by root, is
    denali's; each cell is still confined (denied /etc/passwd)."""
    os.chmod(tmp, 0o755)  # denali must reach its state folder in it
    prefix, uid, gid = users_namespace(tmp, True)
    state = os.path.join(tmp, "state")
    files = [service(tmp, "a", misbehave, ["spin"], net=True), service(tmp, "b", misbehave, ["spin"])]
    cmd = prefix + [denali_run, "--state-dir", state, "--cell-size", "1", "--grace", "1",
                    "--control", os.path.join(tmp, "sock")] + files
    proc, seen = start_fleet(cmd, "/etc/passwd", ["a", "b"])
    cells = children(proc.pid)
    expect(len(cells) == 2, "two cells", -1, seen, "")
    check_rights([proc.pid], uid, gid, "supervisor")
    check_rights(cells, uid, gid, "cell")
    check_rights(nat_of(proc.pid, seen), uid, gid, "NAT process")
    status, out, err = stop_fleet(proc, seen)
    want = "denali-run: cell: sandbox probe: open /etc/passwd: Permission denied\n"
    expect(err.count(want) == 2, "each cell is denied /etc/passwd", status, out, err)
    st = os.stat(state)
    expect(st.st_uid == uid and st.st_gid == gid and st.st_mode & 0o777 == 0o700,
           "the state folder is denali's, 0700", -1, "", "uid %d gid %d mode %o" % (st.st_uid, st.st_gid,
                                                                                 st.st_mode))


def case_user(denali_run, denali_ctl, misbehave, tmp):
    """Root with --user nobody: every process becomes nobody; the state folder, made by root, is
    nobody's."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        print("SKIP: no user nobody")
        sys.exit(SKIP)
    os.chmod(tmp, 0o755)  # nobody must reach its state folder in it
    state = run_case(denali_run, denali_ctl, misbehave, tmp, ["--user", "nobody"], nobody.pw_uid,
                     nobody.pw_gid)
    st = os.stat(state)
    expect(st.st_uid == nobody.pw_uid and st.st_mode & 0o777 == 0o700, "the state folder is nobody's, 0700",
           -1, "", "uid %d mode %o" % (st.st_uid, st.st_mode))


def case_user_refused(denali_run, denali_ctl, misbehave, tmp):
    """--user with root's group is refused before anything starts, with one line; as root, so is
    a run without --user where the system user denali does not exist (status 125: the host's
    setup), and one whose $DENALI_USER names no user (status 2)."""
    f = service(tmp, "a", misbehave, ["spin"])
    state = os.path.join(tmp, "s")
    p = subprocess.run([denali_run, "--user", "4321:0", "--state-dir", state, f], capture_output=True,
                       env=run_env())
    err = p.stderr.decode()
    expect(p.returncode == 2 and err == 'denali-run: --user: "4321:0" has group 0 (root\'s): '
           'name an unprivileged user and group\n', "refused with one line", p.returncode, p.stdout.decode(), err)
    if os.geteuid() != 0:
        return
    prefix, _, _ = users_namespace(tmp, False)
    p = subprocess.run(prefix + [denali_run, "--state-dir", state, f], capture_output=True, env=run_env())
    err = p.stderr.decode()
    expect(p.returncode == 125 and err == NO_DENALI and not os.path.exists(state),
           "no denali: refused with how to make it", p.returncode, p.stdout.decode(), err)
    env = run_env()
    env["DENALI_USER"] = "no-such-user-here"
    p = subprocess.run(prefix + [denali_run, "--state-dir", state, f], capture_output=True, env=env)
    err = p.stderr.decode()
    expect(p.returncode == 2 and err == 'denali-run: DENALI_USER: no user named "no-such-user-here"\n',
           "a DENALI_USER that names no one: refused", p.returncode, p.stdout.decode(), err)


CASES = {"sandbox-root": case_root, "sandbox-user": case_user, "sandbox-default": case_default,
         "sandbox-user-refused": case_user_refused}
ROOT_ONLY = {"sandbox-root", "sandbox-user", "sandbox-default"}


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(CASES))
        return
    if len(sys.argv) != 5:
        fail("usage: sandbox_case.py DENALI_RUN DENALI_CTL MISBEHAVE CASE")
    denali_run, denali_ctl, misbehave = (os.path.abspath(p) for p in sys.argv[1:4])
    name = sys.argv[4]
    if name in ROOT_ONLY and os.geteuid() != 0:
        print("SKIP: %s: needs root (the rights a fleet started as root gives up)" % name)
        sys.exit(SKIP)
    if name != "sandbox-user-refused" and not os.path.exists("/dev/kvm"):
        print("SKIP: no /dev/kvm")
        sys.exit(SKIP)
    with tempfile.TemporaryDirectory(prefix="denali-it-") as tmp:
        CASES[name](denali_run, denali_ctl, misbehave, tmp)
    print("PASS: %s" % name)


if __name__ == "__main__":
    main()
