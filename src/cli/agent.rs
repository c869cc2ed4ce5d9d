//! `agent`: for now the one-shot mode (`--once`): one backup cycle, then exit — no lock, no
//! registration, for cron jobs and Kubernetes CronJobs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::destinations::{RetentionArgs, StorageArgs};
use crate::agent::{run_cycle, CycleConfig};
use crate::archive::pretty::byte_size;
use crate::archive::TypePolicy;
use crate::consul::{ConsulArgs, ConsulClient, RetryPolicy};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take one snapshot, store it, apply retention, and exit (no leader election, no service
    /// registration). Exit 1 if any destination failed.
    #[arg(long)]
    once: bool,
    /// Let any server answer, not only the leader.
    #[arg(long)]
    stale: bool,
    /// Retries of the snapshot request before the first byte.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// First delay between retries; doubled each time.
    #[arg(long = "retry-delay", default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    retry_delay: Duration,
    /// Stream each stored backup back through the verifier (costs one download per destination).
    #[arg(long = "verify-readback")]
    verify_readback: bool,
    /// Accept record types Consul CE cannot restore (e.g. from a newer Consul).
    #[arg(long)]
    allow_unknown_types: bool,
    #[command(flatten)]
    consul: ConsulArgs,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    retention: RetentionArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.once {
        bail!("the long-running agent is not available yet; use `agent --once` (e.g. from cron) for one backup cycle");
    }
    super::runtime::block_on(once(args))?
}

async fn once(args: Args) -> anyhow::Result<ExitCode> {
    let consul = args.consul.resolve_from_process_env()?;
    let client = ConsulClient::new(&consul)?;
    let stores = args.storage.stores().await?;
    let cfg = CycleConfig {
        stale: args.stale,
        retry: RetryPolicy {
            retries: args.retries,
            base: args.retry_delay,
            ..RetryPolicy::default()
        },
        datacenter: consul.datacenter.clone(),
        types: if args.allow_unknown_types {
            TypePolicy::AnyBelowFlag
        } else {
            TypePolicy::Restorable
        },
        verify_readback: args.verify_readback,
        retention: args.retention.policy(),
    };
    let outcome = run_cycle(&client, &stores, &cfg)
        .await
        .map_err(|e| anyhow!("Snapshot failed: {e}"))?;
    let mut out = format!(
        "Saved and verified snapshot to index {} ({}, sha256 {}) in {:.1}s\n",
        outcome.report.meta.index,
        byte_size(outcome.report.archive_len),
        hex::encode(outcome.report.archive_sha256),
        outcome.duration.as_secs_f64()
    );
    for d in &outcome.destinations {
        match (&d.stored, &d.retention) {
            (Ok(b), Some(Ok(decisions))) => out.push_str(&format!(
                "  {}: stored {}; retention kept {}, deleted {}\n",
                d.destination,
                b.key,
                decisions.iter().filter(|x| x.keep).count(),
                d.deleted()
            )),
            (Ok(b), Some(Err(e))) => out.push_str(&format!(
                "  {}: stored {}; retention FAILED: {e}\n",
                d.destination, b.key
            )),
            (Ok(b), None) => out.push_str(&format!("  {}: stored {}\n", d.destination, b.key)),
            (Err(e), _) => out.push_str(&format!("  {}: FAILED: {e}\n", d.destination)),
        }
    }
    let code = if outcome.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    Ok(super::output::stdout(out.as_bytes())?.unwrap_or(code))
}
