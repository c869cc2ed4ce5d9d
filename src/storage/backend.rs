//! The one interface every storage backend implements ([`Backend`]), and the upload it begins
//! ([`BackendUpload`]). Retention, `list`, `prune`, `restore` and the backup cycle see storage
//! only through it (wrapped in [`super::Store`]), so a new backend (Azure Blob, GCS) or a
//! test's fault-injecting wrapper drops in without touching them. The shape follows
//! Litestream's `ReplicaClient` and rustic's backend traits: a few object operations, each
//! complete or an error.

use std::fmt;
use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

use super::{BackupMeta, BackupName, StorageError, StoredBackup};

/// The bytes of a stored archive, as they are read.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// A place that holds backups. `Display` names it for messages (`local:/path`,
/// `s3://bucket/prefix/`) and is the destination's key in a cycle's results.
///
/// Contract:
/// * [`Backend::begin`] starts an upload that becomes visible under its final key only on
///   [`BackendUpload::commit`], which the pipeline calls after verification; `abort` leaves
///   nothing behind;
/// * [`Backend::list`] returns every backup under the backend's prefix named by our scheme
///   ([`super::naming`]), following every page, or an error: a partial listing never reaches
///   retention; objects not named by our scheme are never listed nor deleted;
/// * [`Backend::delete`] is idempotent and refuses keys outside our scheme;
/// * [`Backend::sweep`] removes what interrupted uploads left (stale multipart uploads,
///   uncommitted blocks, partial files) older than the given age, and nothing else.
#[async_trait]
pub trait Backend: fmt::Debug + fmt::Display + Send + Sync {
    /// Checks that a backup can be written here, leaving nothing behind: by default it begins
    /// an upload of [`write_check_name`] and aborts it. Backends whose `begin` sends nothing
    /// override it with a real request.
    async fn check_writable(&self) -> Result<(), StorageError> {
        let upload = self
            .begin(&write_check_name(), crate::storage::BackupMeta::default())
            .await?;
        upload.abort().await;
        Ok(())
    }

    /// The destination's own clock, from the `Date` of its last answer; `None` where there
    /// is none (local storage) or no answer was seen yet. The cycle checks this host's clock
    /// against it before naming a backup or applying time-based retention.
    fn server_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        None
    }

    /// The backend's kind, a metric label: `local`, `s3`.
    fn kind(&self) -> &'static str;

    /// The one key every backup is written to, when the destination has a static name (S3's
    /// `s3_static_snapshot_name`): retention and deletion never apply to it. Default: none.
    fn static_key(&self) -> Option<String> {
        None
    }

    /// Every backup of ours, by key. Metadata may be absent (S3 lists without it; see
    /// [`Backend::head`]).
    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError>;

    /// Size (bytes) and metadata (stored SHA-256, Raft index...) of one backup.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when there is no such backup.
    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError>;

    /// The archive bytes of one backup, streamed.
    async fn get(&self, key: &str) -> Result<ByteStream, StorageError>;

    /// Deletes backups; deleting a missing one is not an error.
    ///
    /// # Errors
    /// [`StorageError::NotOurs`] for a key outside our naming scheme (nothing is deleted).
    async fn delete(&self, keys: &[String]) -> Result<(), StorageError>;

    /// Replaces the stored metadata of one backup (to record an anomaly's acknowledgement);
    /// the archive bytes are untouched.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when there is no such backup, [`StorageError::NotOurs`] for
    /// a key outside our naming scheme.
    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError>;

    /// Starts storing the backup `name`; `pending` carries what is known before the bytes
    /// (datacenter, creation time).
    async fn begin(
        &self,
        name: &BackupName,
        pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError>;

    /// Removes leftovers of interrupted uploads older than `older_than` (younger ones may
    /// belong to a writer at work). Returns how many were removed.
    async fn sweep(&self, older_than: Duration) -> Result<usize, StorageError>;
}

/// The name a write check begins (and aborts) an upload under: datacenter `write-check`,
/// this moment, index 0. It follows the naming scheme so that a leftover is swept.
pub fn write_check_name() -> crate::storage::BackupName {
    use chrono::SubsecRound;
    crate::storage::BackupName {
        encrypted: false,
        time: chrono::Utc::now().trunc_subsecs(0),
        datacenter: "write-check".into(),
        index: 0,
    }
}

/// A destination's upload in progress: the one upload interface every backend implements.
/// [`super::Store::begin`] wraps it in the pipeline sink [`super::Upload`], which builds the
/// final [`BackupMeta`] once (from the verifier's report and the wrappers' notes) and hands it
/// to [`BackendUpload::commit`].
///
/// Contract: nothing is visible under the backup's key before `commit` returns `Ok`; a
/// `commit` that fails leaves no object under the key without its metadata (it deletes what
/// may have become visible, or says in its error that it could not); `abort` leaves nothing
/// behind but what the backend's [`Backend::sweep`] or its own expiry removes.
#[async_trait]
pub trait BackendUpload: fmt::Debug + Send {
    /// Accepts the next chunk of the stored bytes (the archive, or its age encryption), in
    /// order.
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError>;
    /// Publishes the bytes written with `meta`, the backup's final metadata; called only after
    /// verification passed. The stored length must be [`BackupMeta::stored_size`], or the
    /// upload is not published.
    async fn commit(self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError>;
    /// Discards everything written; never fails (it logs what it could not clean up).
    async fn abort(self: Box<Self>);
}
