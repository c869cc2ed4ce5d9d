//! `drill`: prove a backup restores. Fetch and verify it, restore it into a scratch Consul
//! (`--target-http-addr`, never the agent's own cluster), take a snapshot back and compare
//! contents ([`crate::restore::drill`]); report the steps' durations: the time to recover.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::anyhow;

use super::output::Format;
use crate::archive::pretty::tabwriter;
use crate::consul::{ConsulArgs, ConsulClient, Secret};
use crate::restore::drill::{refuse_production, run_drill, DrillReport, DrillTarget};
use crate::restore::select::Selection;
use crate::restore::Source;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A local snapshot archive to drill. Without it, --latest or --key.
    #[arg(conflicts_with_all = ["latest", "key"])]
    file: Option<PathBuf>,
    /// The newest backup at the configured destinations.
    #[arg(long, conflicts_with = "key")]
    latest: bool,
    /// The backup with this key (or file name).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// The scratch Consul to restore into (its state is replaced): http(s)://host:port or
    /// host:port. Not the cluster the agent backs up.
    #[arg(long = "target-http-addr", value_name = "ADDR")]
    target_http_addr: String,
    /// ACL token for the scratch cluster (needs acl:write, as any restore).
    #[arg(long = "target-token", value_name = "TOKEN", hide_env_values = true)]
    target_token: Option<Secret>,
    /// File holding the scratch cluster's token.
    #[arg(long = "target-token-file", value_name = "PATH")]
    target_token_file: Option<PathBuf>,
    /// CA certificate for the scratch cluster's TLS.
    #[arg(long = "target-ca-file", value_name = "PATH")]
    target_ca_file: Option<PathBuf>,
    /// Client certificate for the scratch cluster.
    #[arg(long = "target-client-cert", value_name = "PATH")]
    target_client_cert: Option<PathBuf>,
    /// Client key for the scratch cluster.
    #[arg(long = "target-client-key", value_name = "PATH")]
    target_client_key: Option<PathBuf>,
    /// Restore even when the target looks like the agent's own Consul (same address, or a
    /// Raft server ID in common). Replaces that cluster's state: only for a deliberately
    /// shared test cluster.
    #[arg(long = "allow-production-target")]
    allow_production_target: bool,
    /// How long to wait for the scratch cluster to apply the restore.
    #[arg(long = "restore-timeout", value_name = "DURATION", default_value = "30m", value_parser = crate::units::duration::parse_go_duration_arg)]
    restore_timeout: std::time::Duration,
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
    #[command(flatten)]
    target: super::target::TargetArgs,
    /// The agent's own Consul (to refuse restoring into it).
    #[command(flatten)]
    consul: ConsulArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(drill(args))?
}

async fn drill(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let loaded = args.target.load()?;
    // The target takes only its own flags: the environment's CONSUL_* belong to production.
    let target_cfg = ConsulArgs {
        http_addr: Some(args.target_http_addr.clone()),
        token: args.target_token.clone(),
        token_file: args.target_token_file.clone(),
        ca_file: args.target_ca_file.clone(),
        client_cert: args.target_client_cert.clone(),
        client_key: args.target_client_key.clone(),
        ..ConsulArgs::default()
    };
    let target_cfg = crate::config::scratch_consul(target_cfg)
        .map_err(|e| super::usage(anyhow!("--target-*: {e}")))?;
    let prod_cfg = loaded.consul(&args.consul)?;
    let target = DrillTarget::new(&target_cfg, prod_cfg.token.as_ref())?;
    if !args.allow_production_target {
        let prod = ConsulClient::new(&prod_cfg)?;
        // Same address, or a Raft server ID in common.
        refuse_production(&target.client, &prod)
            .await
            .map_err(|e| super::usage(anyhow!(e)))?;
    }

    let source = match (&args.file, args.latest, &args.key) {
        (Some(f), ..) => Source::File(f.clone()),
        (None, latest, key) => {
            let sel = match (latest, key) {
                (true, _) => Selection::Latest,
                (false, Some(k)) => Selection::Key(k.clone()),
                (false, None) => {
                    return Err(super::usage(anyhow!(
                        "say what to drill: a FILE, --latest or --key KEY"
                    )))
                }
            };
            let stores = loaded.stores().await?;
            super::target::stored(&stores, &sel, prod_cfg.datacenter.as_deref()).await?
        }
    };
    let ids = Arc::new(crate::crypto::Identities::load(
        &args.identity.age_identities,
    )?);
    let limit = (!args.restore_timeout.is_zero()).then_some(args.restore_timeout);
    let report = run_drill(&source, &target, &ids, limit, started).await?;
    let out = match args.output {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&report)?;
            v.push(b'\n');
            v
        }
        Format::Table => render(&report).into_bytes(),
    };
    let code = if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    Ok(super::output::stdout(&out)?.unwrap_or(code))
}

/// The table layout.
fn render(r: &DrillReport) -> String {
    let d = &r.durations;
    let mut out = format!(
        "Drill {}: {} restored into {}\n  fetch + verify {:.1}s, restore {:.1}s, read back {:.1}s; time to recover {:.1}s\n  backup index {}, index after the restore {}\n",
        if r.pass { "PASSED" } else { "FAILED" },
        r.source,
        r.target,
        d.fetch_verify,
        d.restore,
        d.read_back,
        d.total,
        r.backup_index,
        r.restored_index
    );
    for diff in &r.differences {
        out.push_str(&format!("  differs: {diff}\n"));
    }
    let mut t = String::from("TYPE\tBACKUP\tRESTORED\tCOMPARED");
    for row in &r.types {
        t.push_str(&format!(
            "\n{}\t{}\t{}\t{}",
            row.name,
            row.backup,
            row.restored,
            if row.compared {
                "yes"
            } else {
                "no (written by the cluster)"
            }
        ));
    }
    out.push_str(&String::from_utf8_lossy(&tabwriter(t.as_bytes(), 0, 2)));
    out.push('\n');
    out
}
