//! `save FILE`: `consul snapshot save`, streaming: GET /v1/snapshot → verify while writing
//! `FILE.<random>.unverified` (0600, created exclusively) → fsync → rename to FILE only after
//! verification passed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use futures_util::StreamExt;

use crate::archive::{ReadOptions, TypePolicy};
use crate::config::RetryArgs;
use crate::consul::{get_snapshot, ConsulArgs, ConsulClient};
use crate::pipeline::{stream_verified, PipelineError};
use crate::storage::AtomicFile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to save the archive. Bytes go to FILE.<random>.unverified first; FILE appears only once
    /// the whole archive verified.
    file: PathBuf,
    /// Let any server answer, not only the leader (works while the cluster has no leader; the
    /// snapshot may be slightly behind).
    #[arg(long)]
    stale: bool,
    /// Append the Consul version and/or datacenter to the file name, before its extension:
    /// `--append-filename version,dc` turns backup.snap into backup-1.21.0-dc1.snap.
    #[arg(long = "append-filename", value_delimiter = ',', value_parser = ["version", "dc"], value_name = "version,dc")]
    append_filename: Vec<String>,
    #[command(flatten)]
    retry: RetryArgs,
    /// Accept record types Consul CE cannot restore (e.g. from a newer Consul).
    #[arg(long)]
    allow_unknown_types: bool,
    #[command(flatten)]
    consul: ConsulArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(save(args))?
}

async fn save(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = args.consul.resolve_from_process_env()?;
    let client = ConsulClient::new(&cfg)?;
    let mut path = args.file.clone();
    if !args.append_filename.is_empty() {
        let me = client.agent_self().await.map_err(|e| {
            anyhow!("Error connecting to Consul agent and fetching datacenter/version: {e}")
        })?;
        let parts: Vec<&str> = args
            .append_filename
            .iter()
            .map(|p| {
                if p == "version" {
                    me.version.as_str()
                } else {
                    me.datacenter.as_str()
                }
            })
            .collect();
        path = append_to_name(&path, &parts);
    }
    let retry = args.retry.policy();
    tracing::info!(
        addr = client.addr(),
        stale = args.stale,
        "requesting snapshot"
    );
    let download = get_snapshot(&client, args.stale, retry)
        .await
        .map_err(|e| anyhow!("Error saving snapshot: {e}"))?;
    let header_index = download.index;
    let bar = super::progress::bar(download.content_length, "saving");
    let counted = {
        let bar = bar.clone();
        download.body.inspect(move |c| {
            if let (Some(b), Ok(c)) = (&bar, c) {
                b.inc(c.len() as u64);
            }
        })
    };
    // A name of its own per run, created exclusively: two saves to one FILE never share a
    // temporary file, and a leftover of a killed run never blocks a later one.
    let suffix = format!(
        ".{}.unverified",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let sink = AtomicFile::create_new(&path, &suffix)
        .await
        .map_err(|e| anyhow!("Error saving snapshot: {e}"))?;
    let types = if args.allow_unknown_types {
        TypePolicy::AnyBelowFlag
    } else {
        TypePolicy::Restorable
    };
    let result = stream_verified(counted, sink, ReadOptions { types }, (), None).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let (report, (), saved) = result.map_err(|e| match e {
        PipelineError::Invalid(e) => anyhow!("Error verifying snapshot file: {e}"),
        other => anyhow!("Error saving snapshot: {other}"),
    })?;
    let index = header_index.unwrap_or(report.meta.index);
    if header_index.is_some_and(|h| h != report.meta.index) {
        tracing::warn!(header = ?header_index, meta = report.meta.index, "X-Consul-Index differs from the snapshot's meta.json index");
    }
    tracing::info!(path = %saved.display(), index, bytes = report.archive_len, sha256 = %hex::encode(report.archive_sha256), "snapshot saved");
    let line = format!("Saved and verified snapshot to index {index}\n");
    Ok(super::output::stdout(line.as_bytes())?.unwrap_or(ExitCode::SUCCESS))
}

/// `backup.snap` + ["1.21.0", "dc1"] → `backup-1.21.0-dc1.snap`.
fn append_to_name(path: &Path, parts: &[&str]) -> PathBuf {
    let stem = path.file_stem().map(OsString::from).unwrap_or_default();
    let mut name = stem;
    for p in parts {
        name.push("-");
        name.push(p);
    }
    if let Some(ext) = path.extension() {
        name.push(".");
        name.push(ext);
    }
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::append_to_name;
    use std::path::Path;

    #[test]
    fn appended_names() {
        assert_eq!(
            append_to_name(Path::new("/b/backup.snap"), &["1.21.0", "dc1"]),
            Path::new("/b/backup-1.21.0-dc1.snap")
        );
        assert_eq!(
            append_to_name(Path::new("backup"), &["dc1"]),
            Path::new("backup-dc1")
        );
    }
}
