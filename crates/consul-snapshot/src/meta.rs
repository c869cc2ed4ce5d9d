//! `meta.json`: Raft's `SnapshotMeta` (hashicorp/raft `snapshot.go`; spec §4).

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raft snapshot metadata as Consul writes it into `meta.json`. Unknown keys (such as the `CRC`
/// of Raft's on-disk copy) are ignored and missing keys read as zero, as Go's decoder does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotMeta {
    /// Raft snapshot format version; Consul writes 1, restore accepts 0 and 1.
    #[serde(default)]
    pub version: i64,
    /// `<term>-<index>-<unix millis>`, Raft's file-store naming.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Last Raft index in the snapshot.
    #[serde(default)]
    pub index: u64,
    /// Raft term of that index.
    #[serde(default)]
    pub term: u64,
    /// Legacy voter list (msgpack bytes), base64 in JSON; `null` when absent.
    #[serde(default, with = "peers")]
    pub peers: Option<Vec<u8>>,
    /// Raft cluster configuration at `configuration_index`.
    #[serde(default)]
    pub configuration: Configuration,
    /// Raft index of that configuration.
    #[serde(default)]
    pub configuration_index: u64,
    /// Exact length of `state.bin`, in bytes.
    #[serde(default)]
    pub size: i64,
}

/// Raft's `Configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Configuration {
    /// `null` when empty, as Go encodes a nil slice.
    #[serde(rename = "Servers", default)]
    pub servers: Option<Vec<Server>>,
}

/// One Raft server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Server {
    /// 0 voter, 1 nonvoter, 2 staging.
    #[serde(default)]
    pub suffrage: i32,
    /// Server ID (a UUID in Consul).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// RPC address, `host:port`.
    #[serde(default)]
    pub address: String,
}

impl SnapshotMeta {
    /// Encodes as Go's `json.Encoder.Encode` does: compact, struct field order, one `\n`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs with string/integer fields cannot fail.
        let mut out = super::gojson::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Decodes `meta.json` bytes; the error text is serde_json's.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

mod peers {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| serde::de::Error::custom(format!("illegal base64 data: {e}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = r#"{"Version":1,"ID":"2-13-1602222343947","Index":13,"Term":2,"Peers":"ka4xMjcuMC4wLjE6ODMwMA==","Configuration":{"Servers":[{"Suffrage":0,"ID":"a577b288-b354-770e-e909-da0972eb20e8","Address":"127.0.0.1:8300"}]},"ConfigurationIndex":1,"Size":5141}
"#;

    #[test]
    fn upstream_example_round_trips_byte_for_byte() {
        let m = SnapshotMeta::from_json(UPSTREAM.as_bytes()).expect("decode");
        assert_eq!(m.index, 13);
        assert_eq!(m.peers.as_deref(), Some(&b"\x91\xae127.0.0.1:8300"[..]));
        assert_eq!(String::from_utf8(m.to_json()).expect("utf8"), UPSTREAM);
        assert_eq!(m.to_json().len(), 246);
    }

    #[test]
    fn tolerant_like_go() {
        let m = SnapshotMeta::from_json(br#"{"Index":5,"CRC":"abc=","Other":1}"#).expect("decode");
        assert_eq!((m.index, m.version, m.peers.clone()), (5, 0, None));
        let empty = SnapshotMeta::default().to_json();
        assert!(String::from_utf8(empty)
            .expect("utf8")
            .contains(r#""Peers":null,"Configuration":{"Servers":null}"#));
    }
}
