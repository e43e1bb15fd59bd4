#!/usr/bin/env bash
# Installs the named Debian/Ubuntu packages that are missing. Waits while another package
# manager (a second test VM's setup, unattended-upgrades) holds apt's or dpkg's lock, rather
# than failing on it. Usage: scripts/apt-install.sh PACKAGE... | --update (the lists only)
set -euo pipefail
missing=()
update_only=0
[ "${1:-}" = --update ] && { update_only=1; shift; }
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ $update_only = 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# apt-get with its lock wait (dpkg's frontend lock), retried for the locks that option does not
# cover (the package lists' during `update`): 10 minutes in all.
apt_get() {
	local out tries=0
	while :; do
		if out=$($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" 2>&1); then
			return 0
		fi
		if grep -q -E "Could not get lock|Unable to lock|Unable to acquire" <<<"$out" && [ $tries -lt 120 ]; then
			[ $tries -eq 0 ] && echo "apt-install: another package manager holds its lock: waiting" >&2
			tries=$((tries + 1))
			sleep 5
			continue
		fi
		echo "$out" >&2
		return 1
	done
}

apt_get update -qq
[ $update_only = 1 ] && exit 0
echo "installing: ${missing[*]}"
apt_get install -y -qq --no-install-recommends "${missing[@]}"
