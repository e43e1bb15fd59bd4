#!/usr/bin/env bash
# it-control: starts a fleet of 50 services and drives it only through denali-ctl, checking every
# answer with jq, then feeds the control socket hostile input and checks that the fleet runs on.
# Usage: control.sh DENALI_RUN DENALI_CTL EVENTS_GUEST HTTPD_GUEST
set -uo pipefail
run=$(realpath "$1") ctl=$(realpath "$2") events=$(realpath "$3") httpd=$(realpath "$4")
[ -e /dev/kvm ] || { echo "SKIP: no /dev/kvm"; exit 77; }
command -v jq >/dev/null || { echo "FAIL: jq is not installed"; exit 1; }

# Swapping refuses tmpfs: the state goes to a disk-backed folder.
work=$(mktemp -d /var/tmp/denali-it-control-XXXXXX)
# Sockets go to TMPDIR: some disk-backed filesystems (9p) cannot hold one.
sockets=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$work" "$sockets"
}
trap cleanup EXIT
export DENALI_CONTROL=$sockets/control

fail() {
	echo "FAIL: $*"
	[ -f "$work/run.err" ] && { echo "--- denali-run stderr:"; tail -20 "$work/run.err"; }
	exit 1
}
# check WHAT JSON JQ_FILTER: the filter must print true.
check() {
	[ "$(jq -e "$3" <<<"$2" 2>/dev/null)" = true ] || fail "$1: $2 does not satisfy $3"
}
ctl() { "$ctl" "$@"; }
# until SECONDS COMMAND...: retries the command until it succeeds.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}
state_of() { ctl list | jq -r --arg n "$1" '.services[] | select(.name == $n) | .state'; }
state_is() { [ "$(state_of "$1")" = "$2" ]; }

mkdir -p "$work/fleet" "$work/more" "$work/state"
for i in $(seq -w 1 50); do
	printf '{"name": "s%s", "image": "%s", "memory": "4M", "args": ["stop-exit"]}\n' \
		"$i" "$events" >"$work/more/s$i.json"
done
printf '{"name": "stubborn", "image": "%s", "memory": "4M", "args": ["stop-ignore"]}\n' \
	"$events" >"$work/fleet/stubborn.json"

# The run starts with one service; the other 50 come through the control socket.
"$run" --quiet --state-dir "$work/state" --control "$DENALI_CONTROL" \
	--metrics-listen 127.0.0.1:19177 --fleet "$work/fleet" >"$work/run.out" 2>"$work/run.err" &
pid=$!
socket_up() { kill -0 "$pid" 2>/dev/null || fail "denali-run ended early"; test -S "$DENALI_CONTROL"; }
until_ok 60 socket_up || fail "no control socket after 60 s"
[ "$(stat -c %a "$DENALI_CONTROL")" = 600 ] || fail "the socket is not mode 0600"

# A second run on the same socket is refused while this one runs.
"$run" --state-dir "$work/state2" --control "$DENALI_CONTROL" "$work/more/s01.json" \
	>/dev/null 2>"$work/second.err" && fail "a second denali-run took the same socket"
grep -q "$DENALI_CONTROL" "$work/second.err" || fail "the refusal does not name the socket: $(cat "$work/second.err")"

