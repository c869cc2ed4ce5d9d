//! `inspect`: Consul-compatible statistics of a snapshot archive or a raw state.bin.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;

use crate::archive::{
    gojson, pretty, read_archive, ArchiveError, InspectStats, KvOptions, ReadOptions, SnapshotMeta,
    StateParser, TypePolicy,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Tab-aligned tables, as `consul snapshot inspect` prints them.
    Pretty,
    /// `consul snapshot inspect -format json` (3-space indent; sizes in bytes).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `.snap` archive (`.snap.age` with --age-identity), or a raw `state.bin` with
    /// `meta.json` in the same directory.
    file: PathBuf,
    /// Break KV space usage down by key prefix.
    #[arg(long)]
    kvdetails: bool,
    /// With --kvdetails: number of `/`-separated key segments per prefix.
    #[arg(long, default_value_t = 2, value_name = "N")]
    kvdepth: usize,
    /// With --kvdetails: count only keys starting with PREFIX.
    #[arg(long, default_value = "", value_name = "PREFIX")]
    kvfilter: String,
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Format::Pretty)]
    format: Format,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let kv = args.kvdetails.then(|| KvOptions {
        depth: args.kvdepth,
        filter: args.kvfilter.clone().into_bytes(),
    });
    let mut stats = InspectStats::new(kv);
    let file = File::open(&args.file).map_err(|e| anyhow!("Error opening snapshot file: {e}"))?;
    let is_raw = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("state.bin"));
    let meta = if is_raw {
        inspect_raw(&args.file, file, &mut stats)?
    } else {
        drop(file);
        let (reader, bar) = super::age::open_archive(&args.file, &args.identity, "inspecting")?;
        // Like `consul snapshot inspect`, show every type byte below 128 (as `Unknown(n)` if
        // need be); `verify` is the strict check.
        let result = read_archive(
            reader,
            ReadOptions {
                types: TypePolicy::AnyBelowFlag,
            },
            &mut stats,
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(report) => report.meta,
            Err(ArchiveError::State(e)) => {
                return Err(anyhow!("Error extracting snapshot data: {e}"))
            }
            Err(e) => return Err(anyhow!("Error reading snapshot: {e}")),
        }
    };
    let report = stats.into_report(&meta);
    let mut out = match args.format {
        Format::Pretty => pretty::render(&report),
        Format::Json => gojson::to_vec_indent(&report, b"   ")?,
    };
    out.push(b'\n');
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}

/// Raft data-dir mode: `state.bin` read as is, `meta.json` from beside it (no SHA256SUMS).
fn inspect_raw(
    path: &Path,
    mut file: File,
    stats: &mut InspectStats,
) -> anyhow::Result<SnapshotMeta> {
    let meta_path = path.with_file_name("meta.json");
    let raw = std::fs::read(&meta_path)
        .map_err(|e| anyhow!("Error reading meta.json from internal snapshot dir: {e}"))?;
    let meta = SnapshotMeta::from_json(&raw)
        .map_err(|e| anyhow!("Error parsing meta.json from internal snapshot dir: {e}"))?;
    let mut parser = StateParser::new(TypePolicy::AnyBelowFlag);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!("Error reading state.bin: {e}")),
        };
        parser
            .feed(&buf[..n], stats)
            .map_err(|e| anyhow!("Error extracting snapshot data: {e}"))?;
    }
    parser
        .finish()
        .map_err(|e| anyhow!("Error extracting snapshot data: {e}"))?;
    Ok(meta)
}
