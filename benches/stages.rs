//! Each save and restore path against its slowest stage, all measured in one run (issue 14):
//! a snapshot save should cost no more than its slowest stage.
//!
//! Stages alone, on the same archive: `GET /v1/snapshot` to /dev/null (curl), `verify` of the
//! file, `aws s3 cp` of the file into Garage, writing the file with fsync (`dd conv=fsync`),
//! C zlib inflate alone (Python's zlib, streaming), the download alone (`aws s3 cp` to
//! stdout) and the `PUT /v1/snapshot` alone (`curl -T`, into the Consul API test server,
//! which verifies what it restores).
//!
//! Targets, each a ratio taken in this run (medians of `BENCH_RUNS`, default 3):
//! - `agent --once` to S3 ≤ 1.1 × max(GET, aws s3 cp, verify);
//! - `agent --once` to a local directory and `save` ≤ 1.1 × max(GET, verify, write + fsync);
//! - `restore --key` from S3 ≤ 1.1 × (max(download, verify) + PUT);
//! - `agent --once` with age encryption ≤ 1.1 × the plain S3 run (issue 11);
//! - peak RSS no higher than before issue 14 (the figures in [`RSS_BEFORE_MIB`]).
//!
//! Also printed: `agent --once` to S3 pinned to one core (`taskset -c 0`), to show what the
//! second core buys; and with `BENCH_LARGE_MIB` (e.g. 10240) one `agent --once` to S3 of an
//! archive of that state.bin size (built once and cached; the build time is printed), whose
//! peak RSS must be within 25% of the 1 GiB run's.
//!
//! Needs Garage (or `S3_ENDPOINT`), awscli (installed on first use, by any benchmark, into
//! target/bench-data), curl, dd, python3 and taskset. Source `tests/servers.sh` first.

#[path = "../tests/support/garage.rs"]
mod garage;
#[path = "../tests/support/net.rs"]
mod net;
mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use support::Run;

const AGENT: &str = env!("CARGO_BIN_EXE_consul-snapshot-agent");

/// Peak RSS of each command before issue 14 (measured on a 1 GiB state.bin archive, the
/// issue's table), in MiB: the "unchanged or lower" reference.
const RSS_BEFORE_MIB: [(&str, f64); 5] = [
    ("agent --once to S3", 77.0),
    ("agent --once to local", 24.0),
    ("save", 23.0),
    ("restore --key", 44.0),
    ("inspect", 12.0),
];

/// Wall-time target: at most this many times the slowest stage.
const MAX_RATIO: f64 = 1.1;

fn sh(script: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).arg("sh");
    for a in args {
        c.arg(a);
    }
    c.stdout(Stdio::null());
    c
}

fn agent(args: &[&str]) -> Command {
    let mut c = Command::new(AGENT);
    c.args(args).stdout(Stdio::null());
    c
}

fn rss_before(label: &str) -> f64 {
    RSS_BEFORE_MIB
        .iter()
        .find(|(l, _)| *l == label)
        .map_or(f64::INFINITY, |(_, v)| *v)
}

/// Prints the verdict of `ours` against `reference` (the slowest stage or a sum of stages),
/// with the run's CPU floor: its CPU time (agent and servers) over the cores, the least wall
/// time the machine could give it however well the stages overlapped.
fn verdict(label: &str, ours: Run, reference: f64, what: &str) {
    let ratio = ours.wall.as_secs_f64() / reference;
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let rss = ours.peak_rss_kib as f64 / 1024.0;
    let before = rss_before(label);
    let rss_part = if before.is_finite() {
        format!(
            "; peak RSS {rss:.1} MiB (before: {before:.0} MiB) {}",
            met(rss <= before)
        )
    } else {
        String::new()
    };
    let floor = ours.cpu.as_secs_f64() / support::cores() as f64;
    println!(
        "target: {label} <= {MAX_RATIO:.2}x {what} ({reference:.2} s) -> {ratio:.2}x {}{rss_part}; CPU floor on {} cores {floor:.2} s = {:.2}x",
        met(ratio <= MAX_RATIO),
        support::cores(),
        floor / reference,
    );
}

