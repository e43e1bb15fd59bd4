#!/bin/sh
# One fuzz target as a test (meson test --suite fuzz): TARGET CORPUS [libFuzzer options]. The
# inputs it finds go to a scratch folder, never into the committed corpus; a crash is kept in
# fuzz-crashes/ under the folder the test runs in (the build folder), and fails the test.
set -eu
exe=$1 corpus=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p fuzz-crashes
"$exe" -seed=1 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 \
	-artifact_prefix="$PWD/fuzz-crashes/$(basename "$exe")-" "$@" "$work" "$corpus"
