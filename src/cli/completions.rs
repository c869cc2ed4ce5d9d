//! `completions SHELL` and `man`: shell completions and man pages generated from the command
//! definitions themselves (clap_complete, clap_mangen), so they never drift from `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;

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
    let mut cmd = super::command();
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
    let mut cmd = super::command();
    cmd.build();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
        let write = |name: &str, page: Vec<u8>| {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, page).map_err(|e| anyhow!("writing {}: {e}", path.display()))
        };
        write(cmd.get_name(), page(&cmd, "")?)?;
        // One page per subcommand, named as the main page's SEE ALSO names them.
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{}-{}", cmd.get_name(), sub.get_name());
            // clap names are 'static (without its "string" feature); a handful of pages.
            let sub_cmd = sub.clone().name(&*Box::leak(name.clone().into_boxed_str()));
            write(&name, page(&sub_cmd, sub.get_name())?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let out = page(&cmd, "")?;
    Ok(super::output::stdout(&out)?.unwrap_or(ExitCode::SUCCESS))
}

/// One man page: clap_mangen's sections, with EXAMPLES, EXIT STATUS and ENVIRONMENT
/// ([`super::docs::man_sections`]) in place of its untitled EXTRA section.
fn page(cmd: &clap::Command, name: &str) -> anyhow::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    // `help`'s own subcommands (help verify, ...) get no pages: its page lists none.
    if cmd.has_subcommands() && name != "help" {
        man.render_subcommands_section(&mut out)?;
    }
    out.extend_from_slice(super::docs::man_sections(name).as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}
