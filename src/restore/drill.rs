//! Restore drills: prove a backup restores by restoring it into a scratch Consul cluster and
//! taking a snapshot back ([`run_drill`], used by the `drill` command and the daemon). What must survive the round trip is the backup's content, compared
//! as a [`Fingerprint`]: records per type and a digest of the KV key set.
//!
//! Record types a live cluster writes by itself after a restore are shown but not compared
//! ([`SELF_WRITTEN`]): the scratch servers re-register their own node (Register) and
//! coordinates, sessions expire, tombstones are reaped, Raft/autopilot bookkeeping
//! (Autopilot, Index, SystemMetadata, ChunkingState) is rewritten (Consul's
//! `agent/consul/fsm`), and the leader of a primary datacenter writes its own
//! FederationState (seen on a real Consul 1.8.7: a backup taken before the first one was
//! written came back with one).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{body_of, checked_body, fetch_verified_with, Source};
use crate::archive::types::{self, msg};
use crate::archive::{ReadOptions, RecordInfo, RecordVisitor, TypePolicy};
use crate::consul::{get_snapshot, put_snapshot, ConsulClient, RetryPolicy};
use crate::crypto::Identities;
use crate::pipeline::{stream_verified, Discard};

/// Types not compared by a drill (see the module docs).
pub const SELF_WRITTEN: [u8; 9] = [
    msg::REGISTER,
    msg::SESSION,
    msg::TOMBSTONE,
    msg::COORDINATE_BATCH_UPDATE,
    msg::AUTOPILOT,
    msg::INDEX,
    msg::SYSTEM_METADATA,
    msg::CHUNKING_STATE,
    msg::FEDERATION_STATE,
];

/// The content of one snapshot as a drill compares it; a [`RecordVisitor`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Records per type byte.
    pub by_type: BTreeMap<u8, u64>,
    /// Order-independent digest of the KV keys: the wrapping sum of the first 16 bytes of each
    /// key's SHA-256 (a multiset hash: the same keys in any order give the same value).
    pub kv_digest: u128,
}

impl RecordVisitor for Fingerprint {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        *self.by_type.entry(rec.type_byte).or_default() += 1;
        if let (msg::KVS, Some(key)) = (rec.type_byte, rec.kv_key) {
            let h = Sha256::digest(key);
            let mut first = [0u8; 16];
            first.copy_from_slice(&h[..16]);
            self.kv_digest = self.kv_digest.wrapping_add(u128::from_be_bytes(first));
        }
    }
}

/// One type's counts in the backup and after the round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCount {
    pub name: String,
    pub backup: u64,
    pub restored: u64,
    /// Whether the drill compares it (not [`SELF_WRITTEN`]).
    pub compared: bool,
}

/// Every type in either snapshot, and the differences that fail the drill (empty: it passed).
pub fn compare(backup: &Fingerprint, restored: &Fingerprint) -> (Vec<TypeCount>, Vec<String>) {
    let mut types: Vec<u8> = backup
        .by_type
        .keys()
        .chain(restored.by_type.keys())
        .copied()
        .collect();
    types.sort_unstable();
    types.dedup();
    let mut rows = Vec::new();
    let mut diffs = Vec::new();
    for t in types {
        let (b, r) = (
            backup.by_type.get(&t).copied().unwrap_or(0),
            restored.by_type.get(&t).copied().unwrap_or(0),
        );
        let compared = !SELF_WRITTEN.contains(&t);
        let name = types::type_name(t).into_owned();
        if compared && b != r {
            diffs.push(format!("{name}: {b} in the backup, {r} after the restore"));
        }
        rows.push(TypeCount {
            name,
            backup: b,
            restored: r,
            compared,
        });
    }
    if backup.kv_digest != restored.kv_digest {
        diffs.push("KV key set: the keys after the restore are not the backup's".into());
    }
    (rows, diffs)
}

/// How long each step took, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    /// Fetching the backup and verifying it (decrypting an encrypted one).
    pub fetch_verify: f64,
    /// `PUT /v1/snapshot` into the scratch cluster, until it answered.
    pub restore: f64,
    /// `GET /v1/snapshot` back from it, verified.
    pub read_back: f64,
    /// The whole drill: the measured time to recover.
    pub total: f64,
}

