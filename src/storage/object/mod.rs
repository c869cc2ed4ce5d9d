//! Object storage through the `object_store` crate (Apache Arrow's, which speaks Azure Blob
//! Storage and Google Cloud Storage with streamed multipart uploads): one [`Backend`] for
//! every service it speaks; [`azure`] builds the Azure one.
//!
//! Layout, as the local backend's: the archive under `<prefix><name>` (our naming scheme) and
//! its metadata in the sidecar object `<prefix><name>.meta.json`. A commit writes the sidecar
//! first and then completes the multipart upload (Azure: Put Block List), so a backup is never
//! visible without its metadata; if the completion fails the sidecar is deleted again. An
//! aborted upload leaves uncommitted blocks only, which Azure discards after 7 days and which
//! are never listed.

pub mod azure;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use super::backend::{Backend, BackendUpload, ByteStream};
use super::naming::{folder_prefix, format_key, parse_key, BackupName};
use super::{BackupMeta, StorageError, StoredBackup};

/// Suffix of a backup's metadata sidecar object.
pub const SIDECAR: &str = ".meta.json";

/// A bucket or container under a key prefix, through `object_store`.
#[derive(Clone)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    kind: &'static str,
    /// `azure://account/container/prefix/`, for messages.
    label: String,
    /// Empty, or ending in `/`.
    prefix: String,
    /// Bytes per uploaded block or part.
    part_size: usize,
    /// Blocks or parts in flight at once.
    concurrency: usize,
}

impl fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectBackend({})", self.label)
    }
}

impl fmt::Display for ObjectBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// An `object_store` error as ours, naming the operation; `object_store` keeps credentials
/// and SAS query strings out of its messages.
fn object_err(kind: &str, op: &str, e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
        e if super::caused_by_timeout(&e) => StorageError::Timeout {
            backend: kind.to_string(),
            op: op.to_string(),
            detail: strip_urls(&e.to_string()),
        },
        e => StorageError::Object {
            kind: kind.to_string(),
            op: op.to_string(),
            class: match &e {
                object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. } => super::ErrorKind::Denied,
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotModified { .. }
                | object_store::Error::InvalidPath { .. }
                | object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. }
                | object_store::Error::UnknownConfigurationKey { .. } => super::ErrorKind::Invalid,
                _ => super::ErrorKind::Transient,
            },
            detail: strip_urls(&e.to_string()),
        },
    }
}

/// `text` with every URL cut to its scheme and host: transport errors name the URL they were
/// sending to, and a signed or session URL is a credential.
pub(crate) fn strip_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '-' && c != '.')
            .map_or(0, |i| i + 1);
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>' | ','))
            .unwrap_or(after.len());
        let host_end = after[..end].find(['/', '?', '#']).unwrap_or(end);
        let host = after[..host_end].rsplit('@').next().unwrap_or_default();
        out.push_str(&rest[..start]);
        out.push_str(&rest[start..at]);
        out.push_str("://");
        out.push_str(host);
        if host_end < end {
            out.push_str("/...");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

impl ObjectBackend {
    /// Wraps `store`; `prefix` gets a trailing `/` when it has none.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        kind: &'static str,
        label: String,
        prefix: &str,
        part_size: u64,
        concurrency: usize,
    ) -> Self {
        // Object names cannot start with `/`.
        let prefix = folder_prefix(prefix.trim_start_matches('/'));
        ObjectBackend {
            store,
            kind,
            label,
            prefix,
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            concurrency: concurrency.max(1),
        }
    }

    fn err(&self, op: &str, e: object_store::Error) -> StorageError {
        object_err(self.kind, op, e)
    }

    /// The backup's key after checking that it is one of ours.
    fn ours(&self, key: &str) -> Result<BackupName, StorageError> {
        parse_key(&self.prefix, key).ok_or_else(|| StorageError::NotOurs(key.to_string()))
    }
}

