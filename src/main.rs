//! The `consul-snapshot-agent` binary: parse, run, print the error once, exit 1 on failure.

use std::process::ExitCode;

fn main() -> ExitCode {
    match consul_snapshot_agent::cli::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            if e.downcast_ref::<consul_snapshot_agent::cli::UsageError>()
                .is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
