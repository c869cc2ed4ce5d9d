//! `restore`: put a backup back into Consul, after verifying it and asking.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use futures_util::StreamExt;

use crate::agent::{run_cycle, CycleConfig};
use crate::archive::TypePolicy;
use crate::consul::{put_snapshot, ConsulArgs, ConsulClient, RetryPolicy};
use crate::restore::{body_of, checked_body, fetch_verified, summary, Source};
use crate::retention::RetentionPolicy;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to restore: a local FILE, or a stored backup by --latest, --key or --before.
    #[command(flatten)]
    choice: super::target::BackupChoice,
    /// Do not ask for confirmation. Required when stdin is not a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Fetch, verify and show the backup, but do not restore (and take no safety snapshot).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// First save the current state as a backup at the configured destinations. Default: on
    /// when restoring from a destination, off for a local file.
    #[arg(long = "safety-snapshot", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    safety_snapshot: Option<bool>,
    /// How long to wait for Consul's answer once the whole snapshot is sent (Consul answers
    /// only after applying it, minutes for a large one); 0 waits as long as it takes. While
    /// the snapshot is being sent, --read-timeout bounds each silence instead.
    #[arg(long = "restore-timeout", value_name = "DURATION", default_value = "30m", value_parser = crate::units::duration::parse_go_duration_arg)]
    restore_timeout: std::time::Duration,
    /// Accept record types Consul CE cannot restore (Consul Enterprise snapshots).
    #[arg(long)]
    allow_unknown_types: bool,
    /// Restore only the KV entries whose keys start with this prefix (a raw string prefix:
    /// `app/` is the subtree), and touch nothing else; repeatable. `--kv-prefix ''` is the
    /// whole KV store. Takes no safety snapshot: the current values of the keys it changes are
    /// saved to a file first (--save-current).
    #[arg(long = "kv-prefix", value_name = "PREFIX", conflicts_with_all = ["safety_snapshot", "allow_unknown_types"], help_heading = "Selective KV restore")]
    kv_prefix: Vec<String>,
    /// Also delete live keys under the prefixes that the backup does not have (an exact
    /// rollback of the subtree).
    #[arg(
        long = "delete-extra",
        requires = "kv_prefix",
        help_heading = "Selective KV restore"
    )]
    delete_extra: bool,
    /// Write keys changed since the plan and keys held by a session (locks) anyway, without
    /// check-and-set.
    #[arg(long, requires = "kv_prefix", help_heading = "Selective KV restore")]
    force: bool,
    /// Where to save the current values of the keys the restore updates or deletes (the JSON
    /// of `consul kv export`; the keys it creates go to FILE.created). Never replaced.
    /// Default: consul-kv-before-restore-<UTC time>.json in the current directory.
    #[arg(
        long = "save-current",
        value_name = "FILE",
        requires = "kv_prefix",
        help_heading = "Selective KV restore"
    )]
    save_current: Option<PathBuf>,
    #[command(flatten)]
    target: super::target::TargetArgs,
    #[command(flatten)]
    consul: ConsulArgs,
    /// `--age-identity` decrypts an encrypted backup; `--encrypt-age-recipient` encrypts the
    /// safety snapshot.
    #[command(flatten)]
    encryption: crate::config::options::EncryptionOptions,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(restore(args))?
}

