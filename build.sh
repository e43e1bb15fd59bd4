#!/usr/bin/env bash
# Installs missing build dependencies and builds the monitor, the guest library and services.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build
