//! `diff FROM TO`: what changed between two snapshots, or between a snapshot and the live
//! cluster. Each side is read once, verified, through the archive reader.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;

use crate::archive::TypePolicy;
use crate::consul::{ConsulArgs, ConsulClient};
use crate::restore::diff::{diff, render, SnapshotIndex};
use crate::restore::select::{parse_time, Selection};
use crate::restore::{read_verified, Source};

use super::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The older side: a snapshot file (when a file of that name exists), a backup key,
    /// `latest` (the newest usable backup), `before:TIME` (the newest usable backup at or
    /// before TIME), or `live` (a fresh snapshot of the cluster now).
    #[arg(value_name = "FROM")]
    from: String,
    /// The newer side, written as FROM is. Added means in TO only.
    #[arg(value_name = "TO")]
    to: String,
    /// Output layout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
    #[command(flatten)]
    target: super::target::TargetArgs,
    /// The cluster of `live`; --datacenter also chooses among the datacenters of `latest`.
    #[command(flatten)]
    consul: ConsulArgs,
}

/// One side as written on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    File(std::path::PathBuf),
    Stored(Selection),
    Live,
}

/// Reads a side: an existing file wins over a backup key of the same name.
pub fn parse_side(s: &str, exists: impl Fn(&Path) -> bool) -> Result<Side, String> {
    if exists(Path::new(s)) {
        return Ok(Side::File(s.into()));
    }
    Ok(match s {
        "live" => Side::Live,
        "latest" => Side::Stored(Selection::Latest),
        _ => match s.strip_prefix("before:") {
            Some(t) => Side::Stored(Selection::Before(parse_time(t)?)),
            None => Side::Stored(Selection::Key(s.to_string())),
        },
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(run_diff(args))?
}

async fn run_diff(args: Args) -> anyhow::Result<ExitCode> {
    let target = args.target.load()?;
    let consul = target.consul(&args.consul)?;
    let ids = Arc::new(crate::crypto::Identities::load(
        &args.identity.age_identities,
    )?);
    let mut sides = Vec::new();
    for (what, s) in [("FROM", &args.from), ("TO", &args.to)] {
        let side = parse_side(s, |p| p.is_file())
            .map_err(|e| super::usage(anyhow!("{what} {s:?}: {e}")))?;
        let source = match side {
            Side::File(p) => Source::File(p),
            Side::Live => Source::Live(Box::new(ConsulClient::new(&consul)?)),
            Side::Stored(sel) => {
                super::target::stored(&target.stores().await?, &sel, consul.datacenter.as_deref())
                    .await?
            }
        };
        let index = SnapshotIndex::new().map_err(|e| anyhow!("creating a spool file: {e}"))?;
        let (report, index) = read_verified(&source, TypePolicy::AnyBelowFlag, &ids, index)
            .await
            .map_err(|e| anyhow!("Error verifying snapshot {source}: {e}"))?;
        if let Some(e) = &index.error {
            return Err(anyhow!("reading {source}: {e}"));
        }
        sides.push((format!("{source} (index {})", report.meta.index), index));
    }
    let (to_name, to) = sides.pop().ok_or_else(|| anyhow!("no TO side"))?;
    let (from_name, from) = sides.pop().ok_or_else(|| anyhow!("no FROM side"))?;
    let d = diff(from_name, from, to_name, to).map_err(|e| anyhow!("comparing: {e}"))?;
    let out = match args.output {
        Format::Table => render(&d).into_bytes(),
        Format::Json => {
            let mut v = serde_json::to_vec_pretty(&d)?;
            v.push(b'\n');
            v
        }
    };
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_is_a_file_a_selection_a_key_or_live() {
        let none = |_: &Path| false;
        assert_eq!(parse_side("live", none), Ok(Side::Live));
        assert_eq!(
            parse_side("latest", none),
            Ok(Side::Stored(Selection::Latest))
        );
        assert!(matches!(
            parse_side("before:20261121T190000Z", none),
            Ok(Side::Stored(Selection::Before(_)))
        ));
        assert!(parse_side("before:yesterday", none).is_err());
        assert_eq!(
            parse_side("consul-dc1-x.snap", none),
            Ok(Side::Stored(Selection::Key("consul-dc1-x.snap".into())))
        );
        // A file named like a keyword is the file.
        assert_eq!(parse_side("live", |_| true), Ok(Side::File("live".into())));
    }
}
