//! `kv-export`: the KV entries of a backup, all or under prefixes, in the JSON of
//! `consul kv export` (which `consul kv import` reads). Nothing is written before the whole
//! archive has verified: entries stream to a private spool file, copied out at the end.

use std::io::{Seek, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail};

use crate::archive::TypePolicy;
use crate::consul::ConsulArgs;
use crate::restore::kv::export::{ExportWriter, KvSelect, Output};
use crate::restore::read_verified;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    choice: super::target::BackupChoice,
    /// Export the keys that start with this prefix (a raw string prefix, as Consul's
    /// `?recurse` reads it: `app/` is the subtree, `app` also matches `apple`); repeatable.
    /// `--prefix ''` exports every key (an empty prefix is only ever given explicitly). A
    /// prefix that matches nothing is an error.
    #[arg(long, value_name = "PREFIX", required = true)]
    prefix: Vec<String>,
    /// Write the JSON to this file (replaced only once complete) instead of stdout.
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
    #[command(flatten)]
    target: super::target::TargetArgs,
    /// Used for --datacenter, which chooses among the datacenters of --latest and --before.
    #[command(flatten)]
    consul: ConsulArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(export(args))?
}

/// Fails when a prefix matched nothing, naming the nearest key directories of the backup.
pub fn check_prefixes(v: &KvSelect, flag: &str) -> anyhow::Result<()> {
    let missing = v.unmatched();
    if missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = missing
        .iter()
        .map(|(p, near)| {
            if near.is_empty() {
                format!("{flag} {p:?} matches no key (the backup has no KV entries)")
            } else {
                format!(
                    "{flag} {p:?} matches no key of the backup; nearest prefixes present: {}",
                    near.iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })
        .collect();
    bail!("{}", lines.join("\n"))
}

async fn export(args: Args) -> anyhow::Result<ExitCode> {
    let target = args.target.load()?;
    let consul = target.consul(&args.consul)?;
    let source = target
        .chosen(&args.choice, "export", consul.datacenter.as_deref())
        .await?;
    let ids = Arc::new(crate::crypto::Identities::load(
        &args.identity.age_identities,
    )?);
    let prefixes: Vec<Vec<u8>> = args.prefix.iter().map(|p| p.as_bytes().to_vec()).collect();
    let spool = tempfile::tempfile().map_err(|e| anyhow!("creating a spool file: {e}"))?;
    let visitor = KvSelect::new(
        prefixes,
        Output::Spool(ExportWriter::new(std::io::BufWriter::new(spool))),
    );
    // Enterprise record types are read too: nothing is restored from the whole archive.
    let (report, visitor) = read_verified(&source, TypePolicy::AnyBelowFlag, &ids, visitor)
        .await
        .map_err(|e| anyhow!("Error verifying snapshot {source}: {e}; nothing exported"))?;
    if let Some(e) = &visitor.error {
        bail!("reading the KV entries of {source}: {e}; nothing exported");
    }
    check_prefixes(&visitor, "--prefix").map_err(|e| anyhow!("{e}; nothing exported"))?;
    let (count, lossy) = (visitor.count(), visitor.lossy_keys);
    let Output::Spool(w) = visitor.output else {
        bail!("internal: the export was not spooled");
    };
    let mut spool = w
        .finish()
        .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
        .map_err(|e| anyhow!("writing the spool file: {e}"))?;
    spool.rewind()?;
    match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| anyhow!("creating a file in {}: {e}", dir.display()))?;
            std::io::copy(&mut spool, &mut tmp)?;
            tmp.as_file().sync_all()?;
            tmp.persist(path)
                .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            match std::io::copy(&mut spool, &mut out).and_then(|_| out.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS)
                }
                Err(e) => bail!("writing to stdout failed: {e}"),
            }
        }
    }
    eprintln!(
        "Exported {count} KV entr{} from {source} (index {}, datacenter {}){}.",
        if count == 1 { "y" } else { "ies" },
        report.meta.index,
        report_dc(&source),
        args.output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    if lossy > 0 {
        eprintln!("Warning: {lossy} key(s) are not UTF-8; written with U+FFFD in place of the invalid bytes, as `consul kv export` writes them.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The datacenter a stored backup's name carries, or "-" for a file.
fn report_dc(source: &crate::restore::Source) -> String {
    match source {
        crate::restore::Source::Stored { backup, .. } => backup.name.datacenter.clone(),
        _ => "-".into(),
    }
}
