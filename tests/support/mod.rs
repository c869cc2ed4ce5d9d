//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The independently made fixtures: `$SNAPSHOT_FIXTURES`, else `../shared/fixtures` beside the
/// repository. Missing fixtures fail the test: they are part of what CI must check.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("SNAPSHOT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    assert!(
        dir.join("README.md").is_file(),
        "fixtures not found at {} (set SNAPSHOT_FIXTURES)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// Runs the binary with `args`; on a surprise the caller prints everything in `describe`.
pub fn run_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args(args)
        .output()
        .expect("spawn consul-snapshot-agent")
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
