//! `prune`: apply the retention policy now; `--dry-run` shows the plan without deleting.

use std::process::ExitCode;

use anyhow::anyhow;

use crate::archive::pretty::tabwriter;
use crate::config::{
    load_files, resolve_retention, resolve_storage, DatacenterArg, FileArgs, StorageArgs,
};
use crate::retention::RetentionPolicy;
use crate::storage::{choose_datacenter, plan_listed};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be deleted and why, delete nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    #[command(flatten)]
    datacenter: DatacenterArg,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    retention: RetentionPolicy,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(prune(args))?
}

async fn prune(args: Args) -> anyhow::Result<ExitCode> {
    let file = load_files(&args.files).map_err(super::usage)?;
    let env = |k: &str| std::env::var(k).ok();
    let policy = resolve_retention(&args.retention, &file);
    let mut out = String::new();
    for store in resolve_storage(&args.storage, &file, &env)?
        .stores()
        .await?
    {
        // A listing error deletes nothing: it stops here.
        let listed = store
            .list()
            .await
            .map_err(|e| anyhow!("listing {}: {e}", store))?;
        let Some(dc) = choose_datacenter(&listed, args.datacenter.datacenter.as_deref())
            .map_err(|e| super::usage(anyhow!("{}: {e}", store)))?
        else {
            out.push_str(&format!("{}: no backups\n\n", store));
            continue;
        };
        let (_, decisions) =
            plan_listed(listed, &policy, &dc).map_err(|e| anyhow!("planning at {}: {e}", store))?;
        let doomed: Vec<String> = decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.key.clone())
            .collect();
        let verb = if args.dry_run {
            "would delete"
        } else {
            "delete"
        };
        let mut t = String::from("ACTION\tTIME\tKEY\tREASON");
        for d in &decisions {
            let action = if d.keep { "keep" } else { verb };
            t.push_str(&format!(
                "\n{action}\t{}\t{}\t{}",
                d.time.to_rfc3339(),
                d.key,
                d.reasons.join(", ")
            ));
        }
        out.push_str(&format!("{} (datacenter {dc}):\n", store));
        out.push_str(&String::from_utf8_lossy(&tabwriter(t.as_bytes(), 0, 2)));
        out.push('\n');
        if !args.dry_run && !doomed.is_empty() {
            store
                .delete(&doomed)
                .await
                .map_err(|e| anyhow!("deleting at {}: {e}", store))?;
        }
        out.push_str(&format!(
            "{} kept, {} {}\n\n",
            decisions.len() - doomed.len(),
            doomed.len(),
            if args.dry_run {
                "would be deleted (dry run)"
            } else {
                "deleted"
            }
        ));
    }
    Ok(super::output::stdout(out.as_bytes())?.unwrap_or(ExitCode::SUCCESS))
}
