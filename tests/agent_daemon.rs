//! The long-running agent against the Consul API test server (and Garage): one snapshot per
//! interval with two agents, hand-over on SIGKILL and on max_failures, a lost lock stopping the
//! cycle, Enterprise configuration, metrics, and SIGTERM during an upload.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::devserver::{AclTokens, DevServerConfig, Faults, SnapshotSource};
use consul_snapshot_agent::storage::naming::parse_name;
use support::agent::{wait_until, AgentProcess};
use support::{backup_names as backups, describe, metric, run_cli_env, scrape, TestConsul};

const LOCK: &str = "consul-snapshot/lock";

/// These tests measure time (hand-over, one snapshot per interval): they run one at a time so
/// that they do not compete for the two cores with each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn consul(kv_entries: u64, acl: Option<AclTokens>) -> TestConsul {
    TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        snapshot: SnapshotSource::Synthetic(SynthSpec {
            kv_entries,
            ..SynthSpec::default()
        }),
        acl,
        ..DevServerConfig::default()
    })
}

fn args(consul: &TestConsul, dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--http-addr".into(),
        consul.addr(),
        "--local-path".into(),
        dir.display().to_string(),
        "--metrics-addr".into(),
        "off".into(),
        "--session-ttl".into(),
        "2s".into(),
        "--session-ttl-min".into(),
        "500ms".into(),
        "--retain".into(),
        "0".into(),
        "--retries".into(),
        "0".into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// The service ID of the lock holder, from its session name.
fn holder(c: &TestConsul) -> Option<String> {
    let cluster = c.server().shared().cluster();
    let sid = cluster.kv.get(LOCK)?.session.clone()?;
    let name = cluster.sessions.get(&sid)?.name.clone();
    name.strip_prefix("consul-snapshot-agent ")
        .map(str::to_string)
}

#[test]
fn two_agents_take_exactly_one_snapshot_per_interval_and_register() {
    let _serial = serial();
    let c = consul(100, None);
    let dir = tempfile::tempdir().expect("tmp");
    let a = AgentProcess::start(&args(&c, dir.path(), &["--interval", "2s"]), &[]);
    let b = AgentProcess::start(&args(&c, dir.path(), &["--interval", "2s"]), &[]);
    assert!(
        wait_until(Duration::from_secs(10), || holder(&c).is_some()),
        "nobody took the lock:\n{}",
        a.log()
    );
    std::thread::sleep(Duration::from_secs(9));
    let names = backups(dir.path());
    // About 9/2 + 1 runs in the window, never two in one interval (names have 1 s resolution).
    assert!(
        (4..=6).contains(&names.len()),
        "{names:?}\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    let times: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_name(n))
        .map(|n| n.time.timestamp())
        .collect();
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 1, "two snapshots in one interval: {names:?}");
    }
    assert_eq!(
        a.log().matches("Saved snapshot").count() + b.log().matches("Saved snapshot").count(),
        names.len()
    );
    assert!(
        a.log().contains("Saved snapshot") != b.log().contains("Saved snapshot"),
        "only the leader takes snapshots"
    );
    // Both registered; the leader alone carries the saving check.
    let regs = consul_snapshot_agent::devserver::agent::registered(c.server().shared());
    assert_eq!(regs.len(), 2, "{regs:?}");
    let saving: Vec<_> = regs
        .values()
        .flat_map(|(_, checks)| checks.iter())
        .filter(|(_, name, _)| name == "Consul Snapshot Agent Saving Snapshots")
        .collect();
    assert_eq!(saving.len(), 1, "{regs:?}");
    assert!(regs.values().all(|(name, checks)| name == "consul-snapshot"
        && checks
            .iter()
            .any(|(_, n, s)| n == "Consul Snapshot Agent Alive" && *s == "passing")));
}

