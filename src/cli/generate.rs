//! `generate FILE`: a synthetic snapshot archive (see `archive::synth`).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use crate::archive::synth::SynthSpec;
use crate::archive::WriteOptions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the archive; written to FILE.tmp first, then renamed.
    file: PathBuf,
    /// Number of KV entries.
    #[arg(long, default_value_t = 2000, conflicts_with = "state_size")]
    kv_entries: u64,
    /// Aim for a state.bin of about this size instead, e.g. `100MiB`, `1GiB`.
    #[arg(long, value_parser = parse_size)]
    state_size: Option<u64>,
    /// Catalog nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Seed of the generator: the same arguments give the same state.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Raft index recorded in the snapshot.
    #[arg(long, default_value_t = 1000)]
    index: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let spec = match args.state_size {
        Some(bytes) => SynthSpec {
            seed: args.seed,
            nodes: args.nodes,
            index: args.index,
            ..SynthSpec::with_state_size(bytes)
        },
        None => SynthSpec {
            seed: args.seed,
            nodes: args.nodes,
            kv_entries: args.kv_entries,
            index: args.index,
            ..SynthSpec::default()
        },
    };
    let mut tmp = args.file.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let result = spec
        .write_archive(
            BufWriter::with_capacity(1 << 20, file),
            &WriteOptions::default(),
        )
        .map_err(|e| anyhow!("{e}"))
        .and_then(|w| w.into_inner().map_err(|e| anyhow!("{}", e.error())))
        .and_then(|f| f.sync_all().map_err(|e| anyhow!("{e}")));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", args.file.display())));
    }
    fs::rename(&tmp, &args.file).with_context(|| format!("renaming to {}", args.file.display()))?;
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "Wrote synthetic snapshot to {} (index {}, {} KV entries)",
        args.file.display(),
        spec.index,
        spec.kv_entries
    );
    Ok(ExitCode::SUCCESS)
}

pub use crate::config::parse_size;

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("x").is_err());
    }
}
