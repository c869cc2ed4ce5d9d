//! What is stored with each backup (S3 user metadata, or a sidecar JSON file for local
//! storage): archive SHA-256, Raft index and term, state.bin size, datacenter, agent version,
//! creation time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::archive::ArchiveReport;

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
}

/// S3 user-metadata keys (sent as `x-amz-meta-<key>`).
const KEYS: [&str; 9] = [
    "sha256",
    "raft-index",
    "raft-term",
    "snapshot-id",
    "state-size",
    "archive-size",
    "datacenter",
    "agent-version",
    "created",
];

impl BackupMeta {
    /// Metadata for a verified archive.
    pub fn from_report(report: &ArchiveReport, datacenter: &str, created: &str) -> Self {
        BackupMeta {
            sha256: Some(hex::encode(report.archive_sha256)),
            index: Some(report.meta.index),
            term: Some(report.meta.term),
            snapshot_id: Some(report.meta.id.clone()),
            state_size: Some(report.state.len),
            archive_size: Some(report.archive_len),
            datacenter: Some(datacenter.to_string()),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            created: Some(created.to_string()),
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
        ];
        KEYS.iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect()
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
            ..Default::default()
        };
        assert_eq!(BackupMeta::from_map(&m.to_map()), m);
        let mut upper = HashMap::new();
        upper.insert("Raft-Index".to_string(), "12".to_string());
        assert_eq!(BackupMeta::from_map(&upper).index, Some(12));
    }
}
