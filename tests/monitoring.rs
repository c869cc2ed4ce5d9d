//! The monitoring kit in `deploy/monitoring/` against the real tools: `promtool` checks the
//! agent's exposition and runs the alert rules' unit tests; a real Prometheus (Debian's
//! package, installed by `tests/servers.sh`) scrapes a running agent and answers queries under
//! the documented names; every metric the rules and the dashboard use is one the agent exports.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consul_snapshot_agent::devserver::DevServerConfig;
use serde_json::Value;
use support::agent::{wait_until, AgentProcess};
use support::net::{free_port, raw_http, wait_for_port};
use support::{scrape, TestConsul};

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring")
}

fn tool(var: &str, name: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| name.to_string())
}

/// The Consul API test server, accepting the short session TTL the agent is given.
fn consul() -> TestConsul {
    TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        ..DevServerConfig::default()
    })
}

/// A running agent (leader, snapshots every second) and its metrics address.
fn agent(c: &TestConsul, dir: &Path) -> (AgentProcess, String) {
    let metrics = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "--http-addr",
        &c.addr(),
        "--local-path",
        &dir.display().to_string(),
        "--metrics-addr",
        &metrics,
        "--session-ttl",
        "2s",
        "--session-ttl-min",
        "500ms",
        "--interval",
        "1s",
        "--retain",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let a = AgentProcess::start(&args, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || {
            support::metric(
                &scrape(&metrics, "/metrics").1,
                "consul_snapshot_successes_total",
            ) >= 1.0
        }),
        "no successful cycle:\n{}",
        a.log()
    );
    (a, metrics)
}

/// Metric names a PromQL text refers to (`consul_snapshot_...` words).
fn referenced(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("consul_snapshot_"))
        .map(str::to_string)
        .collect()
}

/// Metric names a text exposition describes (`# TYPE` lines: a labelled family has them
/// before its first sample exists).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn promtool_accepts_the_exposition_and_the_alert_rules_pass_their_tests() {
    let c = consul();
    let dir = tempfile::tempdir().expect("tmp");
    let (mut a, metrics) = agent(&c, dir.path());
    let (status, text) = scrape(&metrics, "/metrics");
    assert_eq!(status, 200);
    let mut check = Command::new(tool("PROMTOOL_BIN", "promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (tests/servers.sh installs it)");
    std::io::Write::write_all(check.stdin.as_mut().expect("stdin"), text.as_bytes())
        .expect("write");
    drop(check.stdin.take());
    let out = check.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "{said}\n{text}"
    );

    // Everything the rules and the dashboard use is exported (a renamed metric fails here).
    let names = exported(&text);
    for file in [
        "consul-snapshot-agent.rules.yml",
        "consul-snapshot-agent.dashboard.json",
    ] {
        let body = std::fs::read_to_string(monitoring_dir().join(file)).expect("read");
        for m in referenced(&body) {
            assert!(
                names.contains(&m),
                "{file} uses {m}, not exported: {names:?}"
            );
        }
    }
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring_dir().join("consul-snapshot-agent.dashboard.json"))
            .expect("read"),
    )
    .expect("dashboard JSON");
    assert!(dash["panels"].as_array().is_some_and(|p| p.len() >= 8));
    a.terminate(Duration::from_secs(10));

    let rules = Command::new(tool("PROMTOOL_BIN", "promtool"))
        .current_dir(monitoring_dir())
        .args(["test", "rules", "consul-snapshot-agent.rules.test.yml"])
        .output()
        .expect("promtool");
    assert!(
        rules.status.success(),
        "{}{}",
        String::from_utf8_lossy(&rules.stdout),
        String::from_utf8_lossy(&rules.stderr)
    );
}

/// Stops Prometheus by its process id when dropped.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /api/v1/query?query=q` on Prometheus: the result vector.
fn query(port: u16, q: &str) -> Vec<Value> {
    let Ok(answer) = raw_http(
        port,
        &format!(
            "GET /api/v1/query?query={q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ),
    ) else {
        return Vec::new();
    };
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    // Prometheus may answer chunked; the JSON object is the first '{' to the last '}'.
    let (Some(a), Some(b)) = (body.find('{'), body.rfind('}')) else {
        return Vec::new();
    };
    serde_json::from_str::<Value>(&body[a..=b])
        .ok()
        .and_then(|v| v["data"]["result"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn a_real_prometheus_scrapes_the_agent_under_the_documented_names() {
    let c = consul();
    let dir = tempfile::tempdir().expect("tmp");
    let (mut a, metrics) = agent(&c, dir.path());
    let work = tempfile::tempdir().expect("tmp");
    let rules = monitoring_dir().join("consul-snapshot-agent.rules.yml");
    std::fs::write(
        work.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: consul-snapshot-agent\n    static_configs:\n      - targets: ['{metrics}']\n",
            rules.display()
        ),
    )
    .expect("config");
    let port = free_port();
    let child = Command::new(tool("PROMETHEUS_BIN", "prometheus"))
        .arg(format!(
            "--config.file={}",
            work.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (tests/servers.sh installs it)");
    let _prometheus = Prometheus(child);
    assert!(
        wait_for_port(port, Duration::from_secs(30)),
        "prometheus did not listen"
    );
    let value = |v: &Value| -> f64 {
        v["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert!(
        wait_until(Duration::from_secs(40), || query(
            port,
            "consul_snapshot_successes_total"
        )
        .first()
        .is_some_and(|v| value(v) >= 1.0)),
        "no successes scraped:\n{}",
        a.log()
    );
    for (name, want) in [
        ("consul_snapshot_leader", Some(1.0)),
        ("consul_snapshot_anomaly", Some(0.0)),
        ("consul_snapshot_health_window_seconds", Some(2.0)),
        ("consul_snapshot_last_raft_index", None),
        ("consul_snapshot_last_archive_bytes", None),
        ("consul_snapshot_last_success_timestamp_seconds", None),
    ] {
        let got = query(port, name);
        let v = got.first().map(value).unwrap_or(f64::NAN);
        match want {
            Some(w) => assert_eq!(v, w, "{name}"),
            None => assert!(v > 0.0, "{name}: {got:?}"),
        }
    }
    // The rules loaded: the stale alert's expression evaluates and is not firing.
    let stale = query(
        port,
        "time()-max(consul_snapshot_last_success_timestamp_seconds)>max(consul_snapshot_health_window_seconds)",
    );
    assert!(stale.is_empty(), "{stale:?}");
    let _ = std::fs::remove_dir_all(work.path().join("data"));
    a.terminate(Duration::from_secs(10));
}
