//! A multipart upload as a pipeline sink. Parts of `part_size` bytes are cut as the archive
//! streams and uploaded with at most `concurrency` in flight (a semaphore permit per part is the
//! back-pressure point: memory ≤ `part_size × (concurrency + 1)`). The upload is completed only
//! in `commit`, i.e. after verification; any failure aborts the tasks and sends
//! AbortMultipartUpload, so no partial object becomes visible and no upload is left behind.
//!
//! Metadata known only after verification (SHA-256, term, sizes) goes to the manifest
//! `<key>.meta.json`, written just before CompleteMultipartUpload and deleted again if the
//! completion fails, as Azure and GCS write their sidecars: no server-side copy of the
//! archive (on AWS a copy is a second billed write, a second version with versioning, and
//! one that cannot be removed under Object Lock). An archive smaller than one part is sent as
//! one PutObject after verification, with all its metadata as user metadata. Where both
//! exist, the manifest wins (`S3Store`'s `Backend::head`); backups stored with their digest in
//! user metadata (before manifests) keep listing and restoring.
//!
//! Visibility rule: an object stays under a backup name only if its bytes verified **and** its
//! digest is stored and read back. Any failure from CompleteMultipartUpload (or the
//! PutObject) on deletes the object again and reports the failure; if even the delete fails,
//! what is left is a verified archive that `restore` checks by its SHA256SUMS.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass};
use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::config::S3Config;
use super::{delete_key, head_object, manifest_key, put_manifest, s3_err};
use crate::storage::metadata::BackupMeta;
use crate::storage::naming::BackupName;
use crate::storage::{BackendUpload, StorageError, StoredBackup};

const CONTENT_TYPE: &str = "application/gzip";

/// Deleting an object whose publish failed: 3 attempts (on top of the SDK's own retries).
const UNPUBLISH_RETRY: crate::retry::RetryPolicy = crate::retry::RetryPolicy::new(
    2,
    std::time::Duration::from_millis(200),
    std::time::Duration::from_secs(2),
);

/// See the module docs.
pub struct S3Upload {
    client: aws_sdk_s3::Client,
    cfg: Arc<S3Config>,
    key: String,
    name: BackupName,
    pending: BackupMeta,
    buf: BytesMut,
    upload_id: Option<String>,
    next_part: i32,
    tasks: JoinSet<Result<CompletedPart, StorageError>>,
    done: Vec<CompletedPart>,
    permits: Arc<Semaphore>,
    /// Set once CompleteMultipartUpload or PutObject was sent: from then on a failure must
    /// delete the object, not just abort the upload.
    maybe_visible: bool,
    /// Writing the static key (every snapshot to one name): an anomaly never replaces it,
    /// and it is never deleted.
    static_key: bool,
    /// Set once the manifest was written: a failure before completion deletes it again.
    manifest_written: bool,
}

impl std::fmt::Debug for S3Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Upload")
            .field("key", &self.key)
            .field("upload_id", &self.upload_id)
            .finish_non_exhaustive()
    }
}

impl S3Upload {
    pub(super) fn new(
        client: aws_sdk_s3::Client,
        cfg: Arc<S3Config>,
        key: String,
        name: BackupName,
        pending: BackupMeta,
        static_key: bool,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        S3Upload {
            client,
            cfg,
            key,
            name,
            pending,
            buf: BytesMut::new(),
            upload_id: None,
            next_part: 1,
            tasks: JoinSet::new(),
            done: Vec::new(),
            permits,
            maybe_visible: false,
            static_key,
            manifest_written: false,
        }
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub(crate) async fn ensure_upload(&mut self) -> Result<String, StorageError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let req = self
            .client
            .create_multipart_upload()
            .bucket(&self.cfg.bucket)
            .key(&self.key)
            .content_type(CONTENT_TYPE)
            .set_metadata(Some(self.pending.to_map()));
        let req = with_sse!(req, self.cfg);
        let req = req.set_storage_class(self.cfg.storage_class.as_deref().map(StorageClass::from));
        let r = req
            .send()
            .await
            .map_err(|e| s3_err("CreateMultipartUpload", e))?;
        let id = r.upload_id().ok_or_else(|| StorageError::S3 {
            class: crate::storage::ErrorKind::Invalid,
            op: "CreateMultipartUpload".into(),
            detail: "no upload ID in the answer".into(),
        })?;
        self.upload_id = Some(id.to_string());
        tracing::debug!(key = %self.key, upload_id = id, "multipart upload started");
        Ok(id.to_string())
    }

