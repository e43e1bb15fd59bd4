#!/usr/bin/env bash
# The whole test suite: unit and integration tests in the normal build, then again with the
# monitor built under AddressSanitizer and UndefinedBehaviorSanitizer, and the fuzz targets
# (clang). Integration tests boot real guests on /dev/kvm. On a host without /dev/kvm the integration suites run inside throwaway QEMU VMs
# that have one (tests/vm/kvm-vm.sh: slow software emulation, but real KVM); DENALI_TEST_VM=0
# runs them on the host instead, where the guest-booting tests skip.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
scripts/check-format.sh
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined >/dev/null
ninja -C build-asan
# The fuzz targets (tests/fuzz): clang with libFuzzer, ASan and UBSan; only they are built there.
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz >/dev/null
ninja -C build-fuzz fuzz

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
rm -f build*/meson-logs/{testlog,unitlog,itlog,fuzzlog}.json
status=0
# The unit tests need no KVM: they run here, in both builds.
for b in build build-asan; do
	meson test -C "$b" --no-rebuild --print-errorlogs --suite unit --logbase unitlog || status=1
done
# Each fuzz target a fixed number of runs over its seed corpus (~2 min on two cores), before
# the integration suites take both cores.
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz --logbase fuzzlog || status=1
# The integration tests boot real guests.
integration=(meson test --no-rebuild --print-errorlogs --suite integration --logbase itlog -C)
# A /dev/kvm that cannot run a guest is no KVM for the suites (seen on a nested host whose KVM
# faults the hypercall's ring-3 `out`): one service from examples/ decides.
kvm_runs_guests() {
	[ -e /dev/kvm ] || return 1
	if timeout 120 build/denali-run --timeout 60 examples/hello.json >/dev/null 2>&1; then
		return 0
	fi
	echo "test.sh: /dev/kvm is here but cannot run examples/hello.json: using QEMU VMs as on a host without it"
	return 1
}
if [ "${DENALI_TEST_VM:-1}" = 0 ] || kvm_runs_guests; then
	"${integration[@]}" build || status=1
	"${integration[@]}" build-asan || status=1
else
	# One VM per build, both at once: each VM emulates one CPU, and the machine has two.
	echo "test.sh: the integration suites run in two QEMU VMs with nested KVM, at once"
	tests/vm/kvm-vm.sh --setup # once, before both start (QEMU, the kernel, the initramfs)
	in_vm() {
		tests/vm/kvm-vm.sh env UBSAN_OPTIONS="$UBSAN_OPTIONS" ASAN_OPTIONS="$ASAN_OPTIONS" "${integration[@]}" "$1"
	}
	asan_log=$(mktemp)
	in_vm build-asan >"$asan_log" 2>&1 &
	asan=$!
	trap 'kill $asan 2>/dev/null || true; rm -f "$asan_log"' EXIT
	in_vm build || status=1
	wait $asan || status=1
	echo "test.sh: the sanitizer build's integration suite:"
	cat "$asan_log"
fi
/usr/bin/python3 scripts/test-summary.py build/meson-logs/unitlog.json build-asan/meson-logs/unitlog.json \
	build-fuzz/meson-logs/fuzzlog.json \
	build/meson-logs/itlog.json build-asan/meson-logs/itlog.json || status=1
exit $status
