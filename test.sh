#!/usr/bin/env bash
# The whole test suite: unit and integration tests in the normal build, then again with the
# monitor built under AddressSanitizer and UndefinedBehaviorSanitizer. Integration tests boot
# real guests on /dev/kvm. On a host without /dev/kvm the integration suites run inside a throwaway QEMU VM
# that has one (tests/vm/kvm-vm.sh: slow software emulation, but real KVM); DENALI_TEST_VM=0
# runs them on the host instead, where the guest-booting tests skip.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh
scripts/check-format.sh
[ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address,undefined >/dev/null
ninja -C build-asan

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1
rm -f build*/meson-logs/{testlog,unitlog,itlog}.json
status=0
# The unit tests need no KVM: they run here, in both builds.
for b in build build-asan; do
	meson test -C "$b" --no-rebuild --print-errorlogs --suite unit --logbase unitlog || status=1
done
# The integration tests boot real guests.
suites=(sh -c 's=0
	meson test -C build --no-rebuild --print-errorlogs --suite integration --logbase itlog || s=1
	meson test -C build-asan --no-rebuild --print-errorlogs --suite integration --logbase itlog || s=1
	exit $s')
if [ -e /dev/kvm ] || [ "${DENALI_TEST_VM:-1}" = 0 ]; then
	"${suites[@]}" || status=1
else
	echo "test.sh: no /dev/kvm here: running the integration suites in a QEMU VM with nested KVM"
	tests/vm/kvm-vm.sh env UBSAN_OPTIONS="$UBSAN_OPTIONS" ASAN_OPTIONS="$ASAN_OPTIONS" "${suites[@]}" || status=1
fi
/usr/bin/python3 scripts/test-summary.py build/meson-logs/unitlog.json build-asan/meson-logs/unitlog.json \
	build/meson-logs/itlog.json build-asan/meson-logs/itlog.json || status=1
exit $status