#[test]
fn sigkill_of_the_leader_hands_over_within_twice_the_session_ttl() {
    let _serial = serial();
    let c = consul(100, None);
    let dir = tempfile::tempdir().expect("tmp");
    let mut a = AgentProcess::start(&args(&c, dir.path(), &["--interval", "1s"]), &[]);
    let mut b = AgentProcess::start(&args(&c, dir.path(), &["--interval", "1s"]), &[]);
    assert!(wait_until(Duration::from_secs(10), || holder(&c).is_some()
        && a.service_id().is_some()
        && b.service_id().is_some()));
    let first = holder(&c).expect("holder");
    let (leader, standby) = if Some(&first) == a.service_id().as_ref() {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    assert!(wait_until(Duration::from_secs(5), || !backups(dir.path()).is_empty()));
    let killed_at = Instant::now();
    leader.kill();
    let standby_id = standby.service_id();
    assert!(
        wait_until(Duration::from_secs(10), || holder(&c) == standby_id),
        "no hand-over:\n{}",
        standby.log()
    );
    let took = killed_at.elapsed();
    // Consul expires a TTL session at up to 2 × TTL after its last renewal; the standby's
    // blocking query returns at once and it acquires: well within 2 × 2 s plus the query turn.
    assert!(
        took <= Duration::from_millis(4000 + 750),
        "hand-over took {took:?}"
    );
    let before = backups(dir.path()).len();
    assert!(
        wait_until(Duration::from_secs(5), || backups(dir.path()).len()
            > before),
        "the new leader takes snapshots"
    );
}

#[test]
fn max_failures_gives_the_lock_to_another_agent() {
    let _serial = serial();
    let acl = AclTokens {
        management: "mgmt".into(),
        read_only: None,
        read_only_accessor: String::new(),
        no_snapshot: Some("agent-no-snap".into()),
    };
    let c = consul(100, Some(acl));
    let dir = tempfile::tempdir().expect("tmp");
    let a = AgentProcess::start(
        &args(
            &c,
            dir.path(),
            &["--interval", "500ms", "--max-failures", "3"],
        ),
        &[("CONSUL_HTTP_TOKEN".into(), "agent-no-snap".into())],
    );
    assert!(
        wait_until(Duration::from_secs(10), || holder(&c).is_some()
            && holder(&c) == a.service_id()),
        "A never led:\n{}",
        a.log()
    );
    let b = AgentProcess::start(
        &args(&c, dir.path(), &["--interval", "500ms"]),
        &[("CONSUL_HTTP_TOKEN".into(), "mgmt".into())],
    );
    assert!(
        a.wait_log(
            "giving up leadership after consecutive failures",
            Duration::from_secs(10)
        ),
        "{}",
        a.log()
    );
    assert_eq!(
        a.log()
            .matches("Snapshot failed (will retry at next interval)")
            .count(),
        3,
        "{}",
        a.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || holder(&c).is_some()
            && holder(&c) == b.service_id()),
        "B never took over:\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || !backups(dir.path()).is_empty()),
        "B stores snapshots"
    );
}

