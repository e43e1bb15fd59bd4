#!/usr/bin/env python3
"""Integration tests: run denali-run on real guests and check exact stdout, stderr and status.

Usage: run_case.py DENALI_RUN HELLO MISBEHAVE EVENTS CASE
Cases that boot a guest exit 77 (skip) only when /dev/kvm does not exist; any other trouble
with KVM, permission included, is a failure.
"""
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from caselib import SKIP, children, expect, fail, wait_for_cell

ABI_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "denali", "abi.h")
with open(ABI_H) as abi_h:
    ABI = int(re.search(r"#define DN_ABI_VERSION (\d+)", abi_h.read()).group(1))
RIP = r" at rip=0x[0-9a-f]+\n"


def stopped(name, reason_regex):
    return r"^denali-run: " + re.escape(name) + r": stopped: " + reason_regex + RIP + "$"


# Each case: image, args for the guest, denali-run options, expected status, stdout (exact),
# stderr (regex, whole text). "kvm": False cases are refused before KVM is touched.
CASES = {
    "hello": dict(image="hello", args=["a b", "c"], status=0,
                  stdout="Hello from hello on Denali!\narg 1: a b\narg 2: c\n", stderr="^$"),
    "exit-status": dict(args=["exit", "42"], status=42, stdout="", stderr="^$"),
    "exit-zero": dict(args=["exit", "0"], status=0, stdout="", stderr="^$"),
    "exit-out-of-range": dict(args=["exit", "200"], status=126,
                              stderr=stopped("exit-out-of-range", r"exit status 200 is outside 0-123")),
    "abort": dict(args=["abort", "disk on fire\x07"], status=126,
                  stderr=stopped("abort", r"aborted: disk on fire\?")),
    "assert": dict(args=["assert"], status=126,
                   stderr=stopped("assert", r"aborted: assertion failed: argc == 42 \(\S*misbehave\.c:\d+\)")),
    "null-write": dict(args=["null-write"], status=126,
                       stderr=stopped("null-write", r"page fault \(#PF\) writing 0x0 \(not mapped, error 0x6\)")),
    "div-zero": dict(args=["div-zero"], status=126, stderr=stopped("div-zero", r"divide error \(#DE\)")),
    "page-table-write": dict(args=["page-table-write"], status=126,
                             stderr=stopped("page-table-write",
                                            r"page fault \(#PF\) writing 0x1000 \(protection violation, error 0x7\)")),
    "bad-port": dict(args=["bad-port"], status=126,
                     stderr=stopped("bad-port", r"write to port 0x80, which does not exist")),
    "privileged": dict(args=["privileged"], status=126,
                       stderr=stopped("privileged", r"general protection fault \(#GP\), error 0x0")),
    "high-port": dict(args=["high-port"], status=126,
                      stderr=stopped("high-port", r"write to port 0x1234, which does not exist")),
    "fault-port": dict(args=["fault-port"], status=126,
                       stderr=stopped("fault-port", r"write to port 0x4f0, which does not exist")),
    "jump-null": dict(args=["jump-null"], status=126,
                      stderr=stopped("jump-null", r"page fault \(#PF\) fetching 0x0 \(not mapped, error 0x4\)")),
    "hc-outside": dict(args=["hc-outside"], status=126,
                       stderr=stopped("hc-outside",
                                      r"hypercall console: buffer \[0x7ffff8, \+0x40\) lies outside the guest's RAM")),
    "hc-struct-outside": dict(args=["hc-struct-outside"], status=126,
                              stderr=stopped("hc-struct-outside",
                                             r"hypercall console: argument struct at 0x8000 lies outside the guest's RAM")),
    "hc-wrap": dict(args=["hc-wrap"], status=126,
                    stderr=stopped("hc-wrap",
                                   r"hypercall console: buffer \[0xffffffffffffffef, \+0x40\) wraps around the address space")),
    "hc-misaligned": dict(args=["hc-misaligned"], status=126,
                          stderr=stopped("hc-misaligned", r"hypercall console: argument struct at 0x[0-9a-f]*[1-7c] is misaligned")),
    "hc-unknown": dict(args=["hc-unknown"], status=126,
                       stderr=stopped("hc-unknown", r"write to port 0x50[0-9a-f], which does not exist")),
    "console-too-long": dict(args=["console-too-long"], status=0, stdout="console status -1\n", stderr="^$"),
    "idle": dict(args=["idle", "50"], status=0, stdout="idle ok: slept long enough\n", stderr="^$"),
    "printf": dict(args=["printf"], status=0, stderr="^$",
                   stdout="[-42|   42|42   |00042|+42|ff|0XFF|10|z|str|abc|   right|l   |0x1000|%]\n"
                          "[18446744073709551615|-9223372036854775808|7|44|deadbeefcafe]\n"
                          "[truncated-strin|22]\n"
                          "[5|5|010|010|0]\n"
                          "[18446744073709551615|-9223372036854775808|-31|511|0]\n"
                          "[xg]\n"),
    "spin-timeout": dict(args=["spin"], opts=["--timeout", "1"], status=124, stdout="spinning\n",
                         stderr=stopped("spin-timeout", r"timeout after 1 s")),
    # Refused before anything starts: no KVM needed.
    "bad-json": dict(kvm=False, json='{"image": "x", "memory": "12Q"}', status=2,
                     stderr=r'^denali-run: \S+/bad-json\.json: key "memory": invalid size "12Q" \(.*\)\n$'),
    "image-missing": dict(kvm=False, image="/nonexistent/guest", status=2,
                          stderr=r"^denali-run: image-missing: /nonexistent/guest: cannot open image: No such file or directory\n$"),
    "image-garbage": dict(kvm=False, image="@garbage", status=2,
                          stderr=r"^denali-run: image-garbage: \S+: not an ELF file \(bad magic\)\n$"),
    "image-truncated": dict(kvm=False, image="@truncated", status=2,
                            stderr=r"^denali-run: image-truncated: \S+: program headers .* outside the file\n$"),
    "image-abi": dict(kvm=False, image="@abi-mismatch", status=2,
                      stderr=r"^denali-run: image-abi: \S+: built for Denali ABI v%d, but this monitor speaks v%d\n$" % (ABI - 1, ABI)),
    "image-host": dict(kvm=False, image="/bin/true", status=2,
                       stderr=r"^denali-run: image-host: /bin/true: not a static executable .*\n$"),
    "usage-none": dict(kvm=False, argv=[], status=2,
                       stderr=r"^denali-run: expected at least one SERVICE\.json or --fleet DIR\nusage:"),
    "missing-file": dict(kvm=False, argv=["/nonexistent/a.json"], status=2,
                         stderr=r"^denali-run: /nonexistent/a\.json: unable to open /nonexistent/a\.json"),
    "usage-timeout": dict(kvm=False, opts=["--timeout", "soon"], status=2,
                          stderr=r'^denali-run: --timeout: "soon" is not a number of seconds'),
    "usage-spare-vms": dict(kvm=False, opts=["--spare-vms", "9"], status=2,
                            stderr=r'^denali-run: --spare-vms: "9" is not a number from 0 to 8\n'),
    "usage-option": dict(kvm=False, opts=["--frob"], status=2,
                         stderr=r'^denali-run: unknown option "--frob" \(see denali-run --help\)\n$'),
    "usage-option-value": dict(kvm=False, argv=["--grace"], status=2,
                               stderr=r'^denali-run: option "--grace" needs a value \(see denali-run --help\)\n$'),
    "usage-metrics-listen": dict(kvm=False, opts=["--metrics-listen", "localhost:9100"], status=2,
                                 stderr=r'^denali-run: --metrics-listen: "localhost:9100": expected IPV4:PORT .*\n$'),
    "usage-control-long": dict(kvm=False, opts=["--control", "/tmp/" + "c" * 110], status=2,
                               stderr=r'^denali-run: --control: path too long for a unix socket \(at most 107 bytes\)\n$'),
    "usage-metrics-port": dict(kvm=False, opts=["--metrics-listen", "127.0.0.1:65536"], status=2,
                               stderr=r'^denali-run: --metrics-listen: "127\.0\.0\.1:65536": the port must be .*\n$'),
    # The disk image is checked with the file, before KVM: missing without a size, or another size.
    "disk-no-size": dict(kvm=False, json='{"image": "x", "disk": {"path": "nothing.img"}}', status=2,
                         stderr=r'^denali-run: \S+/disk-no-size\.json: key "disk\.path": disk \S+/nothing\.img does not '
                                r'exist \(give a size to create it\)\n$'),
    "disk-size-mismatch": dict(kvm=False, files={"four.img": 4 << 20},
                               json='{"image": "x", "disk": {"path": "four.img", "size": "8M"}}', status=2,
                               stderr=r'^denali-run: \S+/disk-size-mismatch\.json: key "disk\.size": disk \S+/four\.img is '
                                      r'4194304 bytes, but its size is given as 8388608\n$'),
    "help": dict(kvm=False, argv=["--help"], status=0, stdout=None,
                 stdout_regex=r"(?s)^usage: denali-run \[OPTIONS\] SERVICE\.json\.\.\.\n.*--control PATH .* wait,\s+metrics, shutdown\n",
                 stderr="^$"),
    "version": dict(kvm=False, argv=["--version"], status=0, stdout=None, stdout_regex=r"^denali-run \S+ \(Denali ABI v\d+\)\n$", stderr="^$"),
}


