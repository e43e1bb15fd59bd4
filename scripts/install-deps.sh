#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages denali builds with, if any are missing.
set -euo pipefail
exec "$(dirname "$0")/apt-install.sh" gcc libc6-dev meson ninja-build pkg-config libjansson-dev libslirp-dev \
	libglib2.0-dev liburing-dev libseccomp-dev check python3 util-linux curl jq
