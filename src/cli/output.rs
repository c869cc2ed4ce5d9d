//! Writing command output to stdout. A closed pipe (`inspect x.snap | head`) ends the command
//! quietly with success, as ripgrep does.

use std::io::{self, Write};
use std::process::ExitCode;

/// `--output` of the commands that print a report: a table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Writes `bytes` to stdout and flushes. `Ok(Some(code))` means stop now with that code.
pub fn stdout(bytes: &[u8]) -> anyhow::Result<Option<ExitCode>> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Some(ExitCode::SUCCESS)),
        Err(e) => Err(anyhow::anyhow!("writing to stdout failed: {e}")),
    }
}
