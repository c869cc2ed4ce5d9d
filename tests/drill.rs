//! `drill` between two Consul API test servers on loopback (production and scratch): a good
//! backup passes; a scratch server that loses KV entries on restore fails the drill with the
//! difference named; the production cluster is refused as a target.

mod support;

use consul_snapshot_agent::devserver::{DevServerConfig, Faults};
use serde_json::Value;
use support::{describe, run_cli, TestConsul};

fn scratch(node_id: &str) -> TestConsul {
    TestConsul::start(DevServerConfig {
        node_id: node_id.into(),
        node_name: "scratch-1".into(),
        ..DevServerConfig::default()
    })
}

#[test]
fn a_good_backup_passes_and_a_lossy_restore_fails_with_the_difference_named() {
    let prod = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().display().to_string();
    let out = run_cli(&[
        "agent",
        "--once",
        "--http-addr",
        &prod.addr(),
        "--local-path",
        &local,
        "--retries",
        "0",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let target = scratch("5c2a8f8e-1111-2222-3333-444455556666");
    let prod_addr = prod.addr();
    let drill = |extra: &[&str]| {
        let mut a = vec![
            "drill",
            "--latest",
            "--local-path",
            &local,
            "--http-addr",
            &prod_addr,
        ];
        a.extend_from_slice(extra);
        run_cli(&a)
    };
    let target_addr = target.addr();
    let out = drill(&["--target-http-addr", &target_addr, "--output", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["pass"], true, "{r:#}");
    assert!(r["differences"].as_array().is_some_and(Vec::is_empty));
    let kvs = r["types"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "KVS"))
        .expect("KVS row");
    assert!(kvs["backup"].as_u64().is_some_and(|n| n > 0) && kvs["compared"] == true);
    assert_eq!(kvs["backup"], kvs["restored"]);
    for step in ["fetch_verify", "restore", "read_back", "total"] {
        assert!(
            r["durations"][step].as_f64().is_some_and(|s| s >= 0.0),
            "{step}"
        );
    }
    assert_eq!(
        target.server().restores().len(),
        1,
        "restored into the scratch server"
    );
    assert!(prod.server().restores().is_empty(), "production untouched");

    // A scratch cluster that loses the vault/ tree on restore.
    target.faults(Faults {
        restore_drop_kv_prefix: Some("vault/".into()),
        ..Faults::default()
    });
    let out = drill(&["--target-http-addr", &target_addr]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Drill FAILED"), "{text}");
    assert!(text.contains("differs: KVS:"), "{text}");
    assert!(text.contains("differs: KV key set"), "{text}");
}

#[test]
fn the_production_cluster_is_refused_as_a_target() {
    let prod = TestConsul::start(DevServerConfig::default());
    let snap = support::fixture("small.snap").display().to_string();
    // The same address.
    let out = run_cli(&[
        "drill",
        &snap,
        "--http-addr",
        &prod.addr(),
        "--target-http-addr",
        &prod.addr(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent's own Consul"));
    // Another address, the same cluster (a Raft server ID in common).
    let twin = TestConsul::start(DevServerConfig::default());
    let out = run_cli(&[
        "drill",
        &snap,
        "--http-addr",
        &prod.addr(),
        "--target-http-addr",
        &twin.addr(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("same cluster"));
    assert!(twin.server().restores().is_empty() && prod.server().restores().is_empty());
    // Deliberately allowed.
    let out = run_cli(&[
        "drill",
        &snap,
        "--http-addr",
        &prod.addr(),
        "--target-http-addr",
        &twin.addr(),
        "--allow-production-target",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(twin.server().restores().len(), 1);
}

/// The daemon drills its newest backup once per `--drill-interval`, as leader: a `drill`
/// webhook event, and the drill metrics.
#[test]
fn the_daemon_drills_the_newest_backup_on_its_interval() {
    use std::time::Duration;
    use support::agent::{wait_until, AgentProcess};
    let prod = TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        ..DevServerConfig::default()
    });
    let target = scratch("7e1d0c0b-aaaa-bbbb-cccc-ddddeeeeffff");
    let dir = tempfile::tempdir().expect("tmp");
    let hook = support::webhook::receiver(false);
    let metrics = format!("127.0.0.1:{}", support::net::free_port());
    let args: Vec<String> = [
        "--http-addr",
        &prod.addr(),
        "--local-path",
        &dir.path().display().to_string(),
        "--metrics-addr",
        &metrics,
        "--session-ttl",
        "2s",
        "--session-ttl-min",
        "500ms",
        "--interval",
        "1s",
        "--retain",
        "3",
        "--drill-interval",
        "1h",
        "--drill-target-http-addr",
        &target.addr(),
        "--webhook",
        &hook.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = AgentProcess::start(&args, &[]);
    let drills = || -> Vec<Value> {
        hook.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["event"] == "drill")
            .cloned()
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || !drills().is_empty()),
        "no drill:\n{}",
        agent.log()
    );
    let d = &drills()[0];
    assert_eq!(d["drill"]["pass"], true, "{d:#}");
    assert!(d["error"].is_null(), "{d:#}");
    // More cycles, no second drill within the hour.
    let successes = || {
        hook.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["event"] == "success")
            .count()
    };
    let now = successes();
    assert!(wait_until(Duration::from_secs(20), || successes() >= now + 2));
    assert_eq!(drills().len(), 1);
    assert_eq!(target.server().restores().len(), 1);
    let (_, body) = support::scrape(&metrics, "/metrics");
    assert!(
        support::metric(
            &body,
            "consul_snapshot_last_drill_success_timestamp_seconds"
        ) > 0.0
    );
    assert_eq!(
        support::metric(&body, "consul_snapshot_drill_interval_seconds"),
        3600.0
    );
    assert_eq!(
        support::metric(&body, "consul_snapshot_drill_failures_total"),
        0.0
    );
    agent.terminate(Duration::from_secs(10));
}

/// A scratch cluster that takes its time to apply a restore does not hold up the schedule:
/// the drill runs in the background while the leader goes on taking snapshots.
#[test]
fn a_slow_scratch_cluster_does_not_delay_the_snapshots() {
    use std::time::Duration;
    use support::agent::{wait_until, AgentProcess};
    let prod = TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        ..DevServerConfig::default()
    });
    let target = scratch("7e1d0c0b-aaaa-bbbb-cccc-000000000001");
    // The scratch cluster answers a restore a minute after the last byte.
    target.faults(consul_snapshot_agent::devserver::Faults {
        restore_delay_ms: Some(60_000),
        ..Default::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let hook = support::webhook::receiver(false);
    let args: Vec<String> = [
        "--http-addr",
        &prod.addr(),
        "--local-path",
        &dir.path().display().to_string(),
        "--metrics-addr",
        "off",
        "--session-ttl",
        "2s",
        "--session-ttl-min",
        "500ms",
        "--interval",
        "1s",
        "--retain",
        "0",
        "--drill-interval",
        "1h",
        "--drill-target-http-addr",
        &target.addr(),
        "--webhook",
        &hook.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = AgentProcess::start(&args, &[]);
    let count = |event: &str| {
        hook.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["event"] == event)
            .count()
    };
    // The drill starts after the first stored snapshot; the restore then hangs for a minute.
    assert!(
        wait_until(Duration::from_secs(30), || count("success") >= 1),
        "{}",
        agent.log()
    );
    let at_drill = count("success");
    // Snapshots go on every second meanwhile (inline, the next would wait a minute).
    assert!(
        wait_until(Duration::from_secs(20), || count("success") >= at_drill + 4),
        "snapshots were held up by the drill:\n{}",
        agent.log()
    );
    assert_eq!(
        count("drill"),
        0,
        "the drill is still waiting for the scratch cluster"
    );
    assert!(agent
        .terminate(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
}
