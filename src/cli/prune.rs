//! `prune`: apply the retention policy now; `--dry-run` shows the plan without deleting;
//! `--acknowledge-anomaly KEY` ends the shrink guard's hold for one anomaly.

use std::process::ExitCode;

use anyhow::anyhow;

use crate::archive::pretty::tabwriter;
use crate::config::options::ShrinkGuardOptions;
use crate::config::{resolve_guard, resolve_retention, DatacenterArg};
use crate::retention::RetentionPolicy;
use crate::storage::{choose_datacenter, Store, StoredBackup};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show what would be deleted and why, delete nothing (and acknowledge nothing).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Acknowledge the shrink-guard anomaly of this backup (its key, as `list` shows it, or
    /// its name): the drop was intended, so the backups from before it are no longer held
    /// and retention treats them as usual. Recorded in the backup's metadata. Repeatable.
    #[arg(long = "acknowledge-anomaly", value_name = "KEY")]
    acknowledge: Vec<String>,
    #[command(flatten)]
    datacenter: DatacenterArg,
    #[command(flatten)]
    target: super::target::TargetArgs,
    #[command(flatten)]
    retention: RetentionPolicy,
    #[command(flatten)]
    guard: ShrinkGuardOptions,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(prune(args))?
}

/// Whether `wanted` (a key, or a name) names backup `b`.
fn names(b: &StoredBackup, wanted: &str) -> bool {
    b.key == wanted || b.key.rsplit('/').next() == Some(wanted)
}

/// Acknowledges the anomalies `wanted` names among `listed` (updating the listing's metadata
/// to match); in a dry run only the listing is changed. Returns the lines to print and which
/// of `wanted` were found here.
async fn acknowledge(
    store: &Store,
    listed: &mut [StoredBackup],
    wanted: &[String],
    dry_run: bool,
) -> anyhow::Result<(String, Vec<bool>)> {
    let mut out = String::new();
    let mut found = vec![false; wanted.len()];
    for (i, w) in wanted.iter().enumerate() {
        for b in listed.iter_mut().filter(|b| names(b, w)) {
            found[i] = true;
            let head = store
                .head(&b.key)
                .await
                .map_err(|e| anyhow!("reading the metadata of {} at {store}: {e}", b.key))?;
            let mut meta = head.meta.unwrap_or_default();
            let Some(mark) = meta.anomaly.as_mut() else {
                return Err(super::usage(anyhow!(
                    "{} at {store} is not marked as a shrink-guard anomaly; `list` shows which backups are",
                    b.key
                )));
            };
            if let Some(when) = &mark.acknowledged {
                out.push_str(&format!(
                    "{}: anomaly already acknowledged at {when}\n",
                    b.key
                ));
            } else {
                mark.acknowledged = Some(chrono::Utc::now().to_rfc3339());
                if dry_run {
                    out.push_str(&format!("{}: would acknowledge the anomaly\n", b.key));
                } else {
                    store
                        .set_meta(&b.key, &meta)
                        .await
                        .map_err(|e| anyhow!("acknowledging {} at {store}: {e}", b.key))?;
                    out.push_str(&format!("{}: anomaly acknowledged\n", b.key));
                }
            }
            b.meta = Some(meta);
        }
    }
    Ok((out, found))
}

/// The plan as a table: each backup, kept or deleted, with the rules that decided.
fn show_plan(plan: &crate::storage::RetentionPlan, dry_run: bool) -> String {
    let verb = if dry_run { "would delete" } else { "delete" };
    let mut t = String::from("ACTION\tTIME\tKEY\tREASON");
    for d in &plan.decisions {
        let action = if d.keep { "keep" } else { verb };
        t.push_str(&format!(
            "\n{action}\t{}\t{}\t{}",
            d.time.to_rfc3339(),
            d.key,
            d.reasons.join(", ")
        ));
    }
    let mut out = String::from_utf8_lossy(&tabwriter(t.as_bytes(), 0, 2)).into_owned();
    out.push('\n');
    out
}

/// The counts, and the holds of the shrink guard, below the table.
fn show_outcome(plan: &crate::storage::RetentionPlan, deleted: usize, dry_run: bool) -> String {
    let mut out = format!(
        "{} kept, {deleted} {}\n",
        plan.decisions.len() - deleted,
        if dry_run {
            "would be deleted (dry run)"
        } else {
            "deleted"
        }
    );
    for h in &plan.holds {
        out.push_str(&format!(
            "shrink guard: anomaly {} holds {} backup(s) until {} ({})\n",
            h.anomaly,
            h.held.len(),
            h.until.to_rfc3339(),
            h.reason
        ));
    }
    out
}

async fn prune(args: Args) -> anyhow::Result<ExitCode> {
    let target = args.target.load()?;
    let policy = resolve_retention(&args.retention, &target.file);
    let hold = resolve_guard(&args.guard, &target.file).map(|g| g.hold);
    let mut out = String::new();
    let mut found = vec![false; args.acknowledge.len()];
    for store in target.stores().await? {
        // A listing error deletes nothing: it stops here.
        let mut listed = store
            .list()
            .await
            .map_err(|e| anyhow!("listing {}: {e}", store))?;
        let Some(dc) = choose_datacenter(&listed, args.datacenter.datacenter.as_deref())
            .map_err(|e| super::usage(anyhow!("{}: {e}", store)))?
        else {
            out.push_str(&format!("{}: no backups\n\n", store));
            continue;
        };
        let (acked, here) =
            acknowledge(&store, &mut listed, &args.acknowledge, args.dry_run).await?;
        out.push_str(&acked);
        found.iter_mut().zip(here).for_each(|(f, h)| *f |= h);
        let plan = store
            .plan(listed, &policy, &dc, hold)
            .await
            .map_err(|e| anyhow!("planning at {}: {e}", store))?;
        let doomed: Vec<String> = plan
            .decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.key.clone())
            .collect();
        out.push_str(&format!("{} (datacenter {dc}):\n", store));
        out.push_str(&show_plan(&plan, args.dry_run));
        if !args.dry_run && !doomed.is_empty() {
            store
                .delete(&doomed)
                .await
                .map_err(|e| anyhow!("deleting at {}: {e}", store))?;
        }
        out.push_str(&show_outcome(&plan, doomed.len(), args.dry_run));
        out.push('\n');
    }
    if let Some((k, _)) = args.acknowledge.iter().zip(&found).find(|(_, f)| !**f) {
        return Err(super::usage(anyhow!(
            "--acknowledge-anomaly {k}: no such backup at any destination"
        )));
    }
    Ok(super::output::stdout(out.as_bytes())?.unwrap_or(ExitCode::SUCCESS))
}
