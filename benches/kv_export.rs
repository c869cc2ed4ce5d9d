//! `kv-export --prefix` of about a thousand keys from a ~1 GiB state.bin archive, beside
//! `verify` of the same archive (the one pass both make), in one run; and `diff` of the archive
//! with itself (two passes and the merge of two 2.9-million-key spools). Prints wall time,
//! state.bin MB/s and peak RSS. Size: `BENCH_STATE_MIB` (default 1024); runs: `BENCH_RUNS`.
//!
//! Targets (issue 23): kv-export within 1.1x of verify's time, peak RSS below 64 MiB.

mod support;

use std::process::{Command, Stdio};

/// Prefixes of the synthetic state's `app/data/<i>` keys (i ≡ 3 mod 4) that select about a
/// thousand entries of a 1 GiB state (~2.9 million entries).
const PREFIXES: [&str; 4] = [
    "app/data/1234",
    "app/data/1235",
    "app/data/2345",
    "app/data/2346",
];

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
    let out = tempfile::tempdir().expect("tmp");
    let json = out.path().join("export.json");
    let export_cmd = || {
        let mut c = Command::new(bin);
        c.arg("kv-export").arg(&path);
        for p in PREFIXES {
            c.args(["--prefix", p]);
        }
        c.arg("-o").arg(&json);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    support::measure(&mut export_cmd());
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).expect("export")).expect("json");
    println!(
        "archive {} ({:.1} MiB compressed, state.bin {:.1} MiB); kv-export selects {} entries; best of {runs}",
        path.display(),
        support::file_len(&path) as f64 / 1048576.0,
        state_len as f64 / 1048576.0,
        entries.len()
    );
    support::header("state.bin rate");
    let verify = support::best_of(runs, || {
        let mut c = Command::new(bin);
        c.arg("verify").arg(&path);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    });
    support::row("consul-snapshot-agent verify", verify, state_len, None);
    let export = support::best_of(runs, export_cmd);
    support::row(
        "consul-snapshot-agent kv-export --prefix x4",
        export,
        state_len,
        Some(verify),
    );
    let diff = support::best_of(1, || {
        let mut c = Command::new(bin);
        c.arg("diff").arg(&path).arg(&path);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c
    });
    support::row(
        "consul-snapshot-agent diff FILE FILE (2 reads)",
        diff,
        2 * state_len,
        Some(verify),
    );
    support::verdict("kv-export", export, verify, Some(1.1), Some(64.0));
}
