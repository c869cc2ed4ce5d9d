//! Save of a ~1 GiB archive from the Consul API test server to local disk, beside what
//! `consul snapshot save` amounts to (`curl -o`, then `tar -xzf` + `sha256sum -c SHA256SUMS`),
//! in one run. Prints wall time and peak RSS. Size: `BENCH_STATE_MIB` (default 1024).
//!
//! Targets (issue 3): save ≤ 0.5 × the baseline's wall time; peak RSS ≤ 64 MiB at any size.

mod support;

use std::process::{Command, Stdio};

fn main() {
    let mib = support::state_mib_from_env();
    let runs = support::runs_from_env();
    let (archive, _) = support::cached_archive(mib << 20);
    let archive_len = support::file_len(&archive);
    eprintln!(
        "starting the Consul API test server on {} ...",
        archive.display()
    );
    let server = support::DevServerProcess::start(&archive);
    let work = tempfile::Builder::new()
        .prefix("bench-save-")
        .tempdir_in(support::data_dir())
        .expect("tmp");
    let out = work.path();
    println!(
        "archive {} ({:.1} MiB), from {}, best of {runs}",
        archive.display(),
        archive_len as f64 / 1048576.0,
        server.url
    );
    support::header("archive rate");
    let baseline = support::best_of(runs, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("set -e; cd \"$2\"; rm -rf x; mkdir x; cd x; curl -sSf -o b.snap \"$1/v1/snapshot\"; tar -xzf b.snap; sha256sum -c --quiet SHA256SUMS")
            .arg("sh")
            .arg(&server.url)
            .arg(out)
            .stdout(Stdio::null());
        c
    });
    support::row(
        "baseline: curl -o + tar -xzf + sha256sum -c",
        baseline,
        archive_len,
        None,
    );
    let ours = support::best_of(runs, || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
        c.args(["save", "--http-addr", server.addr()])
            .arg(out.join("a.snap"))
            .stdout(Stdio::null());
        c
    });
    support::row(
        "consul-snapshot-agent save",
        ours,
        archive_len,
        Some(baseline),
    );
    support::verdict("save", ours, baseline, Some(0.5), Some(64.0));
}
