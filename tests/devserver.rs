//! The Consul API test server behaves like Consul on the endpoints the agent uses (spec
//! consul-http-api.md §9 checklist), faults included.

mod support;

use std::time::{Duration, Instant};

use consul_snapshot_agent::archive::{read_archive, ReadOptions};
use consul_snapshot_agent::devserver::{AclTokens, DevServer, DevServerConfig, Faults};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn start(cfg: DevServerConfig) -> (DevServer, reqwest::Client) {
    let s = DevServer::start(cfg).await.expect("start");
    (s, reqwest::Client::new())
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `GET /v1/snapshot`: its `X-Consul-Index` and the verified archive's report.
async fn served(
    c: &reqwest::Client,
    s: &DevServer,
) -> (String, consul_snapshot_agent::archive::ArchiveReport) {
    let r = c
        .get(format!("{}/v1/snapshot", s.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let index = header(&r, "X-Consul-Index");
    let bytes = r.bytes().await.expect("body");
    let report = read_archive(&bytes[..], ReadOptions::default(), &mut ()).expect("verifies");
    (index, report)
}

/// `PUT /v1/snapshot` of `body`: a restore.
async fn put_snapshot(
    c: &reqwest::Client,
    s: &DevServer,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    c.put(format!("{}/v1/snapshot", s.url()))
        .body(body)
        .send()
        .await
        .expect("put")
}

#[tokio::test]
async fn snapshot_get_headers_and_no_leader() {
    let (s, c) = start(DevServerConfig::default()).await;
    let r = c
        .get(format!("{}/v1/snapshot", s.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "X-Consul-Index"), "1000");
    assert_eq!(header(&r, "X-Consul-KnownLeader"), "true");
    assert_eq!(header(&r, "Content-Type"), "application/x-gzip");
    let bytes = r.bytes().await.expect("body");
    let report =
        read_archive(&bytes[..], ReadOptions::default(), &mut ()).expect("served archive verifies");
    assert_eq!(report.meta.index, 1000);

    s.set_faults(Faults {
        no_leader: true,
        ..Faults::default()
    });
    let r = c
        .get(format!("{}/v1/snapshot", s.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 500);
    assert_eq!(r.text().await.expect("text"), "No cluster leader");
    let r = c
        .get(format!("{}/v1/snapshot?stale", s.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "X-Consul-KnownLeader"), "false");
    let leader = c
        .get(format!("{}/v1/status/leader", s.url()))
        .send()
        .await
        .expect("leader");
    assert_eq!(leader.text().await.expect("text"), "\"\"");
    s.shutdown().await;
}

/// A recursive KV delete empties that tree in the next snapshot, as in Consul; everything else
/// is kept record for record, and the archive still verifies.
#[tokio::test]
async fn recursive_kv_delete_shows_in_the_next_snapshot() {
    let (s, c) = start(DevServerConfig::default()).await;
    let snapshot = || async { served(&c, &s).await.1 };
    let before = snapshot().await;
    assert!(before.state.counts.kv_entries > 0);
    let r = c
        .delete(format!("{}/v1/kv/vault/?recurse", s.url()))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 200);
    let vault_gone = snapshot().await;
    assert!(vault_gone.meta.index > before.meta.index);
    let left = vault_gone.state.counts.kv_entries;
    assert!(left > 0 && left < before.state.counts.kv_entries, "{left}");
    let mut expected = before.state.counts;
    expected.kv_entries = left;
    assert_eq!(vault_gone.state.counts, expected, "only KV entries change");
    c.delete(format!("{}/v1/kv/?recurse", s.url()))
        .send()
        .await
        .expect("delete all");
    let wiped = snapshot().await;
    assert_eq!(wiped.state.counts.kv_entries, 0);
    assert_eq!(wiped.state.counts.nodes, before.state.counts.nodes);
    s.shutdown().await;
}

#[tokio::test]
async fn restore_verifies_like_consul_and_replaces_the_state() {
    let (s, c) = start(DevServerConfig::default()).await;
    let small = std::fs::read(support::fixture("small.snap")).expect("fixture");
    let r = c
        .put(format!("{}/v1/snapshot?stale", s.url()))
        .body(small.clone())
        .send()
        .await
        .expect("put");
    assert_eq!(
        (r.status(), r.text().await.expect("t")),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "stale not allowed for restore".into()
        )
    );

    for (name, want) in [
        (
            "corrupt-state.snap",
            r#"failed to read snapshot file: failed checking integrity of snapshot: hash check failed for "state.bin""#,
        ),
        ("record-padded.snap", "unread uncompressed bytes remain"),
        ("truncated.snap", "unexpected EOF"),
    ] {
        let body = std::fs::read(support::fixture(name)).expect("fixture");
        let r = put_snapshot(&c, &s, body).await;
        assert_eq!(r.status(), 500, "{name}");
        assert!(r.text().await.expect("t").contains(want), "{name}");
    }
    let r = put_snapshot(&c, &s, &b"not a snapshot"[..]).await;
    assert_eq!(
        r.text().await.expect("t"),
        "failed to decompress snapshot: gzip: invalid header"
    );
    assert!(s.restores().is_empty());

    let r = put_snapshot(&c, &s, small.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.expect("b").is_empty());
    let restored = s.restores();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].meta.index, 146);
    assert_eq!(restored[0].applied_index, 1001, "max(1000, 146) + 1");

    let (index, again) = served(&c, &s).await;
    assert_eq!(index, "1001");
    assert_eq!(
        again.state_sha256, restored[0].state_sha256,
        "the restored state is what is served now"
    );
    assert_eq!(again.meta.index, 1001);
    s.shutdown().await;
}

