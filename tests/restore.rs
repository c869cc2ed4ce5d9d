//! `restore` from Garage into the Consul API test server, and webhook notifications.

mod support;

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::archive::{ReadOptions, WriteOptions};
use consul_snapshot_agent::devserver::{DevServerConfig, Faults};
use consul_snapshot_agent::pipeline::stream_verified;
use consul_snapshot_agent::storage::{BackupMeta, BackupName, S3Store, Store, StoredBackup};
use support::garage::{s3_target, S3Target};
use support::webhook::receiver;
use support::{describe, run_cli_env, TestConsul};

fn archive(seed: u64) -> Bytes {
    let spec = SynthSpec {
        seed,
        kv_entries: 200 + seed,
        ..SynthSpec::default()
    };
    Bytes::from(
        spec.write_archive(Vec::new(), &WriteOptions::default())
            .expect("archive"),
    )
}

fn body(b: Bytes) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Unpin {
    futures_util::stream::iter(vec![Ok(b)])
}

/// Three backups at 10:00, 11:00 and 12:00 on 2026-11-20; returns (store, prefix, backups).
fn seed_bucket(
    s3: &S3Target,
    rt: &tokio::runtime::Runtime,
) -> (Store, String, Vec<(StoredBackup, String)>) {
    let cfg = s3.config();
    let prefix = cfg.normalized_prefix();
    let store = Store::new(rt.block_on(S3Store::new(cfg)).expect("store"));
    let mut out = Vec::new();
    for (i, hour) in [10u32, 11, 12].into_iter().enumerate() {
        let name = BackupName {
            encrypted: false,
            time: Utc
                .with_ymd_and_hms(2026, 11, 20, hour, 0, 0)
                .single()
                .expect("t"),
            datacenter: "dc1".into(),
            index: 100 + i as u64,
        };
        let pending = BackupMeta {
            datacenter: Some("dc1".into()),
            created: Some(name.time.to_rfc3339()),
            ..Default::default()
        };
        let (report, (), stored) = rt
            .block_on(async {
                stream_verified(
                    body(archive(i as u64 + 1)),
                    store.begin(&name, pending).await.expect("begin"),
                    ReadOptions::default(),
                    (),
                    None,
                )
                .await
            })
            .expect("store backup");
        out.push((stored, hex::encode(report.archive_sha256)));
    }
    (store, prefix, out)
}

fn restore_cli(
    c: &TestConsul,
    s3: &S3Target,
    prefix: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args: Vec<String> = vec!["restore".into(), "--http-addr".into(), c.addr()];
    args.extend(s3.cli_args(prefix));
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli_env(&args, &env)
}

