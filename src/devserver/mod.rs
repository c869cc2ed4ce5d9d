//! The Consul API test server: a **test double, not Consul**. No Consul binary can be installed
//! where this project is built and tested, so the project owns a server that speaks the subset
//! of Consul's HTTP API the agent uses, built from `shared/spec/consul-http-api.md`: snapshot
//! save and restore, leader status, agent info, sessions with TTL and lock-delay, KV with
//! locks and blocking queries, service registration with TTL checks, ACL tokens, and injectable
//! faults ([`Faults`]). It runs in-process for tests and as `consul-snapshot-agent dev-server`.
//!
//! Simplifications, on purpose: a single node that is always the leader unless the no-leader
//! fault is on; the live KV/session/service state is not part of the snapshots it serves (those
//! come from a synthetic or restored state.bin); restoring records Consul would crash on are
//! answered with a 500 instead of crashing.

pub mod agent;
pub mod faults;
pub mod http;
pub mod kv;
pub mod session;
pub mod snapshot;
pub mod state;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::routing::{get, put};
use axum::Router;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use faults::Faults;
pub use snapshot::RestoreRecord;

use crate::archive::synth::SynthSpec;
use snapshot::SnapshotStore;
use state::Cluster;

/// Where the served snapshots come from initially.
#[derive(Debug, Clone)]
pub enum SnapshotSource {
    /// A synthetic state generated at start-up.
    Synthetic(SynthSpec),
    /// An existing archive, verified at start-up and served as is until a restore.
    Archive(PathBuf),
}

/// ACL tokens the server knows. With ACLs on, anything else gets 403.
#[derive(Debug, Clone)]
pub struct AclTokens {
    /// A management token: may do everything.
    pub management: String,
    /// A token that may read but not write (and not take snapshots).
    pub read_only: Option<String>,
    /// Accessor ID quoted in the read-only token's permission errors.
    pub read_only_accessor: String,
    /// A token that may read and write KV, sessions and services but not take or restore
    /// snapshots (no `acl:write`): an agent token missing one permission.
    pub no_snapshot: Option<String>,
}

/// PEM files for serving HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Test server settings.
#[derive(Debug, Clone)]
pub struct DevServerConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    pub datacenter: String,
    pub node_name: String,
    /// The node ID (`/v1/agent/self` `Config.NodeID`), also its Raft server ID: what tells
    /// one cluster from another.
    pub node_id: String,
    /// `Config.Version` of `/v1/agent/self`.
    pub version: String,
    pub acl: Option<AclTokens>,
    pub snapshot: SnapshotSource,
    pub tls: Option<TlsFiles>,
    /// Smallest session TTL accepted (Consul's `session_ttl_min`, default 10 s).
    pub session_ttl_min: Duration,
    /// Directory for state files; a fresh temporary directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Also serve plain HTTP on this Unix socket (as `unix:///path` addresses reach Consul).
    pub unix_socket: Option<PathBuf>,
}

impl Default for DevServerConfig {
    fn default() -> Self {
        DevServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            datacenter: "dc1".into(),
            node_name: "node-1".into(),
            node_id: "9d754d17-d864-b1d3-e758-f3fe25a9874f".into(),
            version: "1.21.0".into(),
            acl: None,
            snapshot: SnapshotSource::Synthetic(SynthSpec::default()),
            tls: None,
            session_ttl_min: Duration::from_secs(10),
            data_dir: None,
            unix_socket: None,
        }
    }
}

/// State shared by the handlers.
pub struct AppState {
    pub cfg: DevServerConfig,
    cluster: Mutex<Cluster>,
    /// Carries the Raft index after every change; blocking queries wait on it.
    pub changes: watch::Sender<u64>,
    faults: Mutex<Faults>,
    store: SnapshotStore,
    restores: Mutex<Vec<RestoreRecord>>,
    /// Bytes of error bodies (`snapshot_error_padding`) the client actually pulled.
    pub error_body_sent: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked mid-update leaves the test server usable for the test to report.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    /// The cluster state, locked. Keep the guard short.
    pub fn cluster(&self) -> MutexGuard<'_, Cluster> {
        lock(&self.cluster)
    }

    /// Current Raft index.
    pub fn index(&self) -> u64 {
        self.cluster().index
    }

    /// Applies a change and wakes blocking queries.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Cluster) -> R) -> R {
        let (r, index) = {
            let mut c = self.cluster();
            let r = f(&mut c);
            (r, c.index)
        };
        self.changes.send_replace(index);
        r
    }

    /// The current fault switches.
    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Replaces the fault switches.
    pub fn set_faults(&self, f: Faults) {
        *lock(&self.faults) = f;
    }

    /// The text of an injected snapshot 500, consuming one of `snapshot_error_times`.
    fn take_snapshot_error(&self) -> Option<String> {
        let mut f = lock(&self.faults);
        let text = || {
            f.snapshot_error
                .clone()
                .unwrap_or_else(|| "Raft error when taking snapshot: injected fault".into())
        };
        match f.snapshot_error_times {
            Some(0) => None,
            Some(n) => {
                let t = text();
                f.snapshot_error_times = Some(n - 1);
                Some(t)
            }
            None => f.snapshot_error.clone(),
        }
    }

    fn record_restore(&self, r: RestoreRecord) {
        lock(&self.restores).push(r);
    }
}

