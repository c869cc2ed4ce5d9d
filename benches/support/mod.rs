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
}

/// Runs `cmd` to completion, measuring wall time and peak RSS (max over the process tree).
// The child is reaped by `wait4`, which std's `Child::wait` cannot do with rusage.
#[allow(clippy::zombie_processes)]
pub fn measure(cmd: &mut Command) -> Run {
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn benchmark command");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "benchmark command failed: {cmd:?}"
    );
    Run {
        wall,
        peak_rss_kib: usage.ru_maxrss,
    }
}

/// The best (shortest) of `n` runs, with the highest peak RSS seen.
pub fn best_of(n: usize, mut make: impl FnMut() -> Command) -> Run {
    let runs: Vec<Run> = (0..n).map(|_| measure(&mut make())).collect();
    let wall = runs.iter().map(|r| r.wall).min().unwrap_or_default();
    let peak = runs
        .iter()
        .map(|r| r.peak_rss_kib)
        .max()
        .unwrap_or_default();
    Run {
        wall,
        peak_rss_kib: peak,
    }
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
