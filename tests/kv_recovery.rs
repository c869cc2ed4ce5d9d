//! Selective recovery against the real Consul server (Debian 11's Consul 1.8.7, one per
//! test): `restore --kv-prefix` brings one KV subtree back exactly and touches nothing else;
//! `--delete-extra`; a key changed between plan and write is a conflict, not overwritten; a
//! run stopped part-way says which keys were written; a token without write on the prefix
//! fails before anything is written; locks are skipped; `kv-export` is what `consul kv
//! export` writes and loads with the real `consul kv import`; `diff` lists exactly the changes;
//! an encrypted backup on S3 (Garage) works the same. Concurrent writers and failures are
//! injected by a proxy in front of the real server (tests/support/hookproxy.rs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine;
use support::consul_real::RealConsul;
use support::hookproxy::{Hook, HookProxy};
use support::{describe, run_cli_env};

fn consul_bin() -> PathBuf {
    std::env::var_os("CONSUL_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/consul-snapshot-agent/consul/bin/consul")
        })
}

fn run(args: &[&str]) -> Output {
    run_cli_env(args, &[])
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", describe(&out));
    text(&out)
}

/// Writes `key` with `flags` (master token).
fn put_flags(c: &RealConsul, key: &str, value: &[u8], flags: u64) {
    let (code, body) = c.put(&format!("/v1/kv/{key}?flags={flags}"), value);
    assert_eq!(code, 200, "{body}");
}

/// Value and flags of `key`, `None` when absent.
fn entry(c: &RealConsul, key: &str) -> Option<(Vec<u8>, u64)> {
    let (code, body) = c.get(&format!("/v1/kv/{key}"));
    if code == 404 {
        return None;
    }
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let value = v[0]["Value"]
        .as_str()
        .map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("b64")
        })
        .unwrap_or_default();
    Some((value, v[0]["Flags"].as_u64().unwrap_or(0)))
}

/// The subtree `app/` the tests lose and bring back: values, flags, a nested directory.
fn fill_app(c: &RealConsul) -> Vec<(String, Vec<u8>, u64)> {
    let mut want = Vec::new();
    for i in 0..12 {
        let (k, v, f) = (
            format!("app/svc{i}/port"),
            format!("{}", 8000 + i),
            i as u64 * 7,
        );
        put_flags(c, &k, v.as_bytes(), f);
        want.push((k, v.into_bytes(), f));
    }
    put_flags(c, "app/config.json", b"{\"debug\":false}", 0);
    want.push(("app/config.json".into(), b"{\"debug\":false}".to_vec(), 0));
    want
}

/// One verified backup of `c` in `dir` (`agent --once`); returns the backup's path.
fn backup(c: &RealConsul, dir: &Path) -> PathBuf {
    ok(run(&[
        "agent",
        "--once",
        "--http-addr",
        &c.addr,
        "--local-path",
        &dir.display().to_string(),
    ]));
    let names = support::backup_names(dir);
    assert_eq!(names.len(), 1, "{names:?}");
    dir.join(&names[0])
}

fn assert_restored(c: &RealConsul, want: &[(String, Vec<u8>, u64)]) {
    for (k, v, f) in want {
        assert_eq!(
            entry(c, k),
            Some((v.clone(), *f)),
            "{k}: value and flags as in the backup"
        );
    }
}