#[tokio::test]
async fn restores_replace_the_state_file_instead_of_piling_up_copies() {
    let dir = tempfile::tempdir().expect("tmp");
    let (s, c) = start(DevServerConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..DevServerConfig::default()
    })
    .await;
    let state_files = || {
        std::fs::read_dir(dir.path())
            .expect("data dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("state-"))
            .count()
    };
    assert_eq!(state_files(), 1);
    let small = std::fs::read(support::fixture("small.snap")).expect("fixture");
    for n in 1..=3 {
        let r = put_snapshot(&c, &s, small.clone()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(s.restores().len(), n);
        assert_eq!(state_files(), 1, "after restore {n}");
    }
    // What is served is still the restored state.
    let (_, served_now) = served(&c, &s).await;
    assert_eq!(served_now.state_sha256, s.restores()[2].state_sha256);
    s.shutdown().await;
}

#[tokio::test]
async fn kv_reads_writes_and_blocking_queries() {
    let (s, c) = start(DevServerConfig::default()).await;
    let url = |p: &str| format!("{}{p}", s.url());
    let r = c.get(url("/v1/kv/missing")).send().await.expect("get");
    assert_eq!(r.status(), 404);
    assert_ne!(header(&r, "X-Consul-Index"), "0");
    assert!(r.bytes().await.expect("b").is_empty());

    let r = c
        .put(url("/v1/kv/a/b?flags=42"))
        .body("hello")
        .send()
        .await
        .expect("put");
    assert_eq!(r.text().await.expect("t"), "true");
    let r = c.get(url("/v1/kv/a/b")).send().await.expect("get");
    let index: u64 = header(&r, "X-Consul-Index").parse().expect("index");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v[0]["Key"], "a/b");
    assert_eq!(v[0]["Flags"], 42);
    assert_eq!(v[0]["Value"], "aGVsbG8=");
    assert!(v[0].get("Session").is_none());
    let raw = c
        .get(url("/v1/kv/a/b?raw"))
        .send()
        .await
        .expect("raw")
        .text()
        .await
        .expect("t");
    assert_eq!(raw, "hello");

    // A blocking read returns when the key changes...
    let t = Instant::now();
    let (blocked, _) = tokio::join!(
        c.get(url(&format!("/v1/kv/a/b?index={index}&wait=5s")))
            .send(),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.put(url("/v1/kv/a/b"))
                .body("changed")
                .send()
                .await
                .expect("put")
        }
    );
    let blocked = blocked.expect("blocked get");
    assert!(t.elapsed() < Duration::from_secs(4));
    assert!(
        header(&blocked, "X-Consul-Index")
            .parse::<u64>()
            .expect("i")
            > index
    );
    // ...and after `wait` with 200 and the unchanged index when nothing changes.
    let now_index = header(
        &c.get(url("/v1/kv/a/b")).send().await.expect("get"),
        "X-Consul-Index",
    );
    let t = Instant::now();
    let r = c
        .get(url(&format!("/v1/kv/a/b?index={now_index}&wait=300ms")))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert_eq!(header(&r, "X-Consul-Index"), now_index);

    let r = c
        .put(url("/v1/kv/x?cas=1&acquire=abc"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("t").starts_with("Conflicting flags"));
    let r = c.get(url("/v1/kv/x?wait=zz")).send().await.expect("get");
    assert_eq!(
        (r.status(), r.text().await.expect("t")),
        (StatusCode::BAD_REQUEST, "Invalid wait time".into())
    );
    s.shutdown().await;
}