def make_image(kind, hello, tmp):
    """Hostile images derived from the real hello image."""
    data = open(hello, "rb").read()
    if kind == "@garbage":
        data = bytes((i * 37 + 11) & 0xFF for i in range(4096))
    elif kind == "@truncated":
        data = data[:100]
    elif kind == "@abi-mismatch":
        note = b"Denali\x00\x00" + ABI.to_bytes(4, "little")
        assert data.count(note) == 1, "ABI note not found in hello"
        data = data.replace(note, b"Denali\x00\x00" + (ABI - 1).to_bytes(4, "little"))
    path = os.path.join(tmp, kind[1:])
    with open(path, "wb") as f:
        f.write(data)
    return path


def kvm_present():
    return os.path.exists("/dev/kvm")


def run(cmd, timeout=60, on_started=None):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if on_started:
        on_started(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        fail("denali-run did not finish in %d s\nstdout: %r\nstderr: %r" % (timeout, out, err))
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def write_service(tmp, name, image, args):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        f.write('{"name": %s, "image": %s, "memory": "8M", "args": [%s]}' % (
            quote(name), quote(image), ", ".join(quote(a) for a in args)))
    return path


def quote(s):
    import json
    return json.dumps(s)


def check_case(name, case, binaries, tmp):
    denali_run, hello, misbehave, events = binaries
    if case.get("kvm", True) and not kvm_present():
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    state = os.path.join(tmp, "state")
    image = case.get("image", "misbehave")
    image = {"hello": hello, "misbehave": misbehave}.get(image, image)
    if image.startswith("@"):
        image = make_image(image, hello, tmp)
    for file, size in case.get("files", {}).items():
        with open(os.path.join(tmp, file), "wb") as f:
            f.truncate(size)
    if "json" in case:
        service = os.path.join(tmp, name + ".json")
        with open(service, "w") as f:
            f.write(case["json"])
    else:
        service = write_service(tmp, name, image, case.get("args", []))
    argv = case["argv"] if "argv" in case else case.get("opts", []) + [service]
    status, out, err = run([denali_run, "--state-dir", state] + argv)
    report = "\nstatus %d\nstdout: %r\nstderr: %r" % (status, out, err)
    if status != case["status"]:
        fail("want status %d%s" % (case["status"], report))
    if case.get("stdout", "") is not None and out != case.get("stdout", ""):
        fail("want stdout %r%s" % (case.get("stdout", ""), report))
    if "stdout_regex" in case and not re.search(case["stdout_regex"], out):
        fail("stdout does not match %r%s" % (case["stdout_regex"], report))
    if not re.search(case["stderr"], err, re.S):
        fail("stderr does not match %r%s" % (case["stderr"], report))
    # Nothing is left behind: the service's memory file and folder are gone.
    if os.path.isdir(state) and os.listdir(state):
        fail("state directory not cleaned up: %r" % os.listdir(state))
    print("PASS: %s" % name)


def victim_file(tmp):
    """A root-only file that a planted symlink points at: it must stay as it is."""
    victim = os.path.join(tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.chmod(victim, 0o600)
    return victim


def refused_run(cmd, want, victim, env=None):
    """denali-run is refused with exactly the one line want (status 125), before anything runs;
    victim is untouched."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=env)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    expect(proc.returncode == 125 and out == "" and err == want,
           "refused with %r" % want, proc.returncode, out, err)
    with open(victim) as f:
        expect(f.read() == "precious\n", "the file the symlink points at is untouched", proc.returncode, out, err)


def case_folder_planted(binaries, tmp, state):
    """Another user made the state folder first and planted denali-run.log as a symlink: --detach
    refuses the folder, naming it and its owner, and appends to nothing."""
    if os.geteuid() != 0:
        print("SKIP: needs root to make a folder another user owns")
        sys.exit(SKIP)
    victim = victim_file(tmp)
    os.makedirs(state, mode=0o700)
    os.symlink(victim, os.path.join(state, "denali-run.log"))
    os.chown(state, 65534, 65534)
    svc = write_service(tmp, "planted", binaries[1], [])
    refused_run([binaries[0], "--detach", "--state-dir", state, svc],
                "denali-run: state folder %s is owned by uid 65534 (nobody), not by you: refusing to use it\n" % state,
                victim)
    # The default control socket's folder, planted the same way.
    xdg = os.path.join(tmp, "xdg")
    os.makedirs(os.path.join(xdg, "denali"), mode=0o700)
    os.chown(os.path.join(xdg, "denali"), 65534, 65534)
    mine = os.path.join(tmp, "mine")
    env = dict(os.environ, XDG_RUNTIME_DIR=xdg)
    env.pop("DENALI_CONTROL", None)
    refused_run([binaries[0], "--detach", "--state-dir", mine, svc],
                "denali-run: control socket folder %s/denali is owned by uid 65534 (nobody), not by you: "
                "refusing to use it\n" % xdg, victim, env)


def case_folder_open(binaries, tmp, state):
    """A state folder others may write is refused; so is a log that is a symlink, even in a
    folder of ours."""
    victim = victim_file(tmp)
    os.makedirs(state)
    os.chmod(state, 0o777)
    svc = write_service(tmp, "open", binaries[1], [])
    refused_run([binaries[0], "--state-dir", state, svc],
                "denali-run: state folder %s is open to others (mode 0777): refusing to use it\n" % state, victim)
    os.chmod(state, 0o700)
    os.symlink(victim, os.path.join(state, "denali-run.log"))
    refused_run([binaries[0], "--detach", "--state-dir", state, "--control", os.path.join(tmp, "sock"), svc],
                "denali-run: --detach: cannot open its log %s/denali-run.log: it is a symbolic link\n" % state,
                victim)
    # A folder above the state folder that others may write (not sticky): they could swap it.
    shared = os.path.join(tmp, "shared")
    os.makedirs(os.path.join(shared, "state"), mode=0o700)
    os.chmod(shared, 0o777)
    refused_run([binaries[0], "--state-dir", os.path.join(shared, "state"), svc],
                "denali-run: state folder %s/state is in %s, which others may write (mode 0777, not sticky): "
                "refusing to use it\n" % (shared, os.path.realpath(shared)), victim)


def special_case(name, binaries, tmp):
    """Cases that need more than one run or a signal."""
    denali_run, hello, misbehave, events = binaries
    state = os.path.join(tmp, "state")
    if name in NO_KVM:
        NO_KVM[name](binaries, tmp, state)
        print("PASS: %s" % name)
        return
    if name == "kvm-missing":
        # Hide /dev/kvm in a private mount namespace (root only); elsewhere only the real
        # absence can show this message.
        if kvm_present():
            if os.geteuid() != 0 or subprocess.call(["which", "unshare"], stdout=subprocess.DEVNULL) != 0:
                print("SKIP: needs root and unshare to hide /dev/kvm")
                sys.exit(SKIP)
            svc = write_service(tmp, "nokvm", hello, [])
            cmd = ["unshare", "--mount", "sh", "-c",
                   'mount -t tmpfs none /dev && exec "$0" --state-dir "$1" "$2"', denali_run, state, svc]
        else:
            svc = write_service(tmp, "nokvm", hello, [])
            cmd = [denali_run, "--state-dir", state, svc]
        status, out, err = run(cmd)
        if (status != 125 or "denali-run: /dev/kvm does not exist: this host has no KVM" not in err or
                "tests/vm/kvm-vm.sh" not in err):
            fail("status %d stderr %r" % (status, err))
        print("PASS: kvm-missing")
        return
    if name == "fleet-slash":
        # --fleet DIR/ names its files DIR/x.json, not DIR//x.json; refused before KVM.
        fleet = os.path.join(tmp, "fleet")
        os.mkdir(fleet)
        with open(os.path.join(fleet, "bad.json"), "w") as f:
            f.write('{"image": "x", "memory": "12Q"}')
        status, out, err = run([denali_run, "--state-dir", state, "--fleet", fleet + "/"])
        if status != 2 or not err.startswith("denali-run: %s/bad.json: " % fleet) or "//" in err:
            fail("status %d stderr %r" % (status, err))
        print("PASS: fleet-slash")
        return
    if not kvm_present():
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    if name == "sigterm":
        svc = write_service(tmp, "sigterm", misbehave, ["spin"])

        def stop_when_spinning(proc):
            wait_for_cell(proc)
            time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)

        status, out, err = run([denali_run, "--state-dir", state, svc], on_started=stop_when_spinning)
        if status != 128 + signal.SIGTERM or not re.search(stopped("sigterm", "Terminated"), err):
            fail("status %d stderr %r" % (status, err))
    elif name == "kvm-permission":
        # An unprivileged user who may not open /dev/kvm gets told what to do about it.
        mode = os.stat("/dev/kvm").st_mode
        if os.geteuid() != 0 or mode & 0o006 or subprocess.call(
                ["which", "setpriv"], stdout=subprocess.DEVNULL) != 0:
            print("SKIP: needs root, setpriv and a /dev/kvm that others may not open")
            sys.exit(SKIP)
        os.chmod(tmp, 0o755)
        os.makedirs(state, mode=0o700)
        os.chown(state, 65534, 65534)  # the state folder must be the user's own
        image = os.path.join(tmp, "hello")
        shutil.copy(hello, image)  # the build tree may not be readable by nobody
        os.chmod(image, 0o644)
        svc = write_service(tmp, "noperm", image, [])
        os.chmod(svc, 0o644)
        status, out, err = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                denali_run, "--state-dir", state, svc])
        if status != 125 or "denali-run: /dev/kvm: permission denied (add your user to the group" not in err:
            fail("status %d stderr %r" % (status, err))
    elif name == "full-filesystem":
        # Guest RAM is a file: when its filesystem is full the service stops with a clear host
        # error instead of the cell dying of SIGBUS.
        if os.geteuid() != 0:
            print("SKIP: needs root to mount a tiny tmpfs")
            sys.exit(SKIP)
        svc = write_service(tmp, "full", hello, [])
        cmd = ["unshare", "--mount", "sh", "-c",
               'mkdir -p "$1" && mount -t tmpfs -o size=64k,mode=700 none "$1" && exec "$0" --state-dir "$1" "$2"',
               denali_run, state, svc]
        status, out, err = run(cmd)
        if status != 125 or not re.search(r"^denali-run: full: host error: cannot write guest memory to \S+/full/mem "
                                          r"\(is its filesystem full\?\)\n$", err):
            fail("status %d stderr %r" % (status, err))
        # The same when the guest itself writes pages the file cannot back, as it runs.
        svc = write_service(tmp, "full", binaries[2], ["fill-memory"])
        cmd[-4] = cmd[-4].replace("size=64k", "size=256k")
        status, out, err = run(cmd)
        if (status != 125 or "filled" in out or
                err != "denali-run: full: host error: cannot write guest memory (is its filesystem full?)\n"):
            fail("running: status %d stdout %r stderr %r" % (status, out, err))
    elif name in FLEET:
        FLEET[name](binaries, tmp, state)
    elif name == "keep-state":
        svc = write_service(tmp, "kept", hello, [])
        status, out, err = run([denali_run, "--state-dir", state, "--keep-state", svc])
        mem = os.path.join(state, "services", "kept", "mem")
        if status != 0 or not os.path.isfile(mem) or os.path.getsize(mem) != 8 << 20:
            fail("status %d, memory file %s missing or wrong size; stderr %r" % (status, mem, err))
    elif name == "state-locked":
        # A second run of the same service on the same state directory is refused.
        os.makedirs(os.path.join(state, "services", "busy"), mode=0o700)
        os.chmod(state, 0o700)
        os.chmod(os.path.join(state, "services"), 0o700)
        with open(os.path.join(state, "services", "busy", "mem"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            svc = write_service(tmp, "busy", hello, [])
            status, out, err = run([denali_run, "--state-dir", state, svc])
        if status != 125 or "is in use: is service \"busy\" already running" not in err:
            fail("status %d stderr %r" % (status, err))
        if not os.path.exists(os.path.join(state, "services", "busy", "mem")):
            fail("the refused run removed the other run's memory file")
    else:
        fail("unknown case " + name)
    print("PASS: %s" % name)


def services(tmp, specs):
    """Writes one service file per (name, image, args); returns their paths in order."""
    return [write_service(tmp, n, img, args) for n, img, args in specs]


def fleet_of(n, binaries, tmp, state, cell_size):
    denali_run, hello = binaries[0], binaries[1]
    files = services(tmp, [("svc-%03d" % i, hello, [str(i)]) for i in range(n)])
    status, out, err = run([denali_run, "--state-dir", state, "--cell-size", str(cell_size)] + files,
                           timeout=300)
    for i in range(n):
        name = "svc-%03d" % i
        lines = out.splitlines()
        expect("[%s] Hello from %s on Denali!" % (name, name) in lines and "[%s] arg 1: %d" % (name, i) in lines,
               "%s's console lines, prefixed" % name, status, out, err)
        expect("denali-run: %s: exited with status 0\n" % name in err, name + "'s summary", status, out, err)
    expect(status == 0, "status 0", status, out, err)
    expect(out.count("\n") == 2 * n, "exactly %d console lines" % (2 * n), status, out, err)


def case_fleet_dir(binaries, tmp, state):
    denali_run, hello = binaries[0], binaries[1]
    fleet = os.path.join(tmp, "fleet")
    os.makedirs(fleet)
    for n in ("b", "a", "c"):
        write_service(fleet, n, hello, [])
    with open(os.path.join(fleet, "notes.txt"), "w") as f:
        f.write("not a service\n")
    status, out, err = run([denali_run, "--state-dir", state, "--fleet", fleet])
    expect(status == 0 and sorted(l.split("]")[0] for l in out.splitlines()) == ["[a", "[b", "[c"],
           "a, b and c ran", status, out, err)


def case_fleet_duplicate(binaries, tmp, state):
    denali_run, hello = binaries[0], binaries[1]
    first = write_service(tmp, "same", hello, [])
    other = os.path.join(tmp, "other")
    os.makedirs(other)
    second = write_service(other, "same", hello, [])
    status, out, err = run([denali_run, "--state-dir", state, first, second])
    expect(status == 2 and out == "" and
           re.search(r'^denali-run: \S+/other/same\.json: service name "same" is already used by \S+/same\.json\n$', err),
           "duplicate refused", status, out, err)


def case_fleet_one_bad(binaries, tmp, state):
    denali_run, hello = binaries[0], binaries[1]
    good = services(tmp, [("good1", hello, []), ("good2", hello, [])])
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"image": "%s", "memory": "7M"}' % hello)
    status, out, err = run([denali_run, "--state-dir", state, good[0], bad, good[1]])
    expect(status == 2 and out == "" and 'bad.json: key "memory"' in err, "whole run refused", status, out, err)


def case_fleet_mixed(binaries, tmp, state):
    denali_run, misbehave = binaries[0], binaries[2]
    files = services(tmp, [("ok", misbehave, ["exit", "0"]), ("three", misbehave, ["exit", "3"]),
                           ("crash", misbehave, ["null-write"])])
    status, out, err = run([denali_run, "--state-dir", state] + files)
    expect(status == 1, "status 1 when a service did not exit 0", status, out, err)
    expect("denali-run: three: exited with status 3\n" in err and "denali-run: ok: exited with status 0\n" in err
           and "denali-run: crash: stopped: page fault" in err, "every service summarized", status, out, err)
    status, out, err = run([denali_run, "--quiet", "--state-dir", state] + files)
    expect("exited with status" not in err and "crash: stopped" in err, "--quiet keeps only stops", status, out, err)


def wait_for_lines(proc, want, timeout=60):
    """Reads proc's stdout until every string in want has appeared; returns what was read."""
    seen = ""
    deadline = time.time() + timeout
    while not all(w in seen for w in want):
        if time.time() > deadline:
            proc.kill()
            fail("never saw %r; got %r" % (want, seen))
        line = proc.stdout.readline().decode()
        if not line:
            break
        seen += line
    return seen


def case_stop_grace(binaries, tmp, state):
    """SIGTERM: a service that exits on DN_EV_STOP exits; one that ignores it is stopped after
    the grace period."""
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("polite", events, ["stop-exit"]), ("stubborn", events, ["stop-ignore"])])
    proc = subprocess.Popen([denali_run, "--state-dir", state, "--grace", "1"] + files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = wait_for_lines(proc, ["[polite] waiting for stop", "[stubborn] ignoring stop"])
    cells = children(proc.pid)
    start = time.time()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    out, err = seen + out.decode(), err.decode()
    took = time.time() - start
    expect(proc.returncode == 143, "status 128+SIGTERM", proc.returncode, out, err)
    expect("[polite] got stop\n" in out and "denali-run: polite: exited with status 7\n" in err,
           "the polite service saw DN_EV_STOP and exited", proc.returncode, out, err)
    expect(re.search(stopped("stubborn", "Terminated"), err.split("polite")[-1] + err, re.M) or
           "denali-run: stubborn: stopped: Terminated at rip=" in err,
           "the stubborn service was stopped", proc.returncode, out, err)
    expect(took >= 0.9, "the grace period was honoured (%.2f s)" % took, proc.returncode, out, err)
    for pid in cells:
        expect(not os.path.exists("/proc/%d" % pid), "cell %d is gone" % pid, proc.returncode, out, err)
    expect(not os.path.isdir(state) or not os.listdir(state), "no state left behind", proc.returncode, out, err)


def case_stop_clean(binaries, tmp, state):
    """One rule for a stop signal, one service or many: 0 when the stop lost nothing (every
    service exited 0 on DN_EV_STOP), else 128+N."""
    denali_run, events = binaries[0], binaries[3]
    for specs, want in [([("one", events, ["stop-exit", "0"])], 0),
                        ([("a", events, ["stop-exit", "0"]), ("b", events, ["stop-exit", "0"])], 0),
                        ([("one", events, ["stop-exit", "3"])], 130),
                        ([("a", events, ["stop-exit", "0"]), ("b", events, ["stop-exit", "3"])], 130)]:
        files = services(tmp, specs)
        proc = subprocess.Popen([denali_run, "--state-dir", state] + files,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_lines(proc, ["[%s] waiting for stop" % n for n, _, _ in specs] if len(specs) > 1
                       else ["waiting for stop"])
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        expect(proc.returncode == want, "%s: status %d after SIGINT" % ([s[2][1] for s in specs], want),
               proc.returncode, out.decode(), err.decode())


def case_stop_twice(binaries, tmp, state):
    """A second SIGINT stops everything at once, without waiting for the grace period."""
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("stubborn", events, ["stop-ignore"])])
    proc = subprocess.Popen([denali_run, "--state-dir", state, "--grace", "600"] + files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_lines(proc, ["ignoring stop"])
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = err.decode()
    expect(proc.returncode == 130 and "denali-run: stubborn: stopped: Interrupt at rip=" in err,
           "stopped by the second SIGINT", proc.returncode, out.decode(), err)


def case_cell_killed(binaries, tmp, state):
    """A cell killed with SIGKILL is reported with its services; the others run to the end."""
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("victim", events, ["stop-ignore"]), ("survivor", events, ["timer", "100", "10"])])
    proc = subprocess.Popen([denali_run, "--state-dir", state, "--cell-size", "1"] + files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = wait_for_lines(proc, ["[victim] ignoring stop"])
    cells = children(proc.pid)
    expect(len(cells) == 2, "two cells", -1, seen, "")
    os.kill(cells[0], signal.SIGKILL)  # cell 0 holds the first service
    out, err = proc.communicate(timeout=120)
    out, err = seen + out.decode(), err.decode()
    expect(re.search(r"denali-run: cell 0 \(pid %d\) killed by Killed; its services are lost: victim\n" % cells[0], err),
           "the dead cell is reported with its services", proc.returncode, out, err)
    expect("[survivor] timer: 10 fired" in out and "denali-run: survivor: exited with status 0" in err,
           "the other cell's service ran to completion", proc.returncode, out, err)
    expect(proc.returncode == 1, "status 1", proc.returncode, out, err)
    expect(not os.listdir(state) if os.path.isdir(state) else True, "no state left behind",
           proc.returncode, out, err)


def case_timer(binaries, tmp, state):
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("timer", events, ["timer", "10", "50"])])
    status, out, err = run([denali_run, "--state-dir", state] + files)
    expect(status == 0 and "timer: 50 fired" in out, "50 firings of a 10 ms timer", status, out, err)
    late = [int(x) for x in re.search(r"p50 (\d+) us p99 (\d+) us", out).groups()]
    print("timer lateness p50 %d us, p99 %d us" % tuple(late))
    expect(late[1] < 50000, "p99 lateness under 50 ms", status, out, err)


