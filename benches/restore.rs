//! Restore of a ~1 GiB backup from Garage into the Consul API test server, beside the manual
//! way (`aws s3 cp` download, `tar -xzf` + `sha256sum -c` verify, `curl -T` PUT of the same
//! object), in one run. Prints wall time and peak RSS. Size: `BENCH_STATE_MIB` (default 1024).
//!
//! Target (issue 6): ≤ 0.6 × the baseline's wall time.

#[path = "../tests/support/garage.rs"]
mod garage;
#[path = "../tests/support/net.rs"]
mod net;
mod support;

use std::process::{Command, Stdio};

fn main() {
    let mib = support::state_mib_from_env();
    let runs = support::runs_from_env();
    let (archive, _) = support::cached_archive(mib << 20);
    let archive_len = support::file_len(&archive);
    let aws = support::awscli();
    let s3 = garage::s3_target();
    eprintln!("starting the Consul API test server ...");
    let server = support::DevServerProcess::start(&archive);
    // Stored by the agent in a child process: an upload in this process would inflate the
    // peak RSS measured for every later child (a forked child starts with its parent's).
    let prefix = format!("restore-{}/", std::process::id());
    eprintln!("storing {} in Garage ...", archive.display());
    let key = support::store_backup(&server, &s3.cli_args(&prefix), &s3.cli_env());
    let work = tempfile::Builder::new()
        .prefix("bench-restore-")
        .tempdir_in(support::data_dir())
        .expect("tmp");
    let creds = [
        ("AWS_ACCESS_KEY_ID", s3.key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.secret.as_str()),
    ];
    println!(
        "backup s3://{}/{key} ({:.1} MiB) into {}, best of {runs}",
        s3.bucket,
        archive_len as f64 / 1048576.0,
        server.url
    );
    support::header("archive rate");
    let baseline = support::best_of(runs, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(concat!(
                "set -e; cd \"$1\"; rm -rf x; mkdir x; cd x; ",
                "\"$2\" s3 cp --only-show-errors --endpoint-url \"$3\" --region \"$4\" \"s3://$5/$6\" b.snap; ",
                "tar -xzf b.snap; sha256sum -c --quiet SHA256SUMS; ",
                "curl -sSf -T b.snap \"$7/v1/snapshot\""
            ))
            .arg("sh")
            .arg(work.path())
            .arg(&aws)
            .arg(&s3.endpoint)
            .arg(&s3.region)
            .arg(&s3.bucket)
            .arg(&key)
            .arg(&server.url)
            .envs(creds)
            .stdout(Stdio::null());
        c
    });
    support::row(
        "baseline: aws s3 cp + tar + sha256sum + curl -T",
        baseline,
        archive_len,
        None,
    );
    let ours = support::best_of(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        c.args(support::restore_args(&key, &server))
            .args(s3.cli_args(&prefix))
            .envs(creds)
            .env("TMPDIR", work.path())
            .stdout(Stdio::null());
        c
    });
    support::row(
        "consul-snapshot-agent restore --key",
        ours,
        archive_len,
        Some(baseline),
    );
    support::verdict("restore", ours, baseline, Some(0.6), None);
}
