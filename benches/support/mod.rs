//! Helpers shared by the benchmarks: cached synthetic archives and process measurement
//! (wall time and peak RSS of a child and its waited-for descendants, via `wait4`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::archive::WriteOptions;

/// `target/bench-data/`, created on demand.
pub fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    dir
}

/// A synthetic archive with a state.bin of about `state_bytes`, built once and cached.
pub fn cached_archive(state_bytes: u64) -> (PathBuf, SynthSpec) {
    let spec = SynthSpec::with_state_size(state_bytes);
    let path = data_dir().join(format!(
        "synth-v2-{}MiB-seed{}.snap",
        state_bytes >> 20,
        spec.seed
    ));
    if !path.exists() {
        eprintln!(
            "building {} once (cached for later runs)...",
            path.display()
        );
        let t = Instant::now();
        let tmp = path.with_extension("tmp");
        let file = std::fs::File::create(&tmp).expect("create");
        let out = spec
            .write_archive(
                std::io::BufWriter::with_capacity(1 << 20, file),
                &WriteOptions::default(),
            )
            .expect("write archive");
        out.into_inner().expect("flush").sync_all().expect("sync");
        std::fs::rename(&tmp, &path).expect("rename");
        eprintln!("built in {:.1} s", t.elapsed().as_secs_f64());
    }
    (path, spec)
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub wall: Duration,
    pub peak_rss_kib: i64,
    /// CPU time (user + system) of the command's process tree plus that of the servers named
    /// by [`watch_servers`] during the run.
    pub cpu: Duration,
}

/// Server processes (Garage, the Consul API test server...) whose CPU time counts in every
/// [`Run::cpu`] measured from now on: on a small machine they compete for the same cores.
static SERVERS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Adds `pids` to the servers whose CPU time each measurement includes.
pub fn watch_servers(pids: &[u32]) {
    if let Ok(mut s) = SERVERS.lock() {
        s.extend_from_slice(pids);
    }
}

/// User + system CPU time of a live process so far, from `/proc/PID/stat` (zero if unreadable).
fn proc_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

fn servers_cpu() -> Duration {
    SERVERS
        .lock()
        .map(|s| s.iter().map(|&p| proc_cpu(p)).sum())
        .unwrap_or_default()
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `cmd` to completion, measuring wall time, peak RSS (max over the process tree) and
/// CPU time (the tree's plus the watched servers').
// The child is reaped by `wait4`, which std's `Child::wait` cannot do with rusage.
#[allow(clippy::zombie_processes)]
pub fn measure(cmd: &mut Command) -> Run {
    let servers_before = servers_cpu();
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn benchmark command");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    let servers = servers_cpu().saturating_sub(servers_before);
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "benchmark command failed: {cmd:?}"
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Run {
        wall,
        peak_rss_kib: usage.ru_maxrss,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime) + servers,
    }
}

/// The best (shortest) of `n` runs, with the highest peak RSS seen.
pub fn best_of(n: usize, mut make: impl FnMut() -> Command) -> Run {
    let runs: Vec<Run> = (0..n).map(|_| measure(&mut make())).collect();
    let best = runs.iter().min_by_key(|r| r.wall).copied();
    let peak = runs
        .iter()
        .map(|r| r.peak_rss_kib)
        .max()
        .unwrap_or_default();
    Run {
        wall: best.map(|r| r.wall).unwrap_or_default(),
        peak_rss_kib: peak,
        cpu: best.map(|r| r.cpu).unwrap_or_default(),
    }
}

/// The median of `n` runs by wall time (the measure: whole-process runs taken one
/// after another), with the highest peak RSS seen.
pub fn median_of(n: usize, mut make: impl FnMut() -> Command) -> Run {
    let runs: Vec<Run> = (0..n.max(1)).map(|_| measure(&mut make())).collect();
    median(runs)
}

/// The median by wall time of `runs` (not empty), with the highest peak RSS among them.
pub fn median(mut runs: Vec<Run>) -> Run {
    let peak = runs
        .iter()
        .map(|r| r.peak_rss_kib)
        .max()
        .unwrap_or_default();
    runs.sort_by_key(|r| r.wall);
    let mid = runs[runs.len() / 2];
    Run {
        peak_rss_kib: peak,
        ..mid
    }
}