/// A drill's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillReport {
    pub pass: bool,
    /// The backup drilled (file path, or `destination key`).
    pub source: String,
    /// The scratch cluster's address.
    pub target: String,
    /// Raft index of the backup.
    pub backup_index: u64,
    /// Raft index of the snapshot taken back.
    pub restored_index: u64,
    pub durations: Durations,
    /// What differed (empty when it passed).
    pub differences: Vec<String>,
    pub types: Vec<TypeCount>,
}

/// Why a drill could not be completed (a completed drill that found differences is a
/// [`DrillReport`] with `pass: false`).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The target is the production cluster.
    #[error("{0}")]
    Production(String),
    /// Fetching or verifying the backup failed.
    #[error("Error verifying snapshot: {0}")]
    Backup(String),
    /// The scratch cluster failed (restore refused, no snapshot back, an invalid one).
    #[error("{0}")]
    Target(String),
}

/// The scratch cluster a drill restores into: a client with the target's own token, and one
/// with the token of the cluster the backup came from. A restore replaces the target's ACL
/// state with the backup's, so the target's own token is gone afterwards (403 `ACL not
/// found`); the snapshot taken back then uses the backed-up cluster's token, which the restore
/// brought along. (This is also why a drilled scratch cluster holds production's tokens.)
#[derive(Debug, Clone)]
pub struct DrillTarget {
    /// The target with its own token: the production check and the restore.
    pub client: ConsulClient,
    /// The target with the backed-up cluster's token: the read-back after the restore.
    pub after_restore: Option<ConsulClient>,
}

impl DrillTarget {
    /// From the target's connection settings and the backed-up cluster's token (if any).
    ///
    /// Errors: unreadable or invalid TLS files of the target.
    pub fn new(
        target: &crate::consul::ConsulConfig,
        backed_up_token: Option<&crate::consul::Secret>,
    ) -> Result<Self, crate::consul::ConsulError> {
        let after_restore = match backed_up_token {
            Some(t) => Some(ConsulClient::new(&crate::consul::ConsulConfig {
                token: Some(t.clone()),
                ..target.clone()
            })?),
            None => None,
        };
        Ok(DrillTarget {
            client: ConsulClient::new(target)?,
            after_restore,
        })
    }
}

/// Refuses a target that is the production cluster: the same address, or a Raft server ID in
/// common (the same cluster under another name). An unreachable production Consul is no
/// evidence either way; the drill goes on.
pub async fn refuse_production(
    target: &ConsulClient,
    prod: &ConsulClient,
) -> Result<(), DrillError> {
    let (t, p) = (
        target.addr().trim_end_matches('/'),
        prod.addr().trim_end_matches('/'),
    );
    if t == p {
        return Err(DrillError::Production(format!("the target {t} is the agent's own Consul; a drill replaces the target's state. Use a scratch cluster, or --allow-production-target")));
    }
    let ids = |body: Vec<u8>| -> Vec<String> {
        super::peers::from_operator(&body)
            .map(|v| v.into_iter().map(|p| p.id).collect())
            .unwrap_or_default()
    };
    let Ok(prod_ids) = prod.raft_configuration().await.map(ids) else {
        tracing::warn!(production = %p, "could not read the configured Consul's Raft configuration; only the addresses were compared");
        return Ok(());
    };
    let target_ids =
        target.raft_configuration().await.map(ids).map_err(|e| {
            DrillError::Target(format!("reading the target's Raft configuration: {e}"))
        })?;
    if let Some(id) = target_ids.iter().find(|id| prod_ids.contains(id)) {
        return Err(DrillError::Production(format!("the target {t} shares Raft server {id} with the agent's own Consul {p}: it is the same cluster. Use a scratch cluster, or --allow-production-target")));
    }
    Ok(())
}

