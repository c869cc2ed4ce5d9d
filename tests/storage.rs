//! Storage backends against real storage: a local directory, a real S3 server (Garage started
//! by the harness, or `S3_ENDPOINT`), Azurite (or a real Azure account) and fake-gcs-server (or
//! a real bucket). One conformance suite runs on all four, through the one [`Backend`]
//! interface and the one upload interface, with uploads of several parts.

mod support;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use consul_snapshot_agent::archive::synth::SynthSpec;
use consul_snapshot_agent::archive::{ArchiveReport, ReadOptions, WriteOptions};
use consul_snapshot_agent::pipeline::{stream_verified, FanOut, PipelineError};
use consul_snapshot_agent::retention::{plan, Entry, RetentionPolicy};
use consul_snapshot_agent::storage::{
    Backend, BackupMeta, BackupName, LocalStore, S3Config, S3Store, StorageError, Store,
    StoredBackup,
};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use support::azurite::azure_target;
use support::fakegcs::gcs_target;
use support::garage::s3_target;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A synthetic archive with a state.bin of about `state_bytes`.
fn archive(state_bytes: u64, seed: u64) -> Bytes {
    let spec = SynthSpec {
        seed,
        ..SynthSpec::with_state_size(state_bytes)
    };
    Bytes::from(
        spec.write_archive(
            Vec::new(),
            &WriteOptions {
                mtime: 1_700_000_000,
                ..WriteOptions::default()
            },
        )
        .expect("archive"),
    )
}

fn body(bytes: Bytes, chunk: usize) -> impl Stream<Item = io::Result<Bytes>> + Unpin {
    let n = bytes.len().div_ceil(chunk);
    futures_util::stream::iter(
        (0..n).map(move |i| Ok(bytes.slice(i * chunk..((i + 1) * chunk).min(bytes.len())))),
    )
}

fn name(secs: i64, index: u64) -> BackupName {
    BackupName {
        encrypted: false,
        time: Utc.timestamp_opt(secs, 0).single().expect("t"),
        datacenter: "dc1".into(),
        index,
    }
}

fn pending() -> BackupMeta {
    BackupMeta {
        datacenter: Some("dc1".into()),
        created: Some("2026-11-21T19:00:00Z".into()),
        ..Default::default()
    }
}

async fn collect(store: &Store, key: &str) -> Vec<u8> {
    let mut s = store.get(key).await.expect("get");
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

/// Stores `bytes` at `store` as the backup `n`, streamed in `chunk`-byte pieces through the
/// verifier: the report and what was stored, or why the pipeline failed.
async fn store_bytes(
    store: &Store,
    n: &BackupName,
    bytes: Bytes,
    chunk: usize,
) -> Result<(ArchiveReport, StoredBackup), PipelineError> {
    let upload = store.begin(n, pending()).await.expect("begin");
    stream_verified(body(bytes, chunk), upload, ReadOptions::default(), (), None)
        .await
        .map(|(report, (), stored)| (report, stored))
}

/// The archive SHA-256 the metadata of `key` records.
async fn stored_sha256(store: &Store, key: &str) -> Option<String> {
    store
        .head(key)
        .await
        .expect("head")
        .meta
        .expect("meta")
        .sha256
}

/// The conformance suite: store, list, head, get, read back, foreign objects, delete.
async fn conformance(store: Store, put_foreign: impl std::future::Future<Output = ()>) {
    let bytes = archive(2 << 20, 7);
    let n = name(1_795_000_000, 1000);
    let (report, stored) = store_bytes(&store, &n, bytes.clone(), 64 * 1024)
        .await
        .expect("store");
    assert_eq!(stored.size, bytes.len() as u64);
    put_foreign.await;

    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].key, stored.key);
    assert_eq!(listed[0].name, n);
    let head = store.head(&stored.key).await.expect("head");
    let meta = head.meta.expect("metadata");
    assert_eq!(
        meta.sha256.as_deref(),
        Some(hex::encode(report.archive_sha256).as_str())
    );
    assert_eq!(
        (meta.index, meta.term, meta.state_size),
        (
            Some(report.meta.index),
            Some(report.meta.term),
            Some(report.state.len)
        )
    );
    assert_eq!(meta.datacenter.as_deref(), Some("dc1"));
    assert_eq!(
        collect(&store, &stored.key).await,
        bytes.to_vec(),
        "stored bytes equal the source bytes"
    );
    let ids = Default::default();
    store
        .readback(&stored.key, Some(&meta), &ids)
        .await
        .expect("read-back verifies");
    let other = BackupMeta {
        sha256: Some("00".into()),
        ..meta.clone()
    };
    assert!(matches!(
        store.readback(&stored.key, Some(&other), &ids).await,
        Err(StorageError::Readback { .. })
    ));

    assert!(matches!(
        store.delete(&["notes.txt".to_string()]).await,
        Err(StorageError::NotOurs(_))
    ));
    store
        .delete(std::slice::from_ref(&stored.key))
        .await
        .expect("delete");
    store
        .delete(std::slice::from_ref(&stored.key))
        .await
        .expect("delete is idempotent");
    assert!(store.list().await.expect("list").is_empty());
    assert!(matches!(
        store.head(&stored.key).await,
        Err(StorageError::NotFound(_))
    ));
}

