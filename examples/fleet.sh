#!/usr/bin/env bash
# A fleet driven from the shell: starts N httpd services in the background, adds one more to
# the running fleet, inspects them, swaps one out and lets a request bring it back, stops two,
# and shuts the rest down.
# Usage: examples/fleet.sh [N]    (after ./build.sh; needs curl and jq)
set -euo pipefail
n=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
fleet=$(mktemp -d)
trap 'rm -rf "$fleet"' EXIT

# One service file per httpd, each reachable at 127.0.0.1:1808<i> through the user uplink.
for i in $(seq 1 "$n"); do
	cat >"$fleet/web$i.json" <<EOF
{"name": "web$i", "image": "$build/guest/httpd", "memory": "16M",
 "net": {"forward": ["tcp:$((18080 + i)):80"]}}
EOF
done

# Swapping needs a disk-backed state folder. The socket goes in a folder of ours that no one
# else may write (denali-run and denali-ctl refuse others, such as /tmp itself). The state
# folder is made by denali-run inside ours, so that as root it can be given to the fleet's user
# (denali), who may pass through ours (0711) but not list it.
state=$(mktemp -d /var/tmp/denali-fleet-XXXXXX)
chmod 0711 "$state"
trap 'rm -rf "$fleet" "$state"' EXIT
export DENALI_CONTROL=$fleet/control
"$build/denali-run" --detach --quiet --state-dir "$state/state" \
	--control "$DENALI_CONTROL" --fleet "$fleet"
ctl() { "$build/denali-ctl" "$@"; }
running() { ctl list | jq '[.services[] | select(.state == "running")] | length'; }
until [ "$(running)" = "$n" ]; do sleep 0.2; done

# One more, added to the running fleet: answered once it runs.
extra=$((n + 1))
cat >"$fleet/added.json" <<EOF
{"name": "web$extra", "image": "$build/guest/httpd", "memory": "16M",
 "net": {"forward": ["tcp:$((18080 + extra)):80"]}}
EOF
ctl start "$fleet/added.json" | jq -c .
curl -s "http://127.0.0.1:$((18080 + extra))/" | grep -o "Hello from web$extra on Denali"

ctl --table list
curl -s http://127.0.0.1:18081/

ctl swap-out web1 >/dev/null
until [ "$(ctl list | jq -r '.services[] | select(.name == "web1") | .state')" = asleep ]; do
	sleep 0.2
done
echo "web1 is asleep; a request wakes it:"
curl -s http://127.0.0.1:18081/
ctl stats web1 | jq -c '.services[0] | {name, state, swap: {outs: .swap.outs, ins: .swap.ins}}'

ctl stop web2 --grace 2 >/dev/null
ctl stop web3 --grace 2 >/dev/null
ctl wait web2 | jq -c .
metrics=$(ctl metrics)
grep -m 3 '^denali_idles_total' <<<"$metrics"
ctl shutdown >/dev/null
while [ -e "$DENALI_CONTROL" ]; do sleep 0.2; done
echo "fleet stopped"
