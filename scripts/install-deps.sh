#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages denali builds with, if any are missing.
set -euo pipefail
packages=(gcc libc6-dev meson ninja-build pkg-config libjansson-dev libslirp-dev libglib2.0-dev liburing-dev check python3 util-linux curl jq)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
