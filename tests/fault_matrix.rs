//! The fault matrix: every scenario runs the real agent binary against the Consul API test
//! server and a real S3 server (Garage, or `S3_ENDPOINT`), with faults injected by the tests
//! (a fault proxy in front of S3, fault switches on the test server, a hung listener, a file
//! size limit). Each asserts what is stored, what is deleted, what is reported, and that
//! nothing was lost; each appends a row (scenario, expected, observed) to
//! `$CARGO_TARGET_TMPDIR/fault-matrix.tsv`, which `.ci/run` prints as a table.

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::devserver::{DevServerConfig, Faults, SnapshotSource};
use consul_snapshot_agent::storage::{Backend, S3Config, S3Store};
use support::garage::{s3_target, S3Target};
use support::s3proxy::{Action, Blackhole, Op, Rule, S3Proxy};
use support::{describe, metric, record_fault_row, run_cli_env, scrape, TestConsul};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A Consul test server whose snapshot is about `state` bytes of state.bin.
fn consul_with(state: u64, dc: &str) -> TestConsul {
    TestConsul::start(DevServerConfig {
        datacenter: dc.into(),
        snapshot: SnapshotSource::Synthetic(SynthSpec::with_state_size(state)),
        ..DevServerConfig::default()
    })
}

/// S3 through a fault proxy, under a fresh prefix.
struct S3Fixture {
    s3: S3Target,
    proxy: S3Proxy,
    prefix: String,
    rt: tokio::runtime::Runtime,
}

impl S3Fixture {
    fn new() -> Self {
        let s3 = s3_target();
        let proxy = S3Proxy::start(&s3.endpoint);
        S3Fixture {
            s3,
            proxy,
            prefix: format!("fm-{}/", uuid::Uuid::new_v4().simple()),
            rt: tokio::runtime::Runtime::new().expect("runtime"),
        }
    }

    /// Flags sending S3 traffic through the proxy.
    fn args(&self) -> Vec<String> {
        vec![
            "--aws-s3-bucket".into(),
            self.s3.bucket.clone(),
            "--aws-s3-key-prefix".into(),
            self.prefix.clone(),
            "--aws-s3-endpoint".into(),
            self.proxy.endpoint.clone(),
            "--aws-s3-region".into(),
            self.s3.region.clone(),
            "--aws-s3-part-size".into(),
            "5MiB".into(),
        ]
    }

    /// A store talking to the S3 server directly (no faults), for assertions.
    fn direct(&self) -> S3Store {
        let cfg = S3Config {
            prefix: self.prefix.clone(),
            ..self.s3.config()
        };
        self.rt.block_on(S3Store::new(cfg)).expect("store")
    }

    fn keys(&self) -> Vec<String> {
        let store = self.direct();
        self.rt
            .block_on(store.list())
            .expect("list")
            .into_iter()
            .map(|b| b.key)
            .collect()
    }

    fn pending(&self) -> Vec<String> {
        let store = self.direct();
        self.rt.block_on(store.pending_uploads()).expect("uploads")
    }

