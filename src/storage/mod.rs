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
pub mod fleet;
pub mod gcs;
pub mod local;
pub mod metadata;
pub mod naming;
pub mod object;
pub mod plan;
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

use crate::archive::{ArchiveReport, ReadOptions};
use crate::crypto::{Identities, OpenError};
use crate::pipeline::{ArchiveSink, Discard};
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

    /// Streams a stored backup through the archive reader and checks it against `expected`
    /// (its metadata: the archive SHA-256, and for an encrypted backup the ciphertext's).
    /// An age-encrypted backup is decrypted with `ids`; without identities only its stored
    /// bytes are checked against the ciphertext SHA-256 and length, and `Ok(None)` says so.
    /// Returns the plaintext archive's report otherwise.
    ///
    /// An encrypted backup that cannot be decrypted or whose decryption fails (an identity
    /// that is not a recipient, an age header or stream cut in transit) is not proof of
    /// damage: its stored bytes are then checked against the recorded ciphertext SHA-256 and
    /// length, and if they match the backup is intact (`Ok(None)`, with a warning).
    ///
    /// Errors: [`StorageError::Readback`] only when bytes were read and proved wrong (invalid
    /// plain archive, another archive digest, stored ciphertext other than what was written);
    /// a failure to read (after 3 tries), or an encrypted backup that cannot be decrypted and
    /// has no recorded ciphertext digest, is [`StorageError::ReadbackUnavailable`], which must
    /// never lead to deleting the backup.
    pub async fn readback(
        &self,
        key: &str,
        expected: Option<&BackupMeta>,
        ids: &Arc<Identities>,
    ) -> Result<Option<ArchiveReport>, StorageError> {
        let unavailable = |detail: String| StorageError::ReadbackUnavailable {
            key: key.to_string(),
            detail,
        };
        let wrong = |detail: String| StorageError::Readback {
            key: key.to_string(),
            detail,
        };
        let encrypted = expected.is_some_and(BackupMeta::encrypted);
        let read = || async {
            let body = self
                .get(key)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            if encrypted && ids.is_empty() {
                return ciphertext_digest(body)
                    .await
                    .map(|(d, n)| Readback::Ciphertext(d, n));
            }
            use crate::pipeline::PipelineError;
            use verify::VerifyError;
            let checked =
                verify::verify_stored(body, expected, ids, Discard, ReadOptions::default(), ())
                    .await;
            match checked {
                Ok((report, (), (), _)) => Ok(Readback::Plain(Box::new(report))),
                Err(VerifyError::Open(OpenError::Io(e))) => Err(unavailable(e.to_string())),
                Err(VerifyError::Open(
                    e @ (OpenError::NoMatchingKey { .. } | OpenError::NoIdentity { .. }),
                )) => Ok(Readback::Undecryptable(e.to_string(), true)),
                // An encrypted backup that read as no age file, failed age's authentication or
                // ended early: the stored bytes were altered, or the read was cut short. The
                // ciphertext digest tells which.
                Err(
                    e @ (VerifyError::Open(_)
                    | VerifyError::Pipeline(
                        PipelineError::Invalid(_) | PipelineError::Source(_),
                    )),
                ) if encrypted => Ok(Readback::Undecryptable(e.to_string(), false)),
                Err(
                    e @ (VerifyError::Open(_) | VerifyError::Pipeline(PipelineError::Invalid(_))),
                ) => Err(wrong(e.to_string())),
                Err(VerifyError::Digest { actual, stored }) => Err(wrong(format!(
                    "archive SHA-256 {actual} differs from the stored {stored}"
                ))),
                Err(e) => Err(unavailable(e.to_string())),
            }
        };
        // Only a failure to read is retried; bytes proved wrong are final.
        let read = with_read_retries(key, read).await?;
        let (digest, len, why) = match read {
            Readback::Plain(report) => return Ok(Some(*report)),
            Readback::Ciphertext(d, n) => (d, n, None),
            Readback::Undecryptable(why, not_recipient) => {
                let digest = || async {
                    let body = self
                        .get(key)
                        .await
                        .map_err(|e| unavailable(e.to_string()))?;
                    ciphertext_digest(body).await.map_err(|e| match e {
                        StorageError::ReadbackUnavailable { detail, .. } => unavailable(detail),
                        e => e,
                    })
                };
                let (d, n) = with_read_retries(key, digest).await?;
                (d, n, Some((why, not_recipient)))
            }
        };
        let want = expected.and_then(|m| m.ciphertext_sha256.as_deref());
        let want_len = expected.and_then(|m| m.ciphertext_size);
        if want.is_some_and(|w| w != digest) || want_len.is_some_and(|w| w != len) {
            return Err(wrong(format!(
                "the stored age file ({len} bytes, SHA-256 {digest}) differs from what was written ({} bytes, SHA-256 {})",
                want_len.map_or("?".into(), |n| n.to_string()),
                want.unwrap_or("?")
            )));
        }
        match why {
            None => {
                tracing::info!(key, "read-back checked the ciphertext's SHA-256 (no --age-identity to decrypt and verify the archive)");
            }
            // Nothing recorded to compare with: the agent cannot tell, so it keeps the backup.
            Some((why, _)) if want.is_none() => {
                return Err(unavailable(format!(
                    "{why}; no ciphertext digest is recorded to check the stored bytes against"
                )))
            }
            Some((why, true)) => {
                tracing::warn!(key, error = %why, "read-back: the --age-identity given cannot decrypt this backup (it is not one of its recipients: key rotation, or a wrong CONSUL_SNAPSHOT_AGE_IDENTITY?); the stored bytes match the recorded ciphertext SHA-256 and size, so the backup is kept and counts as stored");
            }
            Some((why, false)) => {
                tracing::warn!(key, error = %why, "read-back could not decrypt this backup, but the stored bytes match the recorded ciphertext SHA-256 and size; the backup is kept and counts as stored");
            }
        }
        Ok(None)
    }
}

/// Runs `read` until it succeeds or fails with something other than
/// [`StorageError::ReadbackUnavailable`] ([`READBACK_RETRY`] attempts).
async fn with_read_retries<T, F, Fut>(key: &str, read: F) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StorageError>>,
{
    use backon::Retryable;
    read.retry(READBACK_RETRY.backoff())
        .when(|e| matches!(e, StorageError::ReadbackUnavailable { .. }))
        .notify(|e, _| tracing::warn!(key, error = %e, "read-back interrupted; retrying"))
        .await
}

/// What one read-back pass found, before it is judged against the stored metadata.
enum Readback {
    /// Decrypted (if need be) and verified: the plaintext archive's report.
    Plain(Box<ArchiveReport>),
    /// Not decrypted (no identity): the stored bytes' SHA-256 and length.
    Ciphertext(String, u64),
    /// An encrypted backup that could not be decrypted, with why, and whether the cause is
    /// that no identity given is a recipient.
    Undecryptable(String, bool),
}

/// The SHA-256 (lowercase hex) and length of a stream.
async fn ciphertext_digest(mut body: ByteStream) -> Result<(String, u64), StorageError> {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    let (mut sha, mut len) = (Sha256::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::ReadbackUnavailable {
            key: String::new(),
            detail: e.to_string(),
        })?;
        sha.update(&chunk);
        len += chunk.len() as u64;
    }
    Ok((hex::encode(sha.finalize()), len))
}

/// A read-back that could not read the bytes: 3 attempts before it counts as "could not be
/// completed".
const READBACK_RETRY: crate::retry::RetryPolicy = crate::retry::RetryPolicy::new(
    2,
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(5),
);

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