fn main() {
    let runs = support::runs_from_env();
    let mib = support::state_mib_from_env();
    let (archive, _) = support::cached_archive(mib << 20);
    let archive_len = support::file_len(&archive);
    let aws = support::awscli();
    let s3 = garage::s3_target();
    let creds = s3.cli_env();
    eprintln!("starting the Consul API test server ...");
    let server = support::DevServerProcess::start(&archive);
    let work = tempfile::Builder::new()
        .prefix("bench-stages-")
        .tempdir_in(support::data_dir())
        .expect("tmp");
    let w = work.path();
    support::watch_servers(&[server.child.id()]);
    if let Some(pid) = s3.garage.as_ref().and_then(|g| g.pid()) {
        support::watch_servers(&[pid]);
    }
    let prefix = format!("restore-{}/", std::process::id());
    eprintln!("storing one backup in S3 for the restore rows ...");
    let key = support::store_backup(&server, &s3.cli_args(&prefix), &s3.cli_env());
    println!(
        "archive {} ({:.1} MiB, state.bin {mib} MiB), Consul API test server {}, S3 {} (bucket {}), median of {runs}",
        archive.display(),
        archive_len as f64 / 1048576.0,
        server.url,
        s3.endpoint,
        s3.bucket,
    );
    let with_creds = |mut c: Command| {
        c.envs(creds.iter().cloned());
        c
    };
    let s3_args = |p: &str| s3.cli_args(p);

    support::header("archive rate");
    let stage = |label: &str, make: &mut dyn FnMut() -> Command| {
        let r = support::median_of(runs, make);
        support::row(label, r, archive_len, None);
        println!("    CPU {:.2} s (servers included)", r.cpu.as_secs_f64());
        r
    };
    println!("-- stages alone");
    let get = stage("GET /v1/snapshot to /dev/null (curl)", &mut || {
        sh("curl -sSf -o /dev/null \"$1/v1/snapshot\"", &[&server.url])
    });
    let verify = stage("verify of the same bytes", &mut || {
        let mut c = agent(&["verify"]);
        c.arg(&archive);
        c
    });
    let s3cp = stage("aws s3 cp of the same bytes", &mut || {
        with_creds(sh(
            "\"$1\" s3 cp --only-show-errors --endpoint-url \"$2\" --region \"$3\" \"$4\" \"s3://$5/stage/b.snap\"",
            &[&aws, &s3.endpoint, &s3.region, &archive, &s3.bucket],
        ))
    });
    let fsync = stage("write the same bytes with fsync (dd)", &mut || {
        sh(
            "dd if=\"$1\" of=\"$2\" bs=1M conv=fsync status=none",
            &[&archive, &w.join("dd.snap")],
        )
    });
    let inflate = stage("C zlib inflate alone (Python zlib)", &mut || {
        sh(
            "python3 -c 'import sys, zlib\nd = zlib.decompressobj(31)\nf = open(sys.argv[1], \"rb\")\nfor b in iter(lambda: f.read(1 << 20), b\"\"):\n    d.decompress(b)' \"$1\"",
            &[&archive],
        )
    });
    let download = stage("download alone (aws s3 cp to stdout)", &mut || {
        with_creds(sh(
            "\"$1\" s3 cp --only-show-errors --endpoint-url \"$2\" --region \"$3\" \"s3://$4/$5\" - > /dev/null",
            &[&aws, &s3.endpoint, &s3.region, &s3.bucket, &key],
        ))
    });
    let put = stage("PUT /v1/snapshot alone (curl -T)", &mut || {
        sh(
            "curl -sSf -o /dev/null -T \"$1\" \"$2/v1/snapshot\"",
            &[&archive, &server.url],
        )
    });

    let secs = |r: Run| r.wall.as_secs_f64();
    println!("-- commands");
    let slowest_s3 = secs(get).max(secs(s3cp)).max(secs(verify));
    let slowest_local = secs(get).max(secs(verify)).max(secs(fsync));
    let restore_ref = secs(download).max(secs(verify)) + secs(put);
    let report = |label: &str, reference: f64, r: Run| {
        support::row(label, r, archive_len, None);
        println!(
            "    {:.2}x of the reference {reference:.2} s; CPU {:.2} s (servers included)",
            secs(r) / reference,
            r.cpu.as_secs_f64()
        );
    };
    let cmd = |label: &str, reference: f64, make: &mut dyn FnMut() -> Command| {
        let r = support::median_of(runs, make);
        report(label, reference, r);
        r
    };
    let once_s3 = |extra: &[String], pin: bool| {
        let mut c = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", AGENT]);
            c
        } else {
            Command::new(AGENT)
        };
        c.args(support::agent_once_args(&server))
            .args(s3_args("agent"))
            .args(extra)
            .stdout(Stdio::null());
        with_creds(c)
    };
    let to_s3 = cmd("agent --once to S3", slowest_s3, &mut || {
        once_s3(&[], false)
    });
    // Each run starts from an empty directory, as retention would leave it: the page cache
    // of earlier runs' files is not left to weigh on the next.
    let local_dir = w.join("local");
    let to_local = cmd("agent --once to local", slowest_local, &mut || {
        let _ = std::fs::remove_dir_all(&local_dir);
        let mut c = agent(&[]);
        c.args(support::agent_once_args(&server))
            .arg("--local-path")
            .arg(&local_dir);
        c
    });
    let save_file = w.join("save.snap");
    let save = cmd("save", slowest_local, &mut || {
        let _ = std::fs::remove_file(&save_file);
        let mut c = agent(&["save", "--http-addr", server.addr()]);
        c.arg(&save_file);
        c
    });
    let inspect = cmd("inspect", secs(inflate), &mut || {
        let mut c = agent(&["inspect"]);
        c.arg(&archive);
        c
    });
    // Plain and encrypted runs taken in turns, so that a drift of the S3 server (its data
    // growing run by run) weighs on both alike.
    let (_, recipient) = consul_snapshot_agent::crypto::keys::generate_identity();
    let sealed_args = ["--encrypt-age-recipient".to_string(), recipient];
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        plain.push(support::measure(&mut once_s3(&[], false)));
        sealed.push(support::measure(&mut once_s3(&sealed_args, false)));
    }
    let (plain, sealed) = (support::median(plain), support::median(sealed));
    report("agent --once to S3, plain (in turns)", secs(to_s3), plain);
    report(
        "agent --once to S3, age-encrypted (in turns)",
        secs(plain),
        sealed,
    );
    let one_core = cmd(
        "agent --once to S3 on one core (taskset)",
        secs(to_s3),
        &mut || once_s3(&[], true),
    );

    // Last: each restore makes the test server build its next snapshot anew, which would
    // weigh on the runs that GET one.
    let restore = cmd("restore --key", restore_ref, &mut || {
        let mut c = agent(&[]);
        c.args(support::restore_args(&key, &server))
            .args(s3_args(&prefix))
            .env("TMPDIR", w);
        with_creds(c)
    });
    println!("-- verdicts");
    verdict(
        "agent --once to S3",
        to_s3,
        slowest_s3,
        "max(GET, aws s3 cp, verify)",
    );
    verdict(
        "agent --once to local",
        to_local,
        slowest_local,
        "max(GET, verify, write + fsync)",
    );
    verdict(
        "save",
        save,
        slowest_local,
        "max(GET, verify, write + fsync)",
    );
    verdict(
        "restore --key",
        restore,
        restore_ref,
        "(max(download, verify) + PUT)",
    );
    verdict("inspect", inspect, secs(inflate), "C zlib inflate alone");
    verdict(
        "age-encrypted agent --once to S3",
        sealed,
        secs(plain),
        "the plain run taken in turns",
    );
    let (sealed_rss, plain_rss) = (
        sealed.peak_rss_kib as f64 / 1024.0,
        plain.peak_rss_kib as f64 / 1024.0,
    );
    println!(
        "target: age-encrypted peak RSS within 8 MiB of the plain run's -> {sealed_rss:.1} vs {plain_rss:.1} MiB {}",
        if sealed_rss <= plain_rss + 8.0 { "met" } else { "NOT met" }
    );
    println!(
        "two cores vs one: agent --once to S3 takes {:.2} s on one core, {:.2} s on two ({:.2}x faster)",
        secs(one_core),
        secs(to_s3),
        secs(one_core) / secs(to_s3)
    );

    if let Some(large) = std::env::var("BENCH_LARGE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        large_row(large, to_s3, &s3, &creds);
    }
}