/// `--dry-run`: verifies the backup and prints what restoring it would change in the live
/// cluster; restores nothing and takes no safety snapshot.
async fn dry_run(
    client: &ConsulClient,
    source: &Source,
    types: TypePolicy,
    identities: &std::sync::Arc<crate::crypto::Identities>,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout();
    // Verified without a copy of the archive (only the diff's key index is spooled).
    let index = crate::restore::diff::SnapshotIndex::new()?;
    let (report, stats, digest_checked, index) =
        crate::restore::check_verified(source, types, identities, index)
            .await
            .map_err(|e| anyhow!("Error verifying snapshot: {e}"))?;
    let _ = write!(
        out,
        "{}",
        crate::restore::summary_of(&report, &stats, digest_checked, &source.to_string())
    );
    let _ = out.flush();
    match against_live(client, source, index).await {
        Ok(d) => {
            let _ = write!(
                out,
                "What this restore would change in the live cluster (FROM the cluster now, TO the backup):\n{}",
                crate::restore::diff::render(&d)
            );
        }
        Err(e) => eprintln!("Warning: could not compare with the live cluster: {e:#}"),
    }
    let _ = writeln!(
        out,
        "Dry run: verified, nothing restored (no safety snapshot taken)."
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(args: Args) -> anyhow::Result<ExitCode> {
    let target = args.target.load()?;
    let consul = target.consul(&args.consul)?;
    let client = ConsulClient::new(&consul)?;
    let (recipients, identities) =
        crate::config::resolve_encryption(&args.encryption, &target.file).map_err(super::usage)?;
    let types = if args.allow_unknown_types {
        TypePolicy::AnyBelowFlag
    } else {
        TypePolicy::Restorable
    };
    let selection = args.choice.selection("restore")?;
    let stores = if selection.is_some() || args.safety_snapshot == Some(true) {
        target.stores().await?
    } else {
        Vec::new()
    };
    let source = match (&args.choice.file, &selection) {
        (Some(f), _) => Source::File(f.clone()),
        (None, Some(sel)) => {
            super::target::stored(&stores, sel, consul.datacenter.as_deref()).await?
        }
        (None, None) => bail!("nothing to restore"),
    };
    if !args.kv_prefix.is_empty() {
        let opts = super::restore_kv::KvRestore {
            prefixes: args.kv_prefix.clone(),
            delete_extra: args.delete_extra,
            force: args.force,
            save_current: args.save_current.clone(),
            dry_run: args.dry_run,
            yes: args.yes,
        };
        return super::restore_kv::run(opts, &client, &source, &identities).await;
    }
    if args.dry_run {
        return dry_run(&client, &source, types, &identities).await;
    }
    let mut out = std::io::stdout();
    let prepared = fetch_verified(&source, types, &identities)
        .await
        .map_err(|e| anyhow!("Error verifying snapshot: {e}"))?;
    let _ = write!(out, "{}", summary(&prepared, &source.to_string()));
    let _ = out.flush();
    if !args.yes {
        super::confirm::confirm(
            "Restoring replaces ALL of Consul's state (KV, catalog, ACLs, sessions...) with this snapshot.",
        )?;
    }
    let safety = args
        .safety_snapshot
        .unwrap_or(matches!(source, Source::Stored { .. }));
    if safety {
        let guard = crate::config::resolve_guard(&Default::default(), &target.file);
        let (index, keys) = safety_snapshot(
            &client,
            &stores,
            consul.datacenter.clone(),
            recipients,
            guard,
        )
        .await?;
        let _ = writeln!(
            out,
            "Safety snapshot of the current state: index {index} saved as {}.",
            keys.join(", ")
        );
        if let Some(key) = keys.first() {
            let _ = writeln!(
                out,
                "To undo this restore, put that state back with:\n  {}",
                undo_command(key, args.choice.file.as_deref())
            );
        }
    }
    let limit = (!args.restore_timeout.is_zero()).then_some(args.restore_timeout);
    send(&client, &prepared, limit).await?;
    let _ = writeln!(out, "Restored snapshot");
    Ok(ExitCode::SUCCESS)
}

/// The diff from the live cluster (a fresh snapshot, verified as it streams) to the backup
/// `backup`, the index of `source`: what a full restore would add, change and throw away.
async fn against_live(
    client: &ConsulClient,
    source: &Source,
    backup: crate::restore::diff::SnapshotIndex,
) -> anyhow::Result<crate::restore::diff::Diff> {
    if let Some(e) = &backup.error {
        bail!("reading the backup's records: {e}");
    }
    let live = Source::Live(Box::new(client.clone()));
    let (report, index) = crate::restore::read_verified(
        &live,
        TypePolicy::AnyBelowFlag,
        &Default::default(),
        crate::restore::diff::SnapshotIndex::new()?,
    )
    .await?;
    if let Some(e) = &index.error {
        bail!("reading the live snapshot's records: {e}");
    }
    Ok(crate::restore::diff::diff(
        format!("{live} (index {})", report.meta.index),
        index,
        source.to_string(),
        backup,
    )?)
}

/// The command that restores the safety snapshot `key`: this command's own arguments (so the
/// same destination, identity and Consul options) with the choice of backup replaced by
/// `--key KEY`, no new safety snapshot, and no confirmation skipped.
fn undo_command(key: &str, file: Option<&std::path::Path>) -> String {
    let args: Vec<String> = std::env::args().collect();
    undo_command_from(
        &args,
        key,
        file.map(|f| f.to_string_lossy().to_string()).as_deref(),
    )
}

/// [`undo_command`] from the arguments `args` (the program first). The value of a secret
/// flag (a token, a key, a webhook URL) and userinfo in an address are not repeated: they
/// read `<redacted>`, to be given again.
fn undo_command_from(args: &[String], key: &str, file: Option<&str>) -> String {
    const REDACTED: &str = "<redacted>";
    let secret_flag = |flag: &str| {
        crate::config::file::is_secret_key(&flag.trim_start_matches('-').replace('-', "_"))
    };
    let shown = |value: &str| -> String {
        // http://user:password@host: the address without its userinfo.
        match value.split_once("://") {
            Some((scheme, rest)) if rest.split('/').next().is_some_and(|a| a.contains('@')) => {
                let after = rest.split_once('@').map_or(rest, |(_, r)| r);
                format!("{scheme}://{REDACTED}@{after}")
            }
            _ => value.to_string(),
        }
    };
    let mut out = vec![args
        .first()
        .cloned()
        .unwrap_or_else(|| "consul-snapshot-agent".into())];
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a.as_str(), None),
        };
        match flag {
            "--key" | "--before" if inline.is_none() => {
                it.next();
            }
            "--key" | "--before" | "--latest" | "--yes" | "-y" | "--dry-run"
            | "--safety-snapshot" => {}
            _ if file == Some(a.as_str()) => {}
            f if f.starts_with("--") && secret_flag(f) => match inline {
                Some(_) => out.push(format!("{f}={REDACTED}")),
                None => {
                    out.push(f.to_string());
                    if it.next().is_some() {
                        out.push(REDACTED.into());
                    }
                }
            },
            _ => out.push(match inline {
                Some(v) => format!("{flag}={}", shown(v)),
                None => shown(a),
            }),
        }
    }
    out.push("--key".into());
    out.push(key.to_string());
    out.push("--safety-snapshot=false".into());
    out.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\<>".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Saves the current state at every destination before it is replaced (never deleting
