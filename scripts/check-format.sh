#!/usr/bin/env bash
# Checks that the C sources match .clang-format. Formatting differs between clang-format
# releases, so only the pinned major version (Debian 12's) judges; others skip.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=14
if ! command -v clang-format >/dev/null; then
	echo "check-format: clang-format not installed: skipped"
	exit 0
fi
major=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$major" != "$pinned" ]; then
	echo "check-format: clang-format $major is not the pinned $pinned: skipped"
	exit 0
fi
# shellcheck disable=SC2046
if ! clang-format --dry-run --Werror $(git ls-files '*.c' '*.h') 2>/tmp/check-format.$$; then
	head -40 /tmp/check-format.$$
	rm -f /tmp/check-format.$$
	echo "check-format: run: clang-format -i \$(git ls-files '*.c' '*.h')"
	exit 1
fi
rm -f /tmp/check-format.$$
echo "check-format: ok"
