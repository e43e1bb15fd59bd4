#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages denali builds with, if any are missing, and the system
# user denali that a fleet started as root runs as (scripts/add-user.sh). clang builds the
# fuzz targets (tests/fuzz); Debian 12 packs its libFuzzer runtime apart (libclang-rt-dev),
# Ubuntu 22.04 inside clang's own dependencies.
set -euo pipefail
fuzz=(clang)
apt-cache show libclang-rt-dev >/dev/null 2>&1 && fuzz+=(libclang-rt-dev)
"$(dirname "$0")/add-user.sh" denali
exec "$(dirname "$0")/apt-install.sh" gcc libc6-dev meson ninja-build pkg-config libjansson-dev libslirp-dev \
	libglib2.0-dev liburing-dev libseccomp-dev check python3 util-linux curl jq "${fuzz[@]}"
