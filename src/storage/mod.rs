//! Destinations for verified archives: a local directory ([`local`]), S3-compatible object
//! storage ([`s3`]), Azure Blob Storage ([`object`]) and Google Cloud Storage ([`gcs`]), each a
//! [`Backend`] in its own module with its upload a [`BackendUpload`] (the one interface, and
//! its contract: [`backend`]). A configured destination is a [`Store`], which adds what every
//! backend shares: the pipeline sink that builds a backup's final metadata once ([`Upload`]),
//! retention planning ([`plan`]) and the read-back, whose checks are restore's
//! ([`verify`]). Backup naming ([`naming`]), metadata ([`metadata`]), errors ([`error`]).

pub mod atomic_file;
pub mod backend;
pub mod clock;
pub mod error;
pub mod gcs;
pub mod local;
pub mod metadata;
pub mod naming;
pub mod object;
pub mod plan;
pub mod readback;
pub mod s3;
pub mod verify;

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use atomic_file::AtomicFile;
pub use backend::{Backend, BackendUpload, ByteStream};
pub use clock::ServerClock;
pub use error::{caused_by_timeout, ErrorKind, StorageError};
pub use local::{LocalStore, LocalUpload};
pub use metadata::BackupMeta;
pub use naming::BackupName;
pub use plan::RetentionPlan;
pub use s3::{S3Config, S3Store, S3Upload};

use crate::archive::ArchiveReport;
use crate::pipeline::ArchiveSink;
use crate::retention::{newest_first, plan_at, Decision, Entry, RetentionPolicy};

/// One stored backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    /// Full key (S3) or file name (local).
    pub key: String,
    /// The fields of its name.
    pub name: BackupName,
    /// Archive size, in bytes.
    pub size: u64,
    /// Last modification time reported by the backend.
    pub modified: Option<DateTime<Utc>>,
    /// Metadata, when read (always for local listings; for S3 after a HEAD).
    pub meta: Option<BackupMeta>,
}

impl StoredBackup {
    /// Whether this is a backup of `datacenter`: by its name, and by its metadata when read.
    pub fn is_of(&self, datacenter: &str) -> bool {
        self.name.datacenter == datacenter
            && self
                .meta
                .as_ref()
                .and_then(|m| m.datacenter.as_deref())
                .is_none_or(|d| d == datacenter)
    }

    /// As retention sees it.
    pub fn entry(&self) -> Entry {
        Entry {
            key: self.key.clone(),
            time: self.name.time,
            index: self.name.index,
        }
    }
}

/// Sorts newest first: time, then Raft index, then key (the one order of `list`, retention
/// and `--latest`).
pub fn sort_newest_first(backups: &mut [StoredBackup]) {
    backups.sort_by(|a, b| {
        newest_first(
            (&a.name.time, a.name.index, &a.key),
            (&b.name.time, b.name.index, &b.key),
        )
    });
}

/// The datacenter whose backups a command works on: `wanted` if given; otherwise the only
/// datacenter present in `backups` (`None` when there are none). Several datacenters and no
/// choice is an error listing them, so that nothing acts on another datacenter's backups.
pub fn choose_datacenter(
    backups: &[StoredBackup],
    wanted: Option<&str>,
) -> Result<Option<String>, StorageError> {
    if let Some(w) = wanted {
        return Ok(Some(w.to_string()));
    }
    let mut dcs: Vec<String> = backups.iter().map(|b| b.name.datacenter.clone()).collect();
    dcs.sort();
    dcs.dedup();
    match dcs.len() {
        0 => Ok(None),
        1 => Ok(dcs.pop()),
        _ => Err(StorageError::SeveralDatacenters(dcs)),
    }
}

/// Plans retention over a complete listing: only the backups of `datacenter` take part
/// (backups of other datacenters sharing the prefix are never in the plan). Returns those
/// backups and every decision, newest first. Pure but for the clock (`now`, for backups named
/// in the future).
pub fn plan_listed(
    listed: Vec<StoredBackup>,
    policy: &RetentionPolicy,
    datacenter: &str,
) -> Result<(Vec<StoredBackup>, Vec<Decision>), StorageError> {
    let ours: Vec<StoredBackup> = listed.into_iter().filter(|b| b.is_of(datacenter)).collect();
    let entries: Vec<Entry> = ours.iter().map(StoredBackup::entry).collect();
    let decisions = plan_at(&entries, policy, Some(Utc::now())).map_err(StorageError::Policy)?;
    Ok((ours, decisions))
}

/// A configured destination: any [`Backend`], shared (cloning is cheap), with a cache of the
/// backups' metadata it has read (see [`Store::fill_meta`]). The backend's operations are
/// called through it (`Deref`); what it adds: [`Store::begin`] as a pipeline sink that builds
/// the final metadata, retention planning and the read-back.
#[derive(Debug, Clone)]
pub struct Store(Arc<dyn Backend>, plan::MetaCache);

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &(dyn Backend + 'static) {
        self.0.as_ref()
    }
}

impl Store {
    /// Wraps a backend.
    pub fn new(backend: impl Backend + 'static) -> Self {
        Store(Arc::new(backend), plan::MetaCache::default())
    }

    /// Starts storing the backup `name`; `pending` carries what is known before the bytes
    /// (datacenter, creation time).
    pub async fn begin(
        &self,
        name: &BackupName,
        pending: BackupMeta,
    ) -> Result<Upload, StorageError> {
        let inner = self.0.begin(name, pending.clone()).await?;
        Ok(Upload { inner, pending })
    }

    /// Lists (completely, or fails) and plans retention over the backups of `datacenter`
    /// only, with the shrink guard's holds when `hold` is set; see [`Store::plan`]. Deletes
    /// nothing.
    pub async fn plan_retention(
        &self,
        policy: &RetentionPolicy,
        datacenter: &str,
        hold: Option<std::time::Duration>,
    ) -> Result<RetentionPlan, StorageError> {
        self.plan(self.list().await?, policy, datacenter, hold)
            .await
    }
}

/// An upload in progress to one destination: the pipeline sink over a backend's
/// [`BackendUpload`]. Its commit builds the backup's final metadata once, from what was known
/// when the upload began (`pending`: datacenter, creation time, flags), the verifier's report
/// and the wrappers' notes ([`BackupMeta::committed`]), and hands it to the backend.
#[derive(Debug)]
pub struct Upload {
    inner: Box<dyn BackendUpload>,
    pending: BackupMeta,
}

impl ArchiveSink for Upload {
    type Committed = StoredBackup;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        self.inner.write(chunk).await.map_err(StorageError::into_io)
    }

    async fn commit(
        self,
        report: &ArchiveReport,
        notes: &crate::pipeline::Annotations,
    ) -> io::Result<StoredBackup> {
        let meta = self.pending.committed(report, notes);
        self.inner.commit(meta).await.map_err(StorageError::into_io)
    }

    async fn abort(self) {
        self.inner.abort().await
    }
}

/// `local:/path` or `s3://bucket/prefix/`, for messages.
impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
