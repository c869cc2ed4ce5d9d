//! Shared helpers for integration tests.
#![allow(dead_code)]

pub mod agent;
pub mod azurite;
pub mod consul_real;
pub mod fakegcs;
pub mod faulty;
pub mod garage;
pub mod hookproxy;
pub mod net;
pub mod s3proxy;
pub mod serve;
pub mod sts;
pub mod webhook;

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

use consul_snapshot_agent::devserver::{DevServer, DevServerConfig, Faults};

/// The Consul API test server running in-process on its own runtime, on a free loopback port.
/// Dropping it stops the server and its runtime.
pub struct TestConsul {
    pub server: Option<DevServer>,
    pub rt: tokio::runtime::Runtime,
}

impl TestConsul {
    pub fn start(cfg: DevServerConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt
            .block_on(DevServer::start(cfg))
            .expect("start test server");
        TestConsul {
            server: Some(server),
            rt,
        }
    }

    pub fn server(&self) -> &DevServer {
        self.server.as_ref().expect("running")
    }

    pub fn addr(&self) -> String {
        self.server().addr().to_string()
    }

    pub fn url(&self) -> String {
        self.server().url()
    }

    pub fn faults(&self, f: Faults) {
        self.server().set_faults(f);
    }
}

impl Drop for TestConsul {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// Runs the binary with extra environment variables; the Consul variables of the outer
/// environment are removed so tests see only what they set.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONSUL_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .output()
        .expect("spawn consul-snapshot-agent")
}

/// `GET path` on `addr` (a loopback server of the test): status and body; `(0, "")` when
/// nothing answers. The server closes the connection (`Connection: close`), which bounds it.
pub fn scrape(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        code,
        buf.split("\r\n\r\n").nth(1).unwrap_or_default().to_string(),
    )
}

/// The sum of the samples of metric `name` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Appends one row (scenario, expected, observed) to the fault matrix table,
/// `$CARGO_TARGET_TMPDIR/fault-matrix.tsv`, which `tests/run.sh` prints at the end of a run.
pub fn record_fault_row(scenario: &str, expected: &str, observed: &str) {
    use std::io::Write;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fault-matrix.tsv");
    let line = format!(
        "{scenario}\t{expected}\t{}\n",
        observed.replace(['\n', '\t'], " ")
    );
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("table file");
    f.write_all(line.as_bytes()).expect("write row");
}

/// Names of the backups in a local destination `dir` (by our naming scheme), sorted: oldest
/// first, as names sort by time.
pub fn backup_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| consul_snapshot_agent::storage::naming::parse_name(n).is_some())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Deletes every application KV tree of the synthetic state (`vault/`, `config/`, `app/`) on
/// the Consul API test server, as an operator's `consul kv delete -recurse` would (the
/// agent's lock key is left alone): what the shrink guard must notice.
pub fn wipe_kv(c: &TestConsul) {
    let port: u16 = c
        .addr()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    for tree in ["vault/", "config/", "app/"] {
        let answer = net::raw_http(
            port,
            &format!("DELETE /v1/kv/{tree}?recurse HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        )
        .expect("delete");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