#[test]
fn restore_from_garage_by_latest_key_and_time() {
    let c = TestConsul::start(DevServerConfig::default());
    let s3 = s3_target();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (store, prefix, backups) = seed_bucket(&s3, &rt);
    let restored_sha = || {
        c.server()
            .restores()
            .last()
            .map(|r| hex::encode(r.archive_sha256))
    };

    let out = restore_cli(
        &c,
        &s3,
        &prefix,
        &["--latest", "--yes", "--safety-snapshot=false"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Restored snapshot"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(matches the stored digest)"));
    assert_eq!(restored_sha(), Some(backups[2].1.clone()), "latest = 12:00");

    let out = restore_cli(
        &c,
        &s3,
        &prefix,
        &[
            "--key",
            &backups[0].0.key,
            "--yes",
            "--safety-snapshot=false",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(restored_sha(), Some(backups[0].1.clone()), "by key");

    let out = restore_cli(
        &c,
        &s3,
        &prefix,
        &[
            "--before",
            "2026-11-20T11:30:00Z",
            "--yes",
            "--safety-snapshot=false",
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        restored_sha(),
        Some(backups[1].1.clone()),
        "newest at or before 11:30 = 11:00"
    );
    assert_eq!(c.server().restores().len(), 3);

    // By default, restoring from a destination first saves the current state there.
    let before = rt.block_on(store.list()).expect("list").len();
    let out = restore_cli(&c, &s3, &prefix, &["--latest", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Safety snapshot of the current state"));
    assert_eq!(rt.block_on(store.list()).expect("list").len(), before + 1);
}

#[test]
fn corrupt_backups_dry_runs_and_missing_confirmation_make_no_put() {
    let c = TestConsul::start(DevServerConfig::default());
    let s3 = s3_target();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let cfg = s3.config();
    let prefix = cfg.normalized_prefix();
    let client = rt.block_on(cfg.client());
    let key = |hour: u32| format!("{prefix}consul-dc1-20261120T{hour:02}0000Z-1.snap");

    // Bytes damaged at rest, and intact bytes whose stored digest does not match.
    let mut damaged = archive(1).to_vec();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    rt.block_on(
        client
            .put_object()
            .bucket(&cfg.bucket)
            .key(key(10))
            .body(damaged.into())
            .send(),
    )
    .expect("put");
    let good = archive(2);
    rt.block_on(
        client
            .put_object()
            .bucket(&cfg.bucket)
            .key(key(11))
            .metadata("sha256", "0".repeat(64))
            .body(good.to_vec().into())
            .send(),
    )
    .expect("put");

    let out = restore_cli(&c, &s3, &prefix, &["--key", &key(10), "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Error verifying snapshot: the backup is not a valid snapshot"),
        "{}",
        describe(&out)
    );
    let out = restore_cli(&c, &s3, &prefix, &["--key", &key(11), "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("differs from the digest stored with the backup"),
        "{}",
        describe(&out)
    );

    let out = restore_cli(
        &c,
        &s3,
        &prefix,
        &["--key", &key(11).replace("11", "12"), "--yes"],
    );
    assert_eq!(out.status.code(), Some(1), "missing key");

    // A good backup: --dry-run verifies and shows, and makes no PUT; without --yes and without
    // a terminal it refuses.
    let name = BackupName {
        encrypted: false,
        time: Utc
            .with_ymd_and_hms(2026, 11, 20, 13, 0, 0)
            .single()
            .expect("t"),
        datacenter: "dc1".into(),
        index: 5,
    };
    let store = Store::new(rt.block_on(S3Store::new(cfg.clone())).expect("store"));
    rt.block_on(async {
        stream_verified(
            body(archive(3)),
            store.begin(&name, BackupMeta::default()).await.expect("b"),
            ReadOptions::default(),
            (),
            None,
        )
        .await
    })
    .expect("store");
    let out = restore_cli(&c, &s3, &prefix, &["--latest", "--dry-run"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Dry run") && text.contains("Largest record types") && text.contains("KVS"),
        "{text}"
    );
    let out = restore_cli(&c, &s3, &prefix, &["--latest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to restore without confirmation"),
        "{}",
        describe(&out)
    );
    assert!(c.server().restores().is_empty(), "no PUT was made");
}

#[test]
fn consul_errors_are_shown_as_consul_sent_them_without_the_token() {
    let c = TestConsul::start(DevServerConfig::default());
    c.faults(Faults {
        no_leader: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("x.snap");
    std::fs::write(&f, archive(1)).expect("write");
    let out = run_cli_env(
        &[
            "restore",
            "--http-addr",
            &c.addr(),
            "--yes",
            f.to_str().expect("p"),
        ],
        &[("CONSUL_HTTP_TOKEN", "tok-123-secret")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error restoring snapshot: Unexpected response code: 500 (No cluster leader)"),
        "{err}"
    );
    assert!(!err.contains("tok-123-secret"));
}

#[test]
fn webhooks_are_delivered_and_a_dead_endpoint_does_not_stall_the_cycle() {
    let c = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let hook = receiver(false);
    let once = |extra: &[&str]| {
        let mut a = vec!["agent", "--once", "--retries", "0", "--http-addr"];
        let addr = c.addr();
        let addr: &'static str = Box::leak(addr.into_boxed_str());
        a.push(addr);
        a.push("--local-path");
        let p: &'static str = Box::leak(dir.path().display().to_string().into_boxed_str());
        a.push(p);
        a.extend_from_slice(extra);
        run_cli_env(&a, &[])
    };
    let out = once(&["--webhook", &hook.url]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("shh"),
        "webhook credentials never logged"
    );
    let events = hook.got.lock().expect("lock").clone();
    assert_eq!(
        events
            .iter()
            .map(|e| e["event"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["start", "success"],
        "{events:?}"
    );
    assert_eq!(events[1]["index"], 1000);
    assert!(events[1]["key"]
        .as_str()
        .is_some_and(|k| k.starts_with("consul-dc1-")));
    assert!(events[1]["size"].as_u64().is_some_and(|s| s > 0));

    c.faults(Faults {
        truncate_after: Some(1000),
        ..Faults::default()
    });
    let out = once(&["--webhook", &hook.url]);
    assert_eq!(out.status.code(), Some(1));
    let events = hook.got.lock().expect("lock").clone();
    let last = events.last().expect("failure event");
    assert_eq!(last["event"], "failure");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("verification")),
        "{last}"
    );
    c.faults(Faults::default());

    // An endpoint that never answers: the cycle succeeds, bounded by the webhook timeout.
    let dead = receiver(true);
    let t = Instant::now();
    let out = once(&["--webhook", &dead.url, "--webhook-timeout", "1s"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    // And one with nothing listening at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("p")
        .port();
    let t = Instant::now();
    let out = once(&[
        "--webhook",
        &format!("http://127.0.0.1:{port}/x"),
        "--webhook-timeout",
        "1s",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(t.elapsed() < Duration::from_secs(8));
}

/// The links of the open files of process `pid` (`/proc/PID/fd`).
fn open_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_killed_restore_leaves_no_copy_of_the_backup_behind() {
    let c = TestConsul::start(DevServerConfig::default());
    // Consul takes its time to answer the PUT: the restore is killed while it waits.
    c.faults(Faults {
        restore_delay_ms: Some(60_000),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let tmp = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("x.snap");
    std::fs::write(&f, archive(2)).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args(["restore", "--http-addr", &c.addr(), "--yes"])
        .arg(&f)
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let tmp_s = tmp.path().display().to_string();
    // The verified copy is open while the PUT waits: seen in /proc, never under a name.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut held = false;
    while Instant::now() < deadline && child.try_wait().expect("wait").is_none() {
        if open_files(pid).iter().any(|l| l.starts_with(&tmp_s)) {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let links = open_files(pid);
    let listed: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(held, "the copy was open in $TMPDIR: {links:?}");
    assert!(
        links
            .iter()
            .filter(|l| l.starts_with(&tmp_s))
            .all(|l| l.ends_with("(deleted)")),
        "the open copy has no name: {links:?}"
    );
    assert!(listed.is_empty(), "nothing named in $TMPDIR: {listed:?}");
    let after: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(after.is_empty(), "nothing left after SIGKILL: {after:?}");
    support::record_fault_row(
        "restore SIGKILLed while Consul applies the snapshot",
        "no copy of the (decrypted) backup left in $TMPDIR",
        "the copy was open only as an unnamed file; $TMPDIR empty after the kill",
    );
}

/// `agent --once` into local `dir`.
fn once_local(c: &TestConsul, dir: &std::path::Path) {
    let out = run_cli_env(
        &[
            "agent",
            "--once",
            "--retries",
            "0",
            "--http-addr",
            &c.addr(),
            "--local-path",
            dir.to_str().expect("p"),
            "--retain",
            "0",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn latest_passes_over_future_anomalous_and_safety_backups_and_says_so() {
    let c = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().to_str().expect("p").to_string();
    once_local(&c, dir.path());
    std::thread::sleep(Duration::from_millis(1100));
    once_local(&c, dir.path());
    let names = support::backup_names(dir.path());
    let [older, newest] = &names[..] else {
        panic!("two backups: {names:?}")
    };
    // A copy named in 2030 (another host's clock, or a hand copy).
    let future = {
        use consul_snapshot_agent::storage::naming::{format_name, parse_name};
        let mut n = parse_name(newest).expect("our name");
        n.time = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("t");
        format_name(&n)
    };
    std::fs::copy(dir.path().join(newest), dir.path().join(&future)).expect("copy");
    std::fs::copy(
        dir.path().join(format!("{newest}.meta.json")),
        dir.path().join(format!("{future}.meta.json")),
    )
    .expect("copy sidecar");
    let addr = c.addr();
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--http-addr", &addr, "--local-path", &local];
        args.extend_from_slice(extra);
        run_cli_env(&args, &[])
    };
    // With a safety snapshot (the default from a destination), in a second of its own.
    std::thread::sleep(Duration::from_millis(1100));
    let out = restore(&["--latest", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stdout.contains(newest.as_str()),
        "the real newest: {stdout}"
    );
    assert!(
        stderr.contains(&format!("Passed over {future}")) && stderr.contains("in the future"),
        "{stderr}"
    );
    let safety = support::backup_names(dir.path())
        .into_iter()
        .find(|n| ![older, newest, &future].contains(&n))
        .expect("the safety snapshot");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join(format!("{safety}.meta.json"))).expect("sidecar"),
    )
    .expect("json");
    assert_eq!(meta["safety_snapshot"], true, "{meta}");
    assert!(
        stdout.contains("To undo this restore")
            && stdout.contains(&format!("--key {safety} --safety-snapshot=false")),
        "{stdout}"
    );
    assert!(!stdout.contains("--latest --key"), "{stdout}");
    // The safety snapshot is newer than everything, and still passed over.
    let out = restore(&["--latest", "--dry-run"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(newest.as_str()));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "Passed over {safety}: a restore's safety snapshot"
    )));
    let listed = run_cli_env(&["list", "--local-path", &local], &[]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("safety"),
        "{}",
        describe(&listed)
    );

    // The shrink guard's unacknowledged anomaly is passed over too.
    let side = dir.path().join(format!("{newest}.meta.json"));
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&side).expect("sidecar")).expect("json");
    m["anomaly"] =
        serde_json::json!({"reason": "kv_entries 200 -> 0 (-100%) since x", "baseline": older});
    std::fs::write(&side, serde_json::to_vec(&m).expect("json")).expect("write");
    let out = restore(&["--latest", "--dry-run"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(older.as_str()),
        "{}",
        describe(&out)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unacknowledged shrink-guard anomaly"));
    // --key reaches any of them.
    for key in [&safety, &future, newest] {
        let out = restore(&["--key", key, "--dry-run"]);
        assert!(out.status.success(), "{key}: {}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(key.as_str()));
    }
    support::record_fault_row(
        "restore --latest beside a copy named in 2030, an unacknowledged anomaly and a safety snapshot",
        "each passed over and named; --key reaches them; the undo command printed",
        "the real newest chosen; 'Passed over ... in the future / safety snapshot / anomaly'",
    );
}

/// Mistakes of the first hour: each is a clear error, and none creates what it names.
#[test]
fn a_missing_destination_no_target_and_a_text_file_are_clear_errors() {
    let c = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let typo = dir.path().join("bakups");
    let typo_s = typo.display().to_string();
    let addr = c.addr();
    // list, prune and restore on a directory that does not exist: an error, not "no backups".
    for args in [
        vec!["list", "--local-path", &typo_s],
        vec!["prune", "--retain", "1", "--local-path", &typo_s],
        vec![
            "restore",
            "--latest",
            "--yes",
            "--http-addr",
            &addr,
            "--local-path",
            &typo_s,
        ],
    ] {
        let out = run_cli_env(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        assert!(
            err.contains("does not exist") && err.contains(&typo_s),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {typo_s}");
    }
    // restore with nothing to restore: a usage error.
    let out = run_cli_env(&["restore", "--http-addr", &addr], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("say what to restore"));
    // A text file given to verify: Consul's words, and what they mean.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a snapshot\n").expect("write");
    let out = run_cli_env(&["verify", text.to_str().expect("p")], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("failed to decompress snapshot: gzip: invalid header")
            && err.contains("not a gzip file"),
        "{err}"
    );
    // agent --once creates its directory, prints its summary once (no INFO line repeating
    // it), and --key takes the backup's path as its help says.
    let local = dir.path().join("new");
    let out = run_cli_env(
        &[
            "agent",
            "--once",
            "--http-addr",
            &addr,
            "--local-path",
            local.to_str().expect("p"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("snapshot stored"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Saved and verified"));
    let name = support::backup_names(&local).pop().expect("a backup");
    let path = local.join(&name).display().to_string();
    let out = run_cli_env(
        &[
            "restore",
            "--key",
            &path,
            "--dry-run",
            "--http-addr",
            &addr,
            "--local-path",
            local.to_str().expect("p"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
}
