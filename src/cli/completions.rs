//! `completions SHELL` and `man`: shell completions and man pages generated from the command
//! definitions themselves (clap_complete, clap_mangen), so they never drift from `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every page (consul-snapshot-agent.1 and one per subcommand,
    /// consul-snapshot-agent-<command>.1) into this directory instead of printing the main
    /// page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` (e.g. `... completions bash >
/// /etc/bash_completion.d/consul-snapshot-agent`).
pub fn completions(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "consul-snapshot-agent", &mut out);
    if args.shell == clap_complete::Shell::Bash {
        out = fix_bash(&out);
    }
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}

/// clap_complete's bash script for a binary whose name has hyphens builds the command path as
/// `consul__snapshot__agent__subcmd__restore` in its loop but labels the cases
/// `consul__subcmd__snapshot__subcmd__agent__subcmd__restore` (clap-rs/clap#6421), so no
/// subcommand option completes: the labels are given the loop's spelling.
fn fix_bash(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace(
            "consul__subcmd__snapshot__subcmd__agent",
            "consul__snapshot__agent",
        )
        .into_bytes()
}

/// Prints the main man page (roff), or writes every page into `--dir`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = super::Cli::command();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
        clap_mangen::generate_to(cmd, &dir)
            .map_err(|e| anyhow!("writing man pages to {}: {e}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}