    fn once(&self, consul: &TestConsul, extra: &[&str]) -> Output {
        let mut args: Vec<String> = [
            "agent",
            "--once",
            "--retries",
            "0",
            "--http-addr",
            &consul.addr(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = self.s3.cli_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli_env(&args, &env)
    }
}

/// Names have one-second resolution; successive backups need distinct seconds.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// Seeds `n` good backups; returns their keys.
fn seed(f: &S3Fixture, consul: &TestConsul, n: usize) -> Vec<String> {
    for _ in 0..n {
        let out = f.once(consul, &["--retain", "0"]);
        assert!(out.status.success(), "seed: {}", describe(&out));
        next_second();
    }
    let keys = f.keys();
    assert_eq!(keys.len(), n, "seeded {keys:?}");
    keys
}

// ---------------------------------------------------------------------------------------
// S3

#[test]
fn s3_endpoint_that_never_answers_fails_the_cycle_in_bounded_time() {
    let consul = consul_with(64 << 10, "dc1");
    let hole = Blackhole::start();
    let s3 = s3_target();
    let local = tempfile::tempdir().expect("tmp");
    let started = std::time::Instant::now();
    let out = run_cli_env(
        &[
            "agent",
            "--once",
            "--http-addr",
            &consul.addr(),
            "--local-path",
            &local.path().to_string_lossy(),
            "--aws-s3-bucket",
            "bkt",
            "--aws-s3-endpoint",
            &hole.endpoint,
            "--aws-s3-region",
            "garage",
            "--aws-s3-request-timeout",
            "1s",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", &s3.key_id),
            ("AWS_SECRET_ACCESS_KEY", &s3.secret),
        ],
    );
    let took = started.elapsed();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("S3 request timeout"), "{}", describe(&out));
    assert!(
        t.contains("at 1 of 2 destinations"),
        "the local copy is stored and said so: {}",
        describe(&out)
    );
    assert_eq!(
        snaps(local.path()).len(),
        1,
        "local destination independent of S3"
    );
    record_fault_row(
        "S3 endpoint accepts, never answers (request timeout 1s)",
        "cycle fails in bounded time, exit 1, local copy stored",
        &format!(
            "exit 1 after {:.0}s; local stored; 'no answer within the S3 request timeout'",
            took.as_secs_f64()
        ),
    );
}

#[test]
fn s3_503_and_a_cut_connection_on_upload_part_are_retried() {
    let consul = consul_with(30 << 20, "dc1");
    let f = S3Fixture::new();
    f.proxy.add(Rule::next(
        Op::UploadPart,
        1,
        Action::Error {
            status: 503,
            code: "SlowDown",
            message: "injected",
        },
    ));
    f.proxy.add(Rule {
        op: Op::UploadPart,
        skip: 0,
        times: 1,
        action: Action::CutAfter(0),
    });
    let out = f.once(&consul, &["--retain", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out).starts_with("Saved and verified"),
        "{}",
        describe(&out)
    );
    let parts = f.proxy.count(Op::UploadPart);
    assert!(
        parts >= 4,
        "two or more parts, two retried: {parts} UploadPart requests"
    );
    assert_eq!(f.keys().len(), 1);
    assert!(f.pending().is_empty());
    record_fault_row(
        "503 SlowDown, then a cut connection, on UploadPart",
        "retried; backup stored",
        &format!("exit 0; {parts} UploadPart requests (2 retried); 1 backup"),
    );
}

#[test]
fn s3_500_on_complete_stores_nothing_and_deletes_nothing() {
    let consul = consul_with(30 << 20, "dc1");
    let f = S3Fixture::new();
    let before = seed(&f, &consul, 2);
    f.proxy.add(Rule::error500(Op::CompleteMultipartUpload, 10));
    let out = f.once(&consul, &["--retain", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("InternalError: injected"), "{}", describe(&out));
    assert!(!t.contains("ServiceError"), "no SDK debug dump: {t}");
    assert!(!t.contains("Saved and verified"), "{t}");
    assert_eq!(f.keys(), before, "old backups intact, no new one");
    assert!(f.pending().is_empty(), "upload aborted");
    record_fault_row(
        "500 on CompleteMultipartUpload (every retry)",
        "exit 1, no new object, upload aborted, retention not run",
        "exit 1; 'InternalError: injected'; 2 old backups intact; no pending upload",
    );
}

#[test]
fn s3_a_failed_manifest_write_completes_nothing_and_no_copy_is_ever_made() {
    let consul = consul_with(30 << 20, "dc1");
    let f = S3Fixture::new();
    let before = seed(&f, &consul, 1);
    assert_eq!(
        f.proxy.count(Op::CopyObject),
        0,
        "metadata is a manifest: no server-side copy of any backup"
    );
    next_second();
    // The one PutObject of a multipart backup is its manifest, written before completion.
    f.proxy.add(Rule::error500(Op::PutObject, 10));
    let out = f.once(&consul, &["--retain", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("InternalError"), "{}", describe(&out));
    assert_eq!(
        f.proxy.count(Op::CompleteMultipartUpload),
        1,
        "only the seed's"
    );
    assert_eq!(f.keys(), before, "old backup intact, no new one");
    assert!(f.pending().is_empty(), "upload aborted");
    let raw = f.rt.block_on(f.direct().raw_keys()).expect("raw keys");
    assert_eq!(
        raw.len(),
        2,
        "the old backup and its manifest only: {raw:?}"
    );
    record_fault_row(
        "500 on the manifest's PutObject before CompleteMultipartUpload",
        "nothing completed, upload aborted, old backup kept; no CopyObject ever",
        "exit 1; no CompleteMultipartUpload; 1 backup + 1 manifest; 0 CopyObject",
    );
}

#[test]
fn s3_failures_after_completion_leave_no_object_under_a_backup_name() {
    let (op, label) = (Op::HeadObject, "the HEAD check");
    let consul = consul_with(30 << 20, "dc1");
    let f = S3Fixture::new();
    let before = seed(&f, &consul, 1);
    next_second();
    f.proxy.add(Rule::error500(op, 10));
    let out = f.once(&consul, &["--retain", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{label}: {}", describe(&out));
    assert!(
        t.contains("InternalError") || t.contains("HTTP 500"),
        "{}",
        describe(&out)
    );
    assert!(t.contains("deleted again"), "{}", describe(&out));
    assert!(!t.starts_with("Saved and verified"), "{t}");
    assert!(
        f.proxy.count(Op::DeleteObject) >= 1,
        "{label}: object deleted"
    );
    assert_eq!(f.keys(), before, "{label}: only the old backup is visible");
    let raw = f.rt.block_on(f.direct().raw_keys()).expect("raw keys");
    assert_eq!(raw.len(), 2, "{label}: no manifest left either: {raw:?}");
    record_fault_row(
        &format!("500 on {label} after CompleteMultipartUpload"),
        "object deleted again, failure reported, old backups kept",
        "exit 1; DeleteObject sent; listing = the old backup only",
    );
}

#[test]
fn s3_listing_truncated_without_a_token_is_an_error_and_deletes_nothing() {
    let consul = consul_with(64 << 10, "dc1");
    let f = S3Fixture::new();
    seed(&f, &consul, 3);
    // Both listings of the cycle: the shrink guard's (looking for the last backup's counts,
    // which then only warns) and retention's.
    f.proxy.add(Rule::next(
        Op::ListObjectsV2,
        2,
        Action::TruncateWithoutToken,
    ));
    let out = f.once(&consul, &["--retain", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("retention FAILED"), "{}", describe(&out));
    assert!(t.contains("no continuation token"), "{}", describe(&out));
    assert_eq!(f.keys().len(), 4, "new one stored, nothing deleted");
    record_fault_row(
        "ListObjectsV2 truncated without a continuation token",
        "listing error, retention skipped, nothing deleted",
        "exit 1; 'retention FAILED ... no continuation token'; 4 of 4 kept",
    );
}

#[test]
fn s3_more_than_1000_stale_multipart_uploads_are_all_swept() {
    let f = S3Fixture::new();
    let store = f.direct();
    let client = f.rt.block_on(f.s3.config().client());
    let n = 1005;
    f.rt.block_on(async {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..n)
            .map(|i| {
                let (client, bucket, key) = (
                    client.clone(),
                    f.s3.bucket.clone(),
                    format!("{}consul-dc1-20200101T000000Z-{}.snap", f.prefix, i + 1),
                );
                async move {
                    client
                        .create_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .expect("create upload")
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
    });
    assert_eq!(f.pending().len(), n, "the listing pages past 1000");
    let aborted =
        f.rt.block_on(store.abort_stale_uploads(Duration::ZERO))
            .expect("sweep");
    assert_eq!(aborted, n);
    assert!(f.pending().is_empty());
    record_fault_row(
        "1,005 stale multipart uploads to sweep",
        "all aborted (paginated)",
        &format!("{aborted} aborted, 0 left"),
    );
}

#[test]
fn datacenters_sharing_a_destination_keep_their_own_backups() {
    let dc1 = consul_with(64 << 10, "dc1");
    let dc2 = consul_with(64 << 10, "dc2");
    let f = S3Fixture::new();
    let local = tempfile::tempdir().expect("tmp");
    let l = local.path().to_string_lossy().to_string();
    for (consul, times) in [(&dc1, 3), (&dc2, 2)] {
        for _ in 0..times {
            let out = f.once(consul, &["--retain", "2", "--local-path", &l]);
            assert!(out.status.success(), "{}", describe(&out));
            next_second();
        }
    }
    let s3_keys = f.keys();
    let local_keys = snaps(local.path());
    for keys in [&s3_keys, &local_keys] {
        let count = |dc: &str| {
            keys.iter()
                .filter(|k| k.contains(&format!("consul-{dc}-")))
                .count()
        };
        assert_eq!((count("dc1"), count("dc2")), (2, 2), "{keys:?}");
    }
    // restore --latest with two datacenters and no choice refuses and names them.
    let out = run_cli_env(
        &[
            "restore",
            "--latest",
            "--dry-run",
            "--local-path",
            &l,
            "--http-addr",
            &dc1.addr(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out).contains("dc1, dc2"), "{}", describe(&out));
    let out = run_cli_env(
        &[
            "restore",
            "--latest",
            "--dry-run",
            "--datacenter",
            "dc1",
            "--local-path",
            &l,
            "--http-addr",
            &dc1.addr(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out).contains("consul-dc1-"), "{}", describe(&out));
    // list shows the datacenter and filters by it.
    let out = run_cli_env(&["list", "--local-path", &l, "--datacenter", "dc2"], &[]);
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(t.contains("DATACENTER"), "{t}");
    assert_eq!(t.matches("consul-dc2-").count(), 2, "{t}");
    assert!(!t.contains("consul-dc1-"), "{t}");
    // prune without a datacenter refuses; with one it touches only that one.
    let out = run_cli_env(&["prune", "--local-path", &l, "--retain", "1"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = run_cli_env(
        &[
            "prune",
            "--local-path",
            &l,
            "--retain",
            "1",
            "--datacenter",
            "dc2",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let left = snaps(local.path());
    assert_eq!(left.iter().filter(|k| k.contains("consul-dc1-")).count(), 2);
    assert_eq!(left.iter().filter(|k| k.contains("consul-dc2-")).count(), 1);
    record_fault_row(
        "Two datacenters share a prefix and a directory (retain 2)",
        "each keeps its own 2; restore --latest and prune refuse to guess",
        "dc1 2 + dc2 2 at both; restore/prune without --datacenter exit 2 naming dc1, dc2",
    );
}

#[test]
fn readback_errors_are_retried_and_only_a_proven_mismatch_deletes() {
    let consul = consul_with(64 << 10, "dc1");
    let f = S3Fixture::new();
    f.proxy
        .add(Rule::next(Op::GetObject, 1, Action::CutAfter(1000)));
    let out = f.once(&consul, &["--retain", "2", "--verify-readback"]);
    assert!(
        out.status.success(),
        "one cut read is retried: {}",
        describe(&out)
    );
    assert_eq!(f.keys().len(), 1);
    next_second();
    f.proxy.clear();
    f.proxy.add(Rule::error500(Op::GetObject, 1000));
    let out = f.once(&consul, &["--retain", "2", "--verify-readback"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("the backup was kept"), "{}", describe(&out));
    assert_eq!(f.keys().len(), 2, "an unreadable backup is not deleted");
    record_fault_row(
        "Read-back: one cut GET, then GETs failing every time",
        "retried; a backup is deleted only on a verified mismatch",
        "cut GET retried, exit 0; failing GETs: exit 1, backup kept",
    );
}

#[test]
fn readback_of_an_age_header_cut_short_keeps_the_backup() {
    use age::secrecy::ExposeSecret;
    let consul = consul_with(64 << 10, "dc1");
    let f = S3Fixture::new();
    let keys = tempfile::tempdir().expect("tmp");
    let id = age::x25519::Identity::generate();
    let id_file = keys.path().join("ops.key");
    std::fs::write(&id_file, id.to_string().expose_secret()).expect("key");
    let recipient = id.to_public().to_string();
    let id_path = id_file.display().to_string();
    // The read-back's GET ends cleanly 10 bytes in, inside the age header (no error from the
    // transport); the ciphertext digest pass that follows reads the whole object.
    f.proxy
        .add(Rule::next(Op::GetObject, 1, Action::ShortBody(10)));
    let extra = [
        "--retain",
        "1",
        "--verify-readback",
        "--encrypt-age-recipient",
        &recipient,
        "--age-identity",
        &id_path,
    ];
    let out = f.once(&consul, &extra);
    assert!(out.status.success(), "{}", describe(&out));
    let t = text(&out);
    assert!(!t.contains("was deleted"), "{t}");
    assert!(t.contains("match the recorded ciphertext"), "{t}");
    assert_eq!(f.keys().len(), 1, "the backup is kept");
    record_fault_row(
        "Read-back of an encrypted backup whose GETs end cleanly inside the age header",
        "not proof of damage: the stored ciphertext digest decides; kept",
        "exit 0, backup kept, warning 'match the recorded ciphertext'",
    );
}

// ---------------------------------------------------------------------------------------
// Local

fn local_once(consul: &TestConsul, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "agent".to_string(),
        "--once".into(),
        "--retries".into(),
        "0".into(),
        "--http-addr".into(),
        consul.addr(),
        "--local-path".into(),
        dir.to_string_lossy().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli_env(&args, &[])
}

fn snaps(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".snap"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_backup_named_in_the_future_does_not_age_out_the_rest() {
    let consul = consul_with(64 << 10, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    for _ in 0..3 {
        let out = local_once(&consul, dir.path(), &["--retain", "0"]);
        assert!(out.status.success(), "{}", describe(&out));
        next_second();
    }
    let first = snaps(dir.path()).remove(0);
    let future = "consul-dc1-20991231T000000Z-1000.snap";
    std::fs::copy(dir.path().join(&first), dir.path().join(future)).expect("copy");
    let out = local_once(&consul, dir.path(), &["--keep-within", "1h"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out).contains("named in the future"),
        "reported: {}",
        describe(&out)
    );
    let left = snaps(dir.path());
    assert_eq!(
        left.len(),
        5,
        "nothing aged out by the future backup: {left:?}"
    );
    record_fault_row(
        "A backup named in 2099 (clock skew) and keep-within 1h",
        "kept and reported; does not age out the rest",
        "5 of 5 kept; warning 'named in the future'",
    );
}

#[test]
fn a_crash_leaves_a_partial_that_is_swept_when_old_and_never_shared() {
    let consul = consul_with(64 << 10, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let stale = dir
        .path()
        .join("consul-dc1-20200101T000000Z-5.snap.partial");
    let young = dir
        .path()
        .join("consul-dc1-20200101T000001Z-6.snap.partial");
    let foreign = dir.path().join("notes.partial");
    for p in [&stale, &young, &foreign] {
        std::fs::write(p, b"half an archive").expect("write");
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(7 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .expect("open")
        .set_modified(old)
        .expect("mtime");
    let out = local_once(&consul, dir.path(), &["--retain", "0"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!stale.exists(), "an old partial is swept");
    assert!(young.exists(), "a young one may be a writer at work");
    assert!(foreign.exists(), "not ours: untouched");
    // Exclusive creation: a partial of the very name being written makes that write fail
    // instead of sharing the file.
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let store = consul_snapshot_agent::storage::LocalStore::new(dir.path()).expect("store");
    let name =
        consul_snapshot_agent::storage::naming::parse_name("consul-dc1-20200101T000001Z-6.snap")
            .expect("name");
    let second = rt.block_on(store.begin(&name, Default::default()));
    assert!(
        second.is_err(),
        "the second writer must not open the same partial"
    );
    record_fault_row(
        "Crash leftovers: <name>.partial, 7h old and 1 s old",
        "old one swept next cycle, young one kept; partials created exclusively",
        "stale removed, young kept, foreign kept; second writer refused",
    );
}

#[test]
#[cfg(target_os = "linux")]
fn disk_full_mid_write_publishes_nothing_and_keeps_old_backups() {
    use std::os::unix::process::CommandExt;
    let consul = consul_with(2 << 20, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &["--retain", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    let before = snaps(dir.path());
    next_second();
    // The file size limit makes the write fail mid-archive, as a full disk does (EFBIG).
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"));
    cmd.args([
        "agent",
        "--once",
        "--retries",
        "0",
        "--http-addr",
        &consul.addr(),
        "--local-path",
        &dir.path().to_string_lossy(),
        "--retain",
        "1",
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // Reported with its cause, whether the write failed mid-stream ("failed everywhere") or
    // at the commit's flush (the destination's line says FAILED).
    let said = text(&out);
    assert!(
        said.contains("File too large") && (said.contains("FAILED") || said.contains("failed")),
        "{}",
        describe(&out)
    );
    assert_eq!(snaps(dir.path()), before, "old backup intact, nothing new");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "the partial file is removed");
    record_fault_row(
        "Disk full mid-write (file size limit 256 KiB)",
        "nothing published, old backups intact, no partial left",
        "exit 1; 1 old backup intact; no .partial",
    );
}

// ---------------------------------------------------------------------------------------
// Consul

#[test]
fn snapshot_429_and_503_are_retried() {
    for status in [429u16, 503] {
        let consul = consul_with(64 << 10, "dc1");
        consul.faults(Faults {
            snapshot_error: Some("rate limit exceeded".into()),
            snapshot_error_times: Some(2),
            snapshot_error_status: Some(status),
            ..Faults::default()
        });
        let dir = tempfile::tempdir().expect("tmp");
        let out = run_cli_env(
            &[
                "agent",
                "--once",
                "--retries",
                "3",
                "--retry-delay",
                "100ms",
                "--http-addr",
                &consul.addr(),
                "--local-path",
                &dir.path().to_string_lossy(),
            ],
            &[],
        );
        assert!(out.status.success(), "{status}: {}", describe(&out));
        assert_eq!(snaps(dir.path()).len(), 1);
    }
    record_fault_row(
        "GET /v1/snapshot answers 429, then 503 (twice each)",
        "retried with back-off; backup stored",
        "exit 0 for both; 1 backup each",
    );
}

#[test]
fn an_agent_without_a_datacenter_name_stores_nothing() {
    let consul = consul_with(64 << 10, "");
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out).contains("Config.Datacenter"),
        "{}",
        describe(&out)
    );
    assert!(snaps(dir.path()).is_empty());
    record_fault_row(
        "/v1/agent/self with an empty datacenter",
        "an error, no nameless backup",
        "exit 1; 'Config.Datacenter is \"\"'; nothing stored",
    );
}

#[test]
fn an_error_body_of_any_size_is_read_only_a_few_kib() {
    let consul = consul_with(64 << 10, "dc1");
    consul.faults(Faults {
        snapshot_error: Some("Raft error when taking snapshot: injected".into()),
        snapshot_error_padding: Some(4 << 30),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("Raft error when taking snapshot"), "{t:.300}");
    assert!(t.len() < 16 * 1024, "{} bytes of output", t.len());
    let pulled = consul.server().error_body_sent();
    assert!(
        pulled < 64 << 20,
        "{pulled} bytes of a 4 GiB error body were pulled"
    );
    record_fault_row(
        "A 500 whose body is 4 GiB",
        "at most a few KiB read; the error says what Consul said",
        &format!("exit 1; {} KiB of the body pulled", pulled >> 10),
    );
}

#[test]
fn a_hung_session_renew_makes_the_leader_step_down_before_another_takes_over() {
    use support::agent::AgentProcess;
    let consul = consul_with(64 << 10, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let args = |name: &str| -> Vec<String> {
        [
            "--http-addr",
            &consul.addr(),
            "--local-path",
            &dir.path().join(name).to_string_lossy(),
            "--interval",
            "1h",
            "--session-ttl",
            "10s",
            "--session-ttl-min",
            "500ms",
            "--metrics-addr",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let a = AgentProcess::start(&args("a"), &[]);
    assert!(
        a.wait_log("Obtained leadership", Duration::from_secs(20)),
        "{}",
        a.log()
    );
    let b = AgentProcess::start(&args("b"), &[]);
    assert!(
        b.wait_log("Waiting to obtain leadership", Duration::from_secs(20)),
        "{}",
        b.log()
    );
    consul.faults(Faults {
        stall_session_renew: true,
        ..Faults::default()
    });
    assert!(
        a.wait_log("stepping down", Duration::from_secs(30)),
        "{}",
        a.log()
    );
    assert!(
        b.wait_log("Obtained leadership", Duration::from_secs(60)),
        "{}",
        b.log()
    );
    let at = |log: &str, needle: &str| -> chrono::DateTime<chrono::Utc> {
        let line = log.lines().find(|l| l.contains(needle)).expect(needle);
        let stamp = line.split_whitespace().next().expect("timestamp");
        chrono::DateTime::parse_from_rfc3339(stamp)
            .expect("rfc3339 timestamp")
            .with_timezone(&chrono::Utc)
    };
    let stepped_down = at(&a.log(), "stepping down");
    let b_lead = at(&b.log(), "Obtained leadership");
    assert!(
        stepped_down < b_lead,
        "A stepped down at {stepped_down}, B led from {b_lead}: two leaders"
    );
    record_fault_row(
        "Session renew hangs (TTL 10s) with a standby waiting",
        "leader steps down before the session can expire; no two leaders",
        &format!(
            "A stepped down {:.1}s before B took the lock",
            (b_lead - stepped_down).num_milliseconds() as f64 / 1000.0
        ),
    );
}

// ---------------------------------------------------------------------------------------
// Restore

fn saved_archive(consul: &TestConsul) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("s.snap").to_string_lossy().to_string();
    let out = run_cli_env(&["save", &file, "--http-addr", &consul.addr()], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    (dir, file)
}

#[test]
fn a_restore_consul_answers_late_waits_for_the_restore_timeout_not_the_read_timeout() {
    let consul = consul_with(64 << 10, "dc1");
    let (_dir, file) = saved_archive(&consul);
    consul.faults(Faults {
        restore_delay_ms: Some(3000),
        ..Faults::default()
    });
    let out = run_cli_env(
        &[
            "restore",
            &file,
            "--yes",
            "--read-timeout",
            "1s",
            "--http-addr",
            &consul.addr(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(consul.server().restores().len(), 1);
    let out = run_cli_env(
        &[
            "restore",
            &file,
            "--yes",
            "--read-timeout",
            "1s",
            "--restore-timeout",
            "1s",
            "--http-addr",
            &consul.addr(),
        ],
        &[],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("may still be restoring"), "{}", describe(&out));
    assert!(
        t.contains("/v1/status/leader") && t.contains("list-peers"),
        "{t}"
    );
    record_fault_row(
        "Consul answers a restore 3 s after the last byte (--read-timeout 1s)",
        "waits (--restore-timeout 30m); on expiry says Consul may still be restoring",
        "exit 0 with defaults; with --restore-timeout 1s exit 1 'may still be restoring'",
    );
}

#[test]
fn a_failing_safety_snapshot_stops_the_restore() {
    let consul = consul_with(64 << 10, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &[]);
    assert!(out.status.success(), "{}", describe(&out));
    consul.faults(Faults {
        snapshot_error: Some("Raft error when taking snapshot: injected".into()),
        ..Faults::default()
    });
    let out = run_cli_env(
        &[
            "restore",
            "--latest",
            "--yes",
            "--local-path",
            &dir.path().to_string_lossy(),
            "--http-addr",
            &consul.addr(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out).contains("safety snapshot failed, nothing restored"),
        "{}",
        describe(&out)
    );
    assert!(consul.server().restores().is_empty(), "nothing was PUT");
    record_fault_row(
        "The safety snapshot before a restore fails",
        "restore stops, nothing sent to Consul",
        "exit 1; no PUT /v1/snapshot",
    );
}

// ---------------------------------------------------------------------------------------
// Archive

/// A gzip'd tar with the given entries, in order, each from a reader of known length.
fn tar_gz(entries: Vec<(&str, u64, Box<dyn std::io::Read>)>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (name, len, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
    }
    b.into_inner().expect("tar").finish().expect("gzip")
}

/// Counts the bytes a reader hands out.
struct Counting<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_state_bin_larger_than_meta_json_declares_is_refused_from_its_header() {
    use std::io::Read;
    let meta = br#"{"Version":1,"ID":"2-1000-1","Index":1000,"Term":2,"Peers":null,"Configuration":{"Servers":[]},"ConfigurationIndex":0,"Size":4096}"#;
    let state_len: u64 = 1 << 30;
    let archive = tar_gz(vec![
        ("meta.json", meta.len() as u64, Box::new(&meta[..])),
        (
            "state.bin",
            state_len,
            Box::new(std::io::repeat(0).take(state_len)),
        ),
        ("SHA256SUMS", 0, Box::new(std::io::empty())),
    ]);
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = Counting {
        inner: &archive[..],
        read: read.clone(),
    };
    let err = consul_snapshot_agent::archive::read_archive(
        source,
        consul_snapshot_agent::archive::ReadOptions::default(),
        &mut (),
    )
    .expect_err("a bomb must be refused");
    let msg = err.to_string();
    assert!(msg.contains("state.bin") && msg.contains("4096"), "{msg}");
    let pulled = read.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        pulled * 4 < archive.len() as u64,
        "read {pulled} of {} compressed bytes before refusing",
        archive.len()
    );
    record_fault_row(
        "state.bin of 1 GiB where meta.json declares 4 KiB (a decompression bomb)",
        "refused at state.bin's tar header",
        &format!(
            "'{msg:.60}…'; {} KiB of {} KiB compressed read",
            pulled >> 10,
            archive.len() >> 10
        ),
    );
}

#[test]
fn a_vault_raft_snapshot_is_refused_as_consul_refuses_it_with_a_hint() {
    let meta = br#"{"Version":1,"ID":"x","Index":1,"Term":1,"Size":0}"#;
    let archive = tar_gz(vec![
        ("meta.json", meta.len() as u64, Box::new(&meta[..])),
        ("state.bin", 0, Box::new(std::io::empty())),
        ("SHA256SUMS.sealed", 3, Box::new(&b"abc"[..])),
    ]);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("vault.snap");
    std::fs::write(&file, archive).expect("write");
    let out = run_cli_env(&["verify", &file.to_string_lossy()], &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        t.contains("unexpected file \"SHA256SUMS.sealed\" in snapshot"),
        "{t}"
    );
    assert!(t.contains("Vault raft snapshot"), "{t}");
    record_fault_row(
        "A Vault raft snapshot (SHA256SUMS.sealed)",
        "refused with Consul's text and a Vault hint",
        "exit 1; 'unexpected file \"SHA256SUMS.sealed\" … looks like a Vault raft snapshot'",
    );
}

#[test]
fn a_hung_s3_endpoint_fails_each_cycle_in_bounded_time_and_the_leader_tries_again() {
    use support::agent::AgentProcess;
    let consul = consul_with(64 << 10, "dc1");
    let hole = Blackhole::start();
    let s3 = s3_target();
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let args: Vec<String> = [
        "--http-addr",
        &consul.addr(),
        "--aws-s3-bucket",
        "bkt",
        "--aws-s3-endpoint",
        &hole.endpoint,
        "--aws-s3-region",
        "garage",
        "--aws-s3-request-timeout",
        "1s",
        "--interval",
        "2s",
        "--max-failures",
        "10",
        "--metrics-addr",
        &metrics,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), s3.key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), s3.secret.clone()),
    ];
    let mut agent = AgentProcess::start(&args, &env);
    let failed_twice = support::agent::wait_until(Duration::from_secs(90), || {
        agent
            .log()
            .matches("Snapshot failed at this destination")
            .count()
            >= 2
    });
    let log = agent.log();
    assert!(failed_twice, "two cycles failed and were retried: {log}");
    assert!(log.contains("S3 request timeout"), "{log}");
    assert!(!log.contains("giving up leadership"), "{log}");
    assert!(!log.contains("lost leadership"), "still the leader: {log}");
    // Reported where operators look: the failures metric, the leader gauge, and the
    // "Saving Snapshots" check in Consul.
    let (_, text) = scrape(&metrics, "/metrics");
    assert!(
        metric(&text, "consul_snapshot_failures_total") >= 2.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "consul_snapshot_destination_failures_total{kind=\"s3\",error=\"timeout\"}"
        ) >= 2.0,
        "failures by destination kind and kind of failure: {text}"
    );
    assert_eq!(metric(&text, "consul_snapshot_leader"), 1.0, "{text}");
    let (_, checks) = scrape(&consul.addr(), "/v1/agent/checks");
    let checks: serde_json::Value = serde_json::from_str(&checks).expect("checks json");
    let saving = checks
        .as_object()
        .expect("checks")
        .values()
        .find(|c| {
            c["Name"]
                .as_str()
                .is_some_and(|n| n.contains("Saving Snapshots"))
        })
        .expect("the leader's check");
    assert_eq!(saving["Status"], "critical", "{saving}");
    let status = agent.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}"
    );
    record_fault_row(
        "Daemon: S3 endpoint never answers (request timeout 1s, interval 2s)",
        "each cycle fails in bounded time; the leader keeps the lock and tries again",
        "2+ cycles failed ('no answer within the S3 request timeout'); failures metric >= 2, still leader, check critical; clean SIGTERM",
    );
}

#[test]
fn leader_lost_mid_stream_stores_nothing_and_deletes_nothing() {
    let consul = consul_with(2 << 20, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &["--retain", "1"]);
    assert!(out.status.success(), "{}", describe(&out));
    let before = snaps(dir.path());
    next_second();
    // Consul cuts the stream when its leader goes away mid-snapshot.
    consul.faults(Faults {
        drop_after: Some(300_000),
        ..Faults::default()
    });
    let out = local_once(&consul, dir.path(), &["--retain", "1"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(t.contains("transfer failed"), "{}", describe(&out));
    assert_eq!(snaps(dir.path()), before, "nothing stored, nothing deleted");
    record_fault_row(
        "Consul's stream cut mid-snapshot (leader lost)",
        "exit 1, nothing stored, nothing deleted",
        "exit 1 'snapshot transfer failed'; old backup intact",
    );
}

#[test]
fn a_consul_answer_that_trickles_or_never_ends_is_cut_off() {
    use support::agent::AgentProcess;
    use support::net::EndlessBody;
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().display().to_string();
    // /v1/agent/self answered a byte every second: within the read timeout each time, so only
    // a deadline on the whole call ends it (connect timeout + read timeout: 2s + 3s).
    let trickle = EndlessBody::start(b" ", Duration::from_secs(1), 600);
    let args: Vec<String> = [
        "--once",
        "--retries",
        "0",
        "--http-addr",
        &trickle.addr,
        "--read-timeout",
        "3s",
        "--connect-timeout",
        "2s",
        "--local-path",
        &local,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = AgentProcess::start(&args, &[]);
    let status = agent.wait_exit(Duration::from_secs(60));
    let log = agent.log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "ended by itself: {log}"
    );
    assert!(
        log.contains("agent/self") || log.contains("datacenter"),
        "{log}"
    );
    // An answer that streams without end, fast: an error past 8 MiB, memory bounded.
    let flood = EndlessBody::start(&[b' '; 65536], Duration::ZERO, 100_000);
    let mut args = args.clone();
    args[4] = flood.addr.clone();
    let mut agent = AgentProcess::start(&args, &[]);
    let status = agent.wait_exit(Duration::from_secs(60));
    let log = agent.log();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{log}");
    assert!(log.contains("larger than 8 MiB"), "{log}");
    assert!(snaps(dir.path()).is_empty());
    record_fault_row(
        "Consul's /v1/agent/self trickles a byte a second, or streams without end",
        "the call has a deadline and a size bound: agent --once exits 1 by itself",
        "trickle: exit 1 after the call deadline; endless: exit 1 'larger than 8 MiB'",
    );
}

#[test]
fn a_forward_clock_step_names_by_consuls_clock_and_deletes_no_history() {
    use consul_snapshot_agent::storage::naming::{format_name, parse_name};
    let consul = consul_with(64 << 10, "dc1");
    let dir = tempfile::tempdir().expect("tmp");
    let out = local_once(&consul, dir.path(), &["--retain", "0"]);
    assert!(out.status.success(), "{}", describe(&out));
    // Ten hourly backups: the one just taken, and copies named 1 to 9 hours before it.
    let first = snaps(dir.path()).remove(0);
    let name = parse_name(&first).expect("ours");
    for h in 1..10 {
        let mut n = name.clone();
        n.time -= chrono::Duration::hours(h);
        let other = format_name(&n);
        std::fs::copy(dir.path().join(&first), dir.path().join(&other)).expect("copy");
        std::fs::copy(
            dir.path().join(format!("{first}.meta.json")),
            dir.path().join(format!("{other}.meta.json")),
        )
        .expect("copy sidecar");
    }
    assert_eq!(snaps(dir.path()).len(), 10);
    // A writer's partial file, written just now: 30 days old by the stepped clock.
    let partial = dir
        .path()
        .join("consul-dc1-20200101T000000Z-7.snap.partial");
    std::fs::write(&partial, b"in progress").expect("partial");
    next_second();
    // One run with this host's clock 30 days ahead (libfaketime; the test server, in this
    // process, keeps the real time and sends it in its Date header).
    let out = std::process::Command::new("faketime")
        .args(["-f", "+30d"])
        .arg(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args([
            "agent",
            "--once",
            "--retries",
            "0",
            "--http-addr",
            &consul.addr(),
        ])
        .args(["--local-path", &dir.path().display().to_string()])
        .args(["--keep-within", "7d"])
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env_remove("CONSUL_HTTP_ADDR")
        .output()
        .expect("run faketime (Debian's faketime; tests/servers.sh installs it)");
    let t = text(&out);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        t.contains("differs from Consul's"),
        "the step was seen: {t}"
    );
    assert!(t.contains("retention deleted nothing"), "{t}");
    assert!(
        partial.exists(),
        "a young partial file is not swept by a clock 30 days ahead: {t}"
    );
    let left = snaps(dir.path());
    assert_eq!(left.len(), 11, "no backup deleted: {left:?}");
    let newest = left
        .iter()
        .filter_map(|n| parse_name(n))
        .map(|n| n.time)
        .max()
        .expect("newest");
    let off = (newest - chrono::Utc::now()).num_minutes().abs();
    assert!(
        off < 60,
        "named by Consul's clock, not 30 days ahead: {newest}"
    );
    record_fault_row(
        "This host's clock stepped 30 days ahead (faketime), ten hourly backups, keep-within 7d, a writer's young .partial",
        "the backup is named by Consul's clock; time-based retention and the leftover sweep delete nothing and say why",
        "11 of 11 kept, the .partial kept; warning 'differs from Consul's'; named within the hour of the real time",
    );
}

#[test]
fn a_lone_agent_that_never_stores_reports_unhealthy_across_its_turns() {
    use support::agent::{wait_until, AgentProcess};
    let consul = TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        snapshot: SnapshotSource::Synthetic(SynthSpec::with_state_size(64 << 10)),
        ..DevServerConfig::default()
    });
    let f = S3Fixture::new();
    // The destination refuses every upload (and so the start-up write check); a small
    // archive goes up in one PutObject.
    f.proxy
        .add(Rule::error500(Op::CreateMultipartUpload, 1_000_000));
    f.proxy.add(Rule::error500(Op::PutObject, 1_000_000));
    let metrics = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let mut args: Vec<String> = [
        "--http-addr",
        &consul.addr(),
        "--interval",
        "1s",
        "--max-failures",
        "1",
        "--session-ttl",
        "2s",
        "--session-ttl-min",
        "500ms",
        "--retries",
        "0",
        "--metrics-addr",
        &metrics,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(f.args());
    let env = f.s3.cli_env();
    let agent = AgentProcess::start(&args, &env);
    let mut probes = Vec::new();
    let turns = wait_until(Duration::from_secs(60), || {
        let (code, body) = scrape(&metrics, "/health");
        if code != 0 {
            probes.push((code, body));
        }
        std::thread::sleep(Duration::from_millis(100));
        agent.log().matches("giving up leadership").count() >= 2
            && agent.log().matches("Obtained leadership").count() >= 3
    });
    let log = agent.log();
    assert!(turns, "took the lock, gave it up, took it again: {log}");
    assert!(log.contains("failed the write check at start-up"), "{log}");
    assert!(probes.len() >= 5, "{probes:?}");
    let healthy: Vec<_> = probes.iter().filter(|(c, _)| *c == 200).collect();
    assert!(
        healthy.is_empty(),
        "never healthy without a stored snapshot: {healthy:?}"
    );
    assert!(
        probes.iter().all(|(_, b)| !b.contains("snapshots current")),
        "{probes:?}"
    );
    assert!(
        probes
            .iter()
            .any(|(_, b)| b.contains("consecutive failed snapshots")),
        "the reason is given: {probes:?}"
    );
    // Liveness: the process answers; restart probes point here.
    let (code, body) = scrape(&metrics, "/live");
    assert_eq!(code, 200, "{body}");
    // The leader's check, right after a re-acquire, is critical.
    let critical = wait_until(Duration::from_secs(20), || {
        let (_, checks) = scrape(&consul.addr(), "/v1/agent/checks");
        checks.contains("Saving Snapshots") && checks.contains("\"critical\"")
    });
    assert!(critical, "{}", scrape(&consul.addr(), "/v1/agent/checks").1);
    assert!(f.keys().is_empty());
    record_fault_row(
        "Daemon: a lone agent whose destination refuses every upload (max-failures 1)",
        "/health 503 with the reason across give-up and re-acquire; /live 200; the leader check critical",
        "every /health probe 503, never 'snapshots current'; /live 200; check critical",
    );
}
