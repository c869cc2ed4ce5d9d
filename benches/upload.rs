//! A ~1 GiB archive from the Consul API test server through the whole pipeline into Garage
//! (`agent --once` to S3), beside the way operators do it today (`curl -o`, verify with
//! `tar -xzf` + `sha256sum -c`, then `aws s3 cp` with awscli from PyPI), in one run. Prints
//! wall time and peak RSS. Size: `BENCH_STATE_MIB` (default 1024).
//!
//! Targets (issue 4): ≤ 0.4 × the baseline's wall time; peak RSS ≤ 64 MiB plus the parts in
//! flight (16 MiB × (4 + 1) with the defaults).

#[path = "../tests/support/garage.rs"]
mod garage;
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// awscli in a virtualenv under target/bench-data, installed from PyPI on first use.
fn awscli() -> PathBuf {
    let venv = support::data_dir().join("awscli-venv");
    let aws = venv.join("bin/aws");
    if !aws.exists() {
        eprintln!("installing awscli into {} ...", venv.display());
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "awscli"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        assert!(
            ok,
            "could not install awscli (python3 -m venv + pip install awscli)"
        );
    }
    aws
}

fn main() {
    let mib: u64 = std::env::var("BENCH_STATE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (archive, _) = support::cached_archive(mib << 20);
    let archive_len = support::file_len(&archive);
    let aws = awscli();
    let s3 = garage::s3_target();
    eprintln!(
        "starting the Consul API test server on {} ...",
        archive.display()
    );
    let server = support::DevServerProcess::start(&archive);
    let work = tempfile::Builder::new()
        .prefix("bench-upload-")
        .tempdir_in(support::data_dir())
        .expect("tmp");
    let creds = [
        ("AWS_ACCESS_KEY_ID", s3.key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    println!(
        "archive {} ({:.1} MiB) from {} into {} (bucket {}), best of {runs}",
        archive.display(),
        archive_len as f64 / 1048576.0,
        server.url,
        s3.endpoint,
        s3.bucket
    );
    support::header("archive rate");
    let baseline = support::best_of(runs, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(concat!(
                "set -e; cd \"$2\"; rm -rf x; mkdir x; cd x; curl -sSf -o b.snap \"$1/v1/snapshot\"; ",
                "tar -xzf b.snap; sha256sum -c --quiet SHA256SUMS; ",
                "\"$3\" s3 cp --only-show-errors --endpoint-url \"$4\" --region \"$5\" b.snap \"s3://$6/baseline/b.snap\""
            ))
            .arg("sh")
            .arg(&server.url)
            .arg(work.path())
            .arg(&aws)
            .arg(&s3.endpoint)
            .arg(&s3.region)
            .arg(&s3.bucket)
            .envs(creds)
            .stdout(Stdio::null());
        c
    });
    support::row(
        "baseline: curl + tar -xzf + sha256sum -c + aws s3 cp",
        baseline,
        archive_len,
        None,
    );
    let ours = support::best_of(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        c.args([
            "agent",
            "--once",
            "--retain",
            "0",
            "--http-addr",
            server.addr(),
        ])
        .args([
            "--aws-s3-bucket",
            &s3.bucket,
            "--aws-s3-key-prefix",
            "agent",
            "--aws-s3-endpoint",
            &s3.endpoint,
            "--aws-s3-region",
            &s3.region,
        ])
        .envs(creds)
        .stdout(Stdio::null());
        c
    });
    support::row(
        "consul-snapshot-agent agent --once (to S3)",
        ours,
        archive_len,
        Some(baseline),
    );
    support::verdict(
        "agent --once to S3",
        ours,
        baseline,
        0.4,
        Some(64.0 + 16.0 * 5.0),
    );
}
