//! `save` against the Consul API test server: success, every fault, retries, token secrecy,
//! TLS. Each test starts its own server on a free loopback port.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use consul_snapshot_agent::devserver::{AclTokens, DevServerConfig, Faults, TlsFiles};
use support::{describe, run_cli_env, TestConsul};

fn save(consul: &TestConsul, file: &Path, extra: &[&str]) -> std::process::Output {
    save_at(&consul.addr(), file, extra)
}

/// `save FILE` from the Consul at `addr`, without retries.
fn save_at(addr: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["save", "--http-addr", addr, "--retries", "0"];
    args.extend_from_slice(extra);
    args.push(file.to_str().expect("path"));
    run_cli_env(&args, &[])
}

fn assert_nothing_left(dir: &Path, file: &Path) {
    assert!(!file.exists(), "{} must not exist", file.display());
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn save_writes_a_verified_private_file() {
    let consul = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("backup.snap");
    let out = save(&consul, &file, &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Saved and verified snapshot to index 1000\n"
    );
    let mode = std::fs::metadata(&file)
        .expect("saved")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        only_files(dir.path()),
        vec!["backup.snap"],
        "no temporary file left"
    );
    let v = support::run_cli(&["verify", file.to_str().expect("p")]);
    assert!(v.status.success(), "{}", describe(&v));
}

#[test]
fn every_fault_leaves_nothing_and_says_why() {
    let consul = TestConsul::start(DevServerConfig::default());
    let cases: Vec<(Faults, &[&str], &str)> = vec![
        (Faults { no_leader: true, ..Faults::default() }, &[], "Unexpected response code: 500 (No cluster leader)"),
        (Faults { forbidden: true, ..Faults::default() }, &[], "Unexpected response code: 403 (Permission denied)"),
        (
            Faults { snapshot_error: Some("Raft error when taking snapshot: disk full".into()), ..Faults::default() },
            &[],
            "500 (Raft error when taking snapshot: disk full)",
        ),
        (Faults { truncate_after: Some(5000), ..Faults::default() }, &[], "Error verifying snapshot file: failed to read snapshot file: failed to read or write snapshot data: unexpected EOF"),
        (Faults { drop_after: Some(5000), ..Faults::default() }, &[], "Error saving snapshot: the snapshot transfer failed"),
        (Faults { flip_byte_at: Some(3000), ..Faults::default() }, &[], "Error verifying snapshot file:"),
        (Faults { stall_after: Some(5000), ..Faults::default() }, &["--read-timeout", "1s"], "timed out"),
    ];
    for (faults, extra, want) in cases {
        consul.faults(faults.clone());
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("backup.snap");
        let out = save(&consul, &file, extra);
        assert_eq!(out.status.code(), Some(1), "{faults:?}\n{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{faults:?}: want {want:?} in\n{err}");
        assert!(out.stdout.is_empty());
        assert_nothing_left(dir.path(), &file);
    }
}

#[test]
fn a_failed_save_keeps_the_previous_file() {
    let consul = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("backup.snap");
    std::fs::write(&file, b"previous backup").expect("write");
    consul.faults(Faults {
        truncate_after: Some(1000),
        ..Faults::default()
    });
    let out = save(&consul, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read(&file).expect("still there"),
        b"previous backup"
    );
    assert_eq!(
        only_files(dir.path()),
        vec!["backup.snap"],
        "no temporary file left"
    );
}

/// The names in `dir`, sorted.
fn only_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn two_saves_to_one_file_never_share_a_temporary_file_and_a_leftover_blocks_nothing() {
    let consul = TestConsul::start(DevServerConfig::default());
    // Slow enough that the two saves overlap.
    consul.faults(Faults {
        rate_bytes_per_sec: Some(200_000),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("backup.snap");
    // What a killed run of an older version left behind.
    std::fs::write(dir.path().join("backup.snap.unverified"), b"leftover").expect("write");
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_consul-snapshot-agent"))
            .args(["save", "--http-addr", &consul.addr(), "--retries", "0"])
            .arg(&file)
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (
            a.join().expect("join").expect("spawn"),
            b.join().expect("join").expect("spawn"),
        )
    });
    assert!(a.status.success(), "{}", describe(&a));
    assert!(b.status.success(), "{}", describe(&b));
    let v = support::run_cli(&["verify", file.to_str().expect("p")]);
    assert!(
        v.status.success(),
        "the file is one whole archive: {}",
        describe(&v)
    );
    assert_eq!(
        only_files(dir.path()),
        vec!["backup.snap", "backup.snap.unverified"],
        "each run removed its own temporary file and left the old leftover alone"
    );
    support::record_fault_row(
        "Two save runs to one FILE at once, beside a leftover FILE.unverified",
        "each has its own temporary file; FILE is one whole archive",
        "both exit 0; verify FILE passes; the leftover untouched",
    );
}