def case_interrupts(binaries, tmp, state):
    """A compute-bound guest with virtual interrupts on gets its timer events, with no idle and
    no polling, and its SSE registers survive the interrupts."""
    denali_run, events = binaries[0], binaries[3]
    stats = os.path.join(tmp, "stats.json")
    files = services(tmp, [("irq", events, ["irq", "300"])])
    status, out, err = run([denali_run, "--state-dir", state, "--stats", stats] + files)
    expect(status == 0 and re.search(r"irq: (\d+) timer events in \1 handler calls, \1 deliveries, sse ok", out),
           "interrupts delivered", status, out, err)
    import json
    svc = json.load(open(stats))["services"][0]
    expect(svc["interrupts"] >= 5 and svc["interrupts"] <= svc["events_raised"] and svc["idles"] == 0,
           "stats: interrupts <= events raised, no idles: %r" % svc, status, out, err)
    expect(svc["hypercalls"]["timer_set"] == svc["interrupts"] + 1,
           "each hypercall ran exactly once: %r" % svc["hypercalls"], status, out, err)


def case_batching(binaries, tmp, state):
    """Events that arrive while virtual interrupts are off are delivered together: fewer
    deliveries than events."""
    import json
    denali_run, events = binaries[0], binaries[3]
    stats = os.path.join(tmp, "stats.json")
    files = services(tmp, [("batch", events, ["batch"])])
    status, out, err = run([denali_run, "--state-dir", state, "--stats", stats] + files)
    expect(status == 0 and "batch: pending 0x1 before enabling, 1 handler calls, 1 deliveries" in out,
           "one delivery for both timer events", status, out, err)
    svc = json.load(open(stats))["services"][0]
    expect(svc["events_raised"] == 2 and svc["interrupts"] == 1,
           "stats: 2 events raised, 1 interrupt: %r" % svc, status, out, err)


