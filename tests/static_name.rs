//! Enterprise's `s3_static_snapshot_name` on the real Garage: every snapshot goes to one
//! key, verified before it replaces the last; refused in a bucket without versioning unless
//! allowed (Garage has no versioning; a bucket with it is the S3 fault proxy answering
//! `GetBucketVersioning` as such a bucket does); retention does not apply; a snapshot the
//! shrink guard flags never replaces it; `list` and `restore --latest` name it from its
//! metadata.

mod support;

use std::time::Duration;

use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::devserver::{DevServerConfig, SnapshotSource};
use support::garage::s3_target;
use support::s3proxy::{Action, Op, Rule, S3Proxy};
use support::{describe, run_cli_env, TestConsul};

const STATIC: &str = "consul-latest.snap";

fn consul() -> TestConsul {
    TestConsul::start(DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        snapshot: SnapshotSource::Synthetic(SynthSpec {
            kv_entries: 200,
            ..SynthSpec::default()
        }),
        ..DevServerConfig::default()
    })
}

fn run(args: &[String], env: &[(String, String)]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_cli_env(&a, &e)
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// `list --output json` rows at the destination.
fn listed(s3: &support::garage::S3Target, prefix: &str) -> Vec<serde_json::Value> {
    let mut args = strings(&["list", "--output", "json"]);
    args.extend(s3.cli_args(prefix));
    args.extend(strings(&["--aws-s3-static-snapshot-name", STATIC]));
    let out = run(&args, &s3.cli_env());
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn every_snapshot_goes_to_the_static_name_which_list_and_restore_name_from_its_metadata() {
    let c = consul();
    let s3 = s3_target();
    let prefix = format!("static-{}/", support::net::random());
    let once = |extra: &[&str]| {
        let mut args = strings(&["agent", "--once", "--http-addr", &c.addr()]);
        args.extend(s3.cli_args(&prefix));
        args.extend(strings(&[
            "--aws-s3-static-snapshot-name",
            STATIC,
            "--retain",
            "1",
        ]));
        args.extend(strings(extra));
        run(&args, &s3.cli_env())
    };
    // Garage has no versioning: refused, naming the way out; nothing stored.
    let out = once(&[]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("has no versioning"), "{text}");
    assert!(text.contains("--allow-unversioned-static-name"), "{text}");
    assert!(listed(&s3, &prefix).is_empty());

    // Allowed: three snapshots, one key, the newest one's identity; retention left it alone.
    for _ in 0..3 {
        let out = once(&["--allow-unversioned-static-name"]);
        let text = describe(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains(&format!("stored {prefix}{STATIC}")), "{text}");
        assert!(
            text.contains("retention does not apply to a static name"),
            "{text}"
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    let rows = listed(&s3, &prefix);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], format!("{prefix}{STATIC}"));
    assert_eq!(rows[0]["datacenter"], "dc1");
    assert!(rows[0]["index"].as_u64().unwrap_or(0) > 0, "{rows:?}");

    // The other commands read the same configuration (the static name among it).
    let mut args = strings(&["restore", "--latest", "--dry-run", "--http-addr", &c.addr()]);
    args.extend(s3.cli_args(&prefix));
    args.extend(strings(&["--aws-s3-static-snapshot-name", STATIC]));
    let out = run(&args, &s3.cli_env());
    let text = describe(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(STATIC), "{text}");
    assert!(text.contains("matches the stored digest"), "{text}");

    // prune applies retention: never to the static name.
    let mut args = strings(&["prune", "--retain", "1", "--datacenter", "dc1"]);
    args.extend(s3.cli_args(&prefix));
    args.extend(strings(&["--aws-s3-static-snapshot-name", STATIC]));
    let out = run(&args, &s3.cli_env());
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(listed(&s3, &prefix).len(), 1);

    // A wipe: the shrink guard flags the snapshot, which does not replace the static name.
    let before = rows[0]["sha256"].clone();
    support::wipe_kv(&c);
    let out = once(&["--allow-unversioned-static-name"]);
    let text = describe(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not written over the static name"), "{text}");
    let rows = listed(&s3, &prefix);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["sha256"], before,
        "the snapshot before the wipe is still there"
    );
}

#[test]
fn a_bucket_with_versioning_takes_the_static_name_without_being_told() {
    let c = consul();
    let s3 = s3_target();
    let proxy = S3Proxy::start(&s3.endpoint);
    proxy.add(Rule::next(
        Op::GetBucketVersioning,
        100,
        Action::Reply(r#"<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#),
    ));
    let prefix = format!("static-v-{}/", support::net::random());
    let mut args = strings(&["agent", "--once", "--http-addr", &c.addr()]);
    args.extend(s3.cli_args(&prefix));
    // Through the proxy.
    let at = args
        .iter()
        .position(|a| a == "--aws-s3-endpoint")
        .expect("endpoint flag");
    args[at + 1] = proxy.endpoint.clone();
    args.extend(strings(&["--aws-s3-static-snapshot-name", STATIC]));
    let out = run(&args, &s3.cli_env());
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        proxy.count(Op::GetBucketVersioning),
        1,
        "{:?}",
        proxy.seen()
    );
    assert_eq!(listed(&s3, &prefix).len(), 1);
}
