#!/usr/bin/env bash
# Checks that the C sources match .clang-format. Formatting differs between clang-format
# releases, so only the pinned major version (Debian 12's) judges; others skip.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=14
# scripts/install-deps.sh installs clang-format-14 where the distribution has it (Ubuntu 24.04's
# own clang-format is newer); else the default one, if it is that release.
fmt=$(command -v clang-format-$pinned || command -v clang-format || true)
if [ -z "$fmt" ]; then
	echo "check-format: clang-format not installed: skipped"
	exit 0
fi
major=$("$fmt" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$major" != "$pinned" ]; then
	echo "check-format: clang-format $major is not the pinned $pinned: skipped"
	exit 0
fi
# shellcheck disable=SC2046
if ! "$fmt" --dry-run --Werror $(git ls-files '*.c' '*.h') 2>/tmp/check-format.$$; then
	head -40 /tmp/check-format.$$
	rm -f /tmp/check-format.$$
	echo "check-format: run: $fmt -i \$(git ls-files '*.c' '*.h')"
	exit 1
fi
rm -f /tmp/check-format.$$
echo "check-format: ok"
