//! The command line: clap definitions and dispatch. Each subcommand lives in its own module and
//! returns `anyhow::Result`; `main` prints the error once and picks the exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod age;
mod agent;
mod completions;
mod confirm;
#[cfg(feature = "dev")]
mod dev;
#[cfg(feature = "dev")]
mod dev_server;
mod diff;
mod docs;
mod drill;
#[cfg(feature = "dev")]
mod generate;
mod inspect;
mod kv_export;
mod list;
mod logging;
mod output;
mod peers_json;
mod progress;
mod prune;
mod restore;
mod restore_kv;
mod runtime;
mod save;
mod target;
mod verify;

/// Takes, verifies, stores and restores HashiCorp Consul snapshots.
///
/// A snapshot archive (`.snap`) is what `consul snapshot save` and `GET /v1/snapshot` produce:
/// gzip(tar(meta.json, state.bin, SHA256SUMS)). Every command here reads it in one streaming
/// pass and checks it as strictly as Consul does before a restore.
#[derive(Debug, Parser)]
#[command(name = "consul-snapshot-agent", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log verbosity (logs go to stderr). Default: info for agent, dev and dev-server (or the
    /// config file's log.level), warn for the other commands.
    #[arg(long = "log-level", global = true, value_enum)]
    log_level: Option<logging::Level>,
    /// Log as JSON lines instead of text.
    #[arg(long = "log-json", global = true)]
    log_json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a snapshot archive as Consul would before restoring it.
    ///
    /// Checks the gzip stream (CRC, no trailing bytes), the three tar entries, the SHA256SUMS
    /// digests, meta.json (version, size) and every state.bin record. Prints one line with the
    /// snapshot ID, Raft index and term, state.bin size and the archive's SHA-256; exits 1 with
    /// Consul's error text otherwise.
    Verify(verify::Args),
    /// Show what a snapshot holds, in the layout of `consul snapshot inspect`.
    ///
    /// Counts bytes and records per record type and, with --kvdetails, per KV key prefix.
    /// FILE may be a `.snap` archive, or a raw `state.bin` with `meta.json` beside it (a
    /// snapshot directory of a Consul server's data dir). Consul's single-dash spellings
    /// (`-kvdetails`, `-format=json`) are accepted too.
    Inspect(inspect::Args),
    /// Write a synthetic snapshot archive, for demos and tests.
    ///
    /// The archive has Consul's exact layout and a deterministic state (catalog nodes, a
    /// session, KV entries, tombstones, indexes, autopilot, chunking state). It is not taken
    /// from any Consul cluster.
    #[cfg(feature = "dev")]
    Generate(generate::Args),
    /// Save a snapshot from Consul to FILE, verified while it streams.
    ///
    /// Like `consul snapshot save`: GET /v1/snapshot, write FILE.unverified (mode 0600), fsync,
    /// and rename to FILE only after the archive verified; otherwise nothing is left behind.
    /// Connection options follow the consul CLI (--http-addr, --token-file, --ca-file...) and
    /// its environment variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT...).
    Save(Box<save::Args>),
    /// Back up Consul: snapshot, verify while streaming, store, apply retention.
    ///
    /// With --once: one cycle, then exit (for cron or a Kubernetes CronJob). Destinations:
    /// --local-path and/or --aws-s3-bucket (flag names as Consul Enterprise's snapshot agent).
    /// Each destination publishes only a verified archive; retention runs per destination and
    /// only after that destination stored the new backup.
    Agent(Box<agent::Args>),
    /// List the backups at the configured destinations.
    List(Box<list::Args>),
    /// Apply the retention policy now, printing each backup kept or deleted with its reason.
    Prune(Box<prune::Args>),
    /// Prove a backup restores: restore it into a scratch Consul and compare what comes back.
    ///
    /// Fetches and verifies the backup (FILE, --latest or --key), restores it into the Consul
    /// at --target-http-addr (refused when that is the agent's own cluster), takes a snapshot
    /// back and compares records per type and the KV key set. Exit 0 when it matches, 1 when
    /// not, with what differed and the time each step took.
    Drill(Box<drill::Args>),
    /// Write Raft's peers.json to recover a cluster that lost quorum (data intact).
    ///
    /// The servers come from a snapshot's Raft configuration (FILE or --latest) or from a
    /// live server (--from-consul ADDR); --exclude leaves out servers gone for good. Prints
    /// the recovery steps, and what peers.json cannot fix (lost data needs a restore).
    PeersJson(Box<peers_json::Args>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionArgs),
    /// Print the man page (roff), or write every page with --dir.
    Man(completions::ManArgs),
    /// Restore a backup into Consul: fetch, verify, show, confirm, PUT /v1/snapshot.
    ///
    /// From a local FILE, or from the configured destinations with --latest, --key or --before.
    /// The archive is verified into a private temporary file first (its SHA-256 against the
    /// digest stored with the backup, and every SHA256SUMS/record check); nothing unverified is
    /// ever sent. Asks for confirmation (--yes skips it; without a terminal, --yes is required).
    /// Takes a safety snapshot of the current state first when restoring from a destination.
    ///
    /// With --kv-prefix, restores only the KV entries under the prefixes and touches nothing
    /// else: plans against the live subtree (create, update, and with --delete-extra delete),
    /// shows the plan, saves the current values of the keys it touches to a file, then writes
    /// with check-and-set transactions so that a key changed meanwhile is not overwritten.
    /// With --dry-run (a full restore), shows what the restore would change against the live
    /// cluster.
    Restore(Box<restore::Args>),
    /// Write the KV entries of a backup under --prefix (`--prefix ''`: all) as `consul kv
    /// export` does.
    ///
    /// The JSON (`[{"key", "flags", "value": base64}]`) loads with `consul kv import`. The
    /// archive is verified as it streams (state.bin read once); nothing is written before the
    /// whole archive has verified. Memory stays small whatever the snapshot size.
    KvExport(Box<kv_export::Args>),
    /// Show what changed between two snapshots, or a snapshot and the live cluster.
    ///
    /// KV keys added, removed and changed (value digest, flags), catalog nodes and service
    /// instances added and removed, and the count of every record type (ACL tokens and
    /// policies, sessions, config entries, prepared queries, intentions...). Each side is a
    /// file, a backup key, `latest`, `before:TIME`, or `live` (a fresh GET /v1/snapshot).
    Diff(Box<diff::Args>),
    /// A one-command demo: the Consul API test server plus the agent backing it up to a local
    /// directory every few seconds, with retention rotating old backups. Ctrl-C stops both.
    #[cfg(feature = "dev")]
    Dev(dev::Args),
    /// Run the Consul API test server: a test double of Consul's HTTP API, not Consul.
    ///
    /// Serves snapshot save/restore, status, agent info, sessions, KV locks and service
    /// registration with TTL checks, from a synthetic state; faults (no leader, 403, truncated
    /// or slow bodies...) are switched with PUT /_testserver/faults while it runs.
    #[cfg(feature = "dev")]
    DevServer(dev_server::Args),
}

