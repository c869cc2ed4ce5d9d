//! `list`: the backups at each configured destination, oldest first.

use std::process::ExitCode;

use futures_util::StreamExt;
use serde::Serialize;

use crate::archive::pretty::{byte_size, tabwriter};
use crate::config::{load_files, resolve_storage, DatacenterArg, FileArgs, StorageArgs};
use crate::storage::{sort_newest_first, Store, StoredBackup};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(flatten)]
    datacenter: DatacenterArg,
    #[command(flatten)]
    files: FileArgs,
    #[command(flatten)]
    storage: StorageArgs,
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
}

/// Fills in metadata with HEAD requests where the listing had none (S3), 16 at a time.
async fn with_meta(store: &Store, backups: Vec<StoredBackup>) -> Vec<StoredBackup> {
    futures_util::stream::iter(backups)
        .map(|b| async move {
            if b.meta.is_some() {
                return b;
            }
            match store.head(&b.key).await {
                Ok(h) => StoredBackup { meta: h.meta, ..b },
                Err(_) => b,
            }
        })
        .buffered(16)
        .collect()
        .await
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(list(args))?
}

async fn list(args: Args) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    let file = load_files(&args.files)?;
    let env = |k: &str| std::env::var(k).ok();
    for store in resolve_storage(&args.storage, &file, &env)?
        .stores()
        .await?
    {
        let mut backups = store
            .list()
            .await
            .map_err(|e| anyhow::anyhow!("listing {}: {e}", store))?;
        backups.retain(|b| {
            args.datacenter
                .datacenter
                .as_deref()
                .is_none_or(|dc| b.name.datacenter == dc)
        });
        let mut backups = with_meta(&store, backups).await;
        if let Some(dc) = &args.datacenter.datacenter {
            backups.retain(|b| b.is_of(dc));
        }
        // Oldest first, in the one order of retention and --latest (time, then Raft index).
        sort_newest_first(&mut backups);
        backups.reverse();
        for b in backups {
            let meta = b.meta.clone().unwrap_or_default();
            rows.push(Row {
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
            });
        }
    }
    let out = match args.output {
        Output::Json => {
            let mut v = serde_json::to_vec_pretty(&rows)?;
            v.push(b'\n');
            v
        }
        Output::Table => {
            let mut t =
                String::from("DESTINATION\tDATACENTER\tKEY\tTIME\tSIZE\tINDEX\tENCRYPTED\tSHA256");
            for r in &rows {
                t.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.destination,
                    r.datacenter,
                    r.key,
                    r.time,
                    byte_size(r.size),
                    r.index,
                    if r.encrypted { "age" } else { "no" },
                    r.sha256.as_deref().unwrap_or("-")
                ));
            }
            let mut v = tabwriter(t.as_bytes(), 0, 2);
            v.push(b'\n');
            v
        }
    };
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}
