//! What operators run today against what the agent does, on a real Consul server (Debian 11's
//! Consul 1.8.7 from `tests/servers.sh`; source it first) filled with `BENCH_KV_MIB` MiB of KV
//! (default 256, values of 256 KiB that do not compress), in one run:
//! - the real `consul snapshot save FILE` CLI alone, against our `save FILE`;
//! - `consul snapshot save FILE && aws s3 cp FILE s3://...` (awscli from PyPI) into Garage,
//!   against our `agent --once` into the same Garage.
//!
//! Each row: wall time, CPU seconds (the command's process tree; the servers' own time is not
//! counted) and peak RSS, median of `BENCH_RUNS` (default 3). No target: the figures are for
//! the README's performance section. Not run by CI (a benchmark, not a test).

#[path = "../tests/support/consul_real.rs"]
mod consul_real;
#[path = "../tests/support/garage.rs"]
mod garage;
#[path = "../tests/support/net.rs"]
mod net;
mod support;

use std::process::{Command, Stdio};

/// Bytes of each KV value (Consul 1.8's `kv_max_value_size` is 512 KiB).
const VALUE_BYTES: usize = 256 << 10;

fn kv_mib() -> u64 {
    std::env::var("BENCH_KV_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// One row: name, wall, CPU, peak RSS, and the ratio to `base`.
fn row(name: &str, run: support::Run, base: Option<support::Run>) {
    let ratio = base.map_or(String::from("-"), |b| {
        format!("{:.2}x", run.wall.as_secs_f64() / b.wall.as_secs_f64())
    });
    println!(
        "{name:<58} {:>8.2} s {:>8.2} CPU-s {:>9.1} MiB  {ratio:>6}",
        run.wall.as_secs_f64(),
        run.cpu.as_secs_f64(),
        run.peak_rss_kib as f64 / 1024.0
    );
}

fn main() {
    let runs = support::runs_from_env();
    let mib = kv_mib();
    eprintln!("starting a real Consul (dev mode) and filling it with {mib} MiB of KV ...");
    let consul = consul_real::RealConsul::start();
    // Values that do not compress (a counter through SplitMix64), as secrets and certificates.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut value = vec![0u8; VALUE_BYTES];
    let keys = (mib << 20) as usize / VALUE_BYTES;
    for i in 0..keys {
        for chunk in value.chunks_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
        }
        consul.kv_put(&format!("bench/{i:06}"), &value);
    }
    let s3 = garage::s3_target();
    let aws = support::awscli();
    let work = tempfile::Builder::new()
        .prefix("bench-real-consul-")
        .tempdir_in(support::data_dir())
        .expect("tmp");
    let file = work.path().join("b.snap");
    let consul_bin = std::env::var_os("CONSUL_BIN").expect("CONSUL_BIN (source tests/servers.sh)");
    let creds = [
        ("AWS_ACCESS_KEY_ID".to_string(), s3.key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), s3.secret.clone()),
    ];
    println!(
        "real Consul at {} with {mib} MiB of KV in {keys} keys; S3 {} (bucket {}); median of {runs}; {} cores",
        consul.addr,
        s3.endpoint,
        s3.bucket,
        support::cores()
    );
    println!(
        "{:<58} {:>10} {:>14} {:>13} {:>7}",
        "command", "wall", "CPU", "peak RSS", "vs base"
    );
    let cli_save = || {
        let mut c = Command::new(&consul_bin);
        c.args(["snapshot", "save", &format!("-http-addr={}", consul.addr)])
            .arg(&file)
            .stdout(Stdio::null());
        c
    };
    let base = support::median_of(runs, cli_save);
    row("baseline: consul snapshot save (the real CLI)", base, None);
    let ours = support::median_of(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        c.args(["save", "--http-addr", &consul.addr])
            .arg(&file)
            .stdout(Stdio::null());
        c
    });
    row("consul-snapshot-agent save (verified)", ours, Some(base));

    let base_s3 = support::median_of(runs, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("set -e; \"$1\" snapshot save \"-http-addr=$2\" \"$3\" >/dev/null; \"$4\" s3 cp --only-show-errors --endpoint-url \"$5\" --region \"$6\" \"$3\" \"s3://$7/baseline/b.snap\"")
            .arg("sh")
            .arg(&consul_bin)
            .arg(&consul.addr)
            .arg(&file)
            .arg(&aws)
            .arg(&s3.endpoint)
            .arg(&s3.region)
            .arg(&s3.bucket)
            .envs(creds.iter().cloned())
            .stdout(Stdio::null());
        c
    });
    row("baseline: consul snapshot save + aws s3 cp", base_s3, None);
    let ours_s3 = support::median_of(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        c.args([
            "agent",
            "--once",
            "--retain",
            "0",
            "--http-addr",
            &consul.addr,
        ])
        .args([
            "--aws-s3-bucket",
            &s3.bucket,
            "--aws-s3-key-prefix",
            "agent",
        ])
        .args([
            "--aws-s3-endpoint",
            &s3.endpoint,
            "--aws-s3-region",
            &s3.region,
        ])
        .envs(creds.iter().cloned())
        .stdout(Stdio::null());
        c
    });
    row(
        "consul-snapshot-agent agent --once (to Garage)",
        ours_s3,
        Some(base_s3),
    );
    println!(
        "archive {:.1} MiB",
        support::file_len(&file) as f64 / 1048576.0
    );
}
