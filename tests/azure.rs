//! Azure Blob Storage end to end: the agent binary against the Consul API test server and
//! Azurite (or a real account, see tests/support/azurite.rs): `agent --once` stores a verified
//! backup with its metadata beside a local copy, retention rotates both, a failed snapshot
//! stores and deletes nothing, `restore --latest` brings the backup back, and a dead endpoint
//! fails the cycle in bounded time without taking the local destination down.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use consul_snapshot_agent::devserver::{DevServerConfig, Faults};
use serde_json::Value;
use support::azurite::{azure_target, AzureTarget};
use support::{describe, run_cli_env, TestConsul};

fn cli(args: &[String], az: &AzureTarget) -> Output {
    let env = az.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli_env(&args, &env)
}

fn once(consul: &TestConsul, az: &AzureTarget, local: &std::path::Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--once".into(),
        "--retries".into(),
        "0".into(),
        "--http-addr".into(),
        consul.addr(),
        "--local-path".into(),
        local.display().to_string(),
    ];
    args.extend(az.cli_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    cli(&args, az)
}

/// `list --output json` of the Azure destination alone.
fn azure_rows(az: &AzureTarget) -> Vec<Value> {
    let mut args: Vec<String> = vec!["list".into(), "--output".into(), "json".into()];
    args.extend(az.cli_args());
    let out = cli(&args, az);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn keys(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn azure_cycles_store_verified_backups_rotate_and_a_failed_cycle_touches_nothing() {
    let consul = TestConsul::start(DevServerConfig::default());
    let az = azure_target();
    let local = tempfile::tempdir().expect("tmp");
    for i in 0..3 {
        let out = once(
            &consul,
            &az,
            local.path(),
            &[
                "--retain",
                "2",
                "--verify-readback",
                "--azure-blob-block-size",
                "1MiB",
            ],
        );
        assert!(out.status.success(), "cycle {i}: {}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.matches(": stored ").count(), 2, "{text}");
        assert!(text.contains("azure://"), "{text}");
        std::thread::sleep(Duration::from_millis(1100)); // one-second names
    }
    let rows = azure_rows(&az);
    assert_eq!(rows.len(), 2, "retain 2: {rows:#?}");
    for r in &rows {
        assert_eq!(r["index"], 1000, "{r}");
        assert_eq!(r["datacenter"], "dc1", "{r}");
        assert_eq!(r["sha256"].as_str().map(str::len), Some(64), "{r}");
        assert!(
            r["key"].as_str().is_some_and(|k| k.starts_with(&az.prefix)),
            "{r}"
        );
    }
    let before = keys(&rows);

    // A snapshot cut short: nothing stored, nothing deleted, at both destinations.
    consul.faults(Faults {
        truncate_after: Some(4000),
        ..Faults::default()
    });
    let out = once(&consul, &az, local.path(), &["--retain", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(keys(&azure_rows(&az)), before);
    consul.faults(Faults::default());

    // Restore the newest Azure backup into the test server.
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--http-addr".into(),
        consul.addr(),
        "--latest".into(),
        "--yes".into(),
        "--safety-snapshot=false".into(),
    ];
    args.extend(az.cli_args());
    let out = cli(&args, &az);
    assert!(out.status.success(), "{}", describe(&out));
    let newest = before.iter().max().expect("backups"); // names sort by time
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(newest.as_str()),
        "restored the newest: {}",
        describe(&out)
    );
}

#[test]
fn a_dead_azure_endpoint_fails_in_bounded_time_and_the_local_copy_is_stored() {
    let consul = TestConsul::start(DevServerConfig::default());
    let mut az = azure_target();
    if az.endpoint.is_none() {
        return; // a real account cannot be stopped; the emulator can
    }
    az.stop();
    let local = tempfile::tempdir().expect("tmp");
    let started = Instant::now();
    let out = once(
        &consul,
        &az,
        local.path(),
        &["--azure-blob-request-timeout", "2s"],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("at 1 of 2 destinations"),
        "{}",
        describe(&out)
    );
    assert!(
        text.contains("azure"),
        "the failure names the destination: {text}"
    );
    let snaps = std::fs::read_dir(local.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .count();
    assert_eq!(snaps, 1);
    assert!(
        took < Duration::from_secs(120),
        "bounded by the request timeout and retries: {took:?}"
    );
}