    /// Collects finished part uploads; the first failure is returned.
    fn reap(&mut self) -> Result<(), StorageError> {
        while let Some(r) = self.tasks.try_join_next() {
            self.done.push(r.map_err(|e| StorageError::S3 {
                op: "UploadPart".into(),
                detail: e.to_string(),
                class: crate::storage::ErrorKind::Transient,
            })??);
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<(), StorageError> {
        let upload_id = self.ensure_upload().await?;
        self.reap()?;
        // Back-pressure: wait for a free slot before cutting memory loose for another part.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| StorageError::S3 {
                op: "UploadPart".into(),
                detail: e.to_string(),
                class: crate::storage::ErrorKind::Transient,
            })?;
        let number = self.next_part;
        self.next_part += 1;
        let (client, bucket, key) = (
            self.client.clone(),
            self.cfg.bucket.clone(),
            self.key.clone(),
        );
        self.tasks.spawn(async move {
            let r = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| s3_err("UploadPart", e));
            drop(permit);
            let r = r?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(r.e_tag().map(str::to_string))
                .build())
        });
        Ok(())
    }

    async fn finish(&mut self, meta: &BackupMeta) -> Result<(), StorageError> {
        if self.upload_id.is_none() {
            // Small archive: one PutObject, with its final metadata, after verification.
            let body = std::mem::take(&mut self.buf).freeze();
            let req = self
                .client
                .put_object()
                .bucket(&self.cfg.bucket)
                .key(&self.key)
                .content_type(CONTENT_TYPE)
                .set_metadata(Some(meta.to_map()))
                .body(ByteStream::from(body));
            let req = with_sse!(req, self.cfg);
            self.maybe_visible = true;
            req.set_storage_class(self.cfg.storage_class.as_deref().map(StorageClass::from))
                .send()
                .await
                .map_err(|e| s3_err("PutObject", e))?;
            if self.static_key {
                // A manifest left by an earlier snapshot at this key would win over this
                // object's user metadata: replace it too.
                put_manifest(&self.client, &self.cfg, &self.key, meta).await?;
            }
            return Ok(());
        }
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf).freeze();
            self.send_part(last).await?;
        }
        while let Some(r) = self.tasks.join_next().await {
            self.done.push(r.map_err(|e| StorageError::S3 {
                op: "UploadPart".into(),
                detail: e.to_string(),
                class: crate::storage::ErrorKind::Transient,
            })??);
        }
        self.done.sort_by_key(|p| p.part_number());
        let parts = std::mem::take(&mut self.done);
        let id = self.upload_id.clone().unwrap_or_default();
        if !self.static_key {
            // The manifest before the object: a completed object always has its digest.
            self.manifest_written = true;
            put_manifest(&self.client, &self.cfg, &self.key, meta).await?;
        }
        self.maybe_visible = true;
        self.client
            .complete_multipart_upload()
            .bucket(&self.cfg.bucket)
            .key(&self.key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_err("CompleteMultipartUpload", e))?;
        self.upload_id = None; // completed: nothing to abort any more
        if self.static_key {
            // One manifest for one key: written once the new object is in place (until then
            // it describes the object before, which is still the one served).
            put_manifest(&self.client, &self.cfg, &self.key, meta).await?;
        }
        Ok(())
    }

    /// Completes the upload with `meta` and checks what the server stores: size and digest
    /// read back by HEAD must be what was verified.
    async fn publish(
        &mut self,
        meta: &BackupMeta,
        archive_len: u64,
    ) -> Result<StoredBackup, StorageError> {
        self.finish(meta).await?;
        // The object as stored, beside the metadata just written (its manifest, or for a
        // single PutObject its user metadata, which must then carry the digest).
        let mut stored =
            head_object(&self.client, &self.cfg.bucket, &self.key, self.name.clone()).await?;
        let digest = match stored.meta.as_ref().and_then(|m| m.sha256.clone()) {
            Some(d) => Some(d),
            None if self.manifest_written || self.static_key => meta.sha256.clone(),
            None => None,
        };
        stored.meta = Some(meta.clone());
        if stored.size != archive_len || digest != meta.sha256 {
            return Err(StorageError::S3 {
                class: crate::storage::ErrorKind::Invalid,
                op: "HeadObject".into(),
                detail: format!(
                    "stored object {} does not match what was verified: {} bytes (expected {archive_len}), sha256 {}",
                    self.key,
                    stored.size,
                    digest.as_deref().unwrap_or("missing")
                ),
            });
        }
        Ok(stored)
    }

    /// Deletes the object and its manifest (a few tries: it is what keeps a failed publish
    /// invisible).
    async fn delete_object(&self) -> Result<(), StorageError> {
        self.delete_key(&self.key).await?;
        if self.manifest_written {
            self.delete_manifest().await?;
        }
        tracing::warn!(key = %self.key, "deleted an object whose publish failed");
        Ok(())
    }

    /// Deletes the manifest (a few tries).
    async fn delete_manifest(&self) -> Result<(), StorageError> {
        self.delete_key(&manifest_key(&self.key)).await
    }

    async fn delete_key(&self, key: &str) -> Result<(), StorageError> {
        use backon::Retryable;
        let delete = || delete_key(&self.client, &self.cfg.bucket, key);
        delete.retry(UNPUBLISH_RETRY.backoff()).await
    }

    pub(crate) async fn abort_upload(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        if let Some(id) = self.upload_id.take() {
            let r = self
                .client
                .abort_multipart_upload()
                .bucket(&self.cfg.bucket)
                .key(&self.key)
                .upload_id(&id)
                .send()
                .await;
            match r {
                Ok(_) => tracing::info!(key = %self.key, "multipart upload aborted"),
                Err(e) => {
                    tracing::warn!(key = %self.key, upload_id = %id, error = %s3_err("AbortMultipartUpload", e),
                    "could not abort the multipart upload; a bucket lifecycle rule for incomplete uploads will remove it")
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl BackendUpload for S3Upload {
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        // Each part gets one buffer of exactly `part_size`, filled to the brim and handed
        // over whole: chunks of any size never make a buffer grow past a part (which would
        // reallocate and copy, and keep more than one part's memory per part).
        let part = self.cfg.part_size as usize;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if self.buf.is_empty() && self.buf.capacity() < part {
                self.buf = BytesMut::with_capacity(part);
            }
            let take = (part - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == part {
                let p = std::mem::take(&mut self.buf).freeze();
                self.send_part(p).await?;
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError> {
        if let (true, Some(a)) = (self.static_key, &meta.anomaly) {
            // The static key holds the last good snapshot: a suspect one never replaces it.
            self.abort_upload().await;
            return Err(StorageError::Publish {
                key: self.key.clone(),
                detail: format!(
                    "the shrink guard flagged this snapshot ({}); it was not written over the static name, which keeps the snapshot before it. Check the cluster; to store it anyway, run once without the shrink guard",
                    a.reason
                ),
                class: crate::storage::ErrorKind::Invalid,
            });
        }
        let expected = meta.stored_size().unwrap_or(0);
        match self.publish(&meta, expected).await {
            Ok(stored) => Ok(stored),
            Err(e) => {
                self.abort_upload().await;
                let class = e.kind();
                let mut detail = e.to_string();
                if self.maybe_visible && self.static_key {
                    // Deleting would hide every version (or remove the only copy).
                    detail.push_str(
                        "; the object at the static name was left as it is (it may be this verified archive without its metadata)",
                    );
                } else if self.maybe_visible {
                    // The visibility rule: no object under a backup name without its digest.
                    match self.delete_object().await {
                        Ok(()) => detail.push_str("; the object was deleted again"),
                        Err(d) => detail.push_str(&format!(
                            "; deleting the object failed too ({d}): if it was stored, it is a verified archive without a stored digest"
                        )),
                    }
                }
                Err(StorageError::Publish {
                    key: self.key.clone(),
                    detail,
                    class,
                })
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_upload().await;
    }
}