#[test]
fn local_conformance() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::new(LocalStore::new(dir.path()).expect("store"));
    let foreign = dir.path().to_path_buf();
    rt().block_on(conformance(store, async move {
        std::fs::write(foreign.join("notes.txt"), b"x").expect("w");
        std::fs::write(
            foreign.join("consul-dc1-20261121T190000Z-9.snap.partial"),
            b"x",
        )
        .expect("w");
    }));
    assert!(
        dir.path().join("notes.txt").exists(),
        "foreign files untouched"
    );
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        let rt = rt();
        let store = Store::new(LocalStore::new(dir.path()).expect("store"));
        let bytes = archive(1 << 20, 3);
        let (_, stored) = rt
            .block_on(store_bytes(&store, &name(1, 1), bytes, 4096))
            .expect("store");
        std::fs::metadata(dir.path().join(stored.key))
            .expect("m")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
}

async fn s3_store(cfg: S3Config) -> (Store, S3Store) {
    let s3 = S3Store::new(cfg).await.expect("s3 store");
    (Store::new(s3.clone()), s3)
}

#[test]
fn s3_conformance() {
    let target = s3_target();
    let cfg = target.config();
    let rt = rt();
    rt.block_on(async {
        let (store, s3) = s3_store(cfg.clone()).await;
        let client = cfg.client().await;
        let prefix = cfg.normalized_prefix();
        let foreign = async {
            for k in FOREIGN {
                client
                    .put_object()
                    .bucket(&cfg.bucket)
                    .key(format!("{prefix}{k}"))
                    .body(Vec::from(&b"x"[..]).into())
                    .send()
                    .await
                    .expect("put foreign");
            }
        };
        conformance(store, foreign).await;
        let left = client
            .list_objects_v2()
            .bucket(&cfg.bucket)
            .prefix(&prefix)
            .send()
            .await
            .expect("list");
        assert_eq!(left.contents().len(), 3, "foreign objects untouched");
        assert!(s3.pending_uploads().await.expect("uploads").is_empty());
    });
}

/// Names of objects the agent did not write, put under the prefix of an object-store
/// destination: none may be listed or deleted.
const FOREIGN: [&str; 3] = [
    "notes.txt",
    "consul-dc1-garbage.snap",
    "other/consul-dc1-20261121T190000Z-1.snap",
];

/// The conformance suite on an object store: the [`FOREIGN`] objects put under `prefix` with
/// `put`, then the suite, then each of them checked still there with `exists`.
async fn object_conformance<P, PF, E, EF>(store: Store, prefix: &str, put: P, exists: E)
where
    P: Fn(String) -> PF,
    PF: std::future::Future<Output = ()>,
    E: Fn(String) -> EF,
    EF: std::future::Future<Output = bool>,
{
    let foreign = async {
        for k in FOREIGN {
            put(format!("{prefix}{k}")).await;
        }
    };
    conformance(store, foreign).await;
    for k in FOREIGN {
        assert!(exists(format!("{prefix}{k}")).await, "{k} untouched");
    }
}