#[test]
fn stale_succeeds_without_a_leader() {
    let consul = TestConsul::start(DevServerConfig::default());
    consul.faults(Faults {
        no_leader: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("s.snap");
    let out = save(&consul, &file, &["--stale"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(file.exists());
}

#[test]
fn transient_errors_before_the_first_byte_are_retried() {
    let consul = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    consul.faults(Faults {
        snapshot_error_times: Some(2),
        ..Faults::default()
    });
    let file = dir.path().join("a.snap");
    let addr = consul.addr();
    let out = run_cli_env(
        &[
            "save",
            "--http-addr",
            &addr,
            "--retries",
            "3",
            "--retry-delay",
            "10ms",
            file.to_str().expect("p"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("retrying")
            .count(),
        2,
        "{}",
        describe(&out)
    );

    consul.faults(Faults {
        snapshot_error_times: Some(2),
        ..Faults::default()
    });
    let file = dir.path().join("b.snap");
    let out = run_cli_env(
        &[
            "save",
            "--http-addr",
            &addr,
            "--retries",
            "1",
            "--retry-delay",
            "10ms",
            file.to_str().expect("p"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!file.exists());

    // Nothing listening: a connection error, retried, then a clear message.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = run_cli_env(
        &[
            "save",
            "--http-addr",
            &format!("127.0.0.1:{port}"),
            "--retries",
            "1",
            "--retry-delay",
            "10ms",
            file.to_str().expect("p"),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "error connecting to Consul agent at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
}

const TOKEN: &str = "5ecr3t-t0ken-4a1b-9c2d";

#[test]
fn the_token_never_appears_in_output_even_at_trace_level() {
    let cfg = DevServerConfig {
        acl: Some(AclTokens {
            management: TOKEN.into(),
            read_only: None,
            read_only_accessor: String::new(),
            no_snapshot: None,
        }),
        ..DevServerConfig::default()
    };
    let consul = TestConsul::start(cfg);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("t.snap");
    let addr = consul.addr();
    let ok = run_cli_env(
        &[
            "--log-level",
            "trace",
            "save",
            "--http-addr",
            &addr,
            file.to_str().expect("p"),
        ],
        &[("CONSUL_HTTP_TOKEN", TOKEN)],
    );
    assert!(ok.status.success(), "{}", describe(&ok));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "trace logging was on: {all}"
    );
    assert!(!all.contains(TOKEN), "token leaked:\n{all}");

    // A token file, and failures: no leak either.
    let tok = dir.path().join("token");
    std::fs::write(&tok, format!("{TOKEN}x\n")).expect("write");
    let bad = run_cli_env(
        &[
            "--log-level",
            "trace",
            "save",
            "--http-addr",
            &addr,
            "--retries",
            "0",
            "--token-file",
            tok.to_str().expect("p"),
            file.to_str().expect("p"),
        ],
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(all.contains("403 (ACL not found)"), "{all}");
    assert!(!all.contains(TOKEN), "token leaked:\n{all}");

    let anon = save_at(&addr, &file, &[]);
    assert!(String::from_utf8_lossy(&anon.stderr).contains("403 (Permission denied"));
}

#[test]
fn append_filename_asks_the_agent() {
    let consul = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let out = save(
        &consul,
        &dir.path().join("backup.snap"),
        &["--append-filename", "version,dc"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(dir.path().join("backup-1.21.0-dc1.snap").exists());
}

/// A CA and a server certificate for 127.0.0.1, written as PEM files.
fn make_ca(dir: &Path, name: &str) -> (std::path::PathBuf, TlsFiles) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "server.dc1.consul".to_string(),
    ])
    .expect("params");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    let ca_path = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca_path, ca.pem()).expect("write");
    let files = TlsFiles {
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&files.cert, cert.pem()).expect("write");
    std::fs::write(&files.key, key.serialize_pem()).expect("write");
    (ca_path, files)
}

#[test]
fn tls_with_the_right_ca_works_and_a_wrong_ca_fails_clearly() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, files) = make_ca(dir.path(), "good");
    let (other_ca, _) = make_ca(dir.path(), "other");
    let consul = TestConsul::start(DevServerConfig {
        tls: Some(files),
        ..DevServerConfig::default()
    });
    let url = consul.url();
    assert!(url.starts_with("https://"));
    let file = dir.path().join("tls.snap");
    let ok = run_cli_env(
        &["save", "--retries", "0", file.to_str().expect("p")],
        &[
            ("CONSUL_HTTP_ADDR", &url),
            ("CONSUL_CACERT", ca.to_str().expect("p")),
        ],
    );
    assert!(ok.status.success(), "{}", describe(&ok));

    // `save --http-addr URL --ca-file CA [--tls-server-name NAME] FILE`.
    let save = |ca: &Path, name: Option<&str>, file: &Path| {
        let mut args = vec!["save", "--retries", "0", "--http-addr", &url];
        args.extend(["--ca-file", ca.to_str().expect("p")]);
        if let Some(n) = name {
            args.extend(["--tls-server-name", n]);
        }
        args.push(file.to_str().expect("p"));
        run_cli_env(&args, &[])
    };

    // The certificate is also valid for a DNS name, checked with --tls-server-name.
    let named = save(
        &ca,
        Some("server.dc1.consul"),
        &dir.path().join("tls2.snap"),
    );
    assert!(named.status.success(), "{}", describe(&named));

    let bad_file = dir.path().join("bad.snap");
    let bad = save(&other_ca, None, &bad_file);
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("error connecting to Consul agent")
            && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    // It says what to give.
    assert!(err.contains("--ca-file"), "{err}");
    assert!(!bad_file.exists());

    // A name the certificate does not carry: the hint is --tls-server-name (from the TLS
    // library's typed reason, not its text).
    let wrong = save(&ca, Some("other.dc1.consul"), &bad_file);
    assert_eq!(wrong.status.code(), Some(1));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("--tls-server-name") && !err.contains("--ca-file"),
        "{err}"
    );
    assert!(!bad_file.exists());
}

#[test]
fn a_unix_socket_address_works() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("consul.sock");
    let consul = TestConsul::start(DevServerConfig {
        unix_socket: Some(sock.clone()),
        ..DevServerConfig::default()
    });
    let file = dir.path().join("unix.snap");
    let addr = format!("unix://{}", sock.display());
    let out = run_cli_env(
        &["save", "--retries", "0", file.to_str().expect("p")],
        &[("CONSUL_HTTP_ADDR", &addr)],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(file.exists());
    drop(consul);
}

#[test]
fn a_connection_closed_before_the_answer_is_not_called_a_connect_failure() {
    use std::io::Read;
    // A server that accepts, reads the request, and closes without answering.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = std::thread::spawn(move || {
        if let Ok((mut c, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
        }
    });
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("s.snap");
    let out = save_at(&addr, &file, &[]);
    let _ = server.join();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(err.contains("closed before its answer arrived"), "{err}");
    assert!(!err.contains("error connecting"), "{err}");
    assert_nothing_left(dir.path(), &file);
}

#[test]
fn a_password_in_the_consul_address_is_never_printed() {
    const PW: &str = "Zq8pass-word";
    let consul = TestConsul::start(DevServerConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("p.snap");
    // The credentials travel as basic auth; the save works and prints no password.
    let addr = format!("http://ops:{PW}@{}", consul.addr());
    let env = [("CONSUL_HTTP_ADDR", addr.as_str())];
    let path = file.to_str().expect("p");
    let ok = run_cli_env(&["--log-level", "trace", "save", path], &env);
    assert!(ok.status.success(), "{}", describe(&ok));
    let printed = run_cli_env(&["agent", "--local-path", path, "--print-config"], &env);
    assert!(printed.status.success(), "{}", describe(&printed));
    // A connection error names the address, without its userinfo.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dead = format!("http://ops:{PW}@{closed}");
    let failed = run_cli_env(
        &["save", "--retries", "0", path],
        &[("CONSUL_HTTP_ADDR", dead.as_str())],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", describe(&failed));
    let bad = run_cli_env(
        &[
            "save",
            "--http-addr",
            &format!("http://ops:{PW}@[::1"),
            path,
        ],
        &[],
    );
    assert!(!bad.status.success(), "{}", describe(&bad));
    for out in [&ok, &printed, &failed, &bad] {
        let all = describe(out);
        assert!(!all.contains(PW), "password printed:\n{all}");
    }
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains(&closed.to_string()),
        "{}",
        describe(&failed)
    );
}
