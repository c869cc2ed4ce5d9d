//! Enterprise's AWS role settings (`role_arn`, `role_session_name`, `web_identity_token_file`,
//! `sts_endpoint`, `iam_endpoint`) against the real Garage, with a loopback STS stand-in
//! (tests/support/sts.rs) that hands out Garage's key as temporary credentials: the upload
//! succeeds only with the assumed credentials (the base keys are not Garage's), and a web
//! identity token file is read again when the credentials expire.

mod support;

use std::time::Duration;

use support::agent::{wait_until, AgentProcess};
use support::consul_real::RealConsul;
use support::garage::s3_target;
use support::sts::StsStandIn;
use support::{describe, run_cli_env};

const ROLE: &str = "arn:aws:iam::123456789012:role/consul-backup";

/// The objects under `prefix` at Garage, listed with Garage's own key.
fn stored(s3: &support::garage::S3Target, prefix: &str) -> Vec<String> {
    let mut args: Vec<String> = vec!["list".into(), "--output".into(), "json".into()];
    args.extend(s3.cli_args(prefix));
    let env = s3.cli_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_cli_env(&a, &env);
    assert!(out.status.success(), "{}", describe(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    rows.iter()
        .map(|r| r["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_enterprise_file_with_role_arn_assumes_the_role_through_sts_endpoint() {
    let c = RealConsul::start();
    let s3 = s3_target();
    let sts = StsStandIn::start(&s3.key_id, &s3.secret, Duration::from_secs(3600));
    let prefix = format!("role-{}/", support::net::random());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("agent.json");
    std::fs::write(
        &file,
        serde_json::json!({"snapshot_agent": {"aws_storage": {
            "s3_bucket": s3.bucket, "s3_key_prefix": prefix, "s3_region": s3.region,
            "s3_endpoint": s3.endpoint, "s3_force_path_style": true,
            "role_arn": ROLE, "role_session_name": "snapshots", "sts_endpoint": sts.url,
            "iam_endpoint": "https://iam.example.invalid", "web_identity_token_file": "",
            "access_key_id": "", "secret_access_key": ""
        }}})
        .to_string(),
    )
    .expect("write");
    // Base credentials that Garage does not know: only the assumed ones can upload.
    let out = run_cli_env(
        &[
            "agent",
            "--once",
            "--config-file",
            &file.display().to_string(),
            "--http-addr",
            &c.addr,
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDBASENOTGARAGE"),
            ("AWS_SECRET_ACCESS_KEY", "base-secret-not-garage"),
        ],
    );
    let text = format!("{}{}", describe(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("iam_endpoint") && text.contains("unused"),
        "{text}"
    );
    assert_eq!(stored(&s3, &prefix).len(), 1);
    let calls = sts.calls();
    assert!(!calls.is_empty(), "STS was asked");
    assert!(
        calls.iter().all(|c| c.action == "AssumeRole"
            && c.role_arn == ROLE
            && c.session_name == "snapshots"
            && c.signed),
        "{calls:?}"
    );

    // Without the stand-in's answer nothing is stored: the role is really used.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&file)
            .expect("read")
            .replace(&sts.url, "http://127.0.0.1:9"),
    )
    .expect("write");
    let out = run_cli_env(
        &[
            "agent",
            "--once",
            "--config-file",
            &bad.display().to_string(),
            "--http-addr",
            &c.addr,
            "--aws-s3-request-timeout",
            "5s",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDBASENOTGARAGE"),
            ("AWS_SECRET_ACCESS_KEY", "base-secret-not-garage"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stored(&s3, &prefix).len(), 1);
}

#[test]
fn a_web_identity_token_file_is_read_again_when_the_credentials_expire() {
    let c = RealConsul::start();
    let s3 = s3_target();
    // Credentials that expire within the SDK's refresh buffer: every use renews them.
    let sts = StsStandIn::start(&s3.key_id, &s3.secret, Duration::from_secs(12));
    let prefix = format!("wid-{}/", support::net::random());
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("token");
    std::fs::write(&token, "jwt-one\n").expect("token");
    let mut args: Vec<String> = vec![
        "--http-addr".into(),
        c.addr.clone(),
        "--interval".into(),
        "2s".into(),
        "--metrics-addr".into(),
        "off".into(),
        "--aws-role-arn".into(),
        ROLE.into(),
        "--aws-web-identity-token-file".into(),
        token.display().to_string(),
        "--aws-sts-endpoint".into(),
        sts.url.clone(),
    ];
    args.extend(s3.cli_args(&prefix));
    // No keys at all in the environment: the token is the only credential.
    let mut agent = AgentProcess::start(
        &args,
        &[
            ("AWS_ACCESS_KEY_ID".into(), String::new()),
            ("AWS_SECRET_ACCESS_KEY".into(), String::new()),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || !stored(&s3, &prefix).is_empty()),
        "a backup with the first token: {}",
        agent.log()
    );
    std::fs::write(&token, "jwt-two\n").expect("rotate");
    assert!(
        wait_until(Duration::from_secs(30), || sts
            .calls()
            .iter()
            .any(|c| c.token.as_deref() == Some("jwt-two"))),
        "the rotated token was read: {:?}\n{}",
        sts.calls(),
        agent.log()
    );
    let before = stored(&s3, &prefix).len();
    assert!(
        wait_until(Duration::from_secs(30), || stored(&s3, &prefix).len()
            > before),
        "backups go on with the new token: {}",
        agent.log()
    );
    agent.terminate(Duration::from_secs(20));
    // The token is a credential: not in the agent's log, even at debug level.
    let log = agent.log();
    assert!(
        !log.contains("jwt-one") && !log.contains("jwt-two"),
        "a web identity token in the log"
    );
    let calls = sts.calls();
    assert_eq!(calls[0].token.as_deref(), Some("jwt-one"), "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c.action == "AssumeRoleWithWebIdentity" && c.role_arn == ROLE));
    assert!(
        calls
            .iter()
            .all(|c| c.session_name == "consul-snapshot-agent"),
        "{calls:?}"
    );
}
