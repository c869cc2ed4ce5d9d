//! The record counts an operator reads a snapshot by: KV entries, catalog nodes and services,
//! ACL tokens and policies, sessions, config entries, prepared queries. Counted by the state
//! parser on every read, so every verified archive carries them (and the shrink guard compares
//! them between backups).
//!
//! What a record is follows Consul's `agent/consul/fsm/snapshot_ce.go` (spec §6.4, §6.5): one
//! `KVS` record per KV entry (tombstones are `Tombstone` records, not counted); per catalog
//! node one `Register` record with neither `Service` nor `Check` set, then one with `Service`
//! per service instance and one with `Check` per health check.

use serde::{Deserialize, Serialize};

use super::types::msg;

/// What a `Register` record registers, by which of its `Service` and `Check` fields is set
/// (not nil).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterKind {
    /// Neither set: the node itself.
    Node,
    /// `Service` set: one service instance on the node.
    Service,
    /// `Check` set (and `Service` nil): one health check.
    Check,
}

impl RegisterKind {
    /// From whether the record's `Service` and `Check` fields are present and not nil.
    pub fn of(service: bool, check: bool) -> Self {
        match (service, check) {
            (true, _) => RegisterKind::Service,
            (false, true) => RegisterKind::Check,
            (false, false) => RegisterKind::Node,
        }
    }
}

/// Records per kind in one state.bin. Serialized with these snake_case names (backup
/// metadata, `list --output json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordCounts {
    /// `KVS` records.
    pub kv_entries: u64,
    /// `Register` records of a node.
    pub nodes: u64,
    /// `Register` records of a service instance.
    pub services: u64,
    /// `ACLToken` records.
    pub acl_tokens: u64,
    /// `ACLPolicy` records.
    pub acl_policies: u64,
    /// `Session` records.
    pub sessions: u64,
    /// `ConfigEntry` records.
    pub config_entries: u64,
    /// `PreparedQuery` records.
    pub prepared_queries: u64,
}

impl RecordCounts {
    /// Counts one record of type `type_byte`; `register` says what a `Register` record
    /// registers (ignored for other types).
    pub fn add(&mut self, type_byte: u8, register: Option<RegisterKind>) {
        let slot = match type_byte {
            msg::REGISTER => match register {
                Some(RegisterKind::Service) => &mut self.services,
                Some(RegisterKind::Check) => return,
                Some(RegisterKind::Node) | None => &mut self.nodes,
            },
            msg::KVS => &mut self.kv_entries,
            msg::SESSION => &mut self.sessions,
            msg::ACL_TOKEN => &mut self.acl_tokens,
            msg::ACL_POLICY => &mut self.acl_policies,
            msg::CONFIG_ENTRY => &mut self.config_entries,
            msg::PREPARED_QUERY => &mut self.prepared_queries,
            _ => return,
        };
        *slot += 1;
    }
}

impl RecordCounts {
    /// Every count with its snake_case name, in declaration order.
    pub fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("kv_entries", self.kv_entries),
            ("nodes", self.nodes),
            ("services", self.services),
            ("acl_tokens", self.acl_tokens),
            ("acl_policies", self.acl_policies),
            ("sessions", self.sessions),
            ("config_entries", self.config_entries),
            ("prepared_queries", self.prepared_queries),
        ]
    }

    /// The counts `get` gives by name (as [`RecordCounts::fields`] names them); `None` unless
    /// every one is there (metadata written before counts existed, or cut short).
    pub fn from_fields(get: impl Fn(&str) -> Option<u64>) -> Option<Self> {
        Some(RecordCounts {
            kv_entries: get("kv_entries")?,
            nodes: get("nodes")?,
            services: get("services")?,
            acl_tokens: get("acl_tokens")?,
            acl_policies: get("acl_policies")?,
            sessions: get("sessions")?,
            config_entries: get("config_entries")?,
            prepared_queries: get("prepared_queries")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_records_split_into_nodes_services_and_checks() {
        let mut c = RecordCounts::default();
        c.add(msg::REGISTER, Some(RegisterKind::of(false, false)));
        c.add(msg::REGISTER, Some(RegisterKind::of(true, false)));
        c.add(msg::REGISTER, Some(RegisterKind::of(true, false)));
        c.add(msg::REGISTER, Some(RegisterKind::of(false, true)));
        c.add(msg::KVS, None);
        c.add(msg::TOMBSTONE, None);
        c.add(msg::ACL_TOKEN, None);
        assert_eq!(
            c,
            RecordCounts {
                nodes: 1,
                services: 2,
                kv_entries: 1,
                acl_tokens: 1,
                ..RecordCounts::default()
            }
        );
    }
}
