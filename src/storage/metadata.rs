//! What is stored with each backup (a `<name>.meta.json` manifest beside it, or S3 user
//! metadata for a small S3 backup sent in one PutObject): archive SHA-256, Raft index and
//! term, state.bin size, datacenter, agent version, creation time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::archive::ArchiveReport;
use crate::archive::RecordCounts;
use crate::guard::AnomalyMark;
use crate::pipeline::Annotations;

/// Metadata of one backup. Every field is optional when read back: objects written by other
/// tools, or whose metadata update failed, carry less.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackupMeta {
    /// Lowercase hex SHA-256 of the archive bytes.
    pub sha256: Option<String>,
    /// Raft index (`meta.json` Index).
    pub index: Option<u64>,
    /// Raft term.
    pub term: Option<u64>,
    /// Snapshot ID (`meta.json` ID).
    pub snapshot_id: Option<String>,
    /// Length of state.bin, in bytes.
    pub state_size: Option<u64>,
    /// Length of the archive, in bytes.
    pub archive_size: Option<u64>,
    /// Datacenter the snapshot came from.
    pub datacenter: Option<String>,
    /// Version of consul-snapshot-agent that stored it.
    pub agent_version: Option<String>,
    /// RFC 3339 time the snapshot was taken.
    pub created: Option<String>,
    /// For a backup encrypted with age: lowercase hex SHA-256 of the stored age file (`sha256`
    /// and `archive_size` describe the plaintext archive inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_sha256: Option<String>,
    /// For an encrypted backup: length of the stored age file, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_size: Option<u64>,
    /// For an encrypted backup: fingerprints of its recipients
    /// ([`crate::crypto::keys::fingerprint`]), never the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// Records per kind in the snapshot (KV entries, nodes, services...), what the shrink
    /// guard compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<RecordCounts>,
    /// Set when the shrink guard found this snapshot markedly smaller than the backup before
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalyMark>,
    /// `Some(true)` for the snapshot a restore took of the state it was about to replace (the
    /// state that may be broken): never chosen by `--latest`, `--before` or a drill, never a
    /// shrink-guard baseline. S3 user metadata `safety-snapshot: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_snapshot: Option<bool>,
    /// `Some(true)` when the shrink guard could not compare this snapshot (a destination's
    /// listing failed and no baseline was found): never a baseline, and judged at the next
    /// cycle that can list. S3 user metadata `guard-unjudged: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unjudged: Option<bool>,
}

/// The identity of a backup whose key does not carry it (S3's static name): datacenter,
/// creation time (to the second) and Raft index from its metadata, encrypted when an
/// envelope is recorded. `None` when any of them is missing.
pub fn name_from_meta(meta: &BackupMeta) -> Option<super::BackupName> {
    use chrono::SubsecRound;
    let datacenter = meta.datacenter.clone().filter(|d| !d.is_empty())?;
    let time = chrono::DateTime::parse_from_rfc3339(meta.created.as_deref()?)
        .ok()?
        .with_timezone(&chrono::Utc)
        .trunc_subsecs(0);
    Some(super::BackupName {
        time,
        datacenter,
        index: meta.index?,
        encrypted: meta.ciphertext_sha256.is_some() || meta.recipients.is_some(),
    })
}

/// S3 user-metadata keys (sent as `x-amz-meta-<key>`).
const KEYS: [&str; 11] = [
    "sha256",
    "raft-index",
    "raft-term",
    "snapshot-id",
    "state-size",
    "archive-size",
    "datacenter",
    "agent-version",
    "created",
    "ciphertext-sha256",
    "ciphertext-size",
];

/// S3 user-metadata key prefix of each record count (`count-kv-entries`...).
const COUNT_PREFIX: &str = "count-";
/// S3 user-metadata keys of the anomaly mark.
const ANOMALY_KEYS: [&str; 3] = ["anomaly", "anomaly-baseline", "anomaly-acknowledged"];

