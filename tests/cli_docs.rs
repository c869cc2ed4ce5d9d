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

/// Completes `words` (the last one being completed) with the generated bash script, in bash,
/// as bash's programmable completion calls it: the candidates offered.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cword = words.len() - 1;
    let prev = words[cword.saturating_sub(1)];
    let cur = words[cword];
    let program = format!(
        "source '{}'; COMP_WORDS=({line}); COMP_CWORD={cword}; \
         _consul__snapshot__agent consul-snapshot-agent '{cur}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommand_options_despite_the_hyphenated_name() {
    let out = run_cli(&["completions", "bash"]);
    assert!(out.status.success(), "{}", describe(&out));
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("consul-snapshot-agent.bash");
    std::fs::write(&script, &out.stdout).expect("write");
    let got = bash_complete(&script, &["consul-snapshot-agent", "restore", "--la"]);
    assert_eq!(got, vec!["--latest"], "restore --la completes");
    let got = bash_complete(&script, &["consul-snapshot-agent", "peers-json", "--exc"]);
    assert_eq!(got, vec!["--exclude"], "a hyphenated subcommand too");
    let got = bash_complete(&script, &["consul-snapshot-agent", "ver"]);
    assert_eq!(got, vec!["verify"]);
}

#[test]
fn every_man_page_a_page_refers_to_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_cli(&["man", "--dir", dir.path().to_str().expect("p")]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut refs = 0;
    for page in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        let text = std::fs::read_to_string(page.path()).expect("page");
        // roff escapes hyphens: consul\-snapshot\-agent\-restore(1)
        for (at, _) in text.match_indices("consul\\-snapshot\\-agent\\-") {
            let rest = &text[at..];
            let Some(end) = rest.find("(1)") else {
                continue;
            };
            let name = rest[..end].replace("\\-", "-");
            if name.contains(char::is_whitespace) {
                continue;
            }
            refs += 1;
            assert!(
                dir.path().join(format!("{name}.1")).is_file(),
                "{} refers to {name}(1), which was not written",
                page.path().display()
            );
        }
    }
    assert!(refs > 5, "the main page lists the subcommands: {refs}");
}

#[test]
fn help_and_man_pages_have_examples_exit_status_and_environment() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_cli(&["man", "--dir", dir.path().to_str().expect("p")]);
    assert!(out.status.success(), "{}", describe(&out));
    for page in [
        "consul-snapshot-agent",
        "consul-snapshot-agent-restore",
        "consul-snapshot-agent-agent",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{page}.1"))).expect("page");
        for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\"", ".SH ENVIRONMENT"] {
            assert!(text.contains(section), "{page} lacks {section}");
        }
        assert!(
            text.contains("CONSUL\\_HTTP\\_ADDR") || text.contains("CONSUL_HTTP_ADDR"),
            "{page}"
        );
    }
    let out = run_cli(&["restore", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:")
            && help.contains("restore --latest")
            && help.contains("Exit status:"),
        "{help}"
    );
}

#[test]
fn fish_completes_subcommand_options() {
    let out = run_cli(&["completions", "fish"]);
    assert!(out.status.success(), "{}", describe(&out));
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("consul-snapshot-agent.fish");
    std::fs::write(&script, &out.stdout).expect("write");
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!(
                "source '{}'; complete -C '{line}'",
                script.display()
            ))
            .output()
            .expect("fish (Debian's fish; tests/servers.sh installs it)");
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect()
    };
    assert_eq!(
        complete("consul-snapshot-agent restore --la"),
        vec!["--latest"]
    );
    assert_eq!(
        complete("consul-snapshot-agent peers-json --exc"),
        vec!["--exclude"]
    );
}
