//! Client-side encryption with age, end to end: backups made by the agent hold only
//! ciphertext and decrypt with the `age` command-line tool (Debian's `age`, which `.ci/run`
//! installs) to an archive GNU tar and `sha256sum -c` accept; a file encrypted by `age`
//! restores; a missing or wrong identity is a clear error naming the recipients; plain and
//! encrypted backups of one datacenter are one series for retention and `--latest`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use consul_snapshot_agent::devserver::DevServerConfig;
use sha2::{Digest, Sha256};
use support::garage::s3_target;
use support::{describe, run_cli_env, TestConsul};

/// The age tool: `$AGE_BIN`, else `age` on the PATH (with `age-keygen` beside it).
fn age_tool(name: &str) -> PathBuf {
    match std::env::var_os("AGE_BIN") {
        Some(p) => PathBuf::from(p).with_file_name(name),
        None => PathBuf::from(name),
    }
}

/// A fresh identity made by `age-keygen`: its file and its recipient.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = Command::new(age_tool("age-keygen"))
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run age-keygen (install Debian's age; .ci/run does)");
    assert!(out.status.success(), "{}", describe(&out));
    let out = Command::new(age_tool("age-keygen"))
        .arg("-y")
        .arg(&file)
        .output()
        .expect("age-keygen -y");
    let recipient = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    (file, recipient)
}