/// S3 user-metadata keys of the two flags (value `true`).
const SAFETY_KEY: &str = "safety-snapshot";
const UNJUDGED_KEY: &str = "guard-unjudged";

/// S3 user-metadata key of the recipients' fingerprints, joined by [`RECIPIENT_SEP`].
const RECIPIENTS_KEY: &str = "age-recipients";
const RECIPIENT_SEP: &str = "; ";

impl BackupMeta {
    /// The metadata to store for a verified archive, from this pending upload's metadata
    /// (its `datacenter` and `created`, set when the upload began) and the verifier's report;
    /// `notes` when the stored bytes are the archive encrypted or the snapshot is an anomaly.
    pub fn committed(&self, report: &ArchiveReport, notes: &Annotations) -> Self {
        let envelope = notes.envelope.as_ref();
        let datacenter = self.datacenter.clone().unwrap_or_default();
        let created = self.created.clone().unwrap_or_default();
        BackupMeta {
            ciphertext_sha256: envelope.map(|e| hex::encode(e.ciphertext_sha256)),
            ciphertext_size: envelope.map(|e| e.ciphertext_len),
            recipients: envelope.map(|e| e.recipients.clone()),
            counts: Some(report.state.counts),
            anomaly: notes.anomaly.clone(),
            safety_snapshot: self.safety_snapshot,
            unjudged: self.unjudged,
            sha256: Some(hex::encode(report.archive_sha256)),
            index: Some(report.meta.index),
            term: Some(report.meta.term),
            snapshot_id: Some(report.meta.id.clone()),
            state_size: Some(report.state.len),
            archive_size: Some(report.archive_len),
            datacenter: Some(datacenter),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            created: Some(created),
        }
    }

    /// Whether this is a restore's safety snapshot.
    pub fn is_safety_snapshot(&self) -> bool {
        self.safety_snapshot == Some(true)
    }

    /// Whether the shrink guard has not judged this snapshot yet.
    pub fn is_unjudged(&self) -> bool {
        self.unjudged == Some(true)
    }

    /// Whether this backup carries an anomaly mark no operator has acknowledged.
    pub fn unacknowledged_anomaly(&self) -> bool {
        self.anomaly
            .as_ref()
            .is_some_and(|a| a.acknowledged.is_none())
    }

    /// Whether the stored bytes are an age file.
    pub fn encrypted(&self) -> bool {
        self.ciphertext_sha256.is_some()
    }

    /// The length of the stored bytes, in bytes: the age file's for an encrypted backup.
    pub fn stored_size(&self) -> Option<u64> {
        if self.encrypted() {
            self.ciphertext_size
        } else {
            self.archive_size
        }
    }

    /// As S3 user metadata.
    pub fn to_map(&self) -> HashMap<String, String> {
        let values = [
            self.sha256.clone(),
            self.index.map(|v| v.to_string()),
            self.term.map(|v| v.to_string()),
            self.snapshot_id.clone(),
            self.state_size.map(|v| v.to_string()),
            self.archive_size.map(|v| v.to_string()),
            self.datacenter.clone(),
            self.agent_version.clone(),
            self.created.clone(),
            self.ciphertext_sha256.clone(),
            self.ciphertext_size.map(|v| v.to_string()),
        ];
        let mut map: HashMap<String, String> = KEYS
            .iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        if let Some(r) = &self.recipients {
            map.insert(RECIPIENTS_KEY.to_string(), r.join(RECIPIENT_SEP));
        }
        if let Some(c) = &self.counts {
            for (name, n) in c.fields() {
                map.insert(count_key(name), n.to_string());
            }
        }
        if let Some(a) = &self.anomaly {
            let values = [Some(&a.reason), Some(&a.baseline), a.acknowledged.as_ref()];
            for (k, v) in ANOMALY_KEYS.iter().zip(values) {
                if let Some(v) = v {
                    map.insert(k.to_string(), v.clone());
                }
            }
        }
        for (k, on) in [
            (SAFETY_KEY, self.safety_snapshot),
            (UNJUDGED_KEY, self.unjudged),
        ] {
            if on == Some(true) {
                map.insert(k.to_string(), "true".to_string());
            }
        }
        map
    }

