//! Inspect (full verification + statistics) of a ~1 GiB state.bin archive, beside the shell
//! baseline `gzip -dc FILE | sha256sum` and a plain C-zlib decompress (the floor), in one run.
//! Prints wall time, state.bin MB/s and peak RSS. Size: `BENCH_STATE_MIB` (default 1024).
//!
//! Targets (issue 2): inspect ≤ 0.5 × the baseline's wall time, peak RSS ≤ 64 MiB.

mod support;

use std::process::{Command, Stdio};

fn main() {
    let mib = support::state_mib_from_env();
    let runs = support::runs_from_env();
    let (path, _) = support::cached_archive(mib << 20);
    let bin = env!("CARGO_BIN_EXE_consul-snapshot-agent");
    let state_len = {
        let f = std::fs::File::open(&path).expect("open");
        consul_snapshot_agent::archive::read_archive(f, Default::default(), &mut ())
            .expect("archive verifies")
            .state
            .len
    };
    println!(
        "archive {} ({:.1} MiB compressed, state.bin {:.1} MiB), best of {runs}",
        path.display(),
        support::file_len(&path) as f64 / 1048576.0,
        state_len as f64 / 1048576.0
    );
    support::header("state.bin rate");
    let quiet = |mut c: Command| {
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let baseline = support::best_of(runs, || {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("gzip -dc \"$1\" | sha256sum")
            .arg("sh")
            .arg(&path);
        quiet(c)
    });
    support::row(
        "baseline: gzip -dc FILE | sha256sum",
        baseline,
        state_len,
        None,
    );
    let floor = support::best_of(runs, || {
        let mut c = Command::new("python3");
        c.arg("-c")
            .arg("import sys,zlib\nd=zlib.decompressobj(31)\nf=open(sys.argv[1],'rb')\nwhile (b:=f.read(1<<20)): d.decompress(b)")
            .arg(&path);
        quiet(c)
    });
    support::row(
        "floor: C zlib inflate only (python3 zlib)",
        floor,
        state_len,
        Some(baseline),
    );
    let verify = support::best_of(runs, || {
        let mut c = Command::new(bin);
        c.arg("verify").arg(&path);
        quiet(c)
    });
    support::row(
        "consul-snapshot-agent verify",
        verify,
        state_len,
        Some(baseline),
    );
    let inspect = support::best_of(runs, || {
        let mut c = Command::new(bin);
        c.arg("inspect").arg(&path);
        quiet(c)
    });
    support::row(
        "consul-snapshot-agent inspect",
        inspect,
        state_len,
        Some(baseline),
    );
    // Memory of --kvdetails grows with the number of distinct key prefixes (as in Consul).
    let kv = support::best_of(runs, || {
        let mut c = Command::new(bin);
        c.args(["inspect", "--kvdetails"]).arg(&path);
        quiet(c)
    });
    support::row(
        "consul-snapshot-agent inspect --kvdetails",
        kv,
        state_len,
        Some(baseline),
    );
    support::verdict("inspect", inspect, baseline, Some(0.5), Some(64.0));
}