/// A running test server; stops when [`DevServer::shutdown`] is called or it is dropped.
pub struct DevServer {
    addr: SocketAddr,
    scheme: &'static str,
    shared: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl DevServer {
    /// Prepares the snapshot state, binds, and serves in the background on the current runtime.
    pub async fn start(cfg: DevServerConfig) -> io::Result<Self> {
        let (tmp, dir) = match &cfg.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("consul-testserver-")
                    .tempdir()?;
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let store = SnapshotStore::init(&dir, &cfg.snapshot).await?;
        let index = store.index().await;
        let (changes, _) = watch::channel(index);
        let shared = Arc::new(AppState {
            cfg: cfg.clone(),
            cluster: Mutex::new(Cluster::new(index)),
            changes,
            faults: Mutex::new(Faults::default()),
            store,
            restores: Mutex::new(Vec::new()),
            error_body_sent: std::sync::atomic::AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let (serve, scheme) = match &cfg.tls {
            None => (
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { drop(rx.await) })
                        .await;
                }),
                "http",
            ),
            Some(tls) => (
                tokio::spawn(serve_tls(listener, app, tls_config(tls)?, rx)),
                "https",
            ),
        };
        let mut tasks = vec![serve];
        if let Some(path) = &cfg.unix_socket {
            let _ = std::fs::remove_file(path);
            let unix = tokio::net::UnixListener::bind(path)?;
            let app = router(shared.clone());
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(unix, app).await;
            }));
        }
        let reaper = {
            let weak = Arc::downgrade(&shared);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tick.tick().await;
                    let Some(s) = weak.upgrade() else { return };
                    let now = std::time::Instant::now();
                    let changed = { s.cluster().reap(now) };
                    if changed {
                        s.changes.send_replace(s.index());
                    }
                }
            })
        };
        tasks.push(reaper);
        Ok(DevServer {
            addr,
            scheme,
            shared,
            shutdown: Some(tx),
            tasks,
            _tmp: tmp,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The handlers' shared state, for assertions.
    pub fn shared(&self) -> &Arc<AppState> {
        &self.shared
    }

    /// Replaces the fault switches.
    pub fn set_faults(&self, f: Faults) {
        self.shared.set_faults(f);
    }

    /// Bytes of padded error bodies the clients pulled so far.
    pub fn error_body_sent(&self) -> u64 {
        self.shared
            .error_body_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every successful restore so far.
    pub fn restores(&self) -> Vec<RestoreRecord> {
        lock(&self.shared.restores).clone()
    }

    /// Stops serving and waits for the server tasks to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn tls_config(files: &TlsFiles) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad("TLS certificate", &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("TLS certificate", &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("TLS key", &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("TLS", &e))?;
    Ok(Arc::new(cfg))
}

async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    cfg: Arc<rustls::ServerConfig>,
    mut stop: oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A client that rejects our certificate ends the handshake; nothing to serve.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
        });
    }
}

/// The routes Consul serves that an agent uses, plus `/_testserver/faults`.
pub fn router(shared: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/snapshot", get(snapshot::save).put(snapshot::restore))
        .route("/v1/status/leader", get(agent::leader))
        .route("/v1/status/peers", get(agent::peers))
        .route("/v1/agent/self", get(agent::agent_self))
        .route(
            "/v1/operator/raft/configuration",
            get(agent::raft_configuration),
        )
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/checks", get(agent::checks))
        .route("/v1/agent/service/register", put(agent::service_register))
        .route(
            "/v1/agent/service/deregister/{id}",
            put(agent::service_deregister),
        )
        .route("/v1/agent/check/register", put(agent::check_register))
        .route(
            "/v1/agent/check/deregister/{id}",
            put(agent::check_deregister),
        )
        .route("/v1/agent/check/{action}/{id}", put(agent::check_update))
        .route("/v1/session/create", put(session::create))
        .route("/v1/session/renew/{id}", put(session::renew))
        .route("/v1/session/destroy/{id}", put(session::destroy))
        .route("/v1/session/info/{id}", get(session::info))
        .route("/v1/session/list", get(session::list))
        .route(
            "/v1/kv/",
            get(kv::get_root).put(kv::put_root).delete(kv::delete_root),
        )
        .route(
            "/v1/kv/{*key}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .route(
            "/_testserver/faults",
            get(snapshot::get_faults).put(snapshot::put_faults),
        )
        .with_state(shared)
}
