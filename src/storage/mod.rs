//! Destinations for verified archives: a local directory and S3-compatible object storage,
//! behind one small interface ([`Store`]); backup naming ([`naming`]) and metadata
//! ([`metadata`]).
//!
//! Contract of every backend:
//! * an upload ([`Upload`], a pipeline sink) becomes visible under its final key only on
//!   commit, which the pipeline calls after verification; abort leaves nothing behind;
//! * `list` returns every backup under the backend's prefix named by our scheme, or an error;
//!   a partial listing never reaches retention; other objects are never listed nor deleted;
//! * `delete` is idempotent and refuses keys outside our scheme.

pub mod atomic_file;
pub mod local;
pub mod metadata;
pub mod naming;
pub mod s3;

use std::io;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use futures_util::stream::BoxStream;

pub use atomic_file::AtomicFile;
pub use local::{LocalStore, LocalUpload};
pub use metadata::BackupMeta;
pub use naming::BackupName;
pub use s3::{S3Config, S3Store, S3Upload};

use crate::archive::{ArchiveReport, ReadOptions};
use crate::pipeline::{stream_verified, ArchiveSink, Discard};
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

/// Storage failures. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage settings: {0}")]
    Config(String),
    /// The retention policy cannot be applied (it keeps nothing explicitly).
    #[error("{0}")]
    Policy(crate::retention::PolicyError),
    /// A listing that is complete but not to be trusted for deletions (it lacks what was just
    /// stored: eventual consistency, a wrong prefix). Nothing is deleted.
    #[error("the listing of {destination} cannot be trusted: {why}; retention skipped")]
    UntrustedListing { destination: String, why: String },
    #[error("no backup {0:?}")]
    NotFound(String),
    #[error("{0:?} is not a backup of this agent (its name does not match the naming scheme)")]
    NotOurs(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("S3 {op} failed: {detail}")]
    S3 { op: String, detail: String },
    /// The stored bytes were read and are not what was verified: the backup is damaged.
    #[error("read-back of {key} failed: {detail}")]
    Readback { key: String, detail: String },
    /// The stored bytes could not be read back (after retries); nothing is known to be wrong.
    #[error("read-back of {key} could not be completed: {detail}")]
    ReadbackUnavailable { key: String, detail: String },
    #[error("backups of several datacenters are stored here ({}); choose one with --datacenter", .0.join(", "))]
    SeveralDatacenters(Vec<String>),
}

impl StorageError {
    /// An I/O error with what was being done.
    pub fn io(context: String, source: io::Error) -> Self {
        StorageError::Io { context, source }
    }
}

/// A configured destination.
#[derive(Debug, Clone)]
pub enum Store {
    Local(LocalStore),
    S3(S3Store),
}

impl Store {
    /// Every backup of ours, by key; see the module contract.
    pub async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        match self {
            Store::Local(l) => l.list().await,
            Store::S3(s) => s.list().await,
        }
    }

    /// Size and metadata of one backup.
    pub async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        match self {
            Store::Local(l) => l.head(key).await,
            Store::S3(s) => s.head(key).await,
        }
    }

    /// The archive bytes of one backup.
    pub async fn get(
        &self,
        key: &str,
    ) -> Result<BoxStream<'static, io::Result<Bytes>>, StorageError> {
        match self {
            Store::Local(l) => l.get(key).await,
            Store::S3(s) => s.get(key).await,
        }
    }

    /// Deletes backups (idempotent).
    pub async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        match self {
            Store::Local(l) => l.delete(keys).await,
            Store::S3(s) => s.delete(keys).await,
        }
    }

    /// Starts storing the backup `name`; `pending` carries what is known before the bytes
    /// (datacenter, creation time).
    pub async fn begin(
        &self,
        name: &BackupName,
        pending: BackupMeta,
    ) -> Result<Upload, StorageError> {
        Ok(match self {
            Store::Local(l) => Upload::Local(Box::new(l.begin(name, pending).await?)),
            Store::S3(s) => Upload::S3(Box::new(s.begin(name, pending))),
        })
    }

    /// Lists (completely, or fails) and plans retention over the backups of `datacenter`
    /// only; see [`plan_listed`]. Deletes nothing.
    pub async fn plan_retention(
        &self,
        policy: &RetentionPolicy,
        datacenter: &str,
    ) -> Result<(Vec<StoredBackup>, Vec<Decision>), StorageError> {
        plan_listed(self.list().await?, policy, datacenter)
    }

    /// Streams a stored backup through the archive reader and checks its SHA-256 against
    /// `expected` (lowercase hex). Returns the report.
    ///
    /// Errors: [`StorageError::Readback`] only when bytes were read and proved wrong (invalid
    /// archive, other digest); a failure to read (after 3 tries) is
    /// [`StorageError::ReadbackUnavailable`], which must never lead to deleting the backup.
    pub async fn readback(
        &self,
        key: &str,
        expected: Option<&str>,
    ) -> Result<ArchiveReport, StorageError> {
        use backon::Retryable;
        let unavailable = |detail: String| StorageError::ReadbackUnavailable {
            key: key.to_string(),
            detail,
        };
        let read = || async {
            let body = self
                .get(key)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            match stream_verified(body, Discard, ReadOptions::default(), (), None).await {
                Ok((report, (), ())) => Ok(report),
                Err(crate::pipeline::PipelineError::Invalid(e)) => Err(StorageError::Readback {
                    key: key.to_string(),
                    detail: e.to_string(),
                }),
                Err(e) => Err(unavailable(e.to_string())),
            }
        };
        // Only a failure to read is retried; bytes proved wrong are final.
        let report = read
            .retry(READBACK_RETRY.backoff())
            .when(|e| matches!(e, StorageError::ReadbackUnavailable { .. }))
            .notify(|e, _| tracing::warn!(key, error = %e, "read-back interrupted; retrying"))
            .await?;
        let got = hex::encode(report.archive_sha256);
        match expected {
            Some(want) if got != want => Err(StorageError::Readback {
                key: key.to_string(),
                detail: format!("archive SHA-256 {got} differs from the stored {want}"),
            }),
            _ => Ok(report),
        }
    }
}

/// A read-back that could not read the bytes: 3 attempts before it counts as "could not be
/// completed".
const READBACK_RETRY: crate::retry::RetryPolicy = crate::retry::RetryPolicy::new(
    2,
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(5),
);

/// An upload in progress to one destination.
#[derive(Debug)]
pub enum Upload {
    Local(Box<LocalUpload>),
    S3(Box<S3Upload>),
}

impl ArchiveSink for Upload {
    type Committed = StoredBackup;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        match self {
            Upload::Local(u) => u.write(chunk).await,
            Upload::S3(u) => u.write(chunk).await,
        }
    }

    async fn commit(self, report: &ArchiveReport) -> io::Result<StoredBackup> {
        match self {
            Upload::Local(u) => u.commit(report).await,
            Upload::S3(u) => u.commit(report).await,
        }
    }

    async fn abort(self) {
        match self {
            Upload::Local(u) => u.abort().await,
            Upload::S3(u) => u.abort().await,
        }
    }
}

/// `local:/path` or `s3://bucket/prefix/`, for messages.
impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Local(l) => write!(f, "local:{}", l.dir().display()),
            Store::S3(s) => s.fmt(f),
        }
    }
}
