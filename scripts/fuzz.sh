#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz) for longer than the test suite does:
#   scripts/fuzz.sh TARGET|all [SECONDS]   (default 300 seconds per target, one at a time)
# Builds them in build-fuzz with clang first. Each target's corpus grows in a work folder
# outside git, $DENALI_FUZZ_WORK (default ~/.cache/denali-fuzz), seeded from the committed
# tests/fuzz/corpus; crashes go to its crashes/ folder. Ends with one line per target:
# executions, coverage (libFuzzer's cov and ft), corpus size; fails if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET|all [SECONDS]}
seconds=${2:-300}
work=${DENALI_FUZZ_WORK:-$HOME/.cache/denali-fuzz}
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz >/dev/null
ninja -C build-fuzz fuzz >/dev/null
if [ "$target" = all ]; then
	targets=$(cd tests/fuzz && ls fuzz_*.c | sed -n 's/^fuzz_\(.*\)\.c$/\1/p' | grep -vx util)
else
	[ -f "tests/fuzz/fuzz_$target.c" ] || { echo "fuzz.sh: no target $target" >&2; exit 2; }
	targets=$target
fi
status=0
summary=()
for t in $targets; do
	mkdir -p "$work/$t/corpus" "$work/$t/crashes"
	log="$work/$t/last.log"
	echo "fuzz.sh: $t for $seconds s (corpus $work/$t/corpus, log $log)"
	rc=0
	DENALI_FUZZ_IMAGE="$PWD/build-fuzz/guest/hello" "build-fuzz/tests/fuzz/fuzz_$t" \
		-max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
		-error_exitcode=1 -artifact_prefix="$work/$t/crashes/" \
		"$work/$t/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
	[ $rc = 0 ] || { status=1; tail -40 "$log"; }
	done_line=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$done_line")
	summary+=("$t: ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, corpus $(ls "$work/$t/corpus" | wc -l) inputs, exit $rc")
done
printf '%s\n' "${summary[@]}"
exit $status