#[tokio::test]
async fn sessions_locks_lock_delay_and_ttl_expiry() {
    let cfg = DevServerConfig {
        session_ttl_min: Duration::from_millis(500),
        ..DevServerConfig::default()
    };
    let (s, c) = start(cfg).await;
    let url = |p: &str| format!("{}{p}", s.url());
    let create = |body: Value| c.put(url("/v1/session/create")).json(&body).send();
    let a: Value = create(json!({"Name": "a", "TTL": "1s", "LockDelay": "1s", "NodeChecks": []}))
        .await
        .expect("create")
        .json()
        .await
        .expect("j");
    let b: Value = create(json!({"Name": "b", "TTL": "10s", "NodeChecks": []}))
        .await
        .expect("create")
        .json()
        .await
        .expect("j");
    let (a, b) = (
        a["ID"].as_str().expect("id").to_string(),
        b["ID"].as_str().expect("id").to_string(),
    );

    let acquire = |sid: String| {
        c.put(url(&format!(
            "/v1/kv/lock?acquire={sid}&flags=3304740253564472344"
        )))
        .send()
    };
    assert_eq!(
        acquire(a.clone())
            .await
            .expect("a")
            .text()
            .await
            .expect("t"),
        "true"
    );
    assert_eq!(
        acquire(b.clone())
            .await
            .expect("b")
            .text()
            .await
            .expect("t"),
        "false"
    );
    let held: Value = c
        .get(url("/v1/kv/lock"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("j");
    assert_eq!(held[0]["Session"], a.as_str());
    assert_eq!(held[0]["LockIndex"], 1);

    // Renew works while alive; a's TTL then lapses (no renewals): gone within 2 × TTL.
    let r = c
        .put(url(&format!("/v1/session/renew/{a}")))
        .send()
        .await
        .expect("renew");
    assert_eq!(r.status(), 200);
    let t = Instant::now();
    loop {
        let held: Value = c
            .get(url("/v1/kv/lock"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("j");
        if held[0].get("Session").is_none() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "session a never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        t.elapsed() <= Duration::from_millis(2300),
        "expired after {:?}",
        t.elapsed()
    );
    let r = c
        .put(url(&format!("/v1/session/renew/{a}")))
        .send()
        .await
        .expect("renew");
    assert_eq!(
        (r.status(), r.text().await.expect("t")),
        (StatusCode::NOT_FOUND, format!("Session id '{a}' not found"))
    );
    // Lock-delay (1 s) after the invalidation: b is refused at first, then gets it.
    assert_eq!(
        acquire(b.clone())
            .await
            .expect("b")
            .text()
            .await
            .expect("t"),
        "false"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        acquire(b.clone())
            .await
            .expect("b")
            .text()
            .await
            .expect("t"),
        "true"
    );
    let r = c
        .put(url(&format!("/v1/kv/lock?release={b}")))
        .send()
        .await
        .expect("release");
    assert_eq!(r.text().await.expect("t"), "true");
    let d = c
        .put(url(&format!("/v1/session/destroy/{b}")))
        .send()
        .await
        .expect("destroy");
    assert_eq!(d.text().await.expect("t"), "true");
    let info: Value = c
        .get(url(&format!("/v1/session/info/{b}")))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("j");
    assert_eq!(info, json!([]));

    let r = create(json!({"TTL": "100ms"})).await.expect("create");
    assert_eq!(r.status(), 500);
    assert!(r
        .text()
        .await
        .expect("t")
        .starts_with("Invalid Session TTL '100000000', must be between"));
    let r = c
        .put(url("/v1/kv/k?acquire=nope"))
        .send()
        .await
        .expect("put");
    assert_eq!(r.text().await.expect("t"), "invalid session \"nope\"");
    s.shutdown().await;
}

#[tokio::test]
async fn services_and_ttl_checks() {
    let (s, c) = start(DevServerConfig::default()).await;
    let url = |p: &str| format!("{}{p}", s.url());
    let body = json!({"ID": "snap-1", "Name": "consul-snapshot", "Checks": [
        {"CheckID": "snap-1:alive", "Name": "Consul Snapshot Agent Alive", "TTL": "30s", "Status": "passing", "DeregisterCriticalServiceAfter": "72h"}]});
    assert_eq!(
        c.put(url("/v1/agent/service/register"))
            .json(&body)
            .send()
            .await
            .expect("reg")
            .status(),
        200
    );
    let checks: Value = c
        .get(url("/v1/agent/checks"))
        .send()
        .await
        .expect("checks")
        .json()
        .await
        .expect("j");
    assert_eq!(checks["snap-1:alive"]["Status"], "passing");
    assert_eq!(checks["snap-1:alive"]["ServiceName"], "consul-snapshot");
    assert_eq!(
        c.put(url("/v1/agent/check/fail/snap-1:alive?note=boom"))
            .send()
            .await
            .expect("fail")
            .status(),
        200
    );
    let checks: Value = c
        .get(url("/v1/agent/checks"))
        .send()
        .await
        .expect("checks")
        .json()
        .await
        .expect("j");
    assert_eq!(
        (
            checks["snap-1:alive"]["Status"].clone(),
            checks["snap-1:alive"]["Output"].clone()
        ),
        (json!("critical"), json!("boom"))
    );
    let r = c
        .put(url("/v1/agent/check/update/snap-1:alive"))
        .json(&json!({"Status": "warning", "Output": "slow"}))
        .send()
        .await
        .expect("u");
    assert_eq!(r.status(), 200);
    let r = c
        .put(url("/v1/agent/check/pass/nope"))
        .send()
        .await
        .expect("pass");
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.text().await.expect("t"),
        "Unknown check ID \"nope\". Ensure that the check ID is passed, not the check name."
    );
    let r = c
        .put(url("/v1/agent/service/register"))
        .json(&json!({"Name": "x", "Check": {"Name": "no ttl"}}))
        .send()
        .await
        .expect("reg");
    assert_eq!(
        (r.status(), r.text().await.expect("t")),
        (
            StatusCode::BAD_REQUEST,
            "Invalid check: TTL must be > 0 for TTL checks".into()
        )
    );
    assert_eq!(
        c.put(url("/v1/agent/service/deregister/snap-1"))
            .send()
            .await
            .expect("dereg")
            .status(),
        200
    );
    let services: Value = c
        .get(url("/v1/agent/services"))
        .send()
        .await
        .expect("svc")
        .json()
        .await
        .expect("j");
    assert_eq!(services, json!({}));
    s.shutdown().await;
}

#[tokio::test]
async fn acl_tokens_by_header_bearer_and_query() {
    let cfg = DevServerConfig {
        acl: Some(AclTokens {
            management: "mgmt".into(),
            read_only: Some("ro".into()),
            read_only_accessor: "4f6e-ro".into(),
            no_snapshot: None,
        }),
        ..DevServerConfig::default()
    };
    let (s, c) = start(cfg).await;
    let url = |p: &str| format!("{}{p}", s.url());
    assert_eq!(
        c.get(url("/v1/kv/a?token=mgmt"))
            .send()
            .await
            .expect("q")
            .status(),
        404
    );
    assert_eq!(
        c.get(url("/v1/kv/a"))
            .bearer_auth("ro")
            .send()
            .await
            .expect("b")
            .status(),
        404
    );
    let r = c
        .put(url("/v1/kv/a"))
        .header("X-Consul-Token", "ro")
        .send()
        .await
        .expect("w");
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.expect("t"),
        "Permission denied: token with AccessorID '4f6e-ro' lacks permission 'key:write'"
    );
    let r = c
        .get(url("/v1/snapshot"))
        .header("X-Consul-Token", "ro")
        .send()
        .await
        .expect("snap");
    assert!(r
        .text()
        .await
        .expect("t")
        .contains("lacks permission 'acl:write'"));
    let r = c
        .get(url("/v1/kv/a"))
        .header("X-Consul-Token", "who")
        .send()
        .await
        .expect("unknown");
    assert_eq!(
        (r.status(), r.text().await.expect("t")),
        (StatusCode::FORBIDDEN, "ACL not found".into())
    );
    assert_eq!(
        c.put(url("/v1/kv/a"))
            .header("X-Consul-Token", "mgmt")
            .send()
            .await
            .expect("w")
            .status(),
        200
    );
    s.shutdown().await;
}