# start: ten clients at a time; each is answered once its service runs, in a cell of its own
# (the first run's is 0).
t0=$SECONDS
starts=()
for i in $(seq -w 1 50); do
	{ ctl start "$work/more/s$i.json" >"$work/start-s$i.out" 2>&1; echo $? >"$work/start-s$i.rc"; } &
	starts+=($!)
	# (A bare wait would wait for denali-run too.)
	[ ${#starts[@]} = 10 ] && { wait "${starts[@]}"; starts=(); }
done
for i in $(seq -w 1 50); do
	out=$(cat "$work/start-s$i.out")
	[ "$(cat "$work/start-s$i.rc")" = 0 ] || fail "start s$i: $out"
	check start "$out" '.ok and .name == "s'$i'" and .cell >= 1 and .cell <= 50'
done
cells=$(cat "$work"/start-s*.out | jq -s '[.[].cell] | unique | length')
[ "$cells" = 50 ] || fail "the 50 started services share cells: $cells distinct"
echo "started 50 services in $((SECONDS - t0)) s"
# A file with a bad key, a duplicate name, not JSON: refused, naming the problem.
printf '{"name": "bad", "image": "%s", "memory": "4Q"}\n' "$events" >"$work/bad.json"
out=$(ctl start "$work/bad.json") && fail "start of a bad file succeeded: $out"
check "start bad" "$out" '.ok == false and .code == "failed" and (.error | test("bad.json: key \"memory\""))'
out=$(ctl start "$work/more/s07.json") && fail "start of a duplicate succeeded: $out"
check "start duplicate" "$out" '.ok == false and (.error | test("\"s07\" is already used"))'
echo 'not json' >"$work/garbage.json"
out=$(ctl start "$work/garbage.json") && fail "start of a non-JSON file succeeded: $out"
check "start garbage" "$out" '.ok == false and (.error | test("garbage.json"))'

# list: 51 services, all running.
running() { [ "$(ctl list | jq '[.services[] | select(.state == "running")] | length')" = 51 ]; }
until_ok 120 running || fail "not all 51 services running: $(ctl list)"
list=$(ctl list)
check list "$list" '.ok and (.services | length) == 51'
check list "$list" '[.services[] | .name] | sort == ([range(1; 51) | "s" + (if . < 10 then "0" else "" end) + tostring] + ["stubborn"] | sort)'
check list "$list" '.services[] | select(.name == "s17") | .cell >= 1 and .uptime_s > 0 and .resident_pages > 0'
check list "$list" '[.services[] | .cell] | max == 50'
# Captured first: with pipefail, a reader that stops early (grep -q) would fail the writer.
table=$(ctl --table list) || fail "list --table failed"
grep -q '^NAME *STATE' <<<"$table" || fail "list --table has no header"

# stop 10: each sees DN_EV_STOP and exits 7.
for i in 01 02 03 04 05 06 07 08 09 10; do
	out=$(ctl stop "s$i" --grace 10) || fail "stop s$i: $out"
	check stop "$out" '.ok and .name == "s'$i'"'
done
for i in 01 02 03 04 05 06 07 08 09 10; do
	out=$(ctl wait "s$i") || fail "wait s$i: $out"
	check wait "$out" '.ok and .outcome == "exited" and .status == 7'
done
check list "$(ctl list)" '[.services[] | select(.state == "ended")] | length == 10'
out=$(ctl stop s01) && fail "stopping an ended service succeeded: $out"
check "stop ended" "$out" '.ok == false and .code == "failed" and (.error | test("s01"))'

# A service that ignores the stop is stopped when its grace is over, not before.
t0=$SECONDS
ctl stop stubborn --grace 1 >/dev/null || fail "stop stubborn"
out=$(ctl wait stubborn)
check "stop after grace" "$out" '.ok and .outcome == "stopped"'
grep -q "stubborn: stopped: it did not stop within its grace period" "$work/run.err" ||
	fail "no reason for the stubborn service's stop"

# swap 10 out and back in.
for i in 21 22 23 24 25 26 27 28 29 30; do
	check swap-out "$(ctl swap-out "s$i")" '.ok'
done
for i in 21 22 23 24 25 26 27 28 29 30; do
	until_ok 60 state_is "s$i" asleep || fail "s$i did not go to sleep: $(ctl list)"
done
list=$(ctl list)
check "list asleep" "$list" '.services[] | select(.name == "s21") | .resident_pages == 0 and .swapped_pages > 0'
for i in 21 22 23 24 25 26 27 28 29 30; do
	check swap-in "$(ctl swap-in "s$i")" '.ok'
done
for i in 21 22 23 24 25 26 27 28 29 30; do
	until_ok 60 state_is "s$i" running || fail "s$i did not wake: $(ctl list)"
done

# stats: live counters of one service and of all.
out=$(ctl stats s21)
check stats "$out" '.ok and (.services | length) == 1 and .services[0].name == "s21"'
check stats "$out" '.services[0] | .state == "running" and .outcome == "running" and .swap.outs >= 1 and .swap.ins >= 1 and .hypercalls.idle >= 1 and .wall_ns > 0'
out=$(ctl stats all)
check "stats all" "$out" '.ok and (.services | length) == 51'
check "stats all" "$out" '[.services[] | select(.state == "ended")] | length == 11'
check "stats all" "$out" '.services[] | select(.name == "s01") | .outcome == "exited" and .status == 7'
table=$(ctl --table stats all) || fail "stats --table failed"
grep -q '^s21 ' <<<"$table" || fail "stats --table has no row for s21: $table"

# metrics: the same counters in the Prometheus text format, on the socket and over HTTP.
metrics=$(ctl metrics) || fail "metrics: $metrics"
grep -q '^# TYPE denali_idles_total counter$' <<<"$metrics" || fail "metrics: no TYPE line for idles"
grep -Eq '^denali_idles_total\{service="s21"\} [1-9]' <<<"$metrics" || fail "metrics: no idles for s21"
grep -Eq '^denali_swap_ins_total\{service="s21"\} [1-9]' <<<"$metrics" || fail "metrics: no swap-ins for s21"
grep -q '^denali_services 51$' <<<"$metrics" || fail "metrics: denali_services is not 51"
http=$(curl -s -m 10 -D "$work/headers" http://127.0.0.1:19177/metrics) || fail "--metrics-listen: no answer"
grep -qi '^content-type: text/plain; version=0.0.4' "$work/headers" || fail "--metrics-listen: bad content type"
grep -Eq '^denali_idles_total\{service="s21"\} [1-9]' <<<"$http" || fail "--metrics-listen: no idles for s21"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:19177/other)" = 404 ] || fail "--metrics-listen: no 404"

# kill: at once.
check kill "$(ctl kill s31)" '.ok and .name == "s31"'
# Its status is the one denali-run gives a stopped service (126), not 0 (a clean exit).
check "wait killed" "$(ctl wait s31)" '.ok and .outcome == "stopped" and .status == 126'

# budget: set, cleared, refused.
check budget "$(ctl budget 64M)" '.ok and .budget_bytes == 67108864'
check budget "$(ctl budget none)" '.ok and .budget_bytes == 0'
ctl budget lots >/dev/null 2>&1
[ $? = 2 ] || fail "a bad budget is not a usage error (2)"
out=$(ctl kill nosuch)
[ $? = 1 ] || fail "an unknown service is not a failure (1)"
check unknown "$out" '.ok == false and .code == "failed" and (.error | test("nosuch"))'
# For people, the command is named once (the server's sentence names it already).
err=$(ctl --table stats nosuch 2>&1 >/dev/null)
[ "$err" = 'denali-ctl: stats: no service named "nosuch"' ] || fail "--table stats nosuch said: $err"

# start with a NIC: the first creates the network (no service had one), the second joins it;
# a third whose host forward is taken is refused, and its name is free for the fixed file.
web() { printf '{"name": "%s", "image": "%s", "memory": "16M", "net": {"forward": ["tcp:%s:80"]}}\n' \
	"$1" "$httpd" "$2" >"$work/$1.json"; }
web web1 19178
web web2 19179
for w in web1 web2; do
	out=$(ctl start "$work/$w.json") || fail "start $w: $out"
done
for w in web1:19178 web2:19179; do
	page=$(curl -s -m 10 "http://127.0.0.1:${w#*:}/") || fail "${w%:*}: no answer over its forward"
	grep -q "Hello from ${w%:*} on Denali" <<<"$page" || fail "${w%:*}: wrong page: $page"
done
web web3 19178
out=$(ctl start "$work/web3.json") && fail "start with a taken forward succeeded: $out"
check "start taken forward" "$out" '.ok == false and (.error | test("net.forward"))'
web web3 19180
out=$(ctl start "$work/web3.json") || fail "start web3 after the fix: $out"
page=$(curl -s -m 10 http://127.0.0.1:19180/) || fail "web3: no answer over its forward"
grep -q "Hello from web3 on Denali" <<<"$page" || fail "web3: wrong page: $page"

# Hostile input on the socket: the fleet keeps running.
python3 - "$DENALI_CONTROL" <<'EOF' || fail "hostile input"
import json, socket, sys, time
path = sys.argv[1]
def conn():
    # A unix socket refuses (EAGAIN) rather than waits while its backlog is full: retry.
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.05)
    sys.exit("cannot connect to the control socket")
def lines(s, n):
    buf = b""
    while buf.count(b"\n") < n:
        got = s.recv(65536)
        if not got:
            break
        buf += got
    return [json.loads(l) for l in buf.split(b"\n")[:n]]
def expect(what, answer, code):
    if answer.get("ok") is not False or answer.get("code") != code or not answer.get("error"):
        sys.exit("%s: %r" % (what, answer))
s = conn()
s.sendall(b'{"cmd": "list"\n{"cmd": "explode"}\n{"cmd": "kill", "name": 7}\n'
          b'{"cmd": "list", "extra": 1}\n[1, 2]\n\xff\xfe\n{"cmd": "stop"}\n')
a = lines(s, 7)
for what, ans in zip(["bad json", "unknown command", "wrong type", "unknown key", "not an object",
                      "not utf-8", "missing key"], a):
    expect(what, ans, "usage")
# start is checked by the server too: a file that is not there (sent raw, past denali-ctl).
s.sendall(b'{"cmd": "start", "file": "/nonexistent/x.json"}\n')
a = lines(s, 1)[0]
expect("start of a missing file", a, "failed")
if "/nonexistent/x.json" not in a["error"]:
    sys.exit("the missing file is not named: %r" % a)
s.sendall(b'{"cmd": "list"}\n')  # the connection is still good
if not lines(s, 1)[0]["ok"]:
    sys.exit("the connection broke after bad requests")
s.close()
# A huge line gets an error and is closed.
s = conn()
try:
    s.sendall(b"x" * (1 << 20))
except OSError:
    pass  # closed while we were still sending: fine
a = lines(s, 1)
if a:
    expect("huge line", a[0], "usage")
s.close()
# Many clients at once: the surplus is refused, and after they leave all is well.
idle = [conn() for _ in range(64)]
time.sleep(0.5)
extra = conn()
a = lines(extra, 1)
if not a or a[0].get("ok") is not False:
    sys.exit("client 65 was not refused: %r" % a)
for c in idle + [extra]:
    c.close()
time.sleep(0.5)
s = conn()
s.sendall(b'{"cmd": "list"}\n')
if not lines(s, 1)[0]["ok"]:
    sys.exit("list failed after the surplus clients left")
EOF
# 39 of the 50 (10 stopped, one killed) and the 3 web services.
check "after hostile input" "$(ctl list)" '[.services[] | select(.state == "running")] | length == 42'

# shutdown: the rest see DN_EV_STOP and exit 7; denali-run ends.
check shutdown "$(ctl shutdown)" '.ok'
wait "$pid"
status=$?
pid=
# As after a SIGTERM: 128 + 15 (docs/cli.md, exit status).
[ $status = 143 ] || fail "denali-run exited $status after shutdown, not 143"
[ ! -e "$DENALI_CONTROL" ] || fail "the socket outlived denali-run"
grep -q "host error\|lost" "$work/run.err" && fail "errors in the run"

# --detach: returns once the fleet is up, printing the socket; the run goes on without it.
out=$(timeout 60 "$run" --detach --state-dir "$work/state" --control "$sockets/detached" \
	"$work/more/s01.json" "$work/more/s02.json") || fail "--detach failed: $out"
[ "$out" = "$sockets/detached" ] || fail "--detach printed \"$out\", not the socket's path"
until_ok 60 eval '[ "$(DENALI_CONTROL=$sockets/detached ctl list | jq "[.services[] | select(.state == \"running\")] | length")" = 2 ]' ||
	fail "the detached fleet is not running"
check "detached shutdown" "$(DENALI_CONTROL=$sockets/detached ctl shutdown)" '.ok'
until_ok 60 test ! -e "$sockets/detached" || fail "the detached run did not end"
grep -q "got stop" "$work/state/denali-run.log" || fail "the detached run's consoles are not in its log"
# A detached run that cannot start says why, in the foreground, with its status.
out=$("$run" --detach --state-dir "$work/state" --control "$sockets/nofolder/x" \
	"$work/more/s01.json" 2>&1) && fail "--detach with a bad socket path succeeded"
grep -q "nofolder" <<<"$out" || fail "the failed --detach does not say why: $out"

# A socket left by a killed run is replaced.
"$run" --quiet --state-dir "$work/state" --control "$DENALI_CONTROL" "$work/more/s01.json" \
	>/dev/null 2>"$work/run.err" &
pid=$!
until_ok 60 state_is s01 running || fail "the first run did not start"
kill -9 "$pid"
wait "$pid" 2>/dev/null
sleep 1 # its cells die with it, and their file locks
"$run" --quiet --state-dir "$work/state" --control "$DENALI_CONTROL" "$work/more/s01.json" \
	>/dev/null 2>"$work/run.err" &
pid=$!
until_ok 60 state_is s01 running || fail "a stale socket was not replaced"
ctl shutdown >/dev/null
wait "$pid"
pid=
# Services named as the monitor's own files in the state folder (the log, the default socket
# and its lock) run beside them: their folders are in services/. First detached with the
# default socket, in the default state folder ($XDG_RUNTIME_DIR/denali, as the socket).
xdg=$sockets/xdg
mkdir -m 700 "$xdg"
for n in control control.lock denali-run.log; do
	printf '{"name": "%s", "image": "%s", "memory": "4M", "args": ["stop-exit"]}\n' \
		"$n" "$events" >"$work/more/$n.json"
	printf '{"name": "%s", "image": "%s", "memory": "4M", "args": ["stop-exit"], "swap": {"idle_after": 1000}}\n' \
		"$n" "$events" >"$work/more/swap-$n.json"
done
dctl() { env -u DENALI_CONTROL XDG_RUNTIME_DIR="$xdg" "$ctl" "$@"; }
running() { [ "$("$@" list | jq '[.services[] | select(.state == "running")] | length')" = 3 ]; }
out=$(env -u DENALI_CONTROL XDG_RUNTIME_DIR="$xdg" timeout 60 "$run" --detach \
	"$work/more/control.json" "$work/more/control.lock.json" "$work/more/denali-run.log.json") ||
	fail "--detach with services named control, control.lock, denali-run.log: $out"
[ "$out" = "$xdg/denali/control" ] || fail "--detach printed \"$out\", not the default socket"
until_ok 60 running dctl || fail "the services named as the monitor's files are not running"
[ -S "$xdg/denali/control" ] && [ -f "$xdg/denali/denali-run.log" ] &&
	[ -f "$xdg/denali/services/control/mem" ] || fail "the default state folder: $(ls -lR "$xdg")"
check "default-socket shutdown" "$(dctl shutdown)" '.ok'
until_ok 60 test ! -e "$xdg/denali/control" || fail "the detached run on the default socket did not end"
[ "$(grep -c "got stop" "$xdg/denali/denali-run.log")" = 3 ] ||
	fail "not every service stopped: $(cat "$xdg/denali/denali-run.log")"
[ ! -e "$xdg/denali/services" ] || fail "the services folder outlived the run"
# The same names with swap, in a state folder on disk: each goes to sleep and wakes.
out=$(timeout 60 "$run" --detach --state-dir "$work/swapstate" --control "$sockets/swap" \
	"$work/more/swap-control.json" "$work/more/swap-control.lock.json" \
	"$work/more/swap-denali-run.log.json") || fail "--detach with swapping services: $out"
sctl() { DENALI_CONTROL=$sockets/swap ctl "$@"; }
until_ok 60 running sctl || fail "the swapping services are not running"
for n in control control.lock denali-run.log; do
	check "swap-out $n" "$(sctl swap-out "$n")" '.ok'
	until_ok 60 eval '[ "$(sctl list | jq -r --arg n "$n" ".services[] | select(.name == \$n) | .state")" = asleep ]' ||
		fail "$n did not go to sleep: $(sctl list)"
	check "swap-in $n" "$(sctl swap-in "$n")" '.ok'
done
until_ok 60 running sctl || fail "the swapped services did not wake"
check "swap shutdown" "$(sctl shutdown)" '.ok'
until_ok 60 test ! -e "$sockets/swap" || fail "the detached swapping run did not end"
[ "$(grep -c "got stop" "$work/swapstate/denali-run.log")" = 3 ] ||
	fail "not every swapping service stopped: $(cat "$work/swapstate/denali-run.log")"

# denali-ctl talks to no socket in a folder someone else owns, or others may write.
mkdir -m 700 "$xdg/denali"
chown 65534:65534 "$xdg/denali"
out=$(dctl list 2>&1) && fail "denali-ctl used a socket folder owned by nobody"
[ "$out" = "denali-ctl: control socket folder $xdg/denali is owned by uid 65534 (nobody), not by you: refusing to use it" ] ||
	fail "the refusal of a folder owned by nobody: $out"
out=$(DENALI_CONTROL=/tmp/denali-control ctl list 2>&1) && fail "denali-ctl used a socket in /tmp"
grep -q "^denali-ctl: control socket folder /tmp is open to others (mode 1777): refusing to use it$" <<<"$out" ||
	fail "the refusal of a socket in /tmp: $out"
echo "ok: 50 services driven through denali-ctl; hostile input refused"
