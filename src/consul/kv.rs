//! The KV calls of a selective restore: list a subtree, apply a transaction, write one key
//! with check-and-set. Shapes per Consul's `api/kv.go` and `api/txn.go`; limits as a 1.8.7
//! server enforces them (`agent/txn_endpoint.go`: 64 operations, a 512 KiB request body,
//! `txn_max_req_len`), observed against the real server of the test suite.

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{bounded_body_max, status_error, ConsulClient, ConsulError};

/// Most operations in one transaction (Consul's `maxTxnOps`).
pub const MAX_TXN_OPS: usize = 64;
/// Largest transaction request body, in bytes (Consul's default `txn_max_req_len`).
pub const MAX_TXN_BODY: usize = 512 * 1024;
/// Largest KV listing read, in bytes: a subtree is held in memory to plan a restore.
pub const MAX_LISTING: usize = 1 << 30;

/// Characters of a key escaped in a URL path: all but unreserved ones and `/` (so that `%`,
/// `?`, `#` and spaces in a key reach Consul as themselves).
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `/v1/kv/<key>` with the key escaped.
pub fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", utf8_percent_encode(key, KEY_ESCAPE))
}

/// A live KV entry as `GET /v1/kv/<prefix>?recurse` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LiveEntry {
    pub key: String,
    #[serde(default)]
    pub flags: u64,
    /// Base64 of the value; absent (null) for an empty value.
    #[serde(default)]
    pub value: Option<String>,
    /// The session holding the key as a lock, if any.
    #[serde(default)]
    pub session: Option<String>,
    /// Raft index of the last change: the check-and-set index of a write.
    #[serde(default)]
    pub modify_index: u64,
}

impl LiveEntry {
    /// The value's bytes. Errors: `Value` is not base64.
    pub fn value_bytes(&self) -> Result<Vec<u8>, ConsulError> {
        match &self.value {
            None => Ok(Vec::new()),
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| ConsulError::Decode {
                    what: format!("the value of {}", self.key),
                    detail: e.to_string(),
                }),
        }
    }
}

/// One KV operation of a transaction (`api.KVTxnOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// `cas`: write if the key's ModifyIndex is `index` (0: the key must not exist).
    Cas {
        key: String,
        value: Vec<u8>,
        flags: u64,
        index: u64,
    },
    /// `set`: write unconditionally.
    Set {
        key: String,
        value: Vec<u8>,
        flags: u64,
    },
    /// `delete-cas`: delete if the key's ModifyIndex is `index`.
    DeleteCas { key: String, index: u64 },
    /// `delete`: delete unconditionally.
    Delete { key: String },
    /// `check-index`: fail unless the key's ModifyIndex is `index` (writes nothing).
    CheckIndex { key: String, index: u64 },
}

impl KvOp {
    /// The key the operation acts on.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Cas { key, .. }
            | KvOp::Set { key, .. }
            | KvOp::DeleteCas { key, .. }
            | KvOp::Delete { key }
            | KvOp::CheckIndex { key, .. } => key,
        }
    }

    /// The operation as the transaction endpoint reads it.
    pub fn to_json(&self) -> Value {
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        let kv = match self {
            KvOp::Cas {
                key,
                value,
                flags,
                index,
            } => {
                json!({"Verb": "cas", "Key": key, "Value": b64(value), "Flags": flags, "Index": index})
            }
            KvOp::Set { key, value, flags } => {
                json!({"Verb": "set", "Key": key, "Value": b64(value), "Flags": flags})
            }
            KvOp::DeleteCas { key, index } => {
                json!({"Verb": "delete-cas", "Key": key, "Index": index})
            }
            KvOp::Delete { key } => json!({"Verb": "delete", "Key": key}),
            KvOp::CheckIndex { key, index } => {
                json!({"Verb": "check-index", "Key": key, "Index": index})
            }
        };
        json!({ "KV": kv })
    }

    /// Bytes this operation adds to a transaction body (its JSON plus a separator).
    pub fn body_len(&self) -> usize {
        self.to_json().to_string().len() + 1
    }
}

/// One failed operation of a rolled-back transaction (`api.TxnError`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnError {
    /// Position of the operation in the transaction.
    pub op_index: usize,
    /// Consul's reason ("Permission denied", "failed to set key \"k\", index is stale"...).
    pub what: String,
}

impl TxnError {
    /// Whether the operation failed on an ACL rule (Consul's `acl.ErrPermissionDenied` text,
    /// the one reason a transaction reports per operation before applying anything).
    pub fn is_permission_denied(&self) -> bool {
        self.what == "Permission denied"
    }
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Every operation applied.
    Applied,
    /// Nothing applied (409): the operations that failed.
    RolledBack(Vec<TxnError>),
}