/// A configuration or usage error found after clap parsed the command line (a bad file key, a
/// value out of range): `main` exits 2 for it, as clap does for a bad flag.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

/// Marks an error as the user's input being wrong (exit 2).
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(UsageError(e))
}

/// Parses `args` (including the program name) and runs the command.
/// The command line as parsed, `--help` and the man pages: the derived definitions plus the
/// EXAMPLES, EXIT STATUS and ENVIRONMENT epilogues (the `docs` module).
pub fn command() -> clap::Command {
    docs::with_help(<Cli as clap::CommandFactory>::command())
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<ExitCode> {
    let matches = command().get_matches_from(consul_style_flags(args));
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (level, json) = (cli.log_level, cli.log_json);
    match &cli.command {
        // The agent initialises logging itself, once its configuration file is read.
        Command::Agent(_) => {}
        #[cfg(feature = "dev")]
        Command::DevServer(_) | Command::Dev(_) => {
            logging::init(level.unwrap_or(logging::Level::Info), json)
        }
        _ => logging::init(level.unwrap_or(logging::Level::Warn), json),
    }
    match cli.command {
        Command::Verify(a) => verify::run(a),
        Command::Inspect(a) => inspect::run(a),
        #[cfg(feature = "dev")]
        Command::Generate(a) => generate::run(a),
        Command::Save(a) => save::run(*a),
        #[cfg(feature = "dev")]
        Command::DevServer(a) => dev_server::run(a),
        Command::Agent(a) => agent::run(*a, level, json),
        #[cfg(feature = "dev")]
        Command::Dev(a) => dev::run(a),
        Command::Restore(a) => restore::run(*a),
        Command::KvExport(a) => kv_export::run(*a),
        Command::Diff(a) => diff::run(*a),
        Command::List(a) => list::run(*a),
        Command::Prune(a) => prune::run(*a),
        Command::PeersJson(a) => peers_json::run(*a),
        Command::Drill(a) => drill::run(*a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
    }
}

/// Rewrites Consul's single-dash long flags (`-kvdetails`, `-kvdepth=3`) to clap's `--` form.
fn consul_style_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    const CONSUL_FLAGS: [&str; 4] = ["kvdetails", "kvdepth", "kvfilter", "format"];
    args.into_iter()
        .map(|a| {
            let Some(s) = a.to_str() else { return a };
            let Some(rest) = s.strip_prefix('-').filter(|r| !r.starts_with('-')) else {
                return a;
            };
            let name = rest.split('=').next().unwrap_or(rest);
            if CONSUL_FLAGS.contains(&name) {
                OsString::from(format!("--{rest}"))
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn single_dash_consul_flags_are_rewritten() {
        let args = [
            "x",
            "inspect",
            "-kvdetails",
            "-kvdepth=3",
            "-format",
            "json",
            "-h",
            "f.snap",
        ]
        .map(OsString::from);
        let out: Vec<String> = consul_style_flags(args)
            .into_iter()
            .map(|a| a.into_string().expect("utf8"))
            .collect();
        assert_eq!(
            out,
            [
                "x",
                "inspect",
                "--kvdetails",
                "--kvdepth=3",
                "--format",
                "json",
                "-h",
                "f.snap"
            ]
        );
    }
}