#[test]
fn azure_conformance() {
    let target = &azure_target();
    rt().block_on(async {
        // 1 MiB blocks: the 2 MiB archive is a multi-block upload.
        let backend = target.config(1 << 20).backend().expect("azure backend");
        object_conformance(
            Store::new(backend),
            &target.prefix,
            |name| async move { target.put_raw(&name, b"x").await.expect("put foreign") },
            |name| async move { target.exists(&name).await.expect("head") },
        )
        .await;
    });
}

#[test]
fn gcs_conformance() {
    let target = &gcs_target();
    rt().block_on(async {
        // 256 KiB chunks: the 2 MiB archive is a resumable upload of several chunks.
        let backend = target
            .config(256 << 10)
            .backend()
            .await
            .expect("gcs backend");
        // Real GCS: the harness holds no credentials of its own, so it puts nothing there and
        // finds nothing to check.
        let emulated = target.endpoint.is_some();
        object_conformance(
            Store::new(backend),
            &target.prefix,
            |name| async move {
                target.put_raw(&name, b"x").await.expect("put foreign");
            },
            |name| async move { !emulated || target.exists(&name).await.expect("get") },
        )
        .await;
    });
}

#[test]
fn s3_multipart_of_100_mib_archive_round_trips_exactly() {
    let target = s3_target();
    // ~250 MiB of state compresses to a bit over 100 MiB.
    let bytes = archive(250 << 20, 11);
    assert!(bytes.len() >= 100 << 20, "archive is {} bytes", bytes.len());
    let cfg = S3Config {
        part_size: 16 << 20,
        ..target.config()
    };
    rt().block_on(async {
        let (store, s3) = s3_store(cfg).await;
        let (report, stored) = store_bytes(
            &store,
            &name(1_795_000_100, 2000),
            bytes.clone(),
            256 * 1024,
        )
        .await
        .expect("upload");
        let got = collect(&store, &stored.key).await;
        assert_eq!(
            Sha256::digest(&got).as_slice(),
            Sha256::digest(&bytes).as_slice()
        );
        assert_eq!(
            hex::encode(Sha256::digest(&got)),
            hex::encode(report.archive_sha256)
        );
        assert!(
            s3.pending_uploads().await.expect("uploads").is_empty(),
            "no multipart upload left behind"
        );
        assert_eq!(
            stored_sha256(&store, &stored.key).await,
            Some(hex::encode(report.archive_sha256))
        );
    });
}