impl ConsulClient {
    /// `GET /v1/kv/<prefix>?recurse`: every entry whose key starts with `prefix` (raw string
    /// prefix), sorted by key. An empty subtree (404) is an empty list. At most
    /// [`MAX_LISTING`] bytes are read.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<LiveEntry>, ConsulError> {
        let req = self.request(Method::GET, &kv_path(prefix), &[("recurse", "")]);
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::from_transport(self.addr(), &e))?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            s if s.is_success() => {
                let body = bounded_body_max(resp, "kv list", self.addr(), MAX_LISTING).await?;
                let mut entries: Vec<LiveEntry> =
                    serde_json::from_slice(&body).map_err(|e| ConsulError::Decode {
                        what: "kv list".into(),
                        detail: e.to_string(),
                    })?;
                entries.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(entries)
            }
            _ => Err(status_error(resp).await),
        }
    }

    /// `PUT /v1/txn` with `ops` (at most [`MAX_TXN_OPS`], a body of at most
    /// [`MAX_TXN_BODY`] bytes): all applied, or none and the failed operations (409).
    pub async fn txn(&self, ops: &[KvOp]) -> Result<TxnOutcome, ConsulError> {
        let body: Vec<Value> = ops.iter().map(KvOp::to_json).collect();
        let req = self.request(Method::PUT, "/v1/txn", &[]).json(&body);
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::from_transport(self.addr(), &e))?;
        match resp.status() {
            s if s.is_success() => {
                // The results repeat every entry written; only their arrival matters.
                bounded_body_max(resp, "txn", self.addr(), 64 << 20).await?;
                Ok(TxnOutcome::Applied)
            }
            StatusCode::CONFLICT => {
                #[derive(Deserialize)]
                #[serde(rename_all = "PascalCase")]
                struct Answer {
                    #[serde(default)]
                    errors: Option<Vec<TxnError>>,
                }
                let body = bounded_body_max(resp, "txn", self.addr(), 8 << 20).await?;
                let a: Answer = serde_json::from_slice(&body).map_err(|e| ConsulError::Decode {
                    what: "txn".into(),
                    detail: e.to_string(),
                })?;
                Ok(TxnOutcome::RolledBack(a.errors.unwrap_or_default()))
            }
            _ => Err(status_error(resp).await),
        }
    }

    /// `PUT /v1/kv/<key>?cas=<index>&flags=<flags>` (without `cas` when `index` is `None`):
    /// whether the key was written (false: its ModifyIndex was not `index`). For a value too
    /// large for a transaction body.
    pub async fn kv_put(
        &self,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        index: Option<u64>,
    ) -> Result<bool, ConsulError> {
        let flags_s = flags.to_string();
        let cas_s = index.map(|i| i.to_string());
        let mut q = vec![("flags", flags_s.as_str())];
        if let Some(c) = &cas_s {
            q.push(("cas", c.as_str()));
        }
        let req = self.request(Method::PUT, &kv_path(key), &q).body(value);
        let resp = self.send(req).await?;
        let body = super::client::bounded_body(resp, "kv put", self.addr()).await?;
        Ok(body.trim_ascii() == b"true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_in_the_path_but_slashes_kept() {
        assert_eq!(kv_path("app/a b?c#d%e"), "/v1/kv/app/a%20b%3Fc%23d%25e");
        assert_eq!(kv_path("app/x-y_z.~"), "/v1/kv/app/x-y_z.~");
    }

    #[test]
    fn operations_are_written_as_the_txn_endpoint_reads_them() {
        let op = KvOp::Cas {
            key: "app/a".into(),
            value: b"one".to_vec(),
            flags: 7,
            index: 0,
        };
        assert_eq!(
            op.to_json(),
            json!({"KV": {"Verb": "cas", "Key": "app/a", "Value": "b25l", "Flags": 7, "Index": 0}})
        );
        assert_eq!(op.body_len(), op.to_json().to_string().len() + 1);
        let del = KvOp::DeleteCas {
            key: "k".into(),
            index: 9,
        };
        assert_eq!(del.to_json()["KV"]["Verb"], "delete-cas");
    }

    #[test]
    fn a_rolled_back_answer_names_permission_denials() {
        let e: TxnError =
            serde_json::from_str(r#"{"OpIndex":1,"What":"Permission denied"}"#).unwrap();
        assert!(e.is_permission_denied());
        let e: TxnError = serde_json::from_str(
            r#"{"OpIndex":0,"What":"failed to set key \"app/a\", index is stale"}"#,
        )
        .unwrap();
        assert!(!e.is_permission_denied());
    }
}
