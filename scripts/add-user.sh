#!/usr/bin/env bash
# Creates the system user denali-run becomes when started as root without --user
# (docs/security.md#rights), if it does not exist: no home, no login shell, a group of its own.
# Through sudo unless root. Only a root denali-run needs it, so a failure is said and not fatal:
# the build and the test suite go on (a root run without it is refused, saying how to make it).
# Usage: scripts/add-user.sh [NAME]   (default denali)
set -euo pipefail
user=${1:-denali}
getent passwd "$user" >/dev/null && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
shell=/usr/sbin/nologin
[ -x "$shell" ] || shell=/bin/false
echo "adding the system user $user (a fleet started as root runs as $user)"
# A second run at once (two test VMs' setups) may have made it in between: that is success too.
if ! $sudo useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$shell" "$user" &&
	! getent passwd "$user" >/dev/null; then
	echo "add-user: could not add the system user $user: denali-run started as root will refuse to run until it exists" >&2
fi
exit 0
