#!/usr/bin/env bash
# The whole test suite: unit and integration tests in the normal build, then again with the
# monitor built under AddressSanitizer and UndefinedBehaviorSanitizer. Integration tests boot
# real guests on /dev/kvm and skip only where it does not exist.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
meson test -C build --print-errorlogs
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined >/dev/null
ninja -C build-asan
meson test -C build-asan --print-errorlogs
