//! The confirmation a destructive command asks for on the terminal (`--yes` skips it).

use std::io::{BufRead, IsTerminal};

use anyhow::bail;

/// Shows `question` on stderr and goes on only if the operator types `yes`.
///
/// # Errors
/// Stdin is not a terminal (nobody to ask: `--yes` is needed), or the answer is not `yes`.
pub fn confirm(question: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to restore without confirmation: stdin is not a terminal; pass --yes to restore non-interactively");
    }
    eprint!("{question} Type 'yes' to continue: ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("restore cancelled");
    }
    Ok(())
}
