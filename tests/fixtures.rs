//! Every archive of `../shared/fixtures` (made outside this project) gives what its README says.

mod support;

use std::fs::File;

use consul_snapshot_agent::archive::{
    gojson, read_archive, ArchiveError, InspectStats, KvOptions, ReadOptions, TypePolicy,
};
use support::{describe, fixture, run_cli};

fn inspect_json(name: &str, kv: KvOptions) -> Vec<u8> {
    let mut stats = InspectStats::new(Some(kv));
    let file = File::open(fixture(name)).expect("open fixture");
    let report = read_archive(
        file,
        ReadOptions {
            types: TypePolicy::AnyBelowFlag,
        },
        &mut stats,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    gojson::to_vec_indent(&stats.into_report(&report.meta), b"   ").expect("json")
}

fn expected(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("read expected json")
}

#[test]
fn inspect_json_equals_fixture_byte_for_byte() {
    let depth3 = KvOptions {
        depth: 3,
        filter: b"vault/".to_vec(),
    };
    for (snap, want, kv) in [
        ("small.snap", "small.inspect.json", KvOptions::default()),
        (
            "binary-keys.snap",
            "binary-keys.inspect.json",
            KvOptions::default(),
        ),
        (
            "empty-kv.snap",
            "empty-kv.inspect.json",
            KvOptions::default(),
        ),
        ("depth3-filter.snap", "depth3-filter.inspect.json", depth3),
    ] {
        let got = inspect_json(snap, kv);
        let want = expected(want);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want.strip_suffix(b"\n").unwrap_or(&want)),
            "{snap}"
        );
    }
}

#[test]
fn empty_kv_has_null_stats_kv() {
    let got: serde_json::Value =
        serde_json::from_slice(&inspect_json("empty-kv.snap", KvOptions::default())).expect("json");
    assert_eq!(got["StatsKV"], serde_json::Value::Null);
    assert_eq!(got["TotalSizeKV"], 0);
}

fn verify_err(name: &str) -> ArchiveError {
    let file = File::open(fixture(name)).expect("open fixture");
    match read_archive(file, ReadOptions::default(), &mut ()) {
        Ok(r) => panic!("{name} verified but must fail: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn corrupt_state_fails_hash_check() {
    assert_eq!(
        verify_err("corrupt-state.snap").to_string(),
        r#"failed to read snapshot file: failed checking integrity of snapshot: hash check failed for "state.bin""#
    );
}

#[test]
fn truncated_fails_with_unexpected_eof() {
    let e = verify_err("truncated.snap");
    assert!(e.is_corrupt());
    assert_eq!(
        e.to_string(),
        "failed to read snapshot file: failed to read or write snapshot data: unexpected EOF"
    );
}

#[test]
fn record_padded_fails_with_trailing_bytes() {
    let e = verify_err("record-padded.snap");
    assert!(matches!(e, ArchiveError::TrailingBytes(n) if n > 0), "{e}");
    assert!(
        e.to_string().ends_with("unread uncompressed bytes remain"),
        "{e}"
    );
}

/// The README says `small.snap` holds 4 nodes and 120 KV entries; its inspect golden has 16
/// Register records (nodes, services and checks together), one ACL policy, one prepared query.
#[test]
fn record_counts_of_small_match_its_readme() {
    let file = File::open(fixture("small.snap")).expect("open");
    let r = read_archive(file, ReadOptions::default(), &mut ()).expect("verify");
    let c = r.state.counts;
    assert_eq!(c.nodes, 4, "{c:?}");
    assert_eq!(c.kv_entries, 120, "{c:?}");
    assert!(c.services > 0 && c.nodes + c.services < 16, "{c:?}");
    assert_eq!((c.acl_policies, c.prepared_queries), (1, 1), "{c:?}");
}

#[test]
fn good_fixtures_verify_strictly() {
    for name in [
        "small.snap",
        "binary-keys.snap",
        "empty-kv.snap",
        "depth3-filter.snap",
    ] {
        let file = File::open(fixture(name)).expect("open");
        let r = read_archive(file, ReadOptions::default(), &mut ())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.state.len as i64, r.meta.size, "{name}");
        assert_eq!(
            r.archive_len,
            std::fs::metadata(fixture(name)).expect("stat").len()
        );
    }
}

#[test]
fn cli_verify_summary_and_errors() {
    let ok = run_cli(&["verify", fixture("small.snap").to_str().expect("path")]);
    assert!(ok.status.success(), "{}", describe(&ok));
    let line = String::from_utf8_lossy(&ok.stdout);
    assert!(
        line.starts_with(
            "Verified snapshot 2-146-1795288923000: index 146, term 2, state.bin 48609 bytes"
        ),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);

    for (name, text) in [
        ("corrupt-state.snap", r#"hash check failed for "state.bin""#),
        ("truncated.snap", "unexpected EOF"),
        ("record-padded.snap", "unread uncompressed bytes remain"),
    ] {
        let out = run_cli(&["verify", fixture(name).to_str().expect("path")]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("Error verifying snapshot file: ") && err.contains(text),
            "{name}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn cli_inspect_json_and_consul_flag_spelling() {
    let path = fixture("depth3-filter.snap");
    let out = run_cli(&[
        "inspect",
        "-kvdetails",
        "-kvdepth",
        "3",
        "-kvfilter",
        "vault/",
        "-format=json",
        path.to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let want = expected("depth3-filter.inspect.json");
    assert_eq!(
        out.stdout.strip_suffix(b"\n"),
        Some(want.strip_suffix(b"\n").unwrap_or(&want))
    );
}

#[test]
fn cli_inspect_pretty_layout() {
    let out = run_cli(&[
        "inspect",
        "--kvdetails",
        fixture("small.snap").to_str().expect("path"),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], " ID           2-146-1795288923000");
    assert_eq!(lines[6], " Type                       Count      Size");
    assert_eq!(lines[8], " KVS                        120        41.7KB");
    assert!(text.contains("\n\n Key Name"), "{text}");
    assert!(text.ends_with("\n") && !text.ends_with("\n\n"));
    assert!(
        lines.iter().all(|l| !l.ends_with(' ')),
        "no trailing spaces"
    );
}

#[test]
fn cli_inspect_raw_state_bin_with_meta_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = File::open(fixture("small.snap")).expect("open");
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dir.path())
        .expect("unpack");
    let state = dir.path().join("state.bin");
    let raw = run_cli(&[
        "inspect",
        "--format",
        "json",
        "--kvdetails",
        state.to_str().expect("path"),
    ]);
    assert!(raw.status.success(), "{}", describe(&raw));
    let want = expected("small.inspect.json");
    assert_eq!(
        raw.stdout.strip_suffix(b"\n"),
        Some(want.strip_suffix(b"\n").unwrap_or(&want))
    );

    std::fs::remove_file(dir.path().join("meta.json")).expect("rm");
    let out = run_cli(&["inspect", state.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("Error reading meta.json from internal snapshot dir:"));
}

#[test]
fn cli_missing_file_is_a_clear_error() {
    let out = run_cli(&["verify", "/nonexistent/x.snap"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error opening snapshot file /nonexistent/x.snap"),
        "{err}"
    );
}
