//! `peers-json` on the shared fixtures, on archives whose Raft configuration lists several
//! servers (voters and a non-voter), and against the Consul API test server's
//! `/v1/operator/raft/configuration`.

mod support;

use std::fs::File;

use consul_snapshot_agent::archive::meta::{Configuration, Server};
use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::archive::{archive_bytes, read_archive, ReadOptions, WriteOptions};
use consul_snapshot_agent::devserver::{DevServerConfig, Faults};
use serde_json::{json, Value};
use support::{describe, fixture, run_cli, TestConsul};

fn peers(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).expect("peers.json is JSON")
}

#[test]
fn from_the_fixtures_the_configuration_in_their_meta_json() {
    for name in ["small.snap", "binary-keys.snap", "empty-kv.snap"] {
        let path = fixture(name);
        let r = read_archive(
            File::open(&path).expect("open"),
            ReadOptions::default(),
            &mut (),
        )
        .expect("verify");
        let want: Vec<Value> = r
            .meta
            .configuration
            .servers
            .iter()
            .flatten()
            .map(|s| json!({"id": s.id, "address": s.address, "non_voter": s.suffrage == 1}))
            .collect();
        assert!(!want.is_empty(), "{name}");
        let out = run_cli(&["peers-json", &path.display().to_string()]);
        assert_eq!(peers(&out), Value::Array(want), "{name}");
        let steps = String::from_utf8_lossy(&out.stderr);
        assert!(
            steps.contains("Stop the Consul agent on EVERY server"),
            "{steps}"
        );
        assert!(steps.contains("cannot fix"), "{steps}");
    }
}

/// An archive of a 3-voter cluster with one non-voter (a read replica).
fn cluster_archive(dir: &std::path::Path) -> std::path::PathBuf {
    let spec = SynthSpec {
        kv_entries: 10,
        ..SynthSpec::default()
    };
    let mut meta = spec.meta();
    let server = |suffrage, id: &str, ip: &str| Server {
        suffrage,
        id: id.into(),
        address: format!("{ip}:8300"),
    };
    meta.configuration = Configuration {
        servers: Some(vec![
            server(0, "11111111-aaaa-bbbb-cccc-000000000001", "10.0.0.1"),
            server(0, "11111111-aaaa-bbbb-cccc-000000000002", "10.0.0.2"),
            server(0, "11111111-aaaa-bbbb-cccc-000000000003", "10.0.0.3"),
            server(1, "11111111-aaaa-bbbb-cccc-000000000009", "10.0.0.9"),
        ]),
    };
    let mut state = Vec::new();
    spec.write_state(&mut state).expect("state");
    meta.size = state.len() as i64;
    let path = dir.join("cluster.snap");
    std::fs::write(
        &path,
        archive_bytes(&meta, &state, &WriteOptions::default()),
    )
    .expect("write");
    path
}

#[test]
fn several_servers_voters_and_non_voters_with_exclusions() {
    let dir = tempfile::tempdir().expect("tmp");
    let snap = cluster_archive(dir.path()).display().to_string();
    let all = peers(&run_cli(&["peers-json", &snap]));
    let all = all.as_array().expect("array");
    assert_eq!(all.len(), 4);
    let voters: Vec<bool> = all.iter().map(|p| p["non_voter"] == false).collect();
    assert_eq!(voters, [true, true, true, false]);

    // One server gone for good (by address), one by ID; written to a file.
    let out_file = dir.path().join("peers.json");
    let out = run_cli(&[
        "peers-json",
        &snap,
        "--exclude",
        "10.0.0.3:8300",
        "--exclude",
        "11111111-aaaa-bbbb-cccc-000000000009",
        "--out",
        &out_file.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let written: Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("read")).expect("json");
    assert_eq!(
        written,
        json!([
            {"id": "11111111-aaaa-bbbb-cccc-000000000001", "address": "10.0.0.1:8300", "non_voter": false},
            {"id": "11111111-aaaa-bbbb-cccc-000000000002", "address": "10.0.0.2:8300", "non_voter": false}
        ])
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 server(s)"));

    // A typo is an error naming the servers; excluding every voter is refused.
    let out = run_cli(&["peers-json", &snap, "--exclude", "10.0.0.4:8300"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10.0.0.1:8300"));
    let mut args = vec!["peers-json", snap.as_str()];
    for ip in ["10.0.0.1:8300", "10.0.0.2:8300", "10.0.0.3:8300"] {
        args.extend(["--exclude", ip]);
    }
    let out = run_cli(&args);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no voting server"));
}

#[test]
fn from_a_live_server_even_without_a_leader() {
    let c = TestConsul::start(DevServerConfig::default());
    let want = json!([{"id": "9d754d17-d864-b1d3-e758-f3fe25a9874f", "address": "127.0.0.1:8300", "non_voter": false}]);
    assert_eq!(
        peers(&run_cli(&["peers-json", "--from-consul", &c.addr()])),
        want
    );
    // Quorum lost: no leader. The configuration is still read (?stale).
    c.faults(Faults {
        no_leader: true,
        ..Faults::default()
    });
    assert_eq!(
        peers(&run_cli(&["peers-json", "--from-consul", &c.addr()])),
        want
    );
}
