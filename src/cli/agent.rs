//! `agent`: the backup agent. Long-running by default (schedule, leader election through a
//! Consul lock, service registration, metrics); `--once` (or interval 0) takes one snapshot
//! and exits, with no lock and no registration, for cron jobs and Kubernetes CronJobs.

use std::process::ExitCode;

use anyhow::anyhow;

use super::logging::Level;
use crate::agent::notify::{Event, Notifier};
use crate::agent::{run_cycle, CycleConfig, CycleOutcome};
use crate::archive::pretty::byte_size;
use crate::archive::TypePolicy;
use crate::config::RetryArgs;
use crate::config::{resolve_agent, AgentConfig, AgentOptions, FileArgs};
use crate::consul::ConsulClient;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take one snapshot, store it, apply retention, and exit (no leader election, no service
    /// registration). Exit 1 if any destination failed.
    #[arg(long)]
    once: bool,
    /// Print the effective configuration (files < environment < flags), secrets redacted, and
    /// exit.
    #[arg(long = "print-config")]
    print_config: bool,
    /// Print the next N run times of the effective schedule (RFC 3339, UTC, one a line, jitter
    /// not included) and exit, without contacting Consul. Check a --cron expression with it.
    #[arg(long = "print-schedule", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    print_schedule: Option<u32>,
    #[command(flatten)]
    retry: RetryArgs,
    /// Accept record types Consul CE cannot restore (e.g. from a newer Consul).
    #[arg(long)]
    allow_unknown_types: bool,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    options: AgentOptions,
}

impl Args {
    /// The cycle settings these arguments and `cfg` give.
    pub fn cycle_config(&self, cfg: &AgentConfig) -> CycleConfig {
        let types = if self.allow_unknown_types {
            TypePolicy::AnyBelowFlag
        } else {
            TypePolicy::Restorable
        };
        CycleConfig::of_agent(cfg, self.retry.policy(), types)
    }
}

pub fn run(args: Args, level: Option<Level>, json: bool) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let cfg = resolve_agent(&args.files, &args.options, args.once, &env).map_err(super::usage)?;
    let file_level = cfg.log_level.as_deref().and_then(Level::parse);
    super::logging::init(
        level.or(file_level).unwrap_or(Level::Info),
        json || cfg.log_json,
    );
    if args.print_config {
        let mut out = serde_json::to_vec_pretty(&crate::config::print::effective(&cfg)?)?;
        out.push(b'\n');
        return Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS));
    }
    if let Some(n) = args.print_schedule {
        let Some(schedule) = &cfg.schedule else {
            return Err(super::usage(anyhow!(
                "no schedule: --once or interval 0 takes one snapshot and exits"
            )));
        };
        let mut out = String::new();
        for t in schedule.upcoming(chrono::Utc::now(), n as usize) {
            out.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            out.push('\n');
        }
        return Ok(super::output::stdout(out.as_bytes())?.unwrap_or(ExitCode::SUCCESS));
    }
    let cycle = args.cycle_config(&cfg);
    match cfg.schedule.clone() {
        None => super::runtime::block_on(once(cfg, cycle))?,
        Some(schedule) => {
            super::runtime::block_on(crate::agent::daemon::run(cfg, cycle, schedule))?
        }
    }
}

async fn once(cfg: AgentConfig, cycle: CycleConfig) -> anyhow::Result<ExitCode> {
    let client = ConsulClient::new(&cfg.consul)?;
    let stores = cfg.storage.stores().await?;
    client
        .login()
        .await
        .map_err(|e| anyhow!("Snapshot failed: logging in to Consul: {e}"))?;
    let notifier = Notifier::new(cfg.webhooks.clone(), cfg.webhook_timeout);
    notifier.send(Event::new("start"));
    let result = run_cycle(&client, &stores, &cycle, None).await;
    // The login token goes with the run (a killed run leaves it to the method's MaxTokenTTL).
    if let Err(e) = client.logout().await {
        tracing::warn!(error = %e, "logging out of Consul failed; the login token expires with the auth method's MaxTokenTTL");
    }
    for ev in Event::for_cycle(&result) {
        notifier.send(ev);
    }
    // Deliveries are bounded; a dead endpoint delays the exit by at most the webhook timeout.
    notifier.flush(cfg.webhook_timeout).await;
    let outcome = result.map_err(|e| anyhow!("Snapshot failed: {e}"))?;
    let code = if outcome.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    Ok(super::output::stdout(summary(&outcome).as_bytes())?.unwrap_or(code))
}

/// The lines `agent --once` prints.
pub fn summary(outcome: &CycleOutcome) -> String {
    let stored = outcome
        .destinations
        .iter()
        .filter(|d| d.stored.is_ok())
        .count();
    let total = outcome.destinations.len();
    let what = format!(
        "snapshot to index {} ({}, sha256 {}) in {:.1}s",
        outcome.report.meta.index,
        byte_size(outcome.report.archive_len),
        hex::encode(outcome.report.archive_sha256),
        outcome.duration.as_secs_f64()
    );
    // The first line says what happened: saved only if some destination stored it.
    let mut out = if stored == total {
        format!("Saved and verified {what}\n")
    } else if stored == 0 {
        format!(
            "Verified {what}, but storing it FAILED at every destination; retention did not run\n"
        )
    } else {
        format!("Saved and verified {what} at {stored} of {total} destinations\n")
    };
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
            (Ok(b), None) => match &d.retention_skipped {
                Some(why) => {
                    out.push_str(&format!("  {}: stored {}; {why}\n", d.destination, b.key))
                }
                None => out.push_str(&format!("  {}: stored {}\n", d.destination, b.key)),
            },
            (Err(e), _) => out.push_str(&format!("  {}: FAILED: {e}\n", d.destination)),
        }
        for h in &d.holds {
            out.push_str(&format!(
                "  {}: shrink guard holds {} backup(s) for anomaly {} until {}\n",
                d.destination,
                h.held.len(),
                h.anomaly,
                h.until.to_rfc3339()
            ));
        }
    }
    if let Some(w) = outcome.clock.warning() {
        out.push_str(&format!("CLOCK: {w}.\n"));
    }
    if outcome.unjudged {
        out.push_str("UNJUDGED (shrink guard): no destination could be listed for a baseline; the backup is marked unjudged and is compared at the next cycle that can list.\n");
    }
    if let Some(a) = &outcome.anomaly {
        out.push_str(&format!(
            "ANOMALY (shrink guard): {}. The snapshot is stored; the backups from before it are held until `prune --acknowledge-anomaly KEY` or the hold expires.\n",
            a.reason()
        ));
    }
    out
}