#[test]
fn restore_kv_prefix_brings_back_one_subtree_exactly_and_touches_nothing_else() {
    let c = RealConsul::start();
    let want = fill_app(&c);
    c.kv_put("other/edited", b"before");
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().join("backups");
    std::fs::create_dir(&local).expect("mkdir");
    backup(&c, &local);

    // The accident, and life going on after the backup.
    let (code, body) = c.call("DELETE", "/v1/kv/app/?recurse", None, None);
    assert_eq!(code, 200, "{body}");
    c.kv_put("other/edited", b"after");
    c.kv_put("other/new", b"written later");
    c.kv_put("app/created-since", b"new");
    let (code, body) = c.put(
        "/v1/agent/service/register",
        br#"{"Name":"web","ID":"web-1","Port":80}"#,
    );
    assert_eq!(code, 200, "{body}");

    let saved = dir.path().join("before.json");
    let out = ok(run(&[
        "restore",
        "--latest",
        "--kv-prefix",
        "app/",
        "--yes",
        "--save-current",
        &saved.display().to_string(),
        "--http-addr",
        &c.addr,
        "--local-path",
        &local.display().to_string(),
    ]));
    assert!(
        out.contains(&format!(
            "Plan: {} to create, 0 to update, 0 to delete",
            want.len()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Written: {} key(s)", want.len())),
        "{out}"
    );
    assert_restored(&c, &want);
    // Nothing else moved: the later edit, the later key, the service, the key created since.
    assert_eq!(c.kv_get("other/edited").as_deref(), Some(&b"after"[..]));
    assert_eq!(
        c.kv_get("other/new").as_deref(),
        Some(&b"written later"[..])
    );
    assert_eq!(c.kv_get("app/created-since").as_deref(), Some(&b"new"[..]));
    let (code, body) = c.get("/v1/agent/service/web-1");
    assert_eq!(
        code, 200,
        "the service registered since is still there: {body}"
    );
    // The saved file: nothing was updated or deleted; the created keys are listed.
    let saved_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).expect("saved")).expect("json");
    assert_eq!(saved_json, serde_json::json!([]));
    let created = std::fs::read_to_string(dir.path().join("before.json.created")).expect("list");
    assert_eq!(created.lines().count(), want.len(), "{created}");
    assert!(out.contains("consul kv import @"), "{out}");

    // Again, with --delete-extra: an exact rollback of the subtree. Values already right are
    // left alone; the key created since is deleted, and saved first.
    let saved2 = dir.path().join("before2.json");
    let out = ok(run(&[
        "restore",
        "--latest",
        "--kv-prefix",
        "app/",
        "--delete-extra",
        "--yes",
        "--save-current",
        &saved2.display().to_string(),
        "--http-addr",
        &c.addr,
        "--local-path",
        &local.display().to_string(),
    ]));
    assert!(
        out.contains(&format!(
            "Plan: 0 to create, 0 to update, 1 to delete, {} unchanged",
            want.len()
        )),
        "{out}"
    );
    assert_eq!(c.kv_get("app/created-since"), None);
    assert_eq!(c.kv_keys("app/").len(), want.len());
    let saved2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved2).expect("saved")).expect("json");
    assert_eq!(saved2[0]["key"], "app/created-since");
    assert_eq!(saved2[0]["value"], "bmV3");
    assert_eq!(
        c.kv_get("other/new").as_deref(),
        Some(&b"written later"[..])
    );
}

#[test]
fn a_key_changed_between_plan_and_write_is_reported_and_not_overwritten() {
    let c = RealConsul::start();
    let want = fill_app(&c);
    let dir = tempfile::tempdir().expect("tmp");
    let file = backup(&c, dir.path());
    for (k, _, _) in &want {
        c.kv_put(k, b"damaged");
    }
    // Between the plan and the write (the first txn is the permission probe, the second the
    // write), someone else writes app/svc3/port.
    let proxy = HookProxy::start(&c.url());
    let url = c.url();
    proxy.on(
        "PUT",
        "/v1/txn",
        2,
        Hook::Before(Arc::new(move || {
            let (code, body) = support::consul_real::call(
                &url,
                "PUT",
                "/v1/kv/app/svc3/port",
                None,
                Some(b"someone else"),
            );
            assert_eq!(code, 200, "{body}");
        })),
    );
    let out = run(&[
        "restore",
        &file.display().to_string(),
        "--kv-prefix",
        "app/",
        "--yes",
        "--save-current",
        &dir.path().join("saved.json").display().to_string(),
        "--http-addr",
        &proxy.addr,
    ]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not everything was restored: {t}"
    );
    assert!(t.contains("changed by someone else since the plan"), "{t}");
    assert!(t.contains("app/svc3/port: failed to set key"), "{t}");
    assert!(
        t.contains(&format!("Written: {} key(s)", want.len() - 1)),
        "{t}"
    );
    assert_eq!(
        c.kv_get("app/svc3/port").as_deref(),
        Some(&b"someone else"[..]),
        "the concurrent write stands"
    );
    let rest: Vec<_> = want
        .iter()
        .filter(|(k, ..)| k != "app/svc3/port")
        .cloned()
        .collect();
    assert_restored(&c, &rest);
    // The saved file holds the values before the restore.
    let saved: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("saved.json")).expect("saved"))
            .expect("json");
    assert_eq!(saved.len(), want.len());
    assert!(
        saved.iter().all(|e| e["value"] == "ZGFtYWdlZA=="),
        "{saved:?}"
    );
}