#[test]
fn s3_a_multipart_backup_keeps_its_metadata_in_a_manifest_which_wins() {
    let target = s3_target();
    let bytes = archive(40 << 20, 5);
    let cfg = target.config();
    rt().block_on(async {
        let (store, s3) = s3_store(cfg.clone()).await;
        let (report, stored) = store_bytes(&store, &name(1_795_000_200, 3), bytes.clone(), 1 << 20)
            .await
            .expect("upload");
        assert!(bytes.len() as u64 > cfg.part_size, "a multipart upload");
        assert_eq!(
            stored_sha256(&store, &stored.key).await,
            Some(hex::encode(report.archive_sha256))
        );
        // The manifest beside the object, never listed as a backup.
        let raw = s3.raw_keys().await.expect("raw");
        assert!(
            raw.contains(&format!("{}.meta.json", stored.key)),
            "{raw:?}"
        );
        assert_eq!(store.list().await.expect("list").len(), 1);
        assert_eq!(collect(&store, &stored.key).await, bytes.to_vec());
        assert!(s3.pending_uploads().await.expect("uploads").is_empty());

        // A small backup keeps its metadata as user metadata (no manifest); a metadata
        // change writes a manifest, which wins.
        let small = archive(64 << 10, 6);
        let (_, small_stored) = store_bytes(&store, &name(1_795_000_300, 4), small, 1 << 16)
            .await
            .expect("upload");
        let raw = s3.raw_keys().await.expect("raw");
        assert!(
            !raw.contains(&format!("{}.meta.json", small_stored.key)),
            "{raw:?}"
        );
        let mut m = store
            .head(&small_stored.key)
            .await
            .expect("head")
            .meta
            .expect("user metadata");
        assert!(m.sha256.is_some());
        m.safety_snapshot = Some(true);
        store
            .set_meta(&small_stored.key, &m)
            .await
            .expect("set meta");
        let again = store
            .head(&small_stored.key)
            .await
            .expect("head")
            .meta
            .expect("meta");
        assert_eq!(again.safety_snapshot, Some(true), "the manifest wins");

        // A manifest left without its backup (a crash before completion) is swept; one
        // beside its backup, and one that is not ours, are not.
        let client = cfg.client().await;
        let orphan = format!(
            "{}consul-dc1-20261207T000000Z-9.snap.meta.json",
            cfg.normalized_prefix()
        );
        let foreign = format!("{}notes.txt.meta.json", cfg.normalized_prefix());
        for k in [&orphan, &foreign] {
            client
                .put_object()
                .bucket(&cfg.bucket)
                .key(k)
                .body(b"{}".to_vec().into())
                .send()
                .await
                .expect("put");
        }
        assert_eq!(store.sweep(Duration::ZERO).await.expect("sweep"), 1);
        let raw = s3.raw_keys().await.expect("raw");
        assert!(!raw.contains(&orphan), "{raw:?}");
        assert!(raw.contains(&foreign), "{raw:?}");
        assert!(
            raw.contains(&format!("{}.meta.json", stored.key)),
            "{raw:?}"
        );

        // Deleting a backup deletes its manifest.
        store
            .delete(&[stored.key.clone(), small_stored.key.clone()])
            .await
            .expect("delete");
        assert_eq!(s3.raw_keys().await.expect("raw"), vec![foreign]);
    });
}

#[test]
fn s3_verification_failure_mid_stream_leaves_no_object_and_no_upload() {
    let target = s3_target();
    let mut raw = archive(30 << 20, 9).to_vec();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x20;
    let bytes = Bytes::from(raw);
    rt().block_on(async {
        let (store, s3) = s3_store(target.config()).await;
        let err = store_bytes(&store, &name(1_795_000_300, 4), bytes, 64 * 1024)
            .await
            .expect_err("corrupt archive");
        assert!(matches!(err, PipelineError::Invalid(_)), "{err}");
        assert!(store.list().await.expect("list").is_empty(), "no object");
        assert!(
            s3.pending_uploads().await.expect("uploads").is_empty(),
            "no multipart upload"
        );
    });
}

#[test]
fn one_failing_destination_does_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = Store::new(LocalStore::new(dir.path().join("good")).expect("store"));
    let bad_dir = dir.path().join("bad");
    let bad = Store::new(LocalStore::new(&bad_dir).expect("store"));
    rt().block_on(async {
        let n = name(1_795_000_400, 5);
        let uploads = vec![
            ("good", good.begin(&n, pending()).await.expect("b")),
            ("bad", bad.begin(&n, pending()).await.expect("b")),
        ];
        // The bad destination disappears mid-way: its rename fails at commit.
        std::fs::remove_dir_all(&bad_dir).expect("rm");
        let (_, (), results) = stream_verified(
            body(archive(1 << 20, 1), 8192),
            FanOut::new(uploads),
            ReadOptions::default(),
            (),
            None,
        )
        .await
        .expect("pipeline");
        let by_key: std::collections::HashMap<_, _> = results.into_iter().collect();
        assert!(by_key["good"].is_ok());
        assert!(by_key["bad"].is_err());
    });
    assert_eq!(
        LocalStore::new(dir.path().join("good"))
            .map(|s| rt().block_on(s.list()).expect("list").len())
            .expect("s"),
        1
    );
}

