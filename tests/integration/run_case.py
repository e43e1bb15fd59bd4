#!/usr/bin/env python3
"""Integration tests: run denali-run on real guests and check exact stdout, stderr and status.

Usage: run_case.py DENALI_RUN HELLO MISBEHAVE CASE
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

SKIP = 77
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
                          "[truncated-strin|22]\n"),
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
                      stderr=r"^denali-run: image-abi: \S+: built for Denali ABI v1, but this monitor speaks v2\n$"),
    "image-host": dict(kvm=False, image="/bin/true", status=2,
                       stderr=r"^denali-run: image-host: /bin/true: not a static executable .*\n$"),
    "usage-none": dict(kvm=False, argv=[], status=2,
                       stderr=r"^denali-run: expected at least one SERVICE\.json or --fleet DIR\nusage:"),
    "missing-file": dict(kvm=False, argv=["/nonexistent/a.json"], status=2,
                         stderr=r"^denali-run: /nonexistent/a\.json: unable to open /nonexistent/a\.json"),
    "usage-timeout": dict(kvm=False, opts=["--timeout", "soon"], status=2,
                          stderr=r'^denali-run: --timeout: "soon" is not a number of seconds'),
    "help": dict(kvm=False, argv=["--help"], status=0, stdout=None, stdout_regex=r"^usage: denali-run \[OPTIONS\] SERVICE\.json\.\.\.\n", stderr="^$"),
    "version": dict(kvm=False, argv=["--version"], status=0, stdout=None, stdout_regex=r"^denali-run \S+ \(Denali ABI v2\)\n$", stderr="^$"),
}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def make_image(kind, hello, tmp):
    """Hostile images derived from the real hello image."""
    data = open(hello, "rb").read()
    if kind == "@garbage":
        data = bytes((i * 37 + 11) & 0xFF for i in range(4096))
    elif kind == "@truncated":
        data = data[:100]
    elif kind == "@abi-mismatch":
        note = b"Denali\x00\x00" + (2).to_bytes(4, "little")
        assert data.count(note) == 1, "ABI note not found in hello"
        data = data.replace(note, b"Denali\x00\x00" + (1).to_bytes(4, "little"))
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
    denali_run, hello, misbehave = binaries
    if case.get("kvm", True) and not kvm_present():
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    state = os.path.join(tmp, "state")
    image = case.get("image", "misbehave")
    image = {"hello": hello, "misbehave": misbehave}.get(image, image)
    if image.startswith("@"):
        image = make_image(image, hello, tmp)
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


def special_case(name, binaries, tmp):
    """Cases that need more than one run or a signal."""
    denali_run, hello, misbehave = binaries
    state = os.path.join(tmp, "state")
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
        if status != 125 or "denali-run: /dev/kvm does not exist: this host has no KVM" not in err:
            fail("status %d stderr %r" % (status, err))
        print("PASS: kvm-missing")
        return
    if not kvm_present():
        print("SKIP: /dev/kvm does not exist")
        sys.exit(SKIP)
    if name == "sigterm":
        svc = write_service(tmp, "sigterm", misbehave, ["spin"])

        def stop_when_spinning(proc):
            time.sleep(0.5)
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
        os.makedirs(state, mode=0o777)
        os.chmod(state, 0o777)
        image = os.path.join(tmp, "hello")
        shutil.copy(hello, image)  # the build tree may not be readable by nobody
        os.chmod(image, 0o644)
        svc = write_service(tmp, "noperm", image, [])
        os.chmod(svc, 0o644)
        status, out, err = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                denali_run, "--state-dir", state, svc])
        if status != 125 or "denali-run: /dev/kvm: permission denied (add your user to the group" not in err:
            fail("status %d stderr %r" % (status, err))
    elif name == "keep-state":
        svc = write_service(tmp, "kept", hello, [])
        status, out, err = run([denali_run, "--state-dir", state, "--keep-state", svc])
        mem = os.path.join(state, "kept", "mem")
        if status != 0 or not os.path.isfile(mem) or os.path.getsize(mem) != 8 << 20:
            fail("status %d, memory file %s missing or wrong size; stderr %r" % (status, mem, err))
    elif name == "state-locked":
        # A second run of the same service on the same state directory is refused.
        os.makedirs(os.path.join(state, "busy"))
        with open(os.path.join(state, "busy", "mem"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            svc = write_service(tmp, "busy", hello, [])
            status, out, err = run([denali_run, "--state-dir", state, svc])
        if status != 125 or "is in use: is service \"busy\" already running" not in err:
            fail("status %d stderr %r" % (status, err))
        if not os.path.exists(os.path.join(state, "busy", "mem")):
            fail("the refused run removed the other run's memory file")
    else:
        fail("unknown case " + name)
    print("PASS: %s" % name)


SPECIAL = ["kvm-missing", "kvm-permission", "sigterm", "keep-state", "state-locked"]


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(list(CASES) + SPECIAL))
        return
    if len(sys.argv) != 5:
        fail("usage: run_case.py DENALI_RUN HELLO MISBEHAVE CASE")
    binaries = [os.path.abspath(p) for p in sys.argv[1:4]]
    name = sys.argv[4]
    with tempfile.TemporaryDirectory(prefix="denali-it-") as tmp:
        if name in CASES:
            check_case(name, CASES[name], binaries, tmp)
        else:
            special_case(name, binaries, tmp)


if __name__ == "__main__":
    main()
