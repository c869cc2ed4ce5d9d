//! `peers-json`: writes Raft's `peers.json` for recovering quorum (see
//! [`crate::restore::peers`]), from a snapshot archive, the newest stored backup, or a live
//! `/v1/operator/raft/configuration`, and prints the recovery steps.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail};

use crate::archive::{read_archive, ReadOptions, TypePolicy};
use crate::consul::{ConsulArgs, ConsulClient};
use crate::restore::fetch_verified;
use crate::restore::peers::{self, Peer};
use crate::restore::select::Selection;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A snapshot archive (`.snap`, or `.snap.age` with --age-identity) whose meta.json Raft
    /// configuration lists the servers.
    #[arg(conflicts_with_all = ["latest", "from_consul"])]
    file: Option<PathBuf>,
    /// The newest backup at the configured destinations (fetched and verified first).
    #[arg(long, conflicts_with = "from_consul")]
    latest: bool,
    /// Read the live configuration from this Consul server (`GET
    /// /v1/operator/raft/configuration?stale`, which any server answers without a leader);
    /// token and TLS from the Consul options.
    #[arg(long = "from-consul", value_name = "ADDR")]
    from_consul: Option<String>,
    /// Leave out a server that is gone for good, by Raft ID or address; repeatable.
    #[arg(long, value_name = "ID|ADDRESS")]
    exclude: Vec<String>,
    /// Write peers.json to this file (default: standard output; the steps go to stderr).
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    identity: super::age::IdentityArgs,
    #[command(flatten)]
    target: super::target::TargetArgs,
    #[command(flatten)]
    consul: ConsulArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::runtime::block_on(peers_json(args))?
}

/// The servers of the source `args` names.
async fn servers(args: &Args) -> anyhow::Result<Vec<Peer>> {
    if let Some(f) = &args.file {
        let (reader, bar) = super::age::open_archive(f, &args.identity, "reading")?;
        let report = read_archive(
            reader,
            ReadOptions {
                types: TypePolicy::AnyBelowFlag,
            },
            &mut (),
        );
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = report.map_err(|e| anyhow!("Error verifying snapshot file: {e}"))?;
        return Ok(peers::from_snapshot(&report.meta.configuration));
    }
    let target = args.target.load()?;
    if let Some(addr) = &args.from_consul {
        let flags = ConsulArgs {
            http_addr: Some(addr.clone()),
            ..args.consul.clone()
        };
        let consul = target.consul(&flags)?;
        let body = ConsulClient::new(&consul)?
            .raft_configuration()
            .await
            .map_err(|e| anyhow!("reading the Raft configuration from {addr}: {e}"))?;
        return Ok(peers::from_operator(&body)?);
    }
    if !args.latest {
        bail!("say where the servers come from: a FILE, --latest or --from-consul ADDR");
    }
    let stores = target.stores().await?;
    let consul = target.consul(&args.consul)?;
    let source =
        super::target::stored(&stores, &Selection::Latest, consul.datacenter.as_deref()).await?;
    let ids = std::sync::Arc::new(crate::crypto::Identities::load(
        &args.identity.age_identities,
    )?);
    let prepared = fetch_verified(&source, TypePolicy::AnyBelowFlag, &ids)
        .await
        .map_err(|e| anyhow!("Error verifying snapshot: {e}"))?;
    eprintln!(
        "From {source} (snapshot index {}).",
        prepared.report.meta.index
    );
    Ok(peers::from_snapshot(&prepared.report.meta.configuration))
}

async fn peers_json(args: Args) -> anyhow::Result<ExitCode> {
    let all = servers(&args).await?;
    let left = peers::exclude(all, &args.exclude).map_err(|e| super::usage(anyhow!(e)))?;
    let text = peers::render(&left);
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text).map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
            eprintln!("Wrote {}.", path.display());
        }
        None => {
            if let Some(code) = super::output::stdout(text.as_bytes())? {
                return Ok(code);
            }
        }
    }
    let _ = std::io::stderr().write_all(peers::steps(&left).as_bytes());
    Ok(ExitCode::SUCCESS)
}