#[test]
fn a_lost_lock_stops_the_cycle_at_once() {
    let _serial = serial();
    let c = consul(3000, None);
    // ~0.5 MiB archive at 100 KiB/s: a transfer of about five seconds.
    c.faults(Faults {
        rate_bytes_per_sec: Some(100 * 1024),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let a = AgentProcess::start(&args(&c, dir.path(), &["--interval", "1h"]), &[]);
    assert!(wait_until(Duration::from_secs(10), || holder(&c).is_some()));
    assert!(
        wait_until(Duration::from_secs(5), || !partials(dir.path()).is_empty()),
        "the transfer started"
    );
    // An operator (or a split brain) takes the lock away: delete the key.
    let sid = c
        .server()
        .shared()
        .cluster()
        .kv
        .get(LOCK)
        .and_then(|e| e.session.clone())
        .expect("held");
    let url = format!("{}/v1/session/destroy/{sid}", c.url());
    c.rt.block_on(async {
        reqwest::Client::new()
            .put(url)
            .send()
            .await
            .expect("destroy")
    });
    assert!(
        a.wait_log("cancelled", Duration::from_secs(3)),
        "{}",
        a.log()
    );
    assert!(
        wait_until(Duration::from_secs(2), || partials(dir.path()).is_empty()),
        "the partial file was removed"
    );
    assert!(
        backups(dir.path()).is_empty(),
        "nothing from the interrupted cycle was stored"
    );
    assert!(
        a.log().contains("lost leadership") || a.log().contains("the session was invalidated"),
        "{}",
        a.log()
    );
}

/// The documented Consul Enterprise defaults (tests/data), plus a token.
fn enterprise_config() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/enterprise-snapshot-agent.json"
    );
    std::fs::read_to_string(path)
        .expect("read")
        .replace(r#""token": """#, r#""token": "s3cr3t-ent-token""#)
}

#[test]
fn the_enterprise_json_config_loads_and_prints_redacted() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("snapshot.json");
    let enterprise = enterprise_config();
    assert!(enterprise.contains("s3cr3t-ent-token"));
    std::fs::write(&f, &enterprise).expect("write");
    let out = run_cli_env(
        &[
            "agent",
            "--print-config",
            "--config-file",
            f.to_str().expect("p"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("s3cr3t-ent-token"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let a = &v["snapshot_agent"];
    assert_eq!(a["token"], "<redacted>");
    assert_eq!(a["http_addr"], "http://127.0.0.1:8500");
    assert_eq!(a["snapshot"]["interval"], "1h");
    assert_eq!(a["snapshot"]["retain"], 30);
    assert_eq!(a["snapshot"]["lock_key"], "consul-snapshot/lock");
    assert_eq!(a["snapshot"]["deregister_after"], "72h");
    assert_eq!(a["local_storage"]["path"], ".");
    // Flags beat the file.
    let out = run_cli_env(
        &[
            "agent",
            "--print-config",
            "--config-file",
            f.to_str().expect("p"),
            "--interval",
            "5m",
            "--http-addr",
            "10.1.1.1:8500",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            v["snapshot_agent"]["snapshot"]["interval"].as_str(),
            v["snapshot_agent"]["http_addr"].as_str()
        ),
        (Some("5m"), Some("http://10.1.1.1:8500"))
    );
    // Unknown keys are errors naming their path.
    std::fs::write(
        &f,
        enterprise.replace("\"max_failures\"", "\"max_failure\""),
    )
    .expect("write");
    let out = run_cli_env(
        &[
            "agent",
            "--print-config",
            "--config-file",
            f.to_str().expect("p"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("snapshot_agent.snapshot") && err.contains("max_failure"),
        "{err}"
    );
}

#[test]
fn metrics_and_health_move_with_success_and_failure() {
    let _serial = serial();
    let c = consul(100, None);
    let dir = tempfile::tempdir().expect("tmp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut a = args(&c, dir.path(), &["--interval", "700ms"]);
    let i = a.iter().position(|x| x == "off").expect("metrics arg");
    a[i] = addr.clone();
    let agent = AgentProcess::start(&a, &[]);
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &scrape(&addr, "/metrics").1,
            "consul_snapshot_successes_total"
        ) >= 1.0),
        "{}",
        agent.log()
    );
    let (code, body) = scrape(&addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metric(&body, "consul_snapshot_last_success_timestamp_seconds") > 1.7e9,
        "{body}"
    );
    assert_eq!(metric(&body, "consul_snapshot_last_raft_index"), 1000.0);
    assert!(metric(&body, "consul_snapshot_last_archive_bytes") > 1000.0);
    assert_eq!(metric(&body, "consul_snapshot_leader"), 1.0);
    assert!(
        metric(
            &body,
            "consul_snapshot_destination_stored_total{kind=\"local\"}"
        ) >= 1.0,
        "stored by destination kind: {body}"
    );
    let (code, health) = scrape(&addr, "/health");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("\"role\":\"leader\""), "{health}");

    c.faults(Faults {
        truncate_after: Some(2000),
        ..Faults::default()
    });
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &scrape(&addr, "/metrics").1,
            "consul_snapshot_failures_total{reason=\"verification\"}"
        ) >= 1.0),
        "{}",
        scrape(&addr, "/metrics").1
    );
}

#[test]
fn sigterm_during_an_upload_leaves_no_partial_object_and_cleans_up() {
    let _serial = serial();
    let c = consul(40_000, None);
    let s3 = support::garage::s3_target();
    let cfg = s3.config();
    // An archive of several parts, sent slowly so that SIGTERM lands mid-upload.
    c.faults(Faults {
        rate_bytes_per_sec: Some(2 << 20),
        ..Faults::default()
    });
    let prefix = cfg.normalized_prefix();
    let mut a: Vec<String> = vec![
        "--http-addr".into(),
        c.addr(),
        "--metrics-addr".into(),
        "off".into(),
        "--session-ttl".into(),
        "2s".into(),
        "--session-ttl-min".into(),
        "500ms".into(),
        "--interval".into(),
        "1h".into(),
        "--aws-s3-part-size".into(),
        "5MiB".into(),
    ];
    a.extend(s3.cli_args(&prefix));
    let mut agent = AgentProcess::start(&a, &s3.cli_env());
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let store = rt
        .block_on(consul_snapshot_agent::storage::S3Store::new(cfg))
        .expect("store");
    assert!(
        wait_until(Duration::from_secs(20), || !rt
            .block_on(store.pending_uploads())
            .unwrap_or_default()
            .is_empty()),
        "no multipart upload started:\n{}",
        agent.log()
    );
    let status = agent
        .terminate(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", agent.log());
    assert!(
        rt.block_on(consul_snapshot_agent::storage::Backend::list(&store))
            .expect("list")
            .is_empty(),
        "no object"
    );
    assert!(
        rt.block_on(store.pending_uploads())
            .expect("uploads")
            .is_empty(),
        "no multipart upload left:\n{}",
        agent.log()
    );
    let cluster = c.server().shared().cluster();
    assert!(cluster.sessions.is_empty(), "session destroyed");
    assert!(
        cluster.kv.get(LOCK).is_none_or(|e| e.session.is_none()),
        "lock released"
    );
    assert!(cluster.services.is_empty(), "deregistered");
}
