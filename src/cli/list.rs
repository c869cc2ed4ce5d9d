//! `list`: the backups at each configured destination, oldest first, with their record counts
//! and any shrink-guard anomaly.

use std::process::ExitCode;

use serde::Serialize;

use super::output::Format;
use crate::archive::pretty::{byte_size, tabwriter};
use crate::archive::RecordCounts;
use crate::config::DatacenterArg;
use crate::guard::AnomalyMark;
use crate::storage::{sort_newest_first, Store, StoredBackup};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Read every listed backup back and verify it (every archive check, and its SHA-256
    /// against the metadata); an encrypted one is decrypted with --age-identity, or without
    /// one only its stored bytes are checked against the ciphertext SHA-256. Exit 1 if any
    /// fails. Reads every byte of every backup.
    #[arg(long)]
    verify: bool,
    /// One line per destination and datacenter: the newest backup (as `restore --latest`
    /// would choose it) with its time, age and Raft index, the count and total size, and
    /// anomaly and encryption flags. For a fleet whose sites share one bucket and prefix.
    #[arg(long)]
    summary: bool,
    /// With --summary (implied): exit 1 and name every datacenter whose newest backup is
    /// older than this (e.g. 2h), so that one cron line watches a fleet.
    #[arg(long = "max-age", value_name = "DURATION", value_parser = crate::units::duration::parse_go_duration_arg)]
    max_age: Option<std::time::Duration>,
    /// With --summary (implied): datacenters that must have a backup; one with none is named
    /// and the exit code is 1. Comma-separated or repeated.
    #[arg(long, value_name = "DC,...", value_delimiter = ',')]
    expect: Vec<String>,
    #[command(flatten)]
    identities: super::age::IdentityArgs,
    #[command(flatten)]
    datacenter: DatacenterArg,
    #[command(flatten)]
    target: super::target::TargetArgs,
}

/// One row of `list --output json`.
#[derive(Debug, Serialize)]
struct Row {
    destination: String,
    key: String,
    time: String,
    datacenter: String,
    size: u64,
    index: u64,
    term: Option<u64>,
    /// SHA-256 of the plaintext archive.
    sha256: Option<String>,
    /// Encrypted with age (`.snap.age`).
    encrypted: bool,
    /// Fingerprints of the recipients of an encrypted backup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recipients: Vec<String>,
    /// Records per kind (absent for backups stored before counts were recorded).
    counts: Option<RecordCounts>,
    /// The shrink guard's mark: the snapshot was markedly smaller than the backup before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<AnomalyMark>,
    /// A restore's safety snapshot (the state a restore replaced): `--latest` passes it over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    safety_snapshot: bool,
    /// Stored while the shrink guard could not compare it (a listing failed); judged at the
    /// next cycle that can list.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unjudged: bool,
    /// With `--verify`: `ok` (read back and verified), `ciphertext` (encrypted, no identity:
    /// the stored bytes match the ciphertext SHA-256), `failed` or `unreadable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<&'static str>,
    /// With `--verify`, why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_error: Option<String>,
}

/// Reads one backup back through the verifier: the `verified` value and any error.
async fn verify_one(
    store: &crate::storage::Store,
    key: &str,
    meta: Option<&crate::storage::BackupMeta>,
    ids: &std::sync::Arc<crate::crypto::Identities>,
) -> (&'static str, Option<String>) {
    match store.readback(key, meta, ids).await {
        Ok(Some(_)) => ("ok", None),
        Ok(None) => ("ciphertext", None),
        Err(e @ crate::storage::StorageError::Readback { .. }) => ("failed", Some(e.to_string())),
        Err(e) => ("unreadable", Some(e.to_string())),
    }
}

/// A count for the table: `-` when unknown.
fn count(c: Option<&RecordCounts>, f: fn(&RecordCounts) -> u64) -> String {
    c.map_or_else(|| "-".into(), |c| f(c).to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(list(args))?
}

async fn list(args: Args) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    let mut fleet: Vec<(String, StoredBackup)> = Vec::new();
    let ids = std::sync::Arc::new(crate::crypto::Identities::load(
        &args.identities.age_identities,
    )?);
    let summary = args.summary || args.max_age.is_some() || !args.expect.is_empty();
    for store in args.target.load()?.stores().await? {
        let backups = listed(&store, args.datacenter.datacenter.as_deref()).await?;
        if summary {
            fleet.extend(backups.iter().map(|b| (store.to_string(), b.clone())));
        }
        for b in backups {
            let verified = if args.verify {
                Some(verify_one(&store, &b.key, b.meta.as_ref(), &ids).await)
            } else {
                None
            };
            rows.push(Row::of(&store, b, verified));
        }
    }
    if summary {
        return summary_of(&fleet, &args);
    }
    let out = match args.output {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&rows)?;
            v.push(b'\n');
            v
        }
        Format::Table => table(&rows, args.verify),
    };
    let bad = rows
        .iter()
        .any(|r| matches!(r.verified, Some("failed" | "unreadable")));
    let code = if bad {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    Ok(super::output::stdout(&out)?.unwrap_or(code))
}

