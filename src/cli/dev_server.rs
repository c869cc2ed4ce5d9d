//! `dev-server`: the Consul API test server on the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;

use crate::archive::synth::SynthSpec;
use crate::devserver::{AclTokens, DevServer, DevServerConfig, SnapshotSource, TlsFiles};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8500")]
    listen: SocketAddr,
    /// Datacenter name it reports.
    #[arg(long, default_value = "dc1")]
    datacenter: String,
    /// Node name it reports (sessions must be created on it).
    #[arg(long, default_value = "node-1")]
    node: String,
    /// Turn ACLs on: only this management token may do anything.
    #[arg(long = "acl-token", value_name = "TOKEN")]
    acl_token: Option<String>,
    /// Number of KV entries of the synthetic state it snapshots.
    #[arg(long, default_value_t = 2000, conflicts_with_all = ["state_size", "archive"])]
    kv_entries: u64,
    /// Size of the synthetic state.bin instead, e.g. 1GiB.
    #[arg(long, value_parser = super::generate::parse_size, conflicts_with = "archive")]
    state_size: Option<u64>,
    /// Serve this existing archive (verified at start-up) instead of a synthetic state.
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,
    /// Serve HTTPS with this certificate (PEM); needs --tls-key.
    #[arg(long = "tls-cert", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long = "tls-key", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Smallest session TTL accepted (Consul's session_ttl_min).
    #[arg(long = "session-ttl-min", default_value = "10s", value_parser = crate::units::duration::parse_go_duration_arg)]
    session_ttl_min: Duration,
    /// Directory for its state files (default: a temporary directory, removed on exit).
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(serve(args))?
}

async fn serve(args: Args) -> anyhow::Result<ExitCode> {
    let snapshot = match (&args.archive, args.state_size) {
        (Some(a), _) => SnapshotSource::Archive(a.clone()),
        (None, Some(size)) => SnapshotSource::Synthetic(SynthSpec::with_state_size(size)),
        (None, None) => SnapshotSource::Synthetic(SynthSpec {
            kv_entries: args.kv_entries,
            ..SynthSpec::default()
        }),
    };
    let cfg = DevServerConfig {
        listen: args.listen,
        datacenter: args.datacenter,
        node_name: args.node,
        acl: args.acl_token.map(|t| AclTokens {
            management: t,
            read_only: None,
            read_only_accessor: String::new(),
            no_snapshot: None,
        }),
        snapshot,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        session_ttl_min: args.session_ttl_min,
        data_dir: args.data_dir,
        ..DevServerConfig::default()
    };
    let server = DevServer::start(cfg)
        .await
        .map_err(|e| anyhow!("starting the Consul API test server: {e}"))?;
    println!(
        "Consul API test server (a test double, not Consul) listening on {}",
        server.url()
    );
    println!(
        "Faults: PUT {}/_testserver/faults with JSON, e.g. {{\"no_leader\": true}}",
        server.url()
    );
    crate::agent::daemon::shutdown_signal().await;
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
