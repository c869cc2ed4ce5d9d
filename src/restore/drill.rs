//! Restore drills: prove a backup restores by restoring it into a scratch Consul cluster and
//! taking a snapshot back. What must survive the round trip is the backup's content, compared
//! as a [`Fingerprint`]: records per type and a digest of the KV key set.
//!
//! Record types a live cluster writes by itself after a restore are shown but not compared
//! ([`SELF_WRITTEN`]): the scratch servers re-register their own node (Register) and
//! coordinates, sessions expire, tombstones are reaped, and Raft/autopilot bookkeeping
//! (Autopilot, Index, SystemMetadata, ChunkingState) is rewritten (Consul's
//! `agent/consul/fsm`).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::types::{self, msg};
use crate::archive::{RecordInfo, RecordVisitor};

/// Types not compared by a drill (see the module docs).
pub const SELF_WRITTEN: [u8; 8] = [
    msg::REGISTER,
    msg::SESSION,
    msg::TOMBSTONE,
    msg::COORDINATE_BATCH_UPDATE,
    msg::AUTOPILOT,
    msg::INDEX,
    msg::SYSTEM_METADATA,
    msg::CHUNKING_STATE,
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