#[test]
fn s3_retention_over_2500_objects_pages_past_1000_and_spares_foreign_objects() {
    let target = s3_target();
    let cfg = target.config();
    rt().block_on(async {
        let (store, s3) = s3_store(cfg.clone()).await;
        let client = cfg.client().await;
        let prefix = cfg.normalized_prefix();
        let keys: Vec<String> = (0..2500)
            .map(|i| s3.key_for(&name(1_700_000_000 + i * 3600, 100 + i as u64)))
            .collect();
        let foreign = [
            format!("{prefix}README.txt"),
            format!("{prefix}consul-dc1-manual.snap"),
        ];
        let all: Vec<String> = keys.iter().chain(foreign.iter()).cloned().collect();
        futures_util::stream::iter(all)
            .map(|k| {
                let (client, bucket) = (client.clone(), cfg.bucket.clone());
                async move {
                    client
                        .put_object()
                        .bucket(bucket)
                        .key(k)
                        .body(Vec::from(&b"tiny"[..]).into())
                        .send()
                        .await
                        .expect("put")
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        let listed = store.list().await.expect("list");
        assert_eq!(
            listed.len(),
            2500,
            "listing follows continuation tokens past 1000 keys"
        );
        let entries: Vec<Entry> = listed
            .iter()
            .map(|b| Entry {
                key: b.key.clone(),
                time: b.name.time,
                index: b.name.index,
            })
            .collect();
        let decisions = plan(
            &entries,
            &RetentionPolicy {
                retain: Some(10),
                ..Default::default()
            },
        )
        .expect("plan");
        let doomed: Vec<String> = decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.key.clone())
            .collect();
        assert_eq!(doomed.len(), 2490);
        store
            .delete(&doomed)
            .await
            .expect("delete in batches of 1000");
        let left = store.list().await.expect("list");
        assert_eq!(
            left.iter().map(|b| b.key.clone()).collect::<Vec<_>>(),
            keys[2490..].to_vec()
        );
        for f in foreign {
            client
                .head_object()
                .bucket(&cfg.bucket)
                .key(&f)
                .send()
                .await
                .expect("foreign object still there");
        }
    });
}

#[test]
fn s3_server_stopped_mid_upload_is_a_clear_error() {
    let mut target = s3_target();
    if target.garage.is_none() {
        eprintln!(
            "S3_ENDPOINT is set: this test needs a server it can stop; it runs against Garage only"
        );
        return;
    }
    let bytes = archive(60 << 20, 13);
    let cfg = S3Config {
        concurrency: 1,
        ..target.config()
    };
    let rt = rt();
    let (store, s3) = rt.block_on(s3_store(cfg));
    // An earlier backup, which nothing about the failure may touch.
    let earlier = rt
        .block_on(store_bytes(
            &store,
            &name(1_795_000_000, 5),
            archive(1 << 20, 2),
            65536,
        ))
        .expect("earlier backup")
        .1;
    let n = name(1_795_000_500, 6);
    let upload = rt.block_on(store.begin(&n, pending())).expect("begin");
    // A slow body: the server is stopped after the first parts went up.
    let slow = body(bytes, 1 << 20).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        c
    });
    let handle = rt.spawn(async move {
        stream_verified(Box::pin(slow), upload, ReadOptions::default(), (), None).await
    });
    std::thread::sleep(Duration::from_millis(600));
    target.garage.as_mut().expect("garage").stop();
    let err = rt
        .block_on(handle)
        .expect("join")
        .expect_err("upload must fail");
    let msg = err.to_string();
    assert!(matches!(err, PipelineError::Sink(_)), "{msg}");
    assert!(
        msg.contains("S3 UploadPart failed") || msg.contains("S3 CreateMultipartUpload failed"),
        "{msg}"
    );
    // Back up: the earlier backup alone is visible; the upload the failed abort could not
    // reach is cleaned up by the stale-upload sweep each cycle runs.
    target.garage.as_mut().expect("garage").restart();
    rt.block_on(async {
        let keys: Vec<String> = store
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|b| b.key)
            .collect();
        assert_eq!(keys, vec![earlier.key.clone()]);
        s3.abort_stale_uploads(Duration::ZERO).await.expect("sweep");
        assert!(s3.pending_uploads().await.expect("uploads").is_empty());
    });
}
