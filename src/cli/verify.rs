//! `verify FILE`: full verification with a one-line summary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;

use crate::archive::{read_archive, ReadOptions, TypePolicy};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The snapshot archive (`.snap`, or `.snap.age` with --age-identity) to verify.
    file: PathBuf,
    /// Accept record types Consul CE cannot restore (e.g. from a newer Consul version) instead
    /// of failing. By default they fail verification, since restoring them crashes the server.
    #[arg(long)]
    allow_unknown_types: bool,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (reader, bar) = super::age::open_archive(&args.file, &args.identity, "verifying")?;
    let types = if args.allow_unknown_types {
        TypePolicy::AnyBelowFlag
    } else {
        TypePolicy::Restorable
    };
    let result = read_archive(reader, ReadOptions { types }, &mut ());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| {
        // Consul's text, and what it means for the usual case: not a snapshot at all.
        let hint = match &e {
            crate::archive::ArchiveError::Decompress(crate::archive::GzipError::InvalidHeader) => {
                " (not a gzip file: a Consul snapshot archive starts with the gzip bytes 1f 8b; is this file a snapshot?)"
            }
            _ => "",
        };
        anyhow!("Error verifying snapshot file: {e}{hint}")
    })?;
    let line = format!(
        "Verified snapshot {}: index {}, term {}, state.bin {} bytes in {} records, archive sha256 {}\n",
        report.meta.id,
        report.meta.index,
        report.meta.term,
        report.state.len,
        report.state.records,
        hex::encode(report.archive_sha256)
    );
    Ok(super::output::stdout(line.as_bytes())?.unwrap_or(ExitCode::SUCCESS))
}