/// Runs a drill of `source` into `target`: fetch and verify, restore, take a snapshot back
/// (verified), compare. `started` is when the drill began (for the total).
///
/// # Errors
/// [`DrillError`] when a step could not be completed; differences are not errors.
pub async fn run_drill(
    source: &Source,
    drill_target: &DrillTarget,
    ids: &Arc<Identities>,
    restore_timeout: Option<Duration>,
    started: Instant,
) -> Result<DrillReport, DrillError> {
    let types = TypePolicy::AnyBelowFlag;
    let target = &drill_target.client;
    // 1. Fetch and verify, fingerprinting in the same pass.
    let t0 = Instant::now();
    let (prepared, backup) = fetch_verified_with(source, types, ids, Fingerprint::default())
        .await
        .map_err(|e| DrillError::Backup(e.to_string()))?;
    let fetch_verify = t0.elapsed().as_secs_f64();

    // 2. Restore into the scratch cluster: exactly the verified bytes.
    let t1 = Instant::now();
    let target_err = |what: &str, e: &dyn std::fmt::Display| {
        DrillError::Target(format!("{what} {}: {e}", target.addr()))
    };
    let (body, len) = body_of(&prepared.copy);
    let body = checked_body(
        body,
        prepared.report.archive_sha256,
        prepared.report.archive_len,
    );
    put_snapshot(target, body, len, restore_timeout)
        .await
        .map_err(|e| target_err("restoring into", &e))?;
    let restore = t1.elapsed().as_secs_f64();

    // 3. A snapshot back, verified and fingerprinted in one pass.
    let t2 = Instant::now();
    let download = match get_snapshot(target, false, RetryPolicy::default()).await {
        // The restore replaced the target's tokens with the backup's.
        Err(crate::consul::ConsulError::AclNotFound { .. }) if drill_target.after_restore.is_some() => {
            tracing::info!(target = %target.addr(), "the restore replaced the target's ACL tokens with the backup's; taking the snapshot back with the backed-up cluster's token");
            let after = drill_target.after_restore.as_ref().unwrap_or(target);
            get_snapshot(after, false, RetryPolicy::default()).await
        }
        other => other,
    }
    .map_err(|e| target_err("taking a snapshot back from", &e))?;
    let (restored_report, restored, ()) = stream_verified(
        download.body,
        Discard,
        ReadOptions { types },
        Fingerprint::default(),
        None,
    )
    .await
    .map_err(|e| target_err("the snapshot taken back from", &e))?;
    let read_back = t2.elapsed().as_secs_f64();

    let (rows, differences) = compare(&backup, &restored);
    Ok(DrillReport {
        pass: differences.is_empty(),
        source: source.to_string(),
        target: target.addr().to_string(),
        backup_index: prepared.report.meta.index,
        restored_index: restored_report.meta.index,
        durations: Durations {
            fetch_verify,
            restore,
            read_back,
            total: started.elapsed().as_secs_f64(),
        },
        differences,
        types: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(types: &[(u8, u64)], keys: &[&str]) -> Fingerprint {
        let mut f = Fingerprint::default();
        for k in keys {
            f.record(&RecordInfo {
                type_byte: msg::KVS,
                offset: 0,
                size: 1,
                kv_key: Some(k.as_bytes()),
                value: None,
            });
        }
        for &(t, n) in types {
            *f.by_type.entry(t).or_default() += n;
        }
        f
    }

    #[test]
    fn same_content_in_another_order_passes_and_self_written_types_do_not_count() {
        let a = fp(
            &[(msg::ACL_TOKEN, 2), (msg::REGISTER, 3)],
            &["a", "b/c", "d"],
        );
        let b = fp(
            &[(msg::ACL_TOKEN, 2), (msg::REGISTER, 5)],
            &["d", "a", "b/c"],
        );
        let (rows, diffs) = compare(&a, &b);
        assert!(diffs.is_empty(), "{diffs:?}");
        let reg = rows.iter().find(|r| r.name == "Register").expect("row");
        assert!(!reg.compared && reg.backup == 3 && reg.restored == 5);
    }

    #[test]
    fn lost_keys_and_lost_tokens_are_named() {
        let a = fp(&[(msg::ACL_TOKEN, 2)], &["a", "b", "c"]);
        let b = fp(&[(msg::ACL_TOKEN, 1)], &["a", "b"]);
        let (_, diffs) = compare(&a, &b);
        assert_eq!(diffs.len(), 3, "{diffs:?}");
        assert!(
            diffs[0].contains("KVS: 3 in the backup, 2 after"),
            "{diffs:?}"
        );
        assert!(
            diffs[1].contains("ACLToken: 2 in the backup, 1 after"),
            "{diffs:?}"
        );
        assert!(diffs[2].contains("KV key set"), "{diffs:?}");
        // Same count, other keys: only the digest tells.
        let (_, diffs) = compare(&fp(&[], &["a", "b"]), &fp(&[], &["a", "x"]));
        assert_eq!(
            diffs,
            ["KV key set: the keys after the restore are not the backup's"]
        );
    }
}
