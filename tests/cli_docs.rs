//! Shell completions and man pages come from the command definitions: every subcommand and
//! flag is in them, and bash accepts the script.

mod support;

use std::process::Command;

use support::{describe, run_cli};

#[test]
fn bash_completion_knows_every_command_and_parses() {
    let out = run_cli(&["completions", "bash"]);
    assert!(out.status.success(), "{}", describe(&out));
    let script = String::from_utf8(out.stdout).expect("utf8");
    for word in [
        "peers-json",
        "prune",
        "--acknowledge-anomaly",
        "--shrink-threshold",
    ] {
        assert!(script.contains(word), "{word} missing");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.bash");
    std::fs::write(&path, &script).expect("write");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash");
    assert!(check.status.success(), "{}", describe(&check));
    for shell in ["zsh", "fish"] {
        let out = run_cli(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
}

#[test]
fn man_pages_for_every_subcommand() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_cli(&["man", "--dir", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", describe(&out));
    for page in [
        "consul-snapshot-agent.1",
        "consul-snapshot-agent-prune.1",
        "consul-snapshot-agent-peers-json.1",
        "consul-snapshot-agent-restore.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is roff"
        );
    }
    let prune =
        std::fs::read_to_string(dir.path().join("consul-snapshot-agent-prune.1")).expect("read");
    assert!(prune.contains("acknowledge\\-anomaly"), "{prune}");
    let main = run_cli(&["man"]);
    assert!(String::from_utf8_lossy(&main.stdout).contains(".TH"));
}