/// anything: retain 0), marked as a safety snapshot in its metadata (`--latest` and drills
/// pass it over; it is never a shrink-guard baseline). Any failure stops the restore.
/// Returns the snapshot's Raft index and the keys it was stored under.
async fn safety_snapshot(
    client: &ConsulClient,
    stores: &[crate::storage::Store],
    datacenter: Option<String>,
    encryption: Option<std::sync::Arc<crate::crypto::Recipients>>,
    guard: Option<crate::guard::GuardConfig>,
) -> anyhow::Result<(u64, Vec<String>)> {
    if stores.is_empty() {
        bail!("--safety-snapshot needs a destination (--local-path or --aws-s3-bucket)");
    }
    let cfg = CycleConfig {
        stale: false,
        retry: RetryPolicy::default(),
        datacenter,
        types: TypePolicy::AnyBelowFlag,
        verify_readback: false,
        retention: RetentionPolicy {
            retain: Some(0),
            ..RetentionPolicy::default()
        },
        encryption,
        identities: Default::default(),
        // Judged like any backup: if Consul's state shrank, the next cycles must not take
        // this snapshot as the baseline unmarked and rotate out what came before.
        guard,
        safety_snapshot: true,
    };
    let o = run_cycle(client, stores, &cfg, None)
        .await
        .map_err(|e| anyhow!("safety snapshot failed, nothing restored: {e}"))?;
    if !o.all_ok() {
        bail!(
            "safety snapshot failed at a destination, nothing restored: {}",
            super::agent::summary(&o).trim()
        );
    }
    let keys = o
        .destinations
        .iter()
        .filter_map(|d| d.stored.as_ref().ok().map(|b| b.key.clone()))
        .collect();
    Ok((o.report.meta.index, keys))
}

/// Streams the verified file to `PUT /v1/snapshot`, re-hashed on the way (what Consul
/// receives is what was verified), with a progress bar.
async fn send(
    client: &ConsulClient,
    prepared: &crate::restore::Prepared,
    restore_timeout: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let (body, len) = body_of(&prepared.copy);
    let body = checked_body(
        body,
        prepared.report.archive_sha256,
        prepared.report.archive_len,
    );
    let bar = super::progress::bar(Some(len), "restoring");
    let counted = {
        let bar = bar.clone();
        body.inspect(move |c| {
            if let (Some(b), Ok(c)) = (&bar, c) {
                b.inc(c.len() as u64);
            }
        })
    };
    let result = put_snapshot(client, counted, len, restore_timeout).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result.map_err(|e| anyhow!("Error restoring snapshot: {e}"))
}

#[cfg(test)]
mod tests {
    use super::undo_command_from;

    #[test]
    fn the_undo_command_repeats_no_secret() {
        let args: Vec<String> = [
            "consul-snapshot-agent",
            "restore",
            "--latest",
            "--yes",
            "--token",
            "t0k3n",
            "--http-addr=http://ops:pw@10.0.0.1:8500",
            "--aws-s3-bucket",
            "b",
            "--login-bearer-token=jwt.abc",
        ]
        .map(String::from)
        .into();
        let cmd = undo_command_from(&args, "consul-dc1-x.snap", None);
        for secret in ["t0k3n", "pw", "jwt.abc", "--latest", "--yes"] {
            assert!(!cmd.contains(secret), "{secret}: {cmd}");
        }
        assert!(cmd.contains("--token '<redacted>'"), "{cmd}");
        assert!(cmd.contains("--aws-s3-bucket b"), "{cmd}");
        assert!(cmd.contains("10.0.0.1:8500"), "{cmd}");
        assert!(
            cmd.ends_with("--key consul-dc1-x.snap --safety-snapshot=false"),
            "{cmd}"
        );
    }
}
