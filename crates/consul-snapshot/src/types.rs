//! Consul's FSM message types as they appear as the type byte of `state.bin` records.
//!
//! Numbers and `String()` names per Consul's `agent/structs/structs.go` (spec §6.4). Numbers are
//! stable forever upstream; new ones are only ever added.

use std::borrow::Cow;

/// Name table indexed by type number; `None` where Consul has no `String()` name (37).
const NAMES: [Option<&str>; 44] = [
    Some("Register"),
    Some("Deregister"),
    Some("KVS"),
    Some("Session"),
    Some("ACL"),
    Some("Tombstone"),
    Some("CoordinateBatchUpdate"),
    Some("PreparedQuery"),
    Some("Txn"),
    Some("Autopilot"),
    Some("Area"),
    Some("ACLBootstrap"),
    Some("Intention"),
    Some("ConnectCA"),
    Some("ConnectCAProviderState"),
    Some("ConnectCAConfig"),
    Some("Index"),
    Some("ACLToken"),
    Some("ACLTokenDelete"),
    Some("ACLPolicy"),
    Some("ACLPolicyDelete"),
    Some("ConnectCALeaf"),
    Some("ConfigEntry"),
    Some("ACLRole"),
    Some("ACLRoleDelete"),
    Some("ACLBindingRule"),
    Some("ACLBindingRuleDelete"),
    Some("ACLAuthMethod"),
    Some("ACLAuthMethodDelete"),
    Some("ChunkingState"),
    Some("FederationState"),
    Some("SystemMetadata"),
    Some("ServiceVirtualIP"),
    Some("FreeVirtualIP"),
    Some("KindServiceName"),
    Some("Peering"),
    Some("PeeringDelete"),
    None,
    Some("PeeringTrustBundle"),
    Some("PeeringTrustBundleDelete"),
    Some("PeeringSecret"),
    Some("RaftLogVerifierCheckpoint"),
    Some("Resource"),
    Some("UpdateManualVirtualIPRequestType"),
];

/// Type numbers Consul CE has a snapshot restorer for (the "yes" rows of spec §6.4, plus
/// ChunkingState 29, the legacy ACL type 4 of old snapshots, and Resource 42 of 1.17–1.19).
const RESTORABLE: &[u8] = &[
    0, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 19, 22, 23, 25, 27, 29, 30, 31, 32, 33, 35, 38,
    40, 42,
];

/// Common type numbers, for writers and tests.
pub mod msg {
    pub const REGISTER: u8 = 0;
    pub const KVS: u8 = 2;
    pub const SESSION: u8 = 3;
    pub const TOMBSTONE: u8 = 5;
    pub const COORDINATE_BATCH_UPDATE: u8 = 6;
    pub const PREPARED_QUERY: u8 = 7;
    pub const AUTOPILOT: u8 = 9;
    pub const CONNECT_CA: u8 = 13;
    pub const INDEX: u8 = 16;
    pub const ACL_TOKEN: u8 = 17;
    pub const ACL_POLICY: u8 = 19;
    pub const CONFIG_ENTRY: u8 = 22;
    pub const CHUNKING_STATE: u8 = 29;
    pub const FEDERATION_STATE: u8 = 30;
    pub const SYSTEM_METADATA: u8 = 31;
}

/// The flag Consul ORs onto some Raft *log* entry types; never valid in `state.bin`.
pub const IGNORE_UNKNOWN_FLAG: u8 = 128;

/// First type number reserved for Consul Enterprise records.
pub const ENTERPRISE_MIN: u8 = 64;

/// The name `consul snapshot inspect` prints for a type byte: Consul's `String()` or
/// `Unknown(<n>)` (also for Enterprise numbers, as a CE build prints them).
pub fn type_name(t: u8) -> Cow<'static, str> {
    match NAMES.get(usize::from(t)).copied().flatten() {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("Unknown({t})")),
    }
}

/// How strictly record type bytes are judged while reading `state.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypePolicy {
    /// Accept only what a Consul server can restore: CE-restorable types and Enterprise types
    /// (64–127). Anything else would crash the server on restore (spec §6.6). For backups.
    #[default]
    Restorable,
    /// Accept every byte below 128, as `consul snapshot inspect` does (it prints
    /// `Unknown(<n>)`); for inspecting snapshots of newer Consul versions.
    AnyBelowFlag,
}

/// Whether a type byte passes `policy`; `Err` says why not.
pub fn check_type(t: u8, policy: TypePolicy) -> Result<(), TypeRejection> {
    if t >= IGNORE_UNKNOWN_FLAG {
        return Err(TypeRejection::Flagged);
    }
    match policy {
        TypePolicy::AnyBelowFlag => Ok(()),
        TypePolicy::Restorable if t >= ENTERPRISE_MIN || RESTORABLE.contains(&t) => Ok(()),
        TypePolicy::Restorable => Err(TypeRejection::NotRestorable),
    }
}

/// Why [`check_type`] refused a type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRejection {
    /// The IgnoreUnknown flag (128) is set.
    Flagged,
    /// Consul has no restorer for it.
    NotRestorable,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_consul() {
        assert_eq!(type_name(0), "Register");
        assert_eq!(type_name(2), "KVS");
        assert_eq!(type_name(29), "ChunkingState");
        assert_eq!(type_name(37), "Unknown(37)");
        assert_eq!(type_name(43), "UpdateManualVirtualIPRequestType");
        assert_eq!(type_name(44), "Unknown(44)");
        assert_eq!(type_name(65), "Unknown(65)");
    }

    #[test]
    fn policy_table() {
        use TypePolicy::*;
        assert_eq!(check_type(2, Restorable), Ok(()));
        assert_eq!(check_type(1, Restorable), Err(TypeRejection::NotRestorable));
        assert_eq!(
            check_type(44, Restorable),
            Err(TypeRejection::NotRestorable)
        );
        assert_eq!(check_type(65, Restorable), Ok(()));
        assert_eq!(check_type(44, AnyBelowFlag), Ok(()));
        assert_eq!(check_type(134, AnyBelowFlag), Err(TypeRejection::Flagged));
    }
}
