//! The shrink guard end to end: the Consul API test server's KV tree is wiped between two
//! cycles (recursive KV deletes, which the next snapshot shows), with `--retain 2` and five
//! further cycles. The backups from before the wipe must survive; the anomaly must show in the
//! metadata, `list`, the `consul_snapshot_anomaly` gauge, the "Saving Snapshots" check and a
//! webhook event; after `prune --acknowledge-anomaly`, retention resumes.

mod support;

use std::path::Path;
use std::time::Duration;

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::devserver::{DevServerConfig, SnapshotSource};
use consul_snapshot_agent::storage::BackupMeta;
use serde_json::Value;
use support::agent::{wait_until, AgentProcess};
use support::garage::s3_target;
use support::net::{free_port, raw_http};
use support::webhook::receiver;
use support::{backup_names as backups, describe, metric, run_cli_env, scrape, TestConsul};

const KV_ENTRIES: u64 = 200;

fn consul() -> TestConsul {
    TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        snapshot: SnapshotSource::Synthetic(SynthSpec {
            kv_entries: KV_ENTRIES,
            ..SynthSpec::default()
        }),
        ..DevServerConfig::default()
    })
}

fn sidecar(dir: &Path, name: &str) -> BackupMeta {
    let raw = std::fs::read(dir.join(format!("{name}.meta.json"))).expect("sidecar");
    serde_json::from_slice(&raw).expect("sidecar json")
}

