//! `agent --once`, `list` and `prune` end to end: the Consul API test server, a local
//! directory and a real S3 server (Garage, or `S3_ENDPOINT`).

mod support;

use std::process::Output;
use std::time::Duration;

use consul_snapshot_agent::devserver::{DevServerConfig, Faults};
use serde_json::Value;
use support::garage::{s3_target, S3Target};
use support::{describe, run_cli_env, TestConsul};

fn cli(args: &[String], s3: &S3Target) -> Output {
    let env = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli_env(&args, &env)
}

fn once(
    consul: &TestConsul,
    s3: &S3Target,
    prefix: &str,
    local: &std::path::Path,
    extra: &[&str],
) -> Output {
    let mut args: Vec<String> = ["agent", "--once", "--retries", "0", "--http-addr"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(consul.addr());
    args.push("--local-path".into());
    args.push(local.display().to_string());
    args.extend(s3.cli_args(prefix));
    args.extend(extra.iter().map(|s| s.to_string()));
    cli(&args, s3)
}

fn list_json(s3: &S3Target, prefix: &str, local: &std::path::Path) -> Vec<Value> {
    let mut args: Vec<String> = vec![
        "list".into(),
        "--output".into(),
        "json".into(),
        "--local-path".into(),
        local.display().to_string(),
    ];
    args.extend(s3.cli_args(prefix));
    let out = cli(&args, s3);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("json")
}

#[test]
fn cycles_store_everywhere_and_rotate_and_a_failed_cycle_deletes_nothing() {
    let consul = TestConsul::start(DevServerConfig::default());
    let s3 = s3_target();
    let prefix = format!("once-{}", uuid::Uuid::new_v4().simple());
    let local = tempfile::tempdir().expect("tmp");

    for i in 0..3 {
        let out = once(
            &consul,
            &s3,
            &prefix,
            local.path(),
            &["--retain", "2", "--verify-readback"],
        );
        assert!(out.status.success(), "cycle {i}: {}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("Saved and verified snapshot to index 1000"),
            "{text}"
        );
        assert_eq!(text.matches(": stored ").count(), 2, "{text}");
        std::thread::sleep(Duration::from_millis(1100)); // names have one-second resolution
    }
    let rows = list_json(&s3, &prefix, local.path());
    assert_eq!(rows.len(), 4, "2 per destination after retain 2: {rows:#?}");
    for r in &rows {
        assert_eq!(r["index"], 1000);
        assert_eq!(r["sha256"].as_str().map(str::len), Some(64), "{r}");
        assert_eq!(r["datacenter"], "dc1");
    }
    let before: Vec<String> = rows
        .iter()
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect();

    // A cycle whose snapshot is cut short fails, stores nothing and deletes nothing.
    consul.faults(Faults {
        truncate_after: Some(4000),
        ..Faults::default()
    });
    let out = once(&consul, &s3, &prefix, local.path(), &["--retain", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Snapshot failed: snapshot verification failed: failed to read snapshot file"),
        "{err}"
    );
    let after: Vec<String> = list_json(&s3, &prefix, local.path())
        .iter()
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(after, before);
    let leftovers: Vec<String> = std::fs::read_dir(local.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn prune_dry_run_deletes_nothing_and_prune_follows_the_plan() {
    let consul = TestConsul::start(DevServerConfig::default());
    let s3 = s3_target();
    let prefix = format!("prune-{}", uuid::Uuid::new_v4().simple());
    let local = tempfile::tempdir().expect("tmp");
    for _ in 0..3 {
        let out = once(&consul, &s3, &prefix, local.path(), &["--retain", "0"]);
        assert!(out.status.success(), "{}", describe(&out));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let mut args: Vec<String> = vec![
        "prune".into(),
        "--keep-last".into(),
        "1".into(),
        "--local-path".into(),
        local.path().display().to_string(),
    ];
    args.extend(s3.cli_args(&prefix));
    let mut dry = args.clone();
    dry.push("--dry-run".into());
    let out = cli(&dry, &s3);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("would delete").count(), 4, "{text}");
    assert!(text.contains("newest, last 1"), "{text}");
    assert_eq!(list_json(&s3, &prefix, local.path()).len(), 6);

    let out = cli(&args, &s3);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(list_json(&s3, &prefix, local.path()).len(), 2);
}

#[test]
fn s3_errors_are_clear_and_carry_no_secret() {
    let mut s3 = s3_target();
    s3.secret = format!("{}x", s3.secret);
    let local = tempfile::tempdir().expect("tmp");
    let mut args: Vec<String> = vec![
        "list".into(),
        "--local-path".into(),
        local.path().display().to_string(),
    ];
    args.extend(s3.cli_args("p"));
    let out = cli(&args, &s3);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("S3 ListObjectsV2 failed"), "{err}");
    assert!(
        !err.contains(&s3.secret) && !err.contains(&s3.secret[..20]),
        "secret leaked: {err}"
    );
}

/// Three sites back up to one bucket under one prefix; `list --summary` shows one line per
/// datacenter, and `--max-age` / `--expect` make one cron line watch the fleet.
#[test]
fn a_fleet_sharing_one_prefix_is_summarized_and_stale_or_missing_sites_are_named() {
    let s3 = s3_target();
    let prefix = format!("fleet-{}/", support::net::random());
    let dir = tempfile::tempdir().expect("tmp");
    let sites: Vec<TestConsul> = ["dc1", "dc2", "dc3"]
        .iter()
        .map(|dc| {
            TestConsul::start(DevServerConfig {
                datacenter: dc.to_string(),
                ..DevServerConfig::default()
            })
        })
        .collect();
    for (i, site) in sites.iter().enumerate() {
        // A local directory each (unused below); S3 is shared.
        let local = dir.path().join(format!("site{i}"));
        let out = once(site, &s3, &prefix, &local, &["--retain", "0"]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    let list = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["list".into()];
        args.extend(s3.cli_args(&prefix));
        args.extend(extra.iter().map(|s| s.to_string()));
        cli(&args, &s3)
    };
    let out = list(&["--summary"]);
    assert!(out.status.success(), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "a header and one line per datacenter: {table}"
    );
    for dc in ["dc1", "dc2", "dc3"] {
        assert!(
            lines.iter().any(|l| l.contains(dc) && l.contains("1000")),
            "{dc}: {table}"
        );
    }
    // Fresh enough, and every expected site present.
    let out = list(&[
        "--max-age",
        "1h",
        "--expect",
        "dc1,dc2,dc3",
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["datacenters"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["datacenters"][0]["newest"]["index"], 1000, "{v}");
    // A site that never backed up, and an age limit every site fails.
    std::thread::sleep(Duration::from_millis(2100));
    let out = list(&["--max-age", "1s", "--expect", "dc1,dc4"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    for dc in ["dc1", "dc2", "dc3"] {
        assert!(
            err.contains(&format!("STALE OR MISSING: {dc} at s3://")),
            "{err}"
        );
    }
    assert!(err.contains("dc4: no backup at any destination"), "{err}");
}

/// `agent --once` retries its first Consul call (a Consul agent restarting as cron starts).
#[test]
fn agent_once_retries_its_first_consul_call_while_consul_starts() {
    let port = support::net::free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args([
            "agent",
            "--once",
            "--retries",
            "6",
            "--retry-delay",
            "300ms",
        ])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .arg("--local-path")
        .arg(dir.path())
        .env_remove("CONSUL_HTTP_ADDR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Consul comes up a moment later, on that port.
    std::thread::sleep(Duration::from_millis(1200));
    let consul = TestConsul::start(DevServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        ..DevServerConfig::default()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("retrying"),
        "{}",
        describe(&out)
    );
    assert_eq!(support::backup_names(dir.path()).len(), 1);
    drop(consul);
}
