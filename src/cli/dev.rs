//! `dev`: the one-command demo. Starts the Consul API test server (a test double, not Consul)
//! on a free loopback port and runs the long-running agent against it, storing to a local
//! directory on a short interval so backups appear and retention rotates them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;
use tokio_util::sync::CancellationToken;

use crate::agent::CycleConfig;
use crate::archive::synth::SynthSpec;
use crate::archive::TypePolicy;
use crate::config::{AgentConfig, AgentOptions, FileArgs};
use crate::consul::{ConsulArgs, RetryPolicy};
use crate::devserver::{DevServer, DevServerConfig, SnapshotSource};
use crate::schedule::Schedule;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo stores its backups.
    #[arg(long, default_value = "consul-snapshot-dev")]
    dir: PathBuf,
    /// Time between snapshots.
    #[arg(long, default_value = "5s", value_parser = crate::units::duration::parse_go_duration_arg)]
    interval: Duration,
    /// Backups kept.
    #[arg(long, default_value_t = 3)]
    retain: u32,
    /// Address of the agent's /metrics and /health listener.
    #[arg(long = "metrics-addr", default_value = "127.0.0.1:9464")]
    metrics_addr: std::net::SocketAddr,
}

/// The agent's configuration for the demo: the defaults, with the test server, the demo
/// directory, schedule and retention, and a short session (the test server accepts TTLs
/// from 1s).
fn demo_config(args: &Args, consul: &str) -> anyhow::Result<AgentConfig> {
    let mut flags = AgentOptions {
        consul: ConsulArgs {
            http_addr: Some(consul.to_string()),
            ..ConsulArgs::default()
        },
        metrics_addr: Some(args.metrics_addr.to_string()),
        ..AgentOptions::default()
    };
    flags.local_storage.path = Some(args.dir.clone());
    flags.snapshot.interval = Some(args.interval);
    flags.snapshot.session_ttl = Some(Duration::from_secs(5));
    flags.snapshot.session_ttl_min = Some(Duration::from_secs(1));
    flags.snapshot.retention.retain = Some(args.retain);
    crate::config::resolve_agent(&FileArgs::default(), &flags, false, &|_| None)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(demo(args))?
}

async fn demo(args: Args) -> anyhow::Result<ExitCode> {
    let server = DevServer::start(DevServerConfig {
        snapshot: SnapshotSource::Synthetic(SynthSpec {
            kv_entries: 5000,
            ..SynthSpec::default()
        }),
        session_ttl_min: Duration::from_secs(1),
        ..DevServerConfig::default()
    })
    .await
    .map_err(|e| anyhow!("starting the Consul API test server: {e}"))?;
    let cfg = demo_config(&args, &server.url())?;
    let cycle = CycleConfig::of_agent(&cfg, RetryPolicy::default(), TypePolicy::Restorable);
    println!(
        "Consul API test server (a test double, not Consul): {}",
        server.url()
    );
    println!(
        "Backups every {} into {}/, keeping {}.",
        humantime::format_duration(args.interval),
        args.dir.display(),
        args.retain
    );
    println!(
        "Metrics: http://{0}/metrics  Health: http://{0}/health  Stop: Ctrl-C",
        args.metrics_addr
    );
    println!(
        "Try: consul-snapshot-agent list --local-path {}",
        args.dir.display()
    );
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            crate::agent::daemon::shutdown_signal().await;
            stop.cancel();
        });
    }
    let schedule = Schedule::Interval(args.interval);
    let code = crate::agent::daemon::run_until(cfg, cycle, schedule, stop).await?;
    server.shutdown().await;
    Ok(code)
}
