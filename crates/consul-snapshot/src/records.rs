//! Decoding the record values an operator recovers or compares: KV entries (`DirEntry`, type
//! 2) and catalog registrations (`RegisterRequest`, type 0).
//!
//! Field names per Consul's `agent/structs/structs.go` (`DirEntry`, `RegisterRequest`,
//! `NodeService`, `HealthCheck`), encoded as msgpack maps by field name (spec §6.2–§6.3). A
//! value comes from [`crate::RecordInfo::value`], which a visitor asks for with
//! [`crate::RecordVisitor::wants_value`].

use rmpv::Value;

/// A record value that does not have the shape its type promises.
#[derive(Debug, thiserror::Error)]
#[error("{what} record: {detail}")]
pub struct RecordError {
    /// The record type (`KVS`, `Register`).
    pub what: &'static str,
    /// What is wrong.
    pub detail: String,
}

/// One KV entry of a snapshot: `DirEntry` as Consul persists it (spec §6.3 has a worked
/// example). `Value` nil or absent reads as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvRecord {
    /// The key, as raw bytes (Consul keys are Go strings: not necessarily UTF-8).
    pub key: Vec<u8>,
    /// The opaque 64-bit `Flags` clients set.
    pub flags: u64,
    /// The value bytes.
    pub value: Vec<u8>,
    /// The session holding the key as a lock at snapshot time, if any.
    pub session: Option<String>,
    /// `LockIndex`: how many times the key was acquired.
    pub lock_index: u64,
    /// Raft index of the key's creation.
    pub create_index: u64,
    /// Raft index of the key's last change.
    pub modify_index: u64,
}

/// A node, service or check registration (`RegisterRequest`): Consul persists one per node,
/// one per service instance and one per check (spec §6.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `Node`: the node name.
    pub node: String,
    /// `Service`: the service instance (`ID`, `Service` name) when this record registers one.
    pub service: Option<ServiceInstance>,
    /// `Check.CheckID` when this record registers a check.
    pub check: Option<String>,
}

/// A service instance of a [`Registration`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceInstance {
    /// `ID`: unique on its node.
    pub id: String,
    /// `Service`: the service name.
    pub name: String,
}

fn decode(what: &'static str, bytes: &[u8]) -> Result<Vec<(Value, Value)>, RecordError> {
    let mut rd = bytes;
    let v = rmpv::decode::read_value(&mut rd).map_err(|e| RecordError {
        what,
        detail: e.to_string(),
    })?;
    match v {
        Value::Map(m) => Ok(m),
        other => Err(RecordError {
            what,
            detail: format!("expected a map, found {}", kind(&other)),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::F32(_) | Value::F64(_) => "a float",
        Value::String(_) => "a string",
        Value::Binary(_) => "binary",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Ext(..) => "an extension",
    }
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| raw(k) == Some(name.as_bytes()))
        .map(|(_, v)| v)
}

/// The bytes of a string or binary value (Consul's old-spec "raw" is either).
fn raw(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

fn uint(map: &[(Value, Value)], name: &str) -> u64 {
    field(map, name).and_then(Value::as_u64).unwrap_or(0)
}

fn text(map: &[(Value, Value)], name: &str) -> Option<String> {
    field(map, name)
        .and_then(raw)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .filter(|s| !s.is_empty())
}

/// Decodes a KVS record's value (a `DirEntry` map).
///
/// Errors: the value is not a msgpack map, or it has no string `Key`.
pub fn kv_entry(bytes: &[u8]) -> Result<KvRecord, RecordError> {
    let m = decode("KVS", bytes)?;
    let key = field(&m, "Key")
        .and_then(raw)
        .ok_or_else(|| RecordError {
            what: "KVS",
            detail: "no Key".into(),
        })?
        .to_vec();
    let value = match field(&m, "Value") {
        None | Some(Value::Nil) => Vec::new(),
        Some(v) => raw(v)
            .ok_or_else(|| RecordError {
                what: "KVS",
                detail: format!("Value is {}", kind(v)),
            })?
            .to_vec(),
    };
    Ok(KvRecord {
        key,
        flags: uint(&m, "Flags"),
        value,
        session: text(&m, "Session"),
        lock_index: uint(&m, "LockIndex"),
        create_index: uint(&m, "CreateIndex"),
        modify_index: uint(&m, "ModifyIndex"),
    })
}

/// Decodes a Register record's value (a `RegisterRequest` map).
///
/// Errors: the value is not a msgpack map, or it has no `Node`.
pub fn registration(bytes: &[u8]) -> Result<Registration, RecordError> {
    let m = decode("Register", bytes)?;
    let node = text(&m, "Node").ok_or_else(|| RecordError {
        what: "Register",
        detail: "no Node".into(),
    })?;
    let sub = |name: &str| match field(&m, name) {
        Some(Value::Map(s)) => Some(s.as_slice()),
        _ => None,
    };
    let service = sub("Service").map(|s| ServiceInstance {
        id: text(s, "ID").unwrap_or_default(),
        name: text(s, "Service").unwrap_or_default(),
    });
    let check = sub("Check").map(|c| text(c, "CheckID").unwrap_or_default());
    Ok(Registration {
        node,
        service,
        check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msgpack::Value as W;

    #[test]
    fn the_worked_example_kv_record_decodes() {
        // spec §6.3: foo/bar = "1" at index 27.
        let v = W::record([
            ("CreateIndex", W::Uint(27)),
            ("Flags", W::Uint(0)),
            ("Key", W::raw("foo/bar")),
            ("LockIndex", W::Uint(0)),
            ("ModifyIndex", W::Uint(27)),
            ("Session", W::raw("")),
            ("Value", W::raw("1")),
        ]);
        let e = kv_entry(&v.to_bytes()).unwrap();
        assert_eq!(e.key, b"foo/bar");
        assert_eq!(e.value, b"1");
        assert_eq!((e.flags, e.modify_index, e.session), (0, 27, None));
    }

    #[test]
    fn a_nil_value_is_empty_and_flags_and_session_are_kept() {
        let v = W::record([
            ("Key", W::raw("lock")),
            ("Flags", W::Uint(42)),
            ("Session", W::raw("abc")),
            ("Value", W::Nil),
        ]);
        let e = kv_entry(&v.to_bytes()).unwrap();
        assert_eq!((e.value.len(), e.flags), (0, 42));
        assert_eq!(e.session.as_deref(), Some("abc"));
    }

    #[test]
    fn a_kv_record_without_a_key_or_not_a_map_is_an_error() {
        let no_key = W::record([("Flags", W::Uint(1))]).to_bytes();
        assert!(kv_entry(&no_key)
            .unwrap_err()
            .to_string()
            .contains("no Key"));
        assert!(kv_entry(&W::Uint(3).to_bytes()).is_err());
        assert!(kv_entry(&[]).is_err());
    }

    #[test]
    fn registrations_name_their_node_service_and_check() {
        let node = W::record([("Node", W::raw("n1")), ("Service", W::Nil)]);
        let r = registration(&node.to_bytes()).unwrap();
        assert_eq!((r.node.as_str(), r.service, r.check), ("n1", None, None));
        let svc = W::record([
            ("Node", W::raw("n1")),
            (
                "Service",
                W::record([("ID", W::raw("web-1")), ("Service", W::raw("web"))]),
            ),
        ]);
        let r = registration(&svc.to_bytes()).unwrap();
        assert_eq!(
            r.service,
            Some(ServiceInstance {
                id: "web-1".into(),
                name: "web".into()
            })
        );
    }
}
