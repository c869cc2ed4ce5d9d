//! What is stored with each backup (S3 user metadata, or a sidecar JSON file for local
//! storage): archive SHA-256, Raft index and term, state.bin size, datacenter, agent version,
//! creation time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::archive::ArchiveReport;
use crate::crypto::Envelope;

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

/// S3 user-metadata key of the recipients' fingerprints, joined by [`RECIPIENT_SEP`].
const RECIPIENTS_KEY: &str = "age-recipients";
const RECIPIENT_SEP: &str = "; ";

impl BackupMeta {
    /// The metadata to store for a verified archive, from this pending upload's metadata
    /// (its `datacenter` and `created`, set when the upload began) and the verifier's report;
    /// `envelope` when the stored bytes are the archive encrypted.
    pub fn committed(&self, report: &ArchiveReport, envelope: Option<&Envelope>) -> Self {
        let datacenter = self.datacenter.clone().unwrap_or_default();
        let created = self.created.clone().unwrap_or_default();
        BackupMeta {
            ciphertext_sha256: envelope.map(|e| hex::encode(e.ciphertext_sha256)),
            ciphertext_size: envelope.map(|e| e.ciphertext_len),
            recipients: envelope.map(|e| e.recipients.clone()),
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
        }
    }
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
            ..Default::default()
        };
        assert_eq!(BackupMeta::from_map(&m.to_map()), m);
        let mut upper = HashMap::new();
        upper.insert("Raft-Index".to_string(), "12".to_string());
        assert_eq!(BackupMeta::from_map(&upper).index, Some(12));
    }
}
