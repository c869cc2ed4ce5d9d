//! Azure Blob Storage and Google Cloud Storage end to end: the agent binary against the Consul
//! API test server and Azurite or fake-gcs-server (or real accounts, see tests/support/azurite.rs
//! and fakegcs.rs): `agent --once` stores a verified backup with its metadata beside a local
//! copy, retention rotates both, a failed snapshot stores and deletes nothing, `restore
//! --latest` brings the backup back, and a dead endpoint fails the cycle in bounded time
//! without taking the local destination down. The same scenarios run on both backends.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::devserver::{DevServerConfig, Faults, SnapshotSource};
use serde_json::Value;
use support::azurite::{azure_target, AzureTarget};
use support::fakegcs::{gcs_target, GcsTarget};
use support::{describe, run_cli_env, TestConsul};

/// A remote destination under test.
trait Remote {
    /// Its flags.
    fn cli_args(&self) -> Vec<String>;
    /// Its credentials, in the environment.
    fn cli_env(&self) -> Vec<(String, String)>;
    /// The key prefix backups go under.
    fn prefix(&self) -> &str;
    /// `&[block/chunk size flag, value]` for small uploads (several blocks per archive).
    fn small_parts(&self) -> [&'static str; 2];
    /// `&[request timeout flag]`.
    fn timeout_flag(&self) -> &'static str;
    /// Stops an emulator; `false` for a real service (which cannot be stopped).
    fn stop(&mut self) -> bool;
    /// How the destination is named in messages.
    fn scheme(&self) -> &'static str;
}

impl Remote for AzureTarget {
    fn cli_args(&self) -> Vec<String> {
        AzureTarget::cli_args(self)
    }
    fn cli_env(&self) -> Vec<(String, String)> {
        AzureTarget::cli_env(self)
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
    fn small_parts(&self) -> [&'static str; 2] {
        ["--azure-blob-block-size", "1MiB"]
    }
    fn timeout_flag(&self) -> &'static str {
        "--azure-blob-request-timeout"
    }
    fn stop(&mut self) -> bool {
        let emulated = self.endpoint.is_some();
        AzureTarget::stop(self);
        emulated
    }
    fn scheme(&self) -> &'static str {
        "azure://"
    }
}

impl Remote for GcsTarget {
    fn cli_args(&self) -> Vec<String> {
        GcsTarget::cli_args(self)
    }
    fn cli_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
    fn small_parts(&self) -> [&'static str; 2] {
        ["--gcs-chunk-size", "256KiB"]
    }
    fn timeout_flag(&self) -> &'static str {
        "--gcs-request-timeout"
    }
    fn stop(&mut self) -> bool {
        let emulated = self.endpoint.is_some();
        GcsTarget::stop(self);
        emulated
    }
    fn scheme(&self) -> &'static str {
        "gs://"
    }
}

fn cli(args: &[String], az: &dyn Remote) -> Output {
    let env = az.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_cli_env(&args, &env)
}

fn once(consul: &TestConsul, az: &dyn Remote, local: &std::path::Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--once".into(),
        "--retries".into(),
        "0".into(),
        "--http-addr".into(),
        consul.addr(),
        "--local-path".into(),
        local.display().to_string(),
    ];
    args.extend(az.cli_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    cli(&args, az)
}

