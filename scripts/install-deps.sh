#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages denali builds with, if any are missing, and the system
# user denali that a fleet started as root runs as (scripts/add-user.sh). clang builds the
# fuzz targets (tests/fuzz); Debian 12 packs its libFuzzer runtime apart (libclang-rt-dev),
# Ubuntu 22.04 inside clang's own dependencies. clang-format 14 is the release that judges the
# formatting (scripts/check-format.sh), where the distribution still has it.
set -euo pipefail
# What the distribution has is asked of apt's lists: a fresh machine (a container) has none yet.
apt-cache show gcc >/dev/null 2>&1 || "$(dirname "$0")/apt-install.sh" --update
tools=(clang)
apt-cache show libclang-rt-dev >/dev/null 2>&1 && tools+=(libclang-rt-dev)
apt-cache show clang-format-14 >/dev/null 2>&1 && tools+=(clang-format-14)
"$(dirname "$0")/add-user.sh" denali
exec "$(dirname "$0")/apt-install.sh" gcc libc6-dev meson ninja-build pkg-config libjansson-dev libslirp-dev \
	libglib2.0-dev liburing-dev libseccomp-dev check python3 util-linux curl jq "${tools[@]}"
