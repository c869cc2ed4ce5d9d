//! The agent against a real Consul server (Debian 11's Consul 1.8.7, started per test by
//! tests/support/consul_real.rs): save and inspect agree with the real `consul snapshot`,
//! `agent --once` to local storage and to Garage, `restore --latest` brings deleted keys back,
//! two daemons elect one leader through the real lock, the least-privilege policy of
//! `deploy/acl` is enough, wrong and missing tokens say which, a drill into a second real
//! server, and `peers-json --from-consul`. Faults are tested against the project's Consul API
//! test server (the other suites); this file is what a real Consul does.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::agent::{wait_until, AgentProcess};
use support::consul_real::RealConsul;
use support::garage::s3_target;
use support::{describe, run_cli_env};

fn consul_bin() -> std::path::PathBuf {
    std::env::var_os("CONSUL_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/consul-snapshot-agent/consul/bin/consul")
        })
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_cli_env(args, env)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", describe(&out));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Some KV entries under `app/` and `config/`.
fn fill(c: &RealConsul) {
    for i in 0..20 {
        c.kv_put(
            &format!("app/svc{i}/port"),
            format!("{}", 8000 + i).as_bytes(),
        );
    }
    c.kv_put("config/global", b"{\"debug\":false}");
}

/// The header fields of the real `consul snapshot inspect FILE` (1.8.7: a table of
/// `Name Value` lines).
fn consul_inspect(file: &Path) -> std::collections::HashMap<String, String> {
    let out = Command::new(consul_bin())
        .args(["snapshot", "inspect"])
        .arg(file)
        .output()
        .expect("consul snapshot inspect");
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[test]
fn save_agrees_with_the_real_consul_snapshot_inspect_and_verify_accepts_consuls_save() {
    let c = RealConsul::start();
    fill(&c);
    let dir = tempfile::tempdir().expect("tmp");
    let ours = dir.path().join("ours.snap");
    let text = ok(run(
        &["save", "--http-addr", &c.addr, ours.to_str().expect("p")],
        &[],
    ));
    assert!(
        text.contains("Saved and verified snapshot to index"),
        "{text}"
    );
    let theirs = consul_inspect(&ours);
    let out = run(
        &["inspect", "--format", "json", ours.to_str().expect("p")],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for (field, key) in [
        ("ID", "ID"),
        ("Index", "Index"),
        ("Term", "Term"),
        ("Version", "Version"),
    ] {
        assert_eq!(
            theirs.get(field).map(String::as_str),
            Some(v["Meta"][key].to_string().trim_matches('"')),
            "{field}: consul says {theirs:?}, we say {}",
            v["Meta"]
        );
    }
    // A file the real `consul snapshot save` wrote verifies with ours.
    let consuls = dir.path().join("consul.snap");
    let out = Command::new(consul_bin())
        .args(["snapshot", "save", &format!("-http-addr={}", c.addr)])
        .arg(&consuls)
        .output()
        .expect("consul snapshot save");
    assert!(out.status.success(), "{}", describe(&out));
    let text = ok(run(&["verify", consuls.to_str().expect("p")], &[]));
    // The same ID and index as the real inspect of that file.
    let consuls_meta = consul_inspect(&consuls);
    assert!(
        text.contains(&format!("Verified snapshot {}", consuls_meta["ID"]))
            && text.contains(&format!("index {},", consuls_meta["Index"])),
        "{text}\n{consuls_meta:?}"
    );
}

#[test]
fn agent_once_stores_locally_and_on_garage_and_restore_latest_brings_deleted_keys_back() {
    let c = RealConsul::start();
    fill(&c);
    let s3 = s3_target();
    let prefix = format!("real-{}/", support::net::random());
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().display().to_string();
    let mut args: Vec<String> = [
        "agent",
        "--once",
        "--http-addr",
        &c.addr,
        "--local-path",
        &local,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(s3.cli_args(&prefix));
    let env = s3.cli_env();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = ok(run(&a, &env_ref));
    assert!(text.contains("Saved and verified snapshot"), "{text}");
    assert_eq!(support::backup_names(dir.path()).len(), 1, "{text}");
    assert!(
        text.contains(&format!("s3://{}/{prefix}", s3.bucket)),
        "{text}"
    );

    // Someone deletes a tree, and writes a key the backup does not have.
    let (code, body) = c.call("DELETE", "/v1/kv/app/?recurse", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(c.kv_keys("app/").is_empty());
    let text = ok(run(
        &[
            "restore",
            "--latest",
            "--yes",
            "--safety-snapshot=false",
            "--http-addr",
            &c.addr,
            "--local-path",
            &local,
        ],
        &[],
    ));
    assert!(text.contains("Restored snapshot"), "{text}");
    assert_eq!(c.kv_keys("app/").len(), 20, "the deleted tree is back");
    assert_eq!(c.kv_get("app/svc3/port").as_deref(), Some(&b"8003"[..]));
}

#[test]
fn two_daemons_elect_one_leader_hand_over_on_sigkill_and_clean_up_on_sigterm() {
    let c = RealConsul::start();
    fill(&c);
    let dirs = tempfile::tempdir().expect("tmp");
    let agent = |name: &str| {
        let args: Vec<String> = [
            "--http-addr",
            &c.addr,
            "--local-path",
            &dirs.path().join(name).display().to_string(),
            "--interval",
            "1h",
            "--session-ttl",
            "2s",
            "--session-ttl-min",
            "1s",
            "--metrics-addr",
            "off",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        AgentProcess::start(&args, &[])
    };
    let mut a = agent("a");
    let mut b = agent("b");
    let leader_of = |a: &AgentProcess, b: &AgentProcess| {
        (
            a.log().contains("Obtained leadership"),
            b.log().contains("Obtained leadership"),
        )
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            let (x, y) = leader_of(&a, &b);
            x || y
        }),
        "a leader: {}\n{}",
        a.log(),
        b.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    let (x, y) = leader_of(&a, &b);
    assert!(x != y, "exactly one leader: a {x}, b {y}");
    let (leader, standby) = if x {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        wait_until(Duration::from_secs(20), || leader
            .log()
            .contains("Saved snapshot")),
        "{}",
        leader.log()
    );
    // Both registered, their checks passing (the leader's "Saving Snapshots" too).
    let ids = [
        leader.service_id().expect("leader id"),
        standby.service_id().expect("standby id"),
    ];
    let passing = wait_until(Duration::from_secs(20), || {
        let (_, checks) = c.get("/v1/agent/checks");
        let v: serde_json::Value = serde_json::from_str(&checks).unwrap_or_default();
        let Some(m) = v.as_object() else { return false };
        let ours: Vec<&serde_json::Value> = m
            .values()
            .filter(|ch| ids.iter().any(|id| ch["ServiceID"] == id.as_str()))
            .collect();
        ours.len() == 3 && ours.iter().all(|ch| ch["Status"] == "passing")
    });
    assert!(passing, "{}", c.get("/v1/agent/checks").1);
    // SIGKILL the leader: the standby takes over once the session expires.
    leader.kill();
    assert!(
        wait_until(Duration::from_secs(30), || standby
            .log()
            .contains("Obtained leadership")),
        "hand-over: {}",
        standby.log()
    );
    // SIGTERM: clean exit, deregistered, lock released.
    let status = standby.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let (_, services) = c.get("/v1/agent/services");
    assert!(!services.contains(&ids[1]), "deregistered: {services}");
    let (code, lock) = c.get("/v1/kv/consul-snapshot/lock");
    assert!(
        code == 404 || !lock.contains("\"Session\""),
        "lock released: {lock}"
    );
}

#[test]
fn the_least_privilege_policy_is_enough_and_bad_tokens_say_which() {
    let c = RealConsul::with_acl();
    fill(&c);
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/acl/consul-snapshot-agent.policy.hcl"),
    )
    .expect("policy");
    let token = c.token_with_policy("consul-snapshot-agent", &rules);
    let dir = tempfile::tempdir().expect("tmp");
    let local = dir.path().display().to_string();
    let env = [("CONSUL_HTTP_TOKEN", token.as_str())];
    // agent --once (snapshot: acl = "write"; agent/self: agent read).
    ok(run(
        &[
            "agent",
            "--once",
            "--http-addr",
            &c.addr,
            "--local-path",
            &local,
        ],
        &env,
    ));
    // The daemon: session, lock, registration and checks.
    let args: Vec<String> = [
        "--http-addr",
        &c.addr,
        "--local-path",
        &local,
        "--interval",
        "1h",
        "--session-ttl",
        "10s",
        "--metrics-addr",
        "off",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut d = AgentProcess::start(&args, &[("CONSUL_HTTP_TOKEN".into(), token.clone())]);
    assert!(
        wait_until(Duration::from_secs(30), || d
            .log()
            .contains("Saved snapshot")),
        "{}",
        d.log()
    );
    let log = d.log();
    assert!(!log.contains("Permission denied"), "{log}");
    assert!(d
        .terminate(Duration::from_secs(20))
        .is_some_and(|s| s.success()));
    // restore --latest with the same token.
    ok(run(
        &[
            "restore",
            "--latest",
            "--yes",
            "--safety-snapshot=false",
            "--http-addr",
            &c.addr,
            "--local-path",
            &local,
        ],
        &env,
    ));
    // A drill into a second ACL server, with that server's own least-privilege token.
    let scratch = RealConsul::with_acl();
    let scratch_token = scratch.token_with_policy("consul-snapshot-agent", &rules);
    let text = ok(run(
        &[
            "drill",
            "--latest",
            "--http-addr",
            &c.addr,
            "--local-path",
            &local,
            "--target-http-addr",
            &scratch.addr,
            "--target-token",
            &scratch_token,
        ],
        &env,
    ));
    assert!(text.contains("PASSED"), "{text}");
    // operator = "read" lets the drill check that its target is another cluster.
    assert!(
        !text.contains("could not read the configured Consul"),
        "{text}"
    );

    // A token that does not exist, and no token at all: each says which.
    let file = dir.path().join("x.snap");
    let path = file.to_str().expect("p");
    let wrong = run(
        &["save", "--http-addr", &c.addr, "--retries", "0", path],
        &[("CONSUL_HTTP_TOKEN", "00000000-1111-2222-3333-444444444444")],
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    assert!(
        err.contains("ACL not found") && err.contains("does not exist"),
        "{err}"
    );
    let missing = run(
        &["save", "--http-addr", &c.addr, "--retries", "0", path],
        &[],
    );
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    assert!(
        err.contains("Permission denied") && err.contains("acl = \"write\""),
        "{err}"
    );
    assert!(!file.exists());
}

#[test]
fn peers_json_from_a_live_real_server() {
    let c = RealConsul::start();
    let text = ok(run(&["peers-json", "--from-consul", &c.addr], &[]));
    let (_, config) = c.get("/v1/operator/raft/configuration");
    let v: serde_json::Value = serde_json::from_str(&config).expect("json");
    let server = &v["Servers"][0];
    let address = server["Address"].as_str().expect("address");
    let id = server["ID"].as_str().expect("id");
    assert!(
        text.contains(address) && text.contains(id),
        "{text}\n{config}"
    );
}

/// The JSON kind of a value, for messages.
fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Every field the test server sends exists in Consul's answer with the same JSON kind
/// (recursively; arrays by their first element): so an `omitempty` field Consul leaves out is
/// left out by the test server too.
fn same_shape(
    test: &serde_json::Value,
    real: &serde_json::Value,
    path: &str,
    diffs: &mut Vec<String>,
) {
    use serde_json::Value;
    match (test, real) {
        (Value::Object(t), Value::Object(r)) => {
            for (k, tv) in t {
                match r.get(k) {
                    None => diffs.push(format!(
                        "{path}.{k}: sent by the test server ({tv}), absent from Consul's answer"
                    )),
                    Some(rv) => same_shape(tv, rv, &format!("{path}.{k}"), diffs),
                }
            }
        }
        (Value::Array(t), Value::Array(r)) => {
            if let (Some(tv), Some(rv)) = (t.first(), r.first()) {
                same_shape(tv, rv, &format!("{path}[0]"), diffs);
            }
        }
        (t, r) if kind(t) != kind(r) => diffs.push(format!(
            "{path}: {} from the test server ({t}), {} from Consul ({r})",
            kind(t),
            kind(r)
        )),
        _ => {}
    }
}

/// At most 200 characters of an answer, for messages (a snapshot is binary).
fn short(s: &str) -> String {
    let s: String = s.chars().take(200).collect();
    s.escape_debug().to_string()
}

/// What one request got from each server.
struct Pair {
    what: String,
    real: (u16, String),
    test: (u16, String),
    real_headers: reqwest::header::HeaderMap,
    test_headers: reqwest::header::HeaderMap,
}

impl Pair {
    fn json(&self) -> (serde_json::Value, serde_json::Value) {
        (
            serde_json::from_str(&self.real.1).unwrap_or_default(),
            serde_json::from_str(&self.test.1).unwrap_or_default(),
        )
    }
}

/// Sends the same request to Consul (`real`) and to the test server (`test`).
fn both(
    rt: &tokio::runtime::Runtime,
    bases: (&str, &str),
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Pair {
    let one = |base: &str| {
        let body = body.clone();
        rt.block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .no_proxy()
                .build()
                .expect("client");
            let mut req = client.request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{base}{path}"),
            );
            if let Some(t) = token {
                req = req.header("X-Consul-Token", t);
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            let r = req.send().await.expect("answer");
            let headers = r.headers().clone();
            let code = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            (code, String::from_utf8_lossy(&bytes).to_string(), headers)
        })
    };
    let (rc, rb, rh) = one(bases.0);
    let (tc, tb, th) = one(bases.1);
    Pair {
        what: format!("{method} {path}"),
        real: (rc, rb),
        test: (tc, tb),
        real_headers: rh,
        test_headers: th,
    }
}

/// The Consul API test server, checked against the real Consul 1.8.7: the same requests to
/// both, the same status codes, the headers the agent reads, every field the test server sends
/// present in Consul's answer with the same JSON kind, the fields the agent reads present in
/// both, Consul's error texts where the agent parses them, and the index behaviour of blocking
/// queries. Where they differ, the test server is what changes.
#[test]
fn the_test_server_answers_as_the_real_consul_does() {
    use consul_snapshot_agent::devserver::{AclTokens, DevServerConfig};
    use support::consul_real::{acl_hcl, MASTER};
    let real = RealConsul::start_exact("dc1", &[acl_hcl().as_str()]);
    let test = support::TestConsul::start(DevServerConfig {
        acl: Some(AclTokens {
            management: MASTER.into(),
            read_only: None,
            read_only_accessor: String::new(),
            no_snapshot: None,
        }),
        ..DevServerConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (real_url, test_url) = (real.url(), test.url());
    let bases = (real_url.as_str(), test_url.trim_end_matches('/'));
    let m = Some(MASTER);
    let mut diffs: Vec<String> = Vec::new();
    let status = |p: &Pair, diffs: &mut Vec<String>| {
        if p.real.0 != p.test.0 {
            diffs.push(format!(
                "{}: status {} from Consul ({}), {} from the test server ({})",
                p.what,
                p.real.0,
                short(&p.real.1),
                p.test.0,
                short(&p.test.1)
            ));
        }
    };
    let body_prefix = |p: &Pair, prefix: &str, diffs: &mut Vec<String>| {
        for (who, b) in [("Consul", &p.real.1), ("the test server", &p.test.1)] {
            if !b.starts_with(prefix) {
                diffs.push(format!(
                    "{}: {who} answered {}, not {prefix:?}…",
                    p.what,
                    short(b)
                ));
            }
        }
    };
    let fields = |p: &Pair, pointers: &[&str], diffs: &mut Vec<String>| {
        let (r, t) = p.json();
        same_shape(&t, &r, &p.what, diffs);
        for ptr in pointers {
            for (who, v) in [("Consul", &r), ("the test server", &t)] {
                if v.pointer(ptr).is_none() {
                    diffs.push(format!(
                        "{}: {who} lacks {ptr}, which the agent reads",
                        p.what
                    ));
                }
            }
        }
    };
    let headers = |p: &Pair, names: &[&str], diffs: &mut Vec<String>| {
        for n in names {
            for (who, h) in [
                ("Consul", &p.real_headers),
                ("the test server", &p.test_headers),
            ] {
                if !h.contains_key(*n) {
                    diffs.push(format!("{}: {who} sent no {n} header", p.what));
                }
            }
        }
    };

    // Snapshots: tokens good, unknown and none; ?stale; an unknown datacenter.
    let snap = both(&rt, bases, "GET", "/v1/snapshot", m, None);
    status(&snap, &mut diffs);
    headers(
        &snap,
        &[
            "content-type",
            "x-consul-index",
            "x-consul-knownleader",
            "date",
        ],
        &mut diffs,
    );
    for (who, h) in [
        ("Consul", &snap.real_headers),
        ("the test server", &snap.test_headers),
    ] {
        if h.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-gzip") {
            diffs.push(format!(
                "GET /v1/snapshot: {who} sent Content-Type {:?}",
                h.get("content-type")
            ));
        }
    }
    let p = both(
        &rt,
        bases,
        "GET",
        "/v1/snapshot",
        Some("00000000-0000-4000-8000-000000000000"),
        None,
    );
    status(&p, &mut diffs);
    body_prefix(&p, "ACL not found", &mut diffs);
    let p = both(&rt, bases, "GET", "/v1/snapshot", None, None);
    status(&p, &mut diffs);
    body_prefix(&p, "Permission denied", &mut diffs);
    let p = both(&rt, bases, "GET", "/v1/snapshot?stale", m, None);
    status(&p, &mut diffs);
    let p = both(&rt, bases, "GET", "/v1/snapshot?dc=unknown", m, None);
    status(&p, &mut diffs);
    body_prefix(&p, "No path to datacenter", &mut diffs);
    // Restores: each server's own archive back; random bytes; no token.
    for (base, archive, who) in [
        (
            bases.0,
            rt.block_on(async {
                reqwest::get(format!("{}/v1/snapshot?token={MASTER}", bases.0))
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes")
            }),
            "Consul",
        ),
        (
            bases.1,
            rt.block_on(async {
                reqwest::get(format!("{}/v1/snapshot?token={MASTER}", bases.1))
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes")
            }),
            "the test server",
        ),
    ] {
        let (code, body) =
            support::consul_real::call(base, "PUT", "/v1/snapshot", m, Some(&archive));
        if code != 200 {
            diffs.push(format!(
                "PUT /v1/snapshot of its own archive: {who} answered {code} {body}"
            ));
        }
    }
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let p = both(&rt, bases, "PUT", "/v1/snapshot", m, Some(junk.clone()));
    status(&p, &mut diffs);
    body_prefix(&p, "failed to decompress snapshot", &mut diffs);
    let p = both(&rt, bases, "PUT", "/v1/snapshot", None, Some(junk));
    status(&p, &mut diffs);
    body_prefix(&p, "Permission denied", &mut diffs);

    // The agent's own answers.
    let p = both(&rt, bases, "GET", "/v1/agent/self", m, None);
    status(&p, &mut diffs);
    fields(
        &p,
        &["/Config/Datacenter", "/Config/NodeName", "/Config/Version"],
        &mut diffs,
    );
    let p = both(
        &rt,
        bases,
        "GET",
        "/v1/operator/raft/configuration?stale",
        m,
        None,
    );
    status(&p, &mut diffs);
    fields(
        &p,
        &[
            "/Servers/0/ID",
            "/Servers/0/Node",
            "/Servers/0/Address",
            "/Servers/0/Leader",
            "/Servers/0/Voter",
        ],
        &mut diffs,
    );

    // Sessions: TTLs out of range, then one in range.
    for ttl in ["5s", "48h"] {
        let body = serde_json::json!({"Name": "contract", "TTL": ttl, "Behavior": "release", "LockDelay": "0s"});
        let p = both(
            &rt,
            bases,
            "PUT",
            "/v1/session/create",
            m,
            Some(body.to_string().into_bytes()),
        );
        status(&p, &mut diffs);
        body_prefix(&p, "Invalid Session TTL", &mut diffs);
    }
    let body = serde_json::json!({"Name": "contract", "TTL": "15s", "Behavior": "release", "LockDelay": "0s"});
    let p = both(
        &rt,
        bases,
        "PUT",
        "/v1/session/create",
        m,
        Some(body.to_string().into_bytes()),
    );
    status(&p, &mut diffs);
    fields(&p, &["/ID"], &mut diffs);
    let (r, t) = p.json();
    let ids = (
        r["ID"].as_str().unwrap_or_default().to_string(),
        t["ID"].as_str().unwrap_or_default().to_string(),
    );
    let p = both(
        &rt,
        bases,
        "PUT",
        "/v1/session/renew/00000000-0000-4000-8000-000000000000",
        m,
        None,
    );
    status(&p, &mut diffs);

    // A lock: acquire and the entry, then blocking queries, then release.
    let lock = |path: &str, which: (&str, &str)| {
        let one = |base: &str, id: &str| {
            support::consul_real::call(base, "PUT", &format!("{path}{id}"), m, Some(b"holder"))
        };
        (one(bases.0, which.0), one(bases.1, which.1))
    };
    // A dev-mode Consul pretty-prints its JSON with a newline: compare trimmed.
    let trimmed = |(c, b): (u16, String)| (c, b.trim().to_string());
    let (r, t) = lock(
        "/v1/kv/contract/lock?flags=3304740253564472344&acquire=",
        (&ids.0, &ids.1),
    );
    let (r, t) = (trimmed(r), trimmed(t));
    if r != t || r.1 != "true" {
        diffs.push(format!("acquire: Consul {r:?}, the test server {t:?}"));
    }
    let p = both(&rt, bases, "GET", "/v1/kv/contract/lock", m, None);
    status(&p, &mut diffs);
    headers(&p, &["x-consul-index"], &mut diffs);
    fields(
        &p,
        &[
            "/0/Key",
            "/0/Flags",
            "/0/Value",
            "/0/Session",
            "/0/LockIndex",
            "/0/ModifyIndex",
        ],
        &mut diffs,
    );
    let p = both(&rt, bases, "GET", "/v1/kv/contract/missing", m, None);
    status(&p, &mut diffs);
    headers(&p, &["x-consul-index"], &mut diffs);
    // Blocking: no change within the wait keeps the index; a change moves it past.
    let index = |h: &reqwest::header::HeaderMap| -> u64 {
        h.get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let first = both(&rt, bases, "GET", "/v1/kv/contract/lock", m, None);
    let (ri, ti) = (index(&first.real_headers), index(&first.test_headers));
    let block = |i: (u64, u64)| {
        let r = support::consul_real::call(
            bases.0,
            "GET",
            &format!("/v1/kv/contract/lock?index={}&wait=1s", i.0),
            m,
            None,
        );
        let t = support::consul_real::call(
            bases.1,
            "GET",
            &format!("/v1/kv/contract/lock?index={}&wait=1s", i.1),
            m,
            None,
        );
        (r, t)
    };
    let _ = block((ri, ti));
    let still = both(
        &rt,
        bases,
        "GET",
        &format!("/v1/kv/contract/lock?index={ri}&wait=1s"),
        m,
        None,
    );
    let same = (
        index(&still.real_headers) == ri,
        index(&still.test_headers) >= ti,
    );
    if !same.0 || !same.1 {
        diffs.push(format!(
            "blocking query without a change: Consul kept the index {}, the test server {}",
            same.0, same.1
        ));
    }
    let _ = both(
        &rt,
        bases,
        "PUT",
        "/v1/kv/contract/lock?flags=3304740253564472344",
        m,
        Some(b"changed".to_vec()),
    );
    let moved = block((ri, ti));
    let (rv, tv) = (
        serde_json::from_str::<serde_json::Value>(&moved.0 .1).unwrap_or_default(),
        serde_json::from_str::<serde_json::Value>(&moved.1 .1).unwrap_or_default(),
    );
    if rv[0]["ModifyIndex"].as_u64() <= Some(ri) || tv[0]["ModifyIndex"].as_u64() <= Some(ti) {
        diffs.push(format!(
            "blocking query after a change: Consul {rv}, the test server {tv}"
        ));
    }
    let (r, t) = lock("/v1/kv/contract/lock?release=", (&ids.0, &ids.1));
    if trimmed(r.clone()) != trimmed(t.clone()) {
        diffs.push(format!("release: Consul {r:?}, the test server {t:?}"));
    }

    // A service with a TTL check, as the agent registers it; an update; the listings.
    let reg = serde_json::json!({
        "ID": "contract-1",
        "Name": "contract",
        "Tags": [],
        "Meta": {"version": "1"},
        "Check": {
            "CheckID": "contract-1:alive",
            "Name": "Alive",
            "TTL": "30s",
            "Status": "passing",
            "DeregisterCriticalServiceAfter": "72h0m0s",
        }
    });
    let p = both(
        &rt,
        bases,
        "PUT",
        "/v1/agent/service/register",
        m,
        Some(reg.to_string().into_bytes()),
    );
    status(&p, &mut diffs);
    let up = serde_json::json!({"Status": "warning", "Output": "contract"});
    let p = both(
        &rt,
        bases,
        "PUT",
        "/v1/agent/check/update/contract-1:alive",
        m,
        Some(up.to_string().into_bytes()),
    );
    status(&p, &mut diffs);
    let p = both(&rt, bases, "GET", "/v1/agent/services", m, None);
    status(&p, &mut diffs);
    let (r, t) = p.json();
    same_shape(
        &t["contract-1"],
        &r["contract-1"],
        "GET /v1/agent/services contract-1",
        &mut diffs,
    );
    let p = both(&rt, bases, "GET", "/v1/agent/checks", m, None);
    status(&p, &mut diffs);
    let (r, t) = p.json();
    same_shape(
        &t["contract-1:alive"],
        &r["contract-1:alive"],
        "GET /v1/agent/checks contract-1:alive",
        &mut diffs,
    );
    for f in ["Status", "Output", "ServiceID", "Name"] {
        if r["contract-1:alive"][f] != t["contract-1:alive"][f] {
            diffs.push(format!(
                "check {f}: Consul {}, the test server {}",
                r["contract-1:alive"][f], t["contract-1:alive"][f]
            ));
        }
    }
    let p = both(
        &rt,
        bases,
        "PUT",
        "/v1/agent/service/deregister/contract-1",
        m,
        None,
    );
    status(&p, &mut diffs);

    assert!(
        diffs.is_empty(),
        "the test server differs from Consul {}:\n- {}",
        real.get("/v1/agent/self")
            .1
            .split("\"Version\":")
            .nth(1)
            .unwrap_or("?")
            .split(',')
            .next()
            .unwrap_or("?"),
        diffs.join("\n- ")
    );
}

/// base64url without padding (JWT's encoding).
fn b64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// An ES256 JWT over `claims`, signed by `key`. ring signs ECDSA in ASN.1 DER; JWS wants the
/// two 32-byte integers r and s side by side (RFC 7518 §3.4).
fn es256_jwt(key: &rcgen::KeyPair, claims: &serde_json::Value) -> String {
    use rcgen::SigningKey;
    let head = b64url(br#"{"alg":"ES256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let signed = format!("{head}.{body}");
    let der = key.sign(signed.as_bytes()).expect("sign");
    // SEQUENCE { INTEGER r, INTEGER s }
    let mut raw = Vec::with_capacity(64);
    let mut at = 2 + usize::from(der[1] & 0x80 != 0);
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "an INTEGER");
        let len = usize::from(der[at + 1]);
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        raw.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        raw.extend_from_slice(int);
        at += 2 + len;
    }
    format!("{signed}.{}", b64url(&raw))
}

/// Login tokens (made by the `jwt` auth method) that exist on `c`.
fn login_tokens(c: &RealConsul) -> Vec<String> {
    let (code, body) = c.get("/v1/acl/tokens?authmethod=jwt");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["AccessorID"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Enterprise's `login`: a JWT auth method whose binding rule gives the `deploy/acl` policy
/// through a role. `agent --once` logs in and out; a daemon whose login token is deleted
/// mid-run logs in again, registers again and carries on, and logs out on SIGTERM.
#[test]
fn auth_method_login_with_a_jwt_logs_in_again_when_the_token_is_deleted_and_logs_out() {
    let c = RealConsul::with_acl();
    fill(&c);
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/acl/consul-snapshot-agent.policy.hcl"),
    )
    .expect("policy");
    let (code, body) = c.put(
        "/v1/acl/policy",
        serde_json::json!({"Name": "consul-snapshot-agent", "Rules": rules})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.put(
        "/v1/acl/role",
        serde_json::json!({"Name": "consul-snapshot-agent", "Policies": [{"Name": "consul-snapshot-agent"}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let (code, body) = c.put(
        "/v1/acl/auth-method",
        serde_json::json!({
            "Name": "jwt",
            "Type": "jwt",
            "MaxTokenTTL": "1h",
            "Config": {
                "JWTValidationPubKeys": [key.public_key_pem()],
                "BoundAudiences": ["consul-snapshot"],
                "ClaimMappings": {"sub": "agent"},
            }
        })
        .to_string()
        .as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = c.put(
        "/v1/acl/binding-rule",
        serde_json::json!({"AuthMethod": "jwt", "BindType": "role", "BindName": "consul-snapshot-agent"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let now = chrono::Utc::now().timestamp();
    let jwt = es256_jwt(
        &key,
        &serde_json::json!({"sub": "snapshot-agent", "aud": "consul-snapshot", "iat": now, "nbf": now - 5, "exp": now + 3600}),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, &jwt).expect("jwt");
    let local = dir.path().join("b").display().to_string();
    let login = [
        "--login-auth-method",
        "jwt",
        "--login-bearer-token-file",
        jwt_file.to_str().expect("p"),
    ];

    // One-shot: logs in, stores, logs out.
    let mut args = vec![
        "agent",
        "--once",
        "--http-addr",
        &c.addr,
        "--local-path",
        &local,
    ];
    args.extend_from_slice(&login);
    let text = ok(run(&args, &[]));
    assert!(
        text.contains("logged in to Consul") && text.contains("logged out of Consul"),
        "{text}"
    );
    assert!(!text.contains(&jwt), "the bearer token is never printed");
    assert!(
        login_tokens(&c).is_empty(),
        "no login token left: {:?}",
        login_tokens(&c)
    );
    // --print-config shows the login section with the bearer token redacted.
    let mut args = vec![
        "agent",
        "--print-config",
        "--login-bearer-token",
        &jwt,
        "--login-auth-method",
        "jwt",
    ];
    args.extend_from_slice(&["--local-path", &local]);
    let printed = ok(run(&args, &[]));
    assert!(
        printed.contains("\"auth_method\": \"jwt\"") && !printed.contains(&jwt),
        "{printed}"
    );

    // The daemon: its token deleted mid-run, it logs in again and carries on.
    let mut args: Vec<String> = [
        "--http-addr",
        &c.addr,
        "--local-path",
        &local,
        "--interval",
        "2s",
        "--session-ttl",
        "10s",
        "--metrics-addr",
        "off",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(login.iter().map(|s| s.to_string()));
    let mut d = AgentProcess::start(&args, &[]);
    assert!(
        wait_until(Duration::from_secs(30), || d
            .log()
            .contains("Saved snapshot")),
        "{}",
        d.log()
    );
    let tokens = login_tokens(&c);
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let (code, body) = c.call(
        "DELETE",
        &format!("/v1/acl/token/{}", tokens[0]),
        Some(support::consul_real::MASTER),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let saved_before = d.log().matches("Saved snapshot").count();
    assert!(
        wait_until(Duration::from_secs(40), || {
            let log = d.log();
            log.contains("logging in again")
                && log.contains("service registered again")
                && log.matches("Saved snapshot").count() >= saved_before + 2
        }),
        "{}",
        d.log()
    );
    let after = login_tokens(&c);
    assert_eq!(after.len(), 1, "one new login token: {after:?}");
    assert_ne!(after, tokens);
    let checks = c.get("/v1/agent/checks").1;
    assert!(
        checks.contains("Alive") && checks.contains("passing"),
        "{checks}"
    );
    let status = d.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        d.log()
    );
    assert!(
        login_tokens(&c).is_empty(),
        "logged out on SIGTERM: {:?}",
        login_tokens(&c)
    );
    assert!(!d.log().contains(&jwt), "the bearer token is never logged");
}