#[async_trait]
impl Backend for ObjectBackend {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        let prefix = Path::from(self.prefix.trim_end_matches('/'));
        let mut listing = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        // object_store follows every page; any page failing fails the listing.
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.err("list", e))?;
            let key = meta.location.to_string();
            if let Some(name) = parse_key(&self.prefix, &key) {
                out.push(StoredBackup {
                    key,
                    name,
                    size: meta.size,
                    modified: Some(meta.last_modified),
                    meta: None,
                });
            }
        }
        Ok(out)
    }

    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        let name = self.ours(key)?;
        let head = self
            .store
            .head(&Path::from(key))
            .await
            .map_err(|e| self.err("head", e))?;
        let meta = match self.store.get(&Path::from(format!("{key}{SIDECAR}"))).await {
            Ok(r) => {
                let raw = r.bytes().await.map_err(|e| self.err("get", e))?;
                serde_json::from_slice::<BackupMeta>(&raw).ok()
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(self.err("get", e)),
        };
        Ok(StoredBackup {
            key: key.to_string(),
            name,
            size: head.size,
            modified: Some(head.last_modified),
            meta,
        })
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        self.ours(key)?;
        let r = self
            .store
            .get(&Path::from(key))
            .await
            .map_err(|e| self.err("get", e))?;
        let kind = self.kind;
        Ok(r.into_stream()
            .map_err(move |e| object_err(kind, "get", e).into_io())
            .boxed())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        for key in keys {
            self.ours(key)?;
        }
        for key in keys {
            for path in [key.clone(), format!("{key}{SIDECAR}")] {
                match self.store.delete(&Path::from(path)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.err("delete", e)),
                }
            }
        }
        Ok(())
    }

    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError> {
        self.head(key).await?;
        let json = serde_json::to_vec_pretty(meta).map_err(|e| StorageError::Object {
            kind: self.kind.to_string(),
            op: "put".into(),
            detail: e.to_string(),
            class: super::ErrorKind::Invalid,
        })?;
        self.store
            .put(&Path::from(format!("{key}{SIDECAR}")), json.into())
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", e))
    }

    async fn begin(
        &self,
        name: &BackupName,
        _pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError> {
        let key = format_key(&self.prefix, name);
        let upload = self
            .store
            .put_multipart(&Path::from(key.as_str()))
            .await
            .map_err(|e| self.err("start upload", e))?;
        Ok(Box::new(ObjectUpload {
            backend: self.clone(),
            writer: WriteMultipart::new_with_chunk_size(upload, self.part_size),
            key,
            name: name.clone(),
        }))
    }

    /// Nothing to sweep: an aborted or abandoned upload leaves only uncommitted blocks, which
    /// are never listed and which Azure discards after 7 days.
    async fn sweep(&self, _older_than: Duration) -> Result<usize, StorageError> {
        Ok(0)
    }
}

/// A streamed multipart upload with at most `concurrency` blocks in flight.
pub struct ObjectUpload {
    backend: ObjectBackend,
    writer: WriteMultipart,
    key: String,
    name: BackupName,
}

impl fmt::Debug for ObjectUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectUpload({}{})", self.backend.label, self.key)
    }
}

#[async_trait]
impl BackendUpload for ObjectUpload {
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        // Bounded memory: wait while `concurrency` blocks are in flight.
        self.writer
            .wait_for_capacity(self.backend.concurrency)
            .await
            .map_err(|e| self.backend.err("upload", e))?;
        self.writer.put(chunk.clone());
        Ok(())
    }

    async fn commit(self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError> {
        let ObjectUpload {
            backend,
            writer,
            key,
            name,
        } = *self;
        let expected = meta.stored_size().unwrap_or(0);
        let sidecar = Path::from(format!("{key}{SIDECAR}"));
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| StorageError::Object {
            kind: backend.kind.to_string(),
            op: "encode metadata".into(),
            detail: e.to_string(),
            class: super::ErrorKind::Invalid,
        })?;
        if let Err(e) = backend.store.put(&sidecar, json.into()).await {
            if let Err(a) = writer.abort().await {
                tracing::warn!(key, error = %a, "aborting the upload failed");
            }
            return Err(backend.err("put", e));
        }
        let finished = writer.finish().await;
        let size = match finished {
            Ok(_) => backend
                .store
                .head(&Path::from(key.as_str()))
                .await
                .map(|h| h.size),
            Err(e) => Err(e),
        };
        match size {
            Ok(size) if size == expected => Ok(StoredBackup {
                key,
                name,
                size,
                modified: Some(Utc::now()),
                meta: Some(meta),
            }),
            other => {
                // Not published as verified: remove whatever became visible.
                let _ = Backend::delete(&backend, std::slice::from_ref(&key)).await;
                Err(match other {
                    Ok(size) => StorageError::Publish {
                        key,
                        detail: format!("it holds {size} bytes, {expected} were verified; deleted"),
                        class: super::ErrorKind::Invalid,
                    },
                    Err(e) => backend.err("complete upload", e),
                })
            }
        }
    }

    async fn abort(self: Box<Self>) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(key = %self.key, error = %e, "aborting the upload failed; its uncommitted blocks expire on their own");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_urls;

    #[test]
    fn urls_in_error_text_keep_their_host_only() {
        let text = "error sending request for url (https://storage.googleapis.com/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id=SECRETSESSION): connection reset";
        let got = strip_urls(text);
        assert_eq!(
            got,
            "error sending request for url (https://storage.googleapis.com/...): connection reset"
        );
        assert_eq!(
            strip_urls("http://user:pw@10.0.0.1:9000/bkt?X-Amz-Signature=abc and more"),
            "http://10.0.0.1:9000/... and more"
        );
        assert_eq!(strip_urls("no url here"), "no url here");
        assert_eq!(strip_urls("ends with http://h"), "ends with http://h");
    }
}