/// Status and output of the agent's "Saving Snapshots" check.
fn saving_check(c: &TestConsul) -> Option<(String, String)> {
    let port: u16 = c.addr().rsplit(':').next().and_then(|p| p.parse().ok())?;
    let answer = raw_http(
        port,
        "GET /v1/agent/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .ok()?;
    let body = answer.split("\r\n\r\n").nth(1)?;
    let checks: Value = serde_json::from_str(body).ok()?;
    checks.as_object()?.values().find_map(|ch| {
        (ch["Name"] == "Consul Snapshot Agent Saving Snapshots").then(|| {
            (
                ch["Status"].as_str().unwrap_or_default().to_string(),
                ch["Output"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

fn cli(args: &[&str]) -> std::process::Output {
    let out = run_cli_env(args, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    out
}

#[test]
fn a_wiped_kv_tree_holds_the_backups_from_before_it_until_acknowledged() {
    let c = consul();
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().display().to_string();
    let hook = receiver(false);
    let metrics = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "--http-addr",
        &c.addr(),
        "--local-path",
        &local,
        "--metrics-addr",
        &metrics,
        "--session-ttl",
        "2s",
        "--session-ttl-min",
        "500ms",
        "--retries",
        "0",
        "--interval",
        "1s",
        "--retain",
        "2",
        "--webhook",
        &hook.url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = AgentProcess::start(&args, &[]);
    let events = |kind: &str| -> Vec<Value> {
        hook.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    };

    // Two backups of the full state, then the wipe.
    assert!(
        wait_until(Duration::from_secs(30), || backups(dir.path()).len() >= 2),
        "no backups:\n{}",
        agent.log()
    );
    support::wipe_kv(&c);
    assert!(
        wait_until(Duration::from_secs(30), || !events("anomaly").is_empty()),
        "no anomaly event:\n{}",
        agent.log()
    );
    let anomaly = events("anomaly")[0].clone();
    let a_name = anomaly["key"].as_str().expect("key").to_string();
    assert_eq!(anomaly["before"]["kv_entries"], KV_ENTRIES, "{anomaly}");
    assert_eq!(anomaly["after"]["kv_entries"], 0, "{anomaly}");
    assert!(
        anomaly["reason"]
            .as_str()
            .is_some_and(|r| r.contains("kv_entries 200 -> 0 (-100%)")),
        "{anomaly}"
    );
    let baseline = anomaly["baseline"].as_str().expect("baseline").to_string();

    // Five further cycles after the anomaly.
    let successes_at_anomaly = events("success").len();
    assert!(
        wait_until(Duration::from_secs(60), || events("success").len()
            >= successes_at_anomaly + 5),
        "cycles stopped:\n{}",
        agent.log()
    );
    let names = backups(dir.path());
    let a_pos = names
        .iter()
        .position(|n| *n == a_name)
        .unwrap_or_else(|| panic!("the anomalous backup {a_name} is gone: {names:?}"));
    // retain 2 kept two backups when the wipe came; both are still there, and the baseline
    // (the last one before the drop) is one of them.
    assert_eq!(a_pos, 2, "{names:?}");
    assert!(names[..2].contains(&baseline), "{baseline} in {names:?}");
    for pre in &names[..2] {
        let m = sidecar(dir.path(), pre);
        assert_eq!(m.counts.expect("counts").kv_entries, KV_ENTRIES, "{pre}");
    }
    // ...beside the anomaly and retain 2's newest two (a third only while the next cycle is
    // between storing and retention): the cycles between were rotated.
    assert!((2..=3).contains(&(names.len() - 3)), "{names:?}");

    // The mark in the metadata.
    let a_meta = sidecar(dir.path(), &a_name);
    let mark = a_meta.anomaly.expect("anomaly mark");
    assert!(mark.reason.contains("kv_entries"), "{mark:?}");
    assert_eq!(mark.baseline, baseline);
    assert_eq!(mark.acknowledged, None);
    assert_eq!(a_meta.counts.expect("counts").kv_entries, 0);

    // In list, table and JSON.
    let table = String::from_utf8(cli(&["list", "--local-path", &local]).stdout).expect("utf8");
    assert!(table.contains("UNACKNOWLEDGED"), "{table}");
    assert!(
        table.contains(&format!("anomaly {a_name}: kv_entries")),
        "{table}"
    );
    let json: Vec<Value> =
        serde_json::from_slice(&cli(&["list", "--local-path", &local, "--output", "json"]).stdout)
            .expect("json");
    let row = json.iter().find(|r| r["key"] == a_name).expect("row");
    assert!(row["anomaly"]["reason"].is_string(), "{row}");
    assert_eq!(row["counts"]["kv_entries"], 0);
    let pre_row = json.iter().find(|r| r["key"] == baseline).expect("row");
    assert_eq!(pre_row["counts"]["kv_entries"], KV_ENTRIES);
    assert!(pre_row.get("anomaly").is_none(), "{pre_row}");

    // The gauge and the check.
    let (_, body) = scrape(&metrics, "/metrics");
    assert_eq!(metric(&body, "consul_snapshot_anomaly"), 1.0, "{body}");
    let (status, output) = saving_check(&c).expect("saving check");
    assert_eq!(status, "warning", "{output}");
    assert!(output.contains("kv_entries"), "{output}");

    // prune --dry-run names the hold as the reason.
    let dry = String::from_utf8(
        cli(&[
            "prune",
            "--dry-run",
            "--local-path",
            &local,
            "--retain",
            "2",
        ])
        .stdout,
    )
    .expect("utf8");
    let line = dry
        .lines()
        .find(|l| l.contains(&baseline))
        .unwrap_or_else(|| panic!("{dry}"));
    assert!(
        line.starts_with("keep") && line.contains("held by the shrink guard"),
        "{dry}"
    );
    assert!(
        dry.contains(&format!("--acknowledge-anomaly {a_name}")),
        "{dry}"
    );

    // Acknowledged: retention resumes.
    let acked = String::from_utf8(
        cli(&[
            "prune",
            "--local-path",
            &local,
            "--retain",
            "2",
            "--acknowledge-anomaly",
            &a_name,
        ])
        .stdout,
    )
    .expect("utf8");
    assert!(acked.contains("anomaly acknowledged"), "{acked}");
    let successes_at_ack = events("success").len();
    assert!(
        wait_until(Duration::from_secs(30), || events("success").len()
            >= successes_at_ack + 2),
        "cycles stopped:\n{}",
        agent.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || backups(dir.path()).len() == 2),
        "retention did not resume: {:?}",
        backups(dir.path())
    );
    let names = backups(dir.path());
    assert!(
        !names.contains(&baseline) && !names.contains(&a_name),
        "{names:?}"
    );
    let (_, body) = scrape(&metrics, "/metrics");
    assert_eq!(metric(&body, "consul_snapshot_anomaly"), 0.0, "{body}");
    assert_eq!(saving_check(&c).expect("check").0, "passing");
    assert_eq!(events("anomaly").len(), 1, "one drop, one event");
    agent.terminate(Duration::from_secs(10));
}

/// The same on S3 (Garage): the mark travels in the backup's metadata (its manifest), and the
/// acknowledgement rewrites the manifest (no copy of the archive).
#[test]
fn on_s3_the_mark_and_its_acknowledgement_live_in_the_backups_metadata() {
    let c = consul();
    let s3 = s3_target();
    let prefix = format!("guard-{}", support::net::random());
    let env: Vec<(String, String)> = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |extra: &[&str]| {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        a.extend(s3.cli_args(&prefix));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run_cli_env(&a, &env);
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8(out.stdout).expect("utf8")
    };
    let addr = c.addr();
    let once = || {
        run(&[
            "agent",
            "--once",
            "--http-addr",
            &addr,
            "--retain",
            "1",
            "--retries",
            "0",
        ])
    };
    let list = || -> Vec<Value> {
        serde_json::from_str(&run(&["list", "--output", "json"])).expect("json")
    };
    once();
    // Names have one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    support::wipe_kv(&c);
    let out = once();
    assert!(out.contains("ANOMALY (shrink guard): kv_entries"), "{out}");
    std::thread::sleep(Duration::from_millis(1100));
    once();
    let rows = list();
    // retain 1, yet three backups: the pre-wipe one and the anomaly are held.
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["counts"]["kv_entries"], KV_ENTRIES);
    let a_key = rows[1]["key"].as_str().expect("key").to_string();
    assert!(rows[1]["anomaly"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("kv_entries")));
    assert!(rows[1]["anomaly"].get("acknowledged").is_none());

    let out = run(&["prune", "--retain", "1", "--acknowledge-anomaly", &a_key]);
    assert!(out.contains("anomaly acknowledged"), "{out}");
    let rows = list();
    assert_eq!(rows.len(), 1, "retention resumed: {rows:?}");
    assert_eq!(rows[0]["counts"]["kv_entries"], 0);
}

/// A listing that fails in the cycle that captures a wipe: the guard fails closed. Nothing is
/// deleted there, the backup is marked unjudged (never a baseline), and the next cycle that
/// can list judges it, so the backups from before the wipe are held.
#[test]
fn a_failed_listing_while_the_kv_store_is_wiped_deletes_no_pre_wipe_backup() {
    use support::s3proxy::{Op, Rule, S3Proxy};
    let c = consul();
    let s3 = s3_target();
    let proxy = S3Proxy::start(&s3.endpoint);
    let prefix = format!("guard-{}/", support::net::random());
    let env: Vec<(String, String)> = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let addr = c.addr();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        a.extend(s3.cli_args(&prefix));
        // Through the fault proxy.
        let at = a
            .iter()
            .position(|x| x == "--aws-s3-endpoint")
            .expect("endpoint flag");
        a[at + 1] = proxy.endpoint.clone();
        a
    };
    let once = || {
        let a = args(&[
            "agent",
            "--once",
            "--http-addr",
            &addr,
            "--retain",
            "2",
            "--retries",
            "0",
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_cli_env(&a, &env)
    };
    let list = || -> Vec<Value> {
        let a = args(&["list", "--output", "json"]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run_cli_env(&a, &env);
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    for _ in 0..2 {
        let out = once();
        assert!(out.status.success(), "{}", describe(&out));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let pre_wipe: Vec<String> = list()
        .iter()
        .filter_map(|r| r["key"].as_str().map(str::to_string))
        .collect();
    assert_eq!(pre_wipe.len(), 2);
    support::wipe_kv(&c);
    // Every attempt of the guard's listing fails (the SDK tries 3 times); the listing for
    // retention after the upload would succeed.
    proxy.add(Rule::error500(Op::ListObjectsV2, 3));
    let out = once();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text.contains("retention deleted nothing here"), "{text}");
    assert!(text.contains("UNJUDGED"), "{text}");
    proxy.clear();
    let rows = list();
    assert_eq!(rows.len(), 3, "nothing deleted: {rows:?}");
    assert_eq!(rows[2]["unjudged"], true, "{rows:?}");
    // Two more cycles that can list: the unjudged backup and the next snapshot are judged
    // against the last pre-wipe backup, and the pre-wipe backups are held.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        let out = once();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let rows = list();
    let keys: Vec<&str> = rows.iter().filter_map(|r| r["key"].as_str()).collect();
    for k in &pre_wipe {
        assert!(keys.contains(&k.as_str()), "{k} was kept: {keys:?}");
    }
    let wiped = &rows[2];
    assert!(wiped.get("unjudged").is_none(), "judged now: {wiped}");
    assert!(
        wiped["anomaly"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("kv_entries")),
        "marked as the anomaly it is: {wiped}"
    );
    support::record_fault_row(
        "The shrink guard's listing fails (every SDK attempt) in the cycle that captures a KV wipe (retain 2)",
        "no retention there; the backup is marked unjudged, judged at the next cycle that can list; pre-wipe backups held",
        "exit 1 'retention deleted nothing here'; 'UNJUDGED'; both pre-wipe backups kept two cycles later; the wipe marked an anomaly",
    );
}