def case_time_drift(binaries, tmp, state):
    """Guest time from the TSC tracks the host's CLOCK_MONOTONIC: drift under 1 ms over 1 s."""
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("clock", events, ["time"])])
    proc = subprocess.Popen([denali_run, "--state-dir", state] + files, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    offsets = []
    for line in proc.stdout:
        host = time.monotonic_ns()
        m = re.match(rb"t=(\d+)", line)
        if m:
            offsets.append(host - int(m.group(1)))
    proc.wait(timeout=60)
    expect(len(offsets) == 11, "11 samples", proc.returncode, str(offsets), "")
    # Console delivery only ever adds delay: compare the best of the first and last samples.
    drift = min(offsets[-3:]) - min(offsets[:3])
    print("drift over 1 s: %.3f ms" % (drift / 1e6))
    expect(abs(drift) < 1000000, "drift %.3f ms" % (drift / 1e6), proc.returncode, "", "")


def case_stats(binaries, tmp, state):
    import json
    denali_run, hello = binaries[0], binaries[1]
    stats = os.path.join(tmp, "stats.json")
    files = services(tmp, [("hello", hello, [])])
    status, out, err = run([denali_run, "--state-dir", state, "--stats", stats] + files)
    svc = json.load(open(stats))["services"][0]
    expect(status == 0 and svc["name"] == "hello" and svc["outcome"] == "exited" and
           svc["hypercalls"]["console"] >= 1 and svc["hypercalls"]["exit"] == 1 and
           svc["exits"]["io"] >= 2 and svc["wall_ns"] > 0 and svc["resident_peak_bytes"] > 0,
           "stats: %r" % svc, status, out, err)


def case_preemption(binaries, tmp, state):
    """Two CPU-bound guests cannot starve a timer guest in the same cell."""
    denali_run, events = binaries[0], binaries[3]
    files = services(tmp, [("burn1", events, ["cpu", "1500"]), ("burn2", events, ["cpu", "1500"]),
                           ("ticker", events, ["timer", "10", "50"])])
    status, out, err = run([denali_run, "--state-dir", state, "--cell-size", "3"] + files, timeout=120)
    expect(status == 0 and "[burn1] cpu: many loops" in out and "[burn2] cpu: many loops" in out and
           "[ticker] timer: 50 fired" in out, "all three progressed", status, out, err)
    late = [int(x) for x in re.search(r"p50 (\d+) us p99 (\d+) us", out).groups()]
    print("timer lateness beside two CPU hogs: p50 %d us, p99 %d us" % tuple(late))
    expect(late[1] < 200000, "p99 lateness bounded (under 200 ms)", status, out, err)


def case_progress(binaries, tmp, state):
    """Starting more than 8 services draws a progress line on a terminal, and none elsewhere."""
    import pty
    denali_run, hello = binaries[0], binaries[1]
    files = services(tmp, [("p%02d" % i, hello, []) for i in range(12)])
    master, slave = pty.openpty()
    proc = subprocess.Popen([denali_run, "--quiet", "--state-dir", state] + files,
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    status = proc.wait(timeout=120)
    text = seen.decode("utf-8", "replace")
    expect(status == 0 and re.search(r"\rdenali-run: starting 12/12 services \([0-9.]+/s\)\s*\r?\n", text),
           "the line ends at 12/12 on a terminal", status, text, "")
    status, out, err = run([denali_run, "--quiet", "--state-dir", state] + files)
    expect(status == 0 and "starting" not in err and "\r" not in err, "no line off a terminal", status, out, err)


FLEET = {
    "fleet-2": lambda b, t, s: fleet_of(2, b, t, s, 64),
    "fleet-10": lambda b, t, s: fleet_of(10, b, t, s, 3),
    "fleet-200": lambda b, t, s: fleet_of(200, b, t, s, 64),
    "fleet-dir": case_fleet_dir,
    "fleet-duplicate": case_fleet_duplicate,
    "fleet-one-bad": case_fleet_one_bad,
    "fleet-mixed": case_fleet_mixed,
    "stop-grace": case_stop_grace,
    "stop-twice": case_stop_twice,
    "stop-clean": case_stop_clean,
    "cell-killed": case_cell_killed,
    "timer": case_timer,
    "interrupts": case_interrupts,
    "time-drift": case_time_drift,
    "batching": case_batching,
    "stats": case_stats,
    "preemption": case_preemption,
    "progress": case_progress,
}

# Refused before KVM is touched: they run without /dev/kvm too.
NO_KVM = {
    "folder-planted": case_folder_planted,
    "folder-open": case_folder_open,
}

SPECIAL = list(NO_KVM) + ["kvm-missing", "fleet-slash", "kvm-permission", "sigterm", "keep-state", "state-locked",
           "full-filesystem"] + list(FLEET)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(list(CASES) + SPECIAL))
        return
    if len(sys.argv) != 6:
        fail("usage: run_case.py DENALI_RUN HELLO MISBEHAVE EVENTS CASE")
    binaries = [os.path.abspath(p) for p in sys.argv[1:5]]
    name = sys.argv[5]
    with tempfile.TemporaryDirectory(prefix="denali-it-") as tmp:
        if name in CASES:
            check_case(name, CASES[name], binaries, tmp)
        else:
            special_case(name, binaries, tmp)


if __name__ == "__main__":
    main()