fn cli(args: &[String], env: &[(String, String)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_cli_env(&args, &env)
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).expect("read")))
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".snap") || n.ends_with(".snap.age")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn backups_hold_only_ciphertext_that_age_decrypts_to_a_verified_archive() {
    let consul = TestConsul::start(DevServerConfig::default());
    let s3 = s3_target();
    let prefix = format!("enc-{}/", uuid::Uuid::new_v4().simple());
    let keys = tempfile::tempdir().expect("tmp");
    let (id, recipient) = keygen(keys.path(), "ops.key");
    let (other_id, _) = keygen(keys.path(), "other.key");
    let local = tempfile::tempdir().expect("tmp");
    let mut args = strings(&["agent", "--once", "--retries", "0", "--http-addr"]);
    args.push(consul.addr());
    args.extend(["--local-path".into(), local.path().display().to_string()]);
    args.extend(s3.cli_args(&prefix));
    args.extend(["--encrypt-age-recipient".into(), recipient.clone()]);
    // The read-back decrypts and verifies with the identity.
    args.extend(["--verify-readback".into(), "--age-identity".into()]);
    args.push(id.display().to_string());
    let out = cli(&args, &s3.cli_env());
    assert!(out.status.success(), "{}", describe(&out));

    let stored = backups(local.path());
    assert_eq!(stored.len(), 1, "{stored:?}");
    let file = &stored[0];
    assert!(file.to_string_lossy().ends_with(".snap.age"), "{file:?}");
    let bytes = std::fs::read(file).expect("read");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(2).take(64).any(|w| w == [0x1f, 0x8b]));

    // age -d gives an archive that GNU tar unpacks and sha256sum -c accepts.
    let work = tempfile::tempdir().expect("tmp");
    let plain = work.path().join("b.snap");
    let out = Command::new(age_tool("age"))
        .arg("-d")
        .arg("-i")
        .arg(&id)
        .arg("-o")
        .arg(&plain)
        .arg(file)
        .output()
        .expect("age -d");
    assert!(out.status.success(), "{}", describe(&out));
    let out = Command::new("sh")
        .arg("-c")
        .arg("tar -xzf b.snap && sha256sum -c --quiet SHA256SUMS")
        .current_dir(work.path())
        .output()
        .expect("tar");
    assert!(out.status.success(), "{}", describe(&out));

    // The metadata: plaintext digest, ciphertext digest and size, recipients by fingerprint.
    let mut sidecar = file.as_os_str().to_owned();
    sidecar.push(".meta.json");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar).expect("sidecar")).expect("json");
    assert_eq!(meta["sha256"], sha256_file(&plain));
    assert_eq!(meta["ciphertext_sha256"], sha256_file(file));
    assert_eq!(meta["ciphertext_size"], bytes.len() as u64);
    let fps = meta["recipients"].as_array().expect("recipients");
    assert_eq!(fps.len(), 1);
    let fp = fps[0].as_str().expect("fingerprint");
    assert!(
        fp.starts_with("age SHA256:") && !fp.contains(&recipient),
        "{fp}"
    );

    // verify: no identity, a wrong one, the right one.
    let path = file.display().to_string();
    let out = cli(&strings(&["verify", &path]), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--age-identity") && err.contains(fp), "{err}");
    let other = other_id.display().to_string();
    let out = cli(&strings(&["verify", &path, "--age-identity", &other]), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("none of the identities") && err.contains(fp),
        "{err}"
    );
    let idp = id.display().to_string();
    let out = cli(
        &strings(&["verify", &path]),
        &[("CONSUL_SNAPSHOT_AGE_IDENTITY".into(), idp.clone())],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(meta["sha256"].as_str().unwrap_or("-")));
    let out = cli(&strings(&["inspect", &path, "--age-identity", &idp]), &[]);
    assert!(out.status.success(), "{}", describe(&out));

    // Restore the latest backup from S3: decrypted, verified against the stored digest, sent.
    let mut args = strings(&["restore", "--latest", "--yes", "--safety-snapshot=false"]);
    args.extend(["--http-addr".into(), consul.addr()]);
    args.extend(s3.cli_args(&prefix));
    let out = cli(&args, &s3.cli_env());
    assert!(!out.status.success(), "no identity: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains(fp));
    assert!(consul.server().restores().is_empty());
    args.extend(["--age-identity".into(), idp]);
    let out = cli(&args, &s3.cli_env());
    assert!(out.status.success(), "{}", describe(&out));
    let restores = consul.server().restores();
    assert_eq!(restores.len(), 1);
    assert_eq!(hex::encode(restores[0].archive_sha256), meta["sha256"]);
}

#[test]
fn a_file_encrypted_by_age_restores_and_a_tampered_one_does_not() {
    let consul = TestConsul::start(DevServerConfig::default());
    let keys = tempfile::tempdir().expect("tmp");
    let (id, recipient) = keygen(keys.path(), "ops.key");
    let fixture = support::fixture("small.snap");
    let sealed = keys.path().join("small.snap.age");
    let out = Command::new(age_tool("age"))
        .args(["-r", &recipient, "-o"])
        .arg(&sealed)
        .arg(&fixture)
        .output()
        .expect("age -r");
    assert!(out.status.success(), "{}", describe(&out));
    let idp = id.display().to_string();
    let restore = |file: &Path| {
        cli(
            &strings(&[
                "restore",
                &file.display().to_string(),
                "--yes",
                "--http-addr",
                &consul.addr(),
                "--age-identity",
                &idp,
            ]),
            &[],
        )
    };
    let out = restore(&sealed);
    assert!(out.status.success(), "{}", describe(&out));
    let restores = consul.server().restores();
    assert_eq!(restores.len(), 1);
    assert_eq!(
        hex::encode(restores[0].archive_sha256),
        sha256_file(&fixture)
    );

    // One flipped bit in the ciphertext: the AEAD refuses it, nothing reaches Consul.
    let mut bytes = std::fs::read(&sealed).expect("read");
    let n = bytes.len();
    bytes[n - 20] ^= 0x01;
    let tampered = keys.path().join("tampered.snap.age");
    std::fs::write(&tampered, bytes).expect("write");
    let out = restore(&tampered);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(consul.server().restores().len(), 1);
}

#[test]
fn plain_and_encrypted_backups_are_one_series_for_retention_and_latest() {
    let consul = TestConsul::start(DevServerConfig::default());
    let keys = tempfile::tempdir().expect("tmp");
    let (id, recipient) = keygen(keys.path(), "ops.key");
    let local = tempfile::tempdir().expect("tmp");
    let run = |encrypt: bool| {
        let mut args = strings(&["agent", "--once", "--retries", "0", "--retain", "2"]);
        args.extend(["--http-addr".into(), consul.addr()]);
        args.extend(["--local-path".into(), local.path().display().to_string()]);
        if encrypt {
            args.extend(["--encrypt-age-recipient".into(), recipient.clone()]);
        }
        let out = cli(&args, &[]);
        assert!(out.status.success(), "{}", describe(&out));
        std::thread::sleep(Duration::from_millis(1100)); // names have one-second resolution
    };
    run(false);
    run(false);
    assert_eq!(backups(local.path()).len(), 2);
    run(true);
    let now = backups(local.path());
    let names: Vec<String> = now
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
        .collect();
    assert_eq!(names.len(), 2, "retain 2 over the one series: {names:?}");
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".snap.age")).count(),
        1,
        "{names:?}"
    );
    run(true);
    let names: Vec<String> = backups(local.path())
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".snap.age")), "{names:?}");
    assert_eq!(names.len(), 2);

    // list shows them; --latest picks the newest (encrypted) one.
    let out = cli(
        &strings(&[
            "list",
            "--output",
            "json",
            "--local-path",
            &local.path().display().to_string(),
        ]),
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["encrypted"] == true), "{rows:#?}");

    // list --verify: without an identity the ciphertext digests are checked, with one every
    // archive is decrypted and verified; a damaged backup fails it (exit 1).
    let local_path = local.path().display().to_string();
    let verify = |identity: bool| {
        let mut args = strings(&["list", "--verify", "--output", "json", "--local-path"]);
        args.push(local_path.clone());
        if identity {
            args.extend(["--age-identity".into(), id.display().to_string()]);
        }
        let out = cli(&args, &[]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
        let states: Vec<String> = rows
            .iter()
            .map(|r| r["verified"].as_str().unwrap_or_default().to_string())
            .collect();
        (out.status.code(), states)
    };
    assert_eq!(verify(false), (Some(0), vec!["ciphertext".to_string(); 2]));
    assert_eq!(verify(true), (Some(0), vec!["ok".to_string(); 2]));
    let victim = &backups(local.path())[0];
    let mut bytes = std::fs::read(victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(victim, &bytes).expect("write");
    assert_eq!(
        verify(true),
        (Some(1), vec!["failed".to_string(), "ok".to_string()])
    );
    assert_eq!(
        verify(false).0,
        Some(1),
        "the ciphertext digest differs too"
    );
}

#[test]
fn a_readback_identity_that_is_not_a_recipient_keeps_the_backup_and_warns() {
    let consul = TestConsul::start(DevServerConfig::default());
    let keys = tempfile::tempdir().expect("tmp");
    let (id, _) = keygen(keys.path(), "ops.key");
    let (_, other_recipient) = keygen(keys.path(), "rotated.key");
    let local = tempfile::tempdir().expect("tmp");
    let run = || {
        let mut args = strings(&["agent", "--once", "--retries", "0", "--http-addr"]);
        args.push(consul.addr());
        args.extend(["--local-path".into(), local.path().display().to_string()]);
        args.extend(["--encrypt-age-recipient".into(), other_recipient.clone()]);
        args.extend(["--verify-readback".into(), "--retain".into(), "1".into()]);
        args.extend(["--age-identity".into(), id.display().to_string()]);
        cli(&args, &[])
    };
    let out = run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(all.contains("not one of its recipients"), "{all}");
    assert!(!all.contains("was deleted"), "{all}");
    let first = backups(local.path());
    assert_eq!(first.len(), 1, "the backup is kept: {first:?}");
    // The backup counts as stored: retention runs on the next cycle.
    std::thread::sleep(Duration::from_millis(1100));
    let out = run();
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("retention kept 1, deleted 1"), "{stdout}");
    let second = backups(local.path());
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    support::record_fault_row(
        "Read-back with an --age-identity that is not a recipient (key rotation)",
        "the ciphertext digest decides; kept, counts as stored, a warning",
        "exit 0, backup kept; next cycle's retention ran",
    );
}