    /// From S3 user metadata (keys are case-insensitive on the wire).
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let get = |k: &str| {
            map.iter()
                .find(|(mk, _)| mk.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let num = |k: &str| get(k).and_then(|v| v.parse().ok());
        BackupMeta {
            sha256: get("sha256"),
            index: num("raft-index"),
            term: num("raft-term"),
            snapshot_id: get("snapshot-id"),
            state_size: num("state-size"),
            archive_size: num("archive-size"),
            datacenter: get("datacenter"),
            agent_version: get("agent-version"),
            created: get("created"),
            ciphertext_sha256: get("ciphertext-sha256"),
            ciphertext_size: num("ciphertext-size"),
            recipients: get(RECIPIENTS_KEY)
                .map(|v| v.split(RECIPIENT_SEP).map(str::to_string).collect()),
            counts: RecordCounts::from_fields(|name| num(&count_key(name))),
            anomaly: get(ANOMALY_KEYS[0]).map(|reason| AnomalyMark {
                reason,
                baseline: get(ANOMALY_KEYS[1]).unwrap_or_default(),
                acknowledged: get(ANOMALY_KEYS[2]),
            }),
            safety_snapshot: get(SAFETY_KEY).map(|v| v == "true").filter(|v| *v),
            unjudged: get(UNJUDGED_KEY).map(|v| v == "true").filter(|v| *v),
        }
    }
}

/// `kv_entries` → `count-kv-entries` (S3 metadata keys use dashes).
fn count_key(name: &str) -> String {
    format!("{COUNT_PREFIX}{}", name.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip() {
        let m = BackupMeta {
            sha256: Some("ab".into()),
            index: Some(7),
            term: Some(2),
            state_size: Some(9),
            ciphertext_sha256: Some("cd".into()),
            ciphertext_size: Some(11),
            recipients: Some(vec!["age SHA256:x".into(), "ssh-ed25519 SHA256:y".into()]),
            counts: Some(RecordCounts {
                kv_entries: 120,
                nodes: 4,
                ..RecordCounts::default()
            }),
            anomaly: Some(AnomalyMark {
                reason: "kv_entries 120 -> 0 (-100%) since x".into(),
                baseline: "x".into(),
                acknowledged: Some("2026-11-25T10:00:00Z".into()),
            }),
            safety_snapshot: Some(true),
            unjudged: Some(true),
            ..Default::default()
        };
        assert_eq!(BackupMeta::from_map(&m.to_map()), m);
        let mut upper = HashMap::new();
        upper.insert("Raft-Index".to_string(), "12".to_string());
        assert_eq!(BackupMeta::from_map(&upper).index, Some(12));
    }

    #[test]
    fn a_static_name_takes_its_identity_from_the_metadata() {
        let meta = BackupMeta {
            datacenter: Some("dc2".into()),
            created: Some("2026-12-07T10:11:12.345Z".into()),
            index: Some(77),
            ciphertext_sha256: Some("ab".into()),
            ..BackupMeta::default()
        };
        let n = name_from_meta(&meta).expect("name");
        assert_eq!(
            (n.datacenter.as_str(), n.index, n.encrypted),
            ("dc2", 77, true)
        );
        assert_eq!(n.time.to_rfc3339(), "2026-12-07T10:11:12+00:00");
        let no_index = BackupMeta {
            index: None,
            ..meta.clone()
        };
        assert_eq!(name_from_meta(&no_index), None);
        let bad_time = BackupMeta {
            created: Some("yesterday".into()),
            ..meta
        };
        assert_eq!(name_from_meta(&bad_time), None);
    }
}