/// `BENCH_RUNS` (default 3).
pub fn runs_from_env() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// `BENCH_STATE_MIB` (default 1024): the state.bin size of the cached archive, in MiB.
pub fn state_mib_from_env() -> u64 {
    std::env::var("BENCH_STATE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Prints one result row.
pub fn row(name: &str, run: Run, payload_bytes: u64, baseline: Option<Run>) {
    let secs = run.wall.as_secs_f64();
    let ratio = baseline.map_or(String::from("-"), |b| {
        format!("{:.2}x", secs / b.wall.as_secs_f64())
    });
    println!(
        "{name:<44} {secs:>8.2} s {:>9.0} MB/s {:>9.1} MiB  {ratio:>6}",
        payload_bytes as f64 / 1e6 / secs,
        run.peak_rss_kib as f64 / 1024.0
    );
}

pub fn header(rate: &str) {
    println!(
        "{:<44} {:>10} {:>14} {:>13} {:>7}",
        "command", "wall", rate, "peak RSS", "vs base"
    );
}

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The Consul API test server as a child process serving `archive`; stopped by pid on drop.
pub struct DevServerProcess {
    pub child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl DevServerProcess {
    pub fn start(archive: &Path) -> Self {
        use std::io::BufRead;
        let dir = tempfile::Builder::new()
            .prefix("bench-devserver-")
            .tempdir_in(data_dir())
            .expect("tmp");
        let mut child = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
            .args(["dev-server", "--listen", "127.0.0.1:0", "--archive"])
            .arg(archive)
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn dev-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("read url");
        // Keep draining: the server writes more lines later, and a closed pipe would kill it.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .last()
            .expect("url in first line")
            .to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected dev-server output {line:?}"
        );
        DevServerProcess {
            child,
            url,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for DevServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// awscli in a virtualenv under target/bench-data, installed from PyPI on first use.
pub fn awscli() -> PathBuf {
    let venv = data_dir().join("awscli-venv");
    let aws = venv.join("bin/aws");
    if !aws.exists() {
        eprintln!("installing awscli into {} ...", venv.display());
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "awscli"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not install awscli (python3 -m venv + pip install awscli)"
        );
    }
    aws
}

/// `restore --key KEY --yes --safety-snapshot=false --http-addr ADDR` into `server`: the
/// benchmarks' restore (storage flags follow).
pub fn restore_args(key: &str, server: &DevServerProcess) -> Vec<String> {
    [
        "restore",
        "--key",
        key,
        "--yes",
        "--safety-snapshot=false",
        "--http-addr",
        server.addr(),
    ]
    .map(String::from)
    .into()
}

/// `agent --once --retain 0 --http-addr ADDR` against `server`: the arguments of every
/// one-shot agent run in the benchmarks (destination flags follow).
pub fn agent_once_args(server: &DevServerProcess) -> Vec<String> {
    [
        "agent",
        "--once",
        "--retain",
        "0",
        "--http-addr",
        server.addr(),
    ]
    .map(String::from)
    .into()
}

/// Stores one backup of the archive `server` serves with the agent itself (`agent --once` with
/// the destination flags `dest` and environment `env`) and returns its object key, as `list`
/// reports it. In a child process, so that this process's memory never inflates the peak RSS
/// measured for later children (a forked child starts with its parent's RSS).
pub fn store_backup(
    server: &DevServerProcess,
    dest: &[String],
    env: &[(String, String)],
) -> String {
    let agent = env!("CARGO_BIN_EXE_consul-snapshot-agent");
    let status = Command::new(agent)
        .args(agent_once_args(server))
        .args(dest)
        .envs(env.iter().cloned())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("agent --once");
    assert!(status.success(), "agent --once failed");
    let out = Command::new(agent)
        .args(["list", "--output", "json"])
        .args(dest)
        .envs(env.iter().cloned())
        .output()
        .expect("list");
    assert!(out.status.success(), "list failed");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list JSON");
    listed
        .as_array()
        .and_then(|a| a.first())
        .and_then(|b| b["key"].as_str())
        .expect("a key in the listing")
        .to_string()
}

/// Prints whether `ours` met the targets: wall time at most `max_ratio` × the baseline's (when
/// given; otherwise the ratio is printed without a target) and, when given, peak RSS at most
/// `rss_budget_mib`.
pub fn verdict(
    label: &str,
    ours: Run,
    baseline: Run,
    max_ratio: Option<f64>,
    rss_budget_mib: Option<f64>,
) {
    let ratio = ours.wall.as_secs_f64() / baseline.wall.as_secs_f64();
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut line = match max_ratio {
        Some(max) => format!(
            "target: {label} <= {max:.2}x baseline -> {ratio:.2}x {}",
            met(ratio <= max)
        ),
        None => format!("target: {label}: {ratio:.2}x baseline (no wall-time target)"),
    };
    if let Some(budget) = rss_budget_mib {
        let rss = ours.peak_rss_kib as f64 / 1024.0;
        line.push_str(&format!(
            "; peak RSS <= {budget:.0} MiB -> {rss:.1} MiB {}",
            met(rss <= budget)
        ));
    }
    println!("{line}");
}