/// `list --output json` of the remote destination alone.
fn remote_rows(az: &dyn Remote) -> Vec<Value> {
    let mut args: Vec<String> = vec!["list".into(), "--output".into(), "json".into()];
    args.extend(az.cli_args());
    let out = cli(&args, az);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn keys(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn azure_cycles_store_verified_backups_rotate_and_a_failed_cycle_touches_nothing() {
    cycles_rotate_and_failures_touch_nothing(&azure_target());
}

#[test]
fn gcs_cycles_store_verified_backups_rotate_and_a_failed_cycle_touches_nothing() {
    cycles_rotate_and_failures_touch_nothing(&gcs_target());
}

#[test]
fn a_dead_azure_endpoint_fails_in_bounded_time_and_the_local_copy_is_stored() {
    dead_endpoint(&mut azure_target());
}

#[test]
fn a_dead_gcs_endpoint_fails_in_bounded_time_and_the_local_copy_is_stored() {
    dead_endpoint(&mut gcs_target());
}

fn cycles_rotate_and_failures_touch_nothing(az: &dyn Remote) {
    let consul = TestConsul::start(DevServerConfig {
        // About 1.3 MiB compressed: several blocks or chunks per archive.
        snapshot: SnapshotSource::Synthetic(SynthSpec::with_state_size(2 << 20)),
        ..DevServerConfig::default()
    });
    let local = tempfile::tempdir().expect("tmp");
    let [part_flag, part_size] = az.small_parts();
    for i in 0..3 {
        let out = once(
            &consul,
            az,
            local.path(),
            &["--retain", "2", "--verify-readback", part_flag, part_size],
        );
        assert!(out.status.success(), "cycle {i}: {}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.matches(": stored ").count(), 2, "{text}");
        assert!(text.contains(az.scheme()), "{text}");
        std::thread::sleep(Duration::from_millis(1100)); // one-second names
    }
    let rows = remote_rows(az);
    assert_eq!(rows.len(), 2, "retain 2: {rows:#?}");
    for r in &rows {
        assert_eq!(r["index"], 1000, "{r}");
        assert_eq!(r["datacenter"], "dc1", "{r}");
        assert_eq!(r["sha256"].as_str().map(str::len), Some(64), "{r}");
        assert!(
            r["key"]
                .as_str()
                .is_some_and(|k| k.starts_with(az.prefix())),
            "{r}"
        );
    }
    let before = keys(&rows);

    // A snapshot cut short: nothing stored, nothing deleted, at both destinations.
    consul.faults(Faults {
        truncate_after: Some(4000),
        ..Faults::default()
    });
    let out = once(&consul, az, local.path(), &["--retain", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(keys(&remote_rows(az)), before);
    consul.faults(Faults::default());

    // Restore the newest Azure backup into the test server.
    let mut args: Vec<String> = vec![
        "restore".into(),
        "--http-addr".into(),
        consul.addr(),
        "--latest".into(),
        "--yes".into(),
        "--safety-snapshot=false".into(),
    ];
    args.extend(az.cli_args());
    let out = cli(&args, az);
    assert!(out.status.success(), "{}", describe(&out));
    let newest = before.iter().max().expect("backups"); // names sort by time
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(newest.as_str()),
        "restored the newest: {}",
        describe(&out)
    );
}

fn dead_endpoint(az: &mut dyn Remote) {
    let consul = TestConsul::start(DevServerConfig::default());
    if !az.stop() {
        return; // a real service cannot be stopped; the emulators can
    }
    let local = tempfile::tempdir().expect("tmp");
    let started = Instant::now();
    let out = once(&consul, az, local.path(), &[az.timeout_flag(), "2s"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("at 1 of 2 destinations"),
        "{}",
        describe(&out)
    );
    assert!(
        text.contains(az.scheme()),
        "the failure names the destination: {text}"
    );
    let snaps = std::fs::read_dir(local.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .count();
    assert_eq!(snaps, 1);
    assert!(
        took < Duration::from_secs(120),
        "bounded by the request timeout and retries: {took:?}"
    );
}

/// A GCS resumable-upload session URI is a write capability: when the server goes away in
/// the middle of an upload, the error names no URL (nowhere: output, logs).
#[test]
fn a_gcs_upload_cut_mid_way_names_no_session_uri() {
    let mut gcs = gcs_target();
    if gcs.endpoint.is_none() {
        return; // a real bucket cannot be stopped mid-upload
    }
    let consul = TestConsul::start(DevServerConfig {
        snapshot: SnapshotSource::Synthetic(SynthSpec::with_state_size(6 << 20)),
        ..DevServerConfig::default()
    });
    // Slow enough that the upload is under way (session open, chunks sent) for many seconds:
    // the emulator is stopped only once the agent has started sending chunks.
    consul.faults(Faults {
        rate_bytes_per_sec: Some(256 << 10),
        ..Faults::default()
    });
    let mut args: Vec<String> = [
        "--log-level",
        "trace",
        "agent",
        "--once",
        "--retries",
        "0",
        "--http-addr",
        &consul.addr(),
        "--gcs-chunk-size",
        "256KiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(gcs.cli_args());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
        .args(&args)
        .env_remove("CONSUL_HTTP_ADDR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // At 256 KiB/s the ~3 MiB archive takes over 10 s: 3 s in, the session is open and
    // chunks have gone (a slower start only cuts earlier; it cannot finish first).
    std::thread::sleep(Duration::from_secs(3));
    gcs.stop();
    let out = child.wait_with_output().expect("output");
    let all = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("gcs"), "the failure is reported: {all}");
    assert!(!all.contains("upload_id"), "a session URI leaked: {all}");
    assert!(
        !all.contains("uploadType=resumable"),
        "a session URI leaked: {all}"
    );
    support::record_fault_row(
        "GCS emulator stopped mid-way through a resumable upload",
        "exit 1; no resumable-session URI (a write capability) in any output or log",
        "exit 1 'gcs upload chunk failed: error sending request: ...'; no upload_id anywhere",
    );
}