/// One `agent --once` to S3 of a `large_mib` state.bin archive; peak RSS within 25% of `base`.
fn large_row(large_mib: u64, base: Run, s3: &garage::S3Target, creds: &[(String, String)]) {
    let t = Instant::now();
    let (archive, _) = support::cached_archive(large_mib << 20);
    let len = support::file_len(&archive);
    println!(
        "-- large: {} ({:.1} MiB; ready in {:.0} s, built once and cached)",
        archive.display(),
        len as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let server = support::DevServerProcess::start(&archive);
    let r = support::median_of(1, || {
        let mut c = Command::new(AGENT);
        c.args(support::agent_once_args(&server))
            .args(s3.cli_args("large"))
            .envs(creds.iter().cloned())
            .stdout(Stdio::null());
        c
    });
    support::row(
        &format!("agent --once to S3, state.bin {large_mib} MiB"),
        r,
        len,
        None,
    );
    let (big, small) = (
        r.peak_rss_kib as f64 / 1024.0,
        base.peak_rss_kib as f64 / 1024.0,
    );
    println!(
        "target: peak RSS at {large_mib} MiB within 25% of the 1 GiB run -> {big:.1} vs {small:.1} MiB ({:+.0}%) {}",
        (big / small - 1.0) * 100.0,
        if big <= small * 1.25 { "met" } else { "NOT met" }
    );
}