#[test]
fn a_run_stopped_part_way_says_exactly_which_keys_were_written() {
    let c = RealConsul::start();
    for i in 0..100 {
        c.kv_put(&format!("bulk/k{i:03}"), b"v");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let file = backup(&c, dir.path());
    let (code, _) = c.call("DELETE", "/v1/kv/bulk/?recurse", None, None);
    assert_eq!(code, 200);
    // The permission probe (two transactions for 100 keys), the first batch of 64, then the
    // second batch fails.
    let proxy = HookProxy::start(&c.url());
    proxy.on(
        "PUT",
        "/v1/txn",
        4,
        Hook::Answer(500, "injected: raft apply failed".into()),
    );
    let out = run(&[
        "restore",
        &file.display().to_string(),
        "--kv-prefix",
        "bulk/",
        "--yes",
        "--save-current",
        &dir.path().join("saved.json").display().to_string(),
        "--http-addr",
        &proxy.addr,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("Written: 64 key(s)"), "{t}");
    assert!(t.contains("Stopped: "), "{t}");
    assert!(t.contains("injected: raft apply failed"), "{t}");
    let live = c.kv_keys("bulk/");
    assert_eq!(live.len(), 64, "{live:?}");
    // Every key not live is named as not written (or unknown), every live one as written.
    for i in 0..100 {
        let k = format!("bulk/k{i:03}");
        let line_written = live.contains(&k);
        assert_eq!(line_written, i < 64, "{k}");
    }
    let unknown = t
        .lines()
        .find(|l| l.starts_with("Unknown"))
        .unwrap_or_default()
        .to_string();
    for i in 64..100 {
        assert!(unknown.contains(&format!("bulk/k{i:03}")), "{t}");
    }
    assert_eq!(
        proxy.count("PUT", "/v1/txn"),
        4,
        "no transaction after the failure"
    );
}

#[test]
fn a_token_without_write_on_the_prefix_fails_before_anything_is_written() {
    let c = RealConsul::with_acl();
    let want = fill_app(&c);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("b.snap");
    ok(run(&[
        "save",
        "--http-addr",
        &c.addr,
        "--token",
        support::consul_real::MASTER,
        &file.display().to_string(),
    ]));
    for (k, _, _) in want.iter().take(6) {
        let (code, _) = c.call("DELETE", &format!("/v1/kv/{k}"), c.token.as_deref(), None);
        assert_eq!(code, 200);
    }
    // Write on app/svc1* only: half the plan is allowed.
    let token = c.token_with_policy(
        "partial",
        r#"key_prefix "app/" { policy = "read" } key_prefix "app/svc1" { policy = "write" }"#,
    );
    let out = run(&[
        "restore",
        &file.display().to_string(),
        "--kv-prefix",
        "app/",
        "--yes",
        "--save-current",
        &dir.path().join("saved.json").display().to_string(),
        "--http-addr",
        &c.addr,
        "--token",
        &token,
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains(r#"key_prefix "app/" { policy = "write" }"#),
        "{t}"
    );
    assert!(t.contains("nothing restored"), "{t}");
    assert!(!t.contains(&token), "the token is never printed");
    assert_eq!(
        c.kv_keys("app/").len(),
        want.len() - 6,
        "nothing was written"
    );
    assert!(
        !dir.path().join("saved.json").exists(),
        "refused before saving anything"
    );
}

#[test]
fn keys_held_by_a_session_are_skipped_unless_forced() {
    let c = RealConsul::start();
    c.kv_put("locks/leader", b"old holder");
    c.kv_put("locks/plain", b"plain");
    let dir = tempfile::tempdir().expect("tmp");
    let file = backup(&c, dir.path());
    let (code, body) = c.put("/v1/session/create", br#"{"Name":"holder"}"#);
    assert_eq!(code, 200, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("json");
    let id = session["ID"].as_str().expect("id").to_string();
    let (code, body) = c.put(&format!("/v1/kv/locks/leader?acquire={id}"), b"new holder");
    assert_eq!((code, body.trim()), (200, "true"));
    c.kv_put("locks/plain", b"changed");
    let args = |force: bool, saved: &str| {
        let mut a = vec![
            "restore".to_string(),
            file.display().to_string(),
            "--kv-prefix".into(),
            "locks/".into(),
            "--yes".into(),
            "--save-current".into(),
            dir.path().join(saved).display().to_string(),
            "--http-addr".into(),
            c.addr.clone(),
        ];
        if force {
            a.push("--force".into());
        }
        a
    };
    let a = args(false, "s1.json");
    let out = ok(run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        out.contains(&format!("skip      locks/leader (held by session {id}")),
        "{out}"
    );
    assert_eq!(
        c.kv_get("locks/leader").as_deref(),
        Some(&b"new holder"[..])
    );
    assert_eq!(c.kv_get("locks/plain").as_deref(), Some(&b"plain"[..]));
    let a = args(true, "s2.json");
    let out = ok(run(&a.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(out.contains("Written: 1 key(s)"), "{out}");
    assert_eq!(
        c.kv_get("locks/leader").as_deref(),
        Some(&b"old holder"[..])
    );
}

#[test]
fn kv_export_is_what_consul_kv_export_writes_and_loads_with_consul_kv_import() {
    let c = RealConsul::start();
    fill_app(&c);
    put_flags(&c, "app/binary", &[0, 159, 146, 150, 255], 3);
    c.kv_put("apple", b"a raw prefix match");
    c.kv_put("zzz/other", b"not selected");
    let dir = tempfile::tempdir().expect("tmp");
    let file = backup(&c, dir.path());
    let consul_export = Command::new(consul_bin())
        .args(["kv", "export", "app"])
        .env("CONSUL_HTTP_ADDR", c.url())
        .output()
        .expect("consul kv export");
    assert!(
        consul_export.status.success(),
        "{}",
        describe(&consul_export)
    );

    let out_file = dir.path().join("app.json");
    let out = ok(run(&[
        "kv-export",
        &file.display().to_string(),
        "--prefix",
        "app",
        "-o",
        &out_file.display().to_string(),
    ]));
    assert!(out.contains("Exported 15 KV entries"), "{out}");
    let ours = std::fs::read(&out_file).expect("export");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&consul_export.stdout),
        "byte for byte what `consul kv export app` prints"
    );

    // Into a second, empty server with the real `consul kv import`.
    let second = RealConsul::start();
    let import = Command::new(consul_bin())
        .args(["kv", "import"])
        .arg(format!("@{}", out_file.display()))
        .env("CONSUL_HTTP_ADDR", second.url())
        .output()
        .expect("consul kv import");
    assert!(import.status.success(), "{}", describe(&import));
    let again = Command::new(consul_bin())
        .args(["kv", "export", "app"])
        .env("CONSUL_HTTP_ADDR", second.url())
        .output()
        .expect("consul kv export");
    assert_eq!(again.stdout, consul_export.stdout);
    assert_eq!(
        entry(&second, "app/binary"),
        Some((vec![0, 159, 146, 150, 255], 3))
    );
    assert_eq!(second.kv_get("zzz/other"), None);

    // Every key only when asked for explicitly: `--prefix ''`.
    let out = run(&["kv-export", &file.display().to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out).contains("--prefix"), "{}", describe(&out));
    let all = ok(run(&[
        "kv-export",
        &file.display().to_string(),
        "--prefix",
        "",
    ]));
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&all[..all.rfind(']').expect("json") + 1]).expect("json");
    assert_eq!(all.len(), 16, "app/ (14), apple, zzz/other");

    // A prefix that matches nothing names the nearest ones; nothing is written.
    let missing = dir.path().join("missing.json");
    let out = run(&[
        "kv-export",
        &file.display().to_string(),
        "--prefix",
        "ap/",
        "-o",
        &missing.display().to_string(),
    ]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains(r#"--prefix "ap/" matches no key"#), "{t}");
    assert!(t.contains(r#""app/""#), "{t}");
    assert!(!missing.exists());

    // A backup that does not verify is never read for entries.
    let mut bytes = std::fs::read(&file).expect("read");
    let n = bytes.len();
    bytes[n - 8] ^= 0xff; // the gzip CRC: every entry decodes, the archive does not verify
    let bad = dir.path().join("bad.snap");
    std::fs::write(&bad, &bytes).expect("write");
    let out = run(&["kv-export", &bad.display().to_string(), "--prefix", "app/"]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "no entry printed: {}",
        describe(&out)
    );
    assert!(
        text(&out).contains("nothing exported"),
        "{}",
        describe(&out)
    );
}

#[test]
fn diff_lists_exactly_the_changes_and_restore_dry_run_shows_them() {
    let c = RealConsul::start();
    fill_app(&c);
    c.kv_put("other/edited", b"before");
    c.kv_put("other/flags", b"same");
    let dir = tempfile::tempdir().expect("tmp");
    let file = backup(&c, dir.path());
    c.call("DELETE", "/v1/kv/app/svc1/port", None, None);
    c.kv_put("other/edited", b"after");
    put_flags(&c, "other/flags", b"same", 9);
    c.kv_put("other/new", b"x");
    let (code, body) = c.put(
        "/v1/agent/service/register",
        br#"{"Name":"web","ID":"web-1","Port":80}"#,
    );
    assert_eq!(code, 200, "{body}");

    let out = ok(run(&[
        "diff",
        &file.display().to_string(),
        "live",
        "--output",
        "json",
        "--http-addr",
        &c.addr,
    ]));
    let d: serde_json::Value = serde_json::from_str(&out[..out.rfind('}').expect("json") + 1])
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(d["kv"]["added"], serde_json::json!(["other/new"]));
    assert_eq!(d["kv"]["removed"], serde_json::json!(["app/svc1/port"]));
    assert_eq!(
        d["kv"]["changed"],
        serde_json::json!([
            {"key": "other/edited", "value": true},
            {"key": "other/flags", "value": false, "flags": [0, 9]}
        ])
    );
    let added = d["services_added"].as_array().expect("services");
    assert_eq!(added.len(), 1, "{d}");
    assert_eq!(
        (&added[0]["id"], &added[0]["name"]),
        (&serde_json::json!("web-1"), &serde_json::json!("web"))
    );
    assert_eq!(d["services_removed"], serde_json::json!([]));
    let kvs = d["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .find(|c| c["type"] == "KVS")
        .expect("KVS row")
        .clone();
    assert_eq!(
        kvs["to"].as_u64().unwrap(),
        kvs["from"].as_u64().unwrap(),
        "one removed, one added"
    );

    // The full restore's dry run shows what it would throw away.
    let out = ok(run(&[
        "restore",
        &file.display().to_string(),
        "--dry-run",
        "--http-addr",
        &c.addr,
    ]));
    assert!(out.contains("What this restore would change"), "{out}");
    assert!(out.contains("  - other/new"), "{out}");
    assert!(out.contains("  + app/svc1/port"), "{out}");
    assert!(out.contains("  - service web-1 (web) on "), "{out}");
    assert_eq!(c.kv_get("other/new").as_deref(), Some(&b"x"[..]), "dry run");
}

/// A fresh identity made by Debian's `age-keygen` (`$AGE_BIN`'s directory, else the PATH):
/// its file and its recipient.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let tool = match std::env::var_os("AGE_BIN") {
        Some(p) => PathBuf::from(p).with_file_name("age-keygen"),
        None => PathBuf::from("age-keygen"),
    };
    let file = dir.join("key.txt");
    let out = Command::new(&tool)
        .arg("-o")
        .arg(&file)
        .output()
        .expect("age-keygen (tests/servers.sh installs Debian's age)");
    assert!(out.status.success(), "{}", describe(&out));
    let out = Command::new(&tool)
        .arg("-y")
        .arg(&file)
        .output()
        .expect("age-keygen -y");
    let recipient = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    (file, recipient)
}

#[test]
fn an_encrypted_backup_on_s3_recovers_a_subtree_exports_and_diffs() {
    let c = RealConsul::start();
    let want = fill_app(&c);
    let s3 = support::garage::s3_target();
    let prefix = format!("kv-{}/", support::net::random());
    let dir = tempfile::tempdir().expect("tmp");
    let (identity, recipient) = keygen(dir.path());
    let env = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let with_s3 = |args: &[&str]| -> Output {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(s3.cli_args(&prefix));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_cli_env(&a, &env)
    };
    ok(with_s3(&[
        "agent",
        "--once",
        "--http-addr",
        &c.addr,
        "--encrypt-age-recipient",
        &recipient,
    ]));
    let (code, _) = c.call("DELETE", "/v1/kv/app/?recurse", None, None);
    assert_eq!(code, 200);
    c.kv_put("app/created-since", b"new");

    let id = identity.display().to_string();
    // Without the identity nothing can be read, and nothing is written.
    let out = with_s3(&["kv-export", "--latest", "--prefix", "app/"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty());

    let out = ok(with_s3(&[
        "diff",
        "latest",
        "live",
        "--age-identity",
        &id,
        "--http-addr",
        &c.addr,
    ]));
    assert!(
        out.contains(&format!("KV: 1 added, {} removed, 0 changed", want.len())),
        "{out}"
    );
    assert!(out.contains("  + app/created-since"), "{out}");

    let exported = ok(with_s3(&[
        "kv-export",
        "--latest",
        "--prefix",
        "app/svc1",
        "--age-identity",
        &id,
    ]));
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&exported[..exported.rfind(']').expect("json") + 1]).expect("json");
    // app/svc1/ and app/svc10/, app/svc11/: a raw string prefix.
    assert_eq!(entries.len(), 3, "{exported}");

    let saved = dir.path().join("saved.json");
    let out = ok(with_s3(&[
        "restore",
        "--latest",
        "--kv-prefix",
        "app/",
        "--delete-extra",
        "--yes",
        "--age-identity",
        &id,
        "--save-current",
        &saved.display().to_string(),
        "--http-addr",
        &c.addr,
    ]));
    assert!(
        out.contains(&format!("Written: {} key(s)", want.len() + 1)),
        "{out}"
    );
    assert_restored(&c, &want);
    assert_eq!(c.kv_get("app/created-since"), None);
}
