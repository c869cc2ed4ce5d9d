#!/usr/bin/env bash
# The test command (README "Set-up"): installs the real servers the tests start when they are
# missing (tests/servers.sh), runs the whole suite, and prints the fault matrix the suite
# recorded.
#
# First run on a fresh machine: building Garage takes about 13-15 minutes on 2 cores (once),
# then the suite about 5 minutes. Later runs reuse Garage.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tests/servers.sh
. tests/servers.sh

table="target/tmp/fault-matrix.tsv"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$table"
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

if [ -s "$table" ]; then
  echo
  echo "== fault matrix (scenario | expected | observed)"
  sort "$table" | awk -F'\t' '{ printf "- %s\n    expected: %s\n    observed: %s\n", $1, $2, $3 }'
fi
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