/// The backups at `store` (of `datacenter` only, when given, by name and metadata) with their
/// metadata, oldest first in the one order of retention and `--latest` (time, then Raft
/// index). A backup whose metadata cannot be read is listed without it.
async fn listed(store: &Store, datacenter: Option<&str>) -> anyhow::Result<Vec<StoredBackup>> {
    let mut backups = store
        .list()
        .await
        .map_err(|e| anyhow::anyhow!("listing {}: {e}", store))?;
    backups.retain(|b| datacenter.is_none_or(|dc| b.name.datacenter == dc));
    // Metadata where the listing had none (S3, Azure, GCS), 16 reads at a time.
    let mut backups = store
        .fill_meta(backups, |_| true, false)
        .await
        .map_err(|e| anyhow::anyhow!("reading metadata at {}: {e}", store))?;
    if let Some(dc) = datacenter {
        backups.retain(|b| b.is_of(dc));
    }
    sort_newest_first(&mut backups);
    backups.reverse();
    Ok(backups)
}

impl Row {
    /// The row of backup `b` at `store`, with the `--verify` result when there is one.
    fn of(store: &Store, b: StoredBackup, verified: Option<(&'static str, Option<String>)>) -> Row {
        let (verified, verify_error) = verified.map_or((None, None), |(v, e)| (Some(v), e));
        let meta = b.meta.clone().unwrap_or_default();
        let (safety_snapshot, unjudged) = (meta.is_safety_snapshot(), meta.is_unjudged());
        Row {
            destination: store.to_string(),
            key: b.key,
            time: b.name.time.to_rfc3339(),
            datacenter: b.name.datacenter,
            size: b.size,
            index: b.name.index,
            term: meta.term,
            sha256: meta.sha256,
            encrypted: b.name.encrypted,
            recipients: meta.recipients.unwrap_or_default(),
            counts: meta.counts,
            safety_snapshot,
            unjudged,
            anomaly: meta.anomaly,
            verified,
            verify_error,
        }
    }

    /// The ANOMALY column: the mark's state, or `unjudged`.
    fn anomaly_state(&self) -> &'static str {
        match &self.anomaly {
            None if self.unjudged => "unjudged",
            None => "-",
            Some(a) if a.acknowledged.is_some() => "acknowledged",
            Some(_) => "UNACKNOWLEDGED",
        }
    }
}

/// The table layout: a row per backup, then the `--verify` results and the anomalies' reasons
/// below it (they are long).
fn table(rows: &[Row], verify: bool) -> Vec<u8> {
    let mut t = String::from(
        "DESTINATION\tDATACENTER\tKEY\tTIME\tSIZE\tINDEX\tKV\tNODES\tSERVICES\tTOKENS\tENCRYPTED\tANOMALY\tROLE\tSHA256",
    );
    for r in rows {
        let c = r.counts.as_ref();
        t.push_str(&format!(
            "\n{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.destination,
            r.datacenter,
            r.key,
            r.time,
            byte_size(r.size),
            r.index,
            count(c, |c| c.kv_entries),
            count(c, |c| c.nodes),
            count(c, |c| c.services),
            count(c, |c| c.acl_tokens),
            if r.encrypted { "age" } else { "no" },
            r.anomaly_state(),
            if r.safety_snapshot {
                "safety"
            } else {
                "backup"
            },
            r.sha256.as_deref().unwrap_or("-")
        ));
    }
    if verify {
        t.push('\n');
        for r in rows {
            t.push_str(&format!(
                "\nverify {}: {}{}",
                r.key,
                r.verified.unwrap_or("-"),
                r.verify_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    for r in rows {
        if let Some(a) = &r.anomaly {
            t.push_str(&format!("\n\nanomaly {}: {}", r.key, a.reason));
        }
    }
    let mut v = tabwriter(t.as_bytes(), 0, 2);
    v.push(b'\n');
    v
}

/// `list --summary` (and `--max-age`, `--expect`): the fleet view; exit 1 when a datacenter
/// is stale or missing, each named on stderr.
fn summary_of(
    fleet: &[(String, crate::storage::StoredBackup)],
    args: &Args,
) -> anyhow::Result<ExitCode> {
    use crate::restore::fleet::{problems, summarize};
    let sums = summarize(fleet, chrono::Utc::now());
    let bad = problems(&sums, args.max_age, &args.expect);
    let out = match args.output {
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&serde_json::json!({
                "datacenters": sums,
                "problems": bad,
            }))?;
            v.push(b'\n');
            v
        }
        Format::Table => {
            let mut t = String::from(
                "DESTINATION\tDATACENTER\tNEWEST\tAGE\tINDEX\tCOUNT\tSIZE\tENCRYPTED\tANOMALY",
            );
            for s in &sums {
                let (time, age, index, enc) = match &s.newest {
                    Some(n) => (
                        n.time.to_rfc3339(),
                        humantime::format_duration(std::time::Duration::from_secs(n.age_seconds))
                            .to_string(),
                        n.index.to_string(),
                        if n.encrypted { "age" } else { "no" },
                    ),
                    None => ("-".into(), "-".into(), "-".into(), "-"),
                };
                t.push_str(&format!(
                    "\n{}\t{}\t{time}\t{age}\t{index}\t{}\t{}\t{enc}\t{}",
                    s.destination,
                    s.datacenter,
                    s.count,
                    byte_size(s.total_bytes),
                    if s.anomaly { "UNACKNOWLEDGED" } else { "-" }
                ));
            }
            let mut v = tabwriter(t.as_bytes(), 0, 2);
            v.push(b'\n');
            v
        }
    };
    for p in &bad {
        eprintln!("STALE OR MISSING: {p}");
    }
    let code = if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    Ok(super::output::stdout(&out)?.unwrap_or(code))
}
