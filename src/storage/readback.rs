//! The read-back of a stored backup ([`Store::readback`]): its bytes streamed through the
//! same checks as a restore's ([`super::verify::verify_stored`]), and for an encrypted backup
//! that cannot be decrypted here, its stored bytes against the recorded ciphertext digest.
//! Only bytes proved wrong are an error that lets the caller delete; a read that could not be
//! completed keeps the backup.

use std::sync::Arc;

use super::verify::{verify_stored, VerifyError};
use super::{BackupMeta, ByteStream, StorageError, Store};
use crate::archive::{ArchiveReport, ReadOptions};
use crate::crypto::{Identities, OpenError};
use crate::pipeline::{Discard, PipelineError};

impl Store {
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
        // Only a failure to read is retried; bytes proved wrong are final.
        let read = with_read_retries(key, || self.read_once(key, expected, ids)).await?;
        let (digest, len, why) = match read {
            Readback::Plain(report) => return Ok(Some(*report)),
            Readback::Ciphertext(d, n) => (d, n, None),
            Readback::Undecryptable(why, not_recipient) => {
                let (d, n) = with_read_retries(key, || self.stored_digest(key)).await?;
                (d, n, Some((why, not_recipient)))
            }
        };
        judge_ciphertext(key, expected, &digest, len, why)
    }

    /// One pass over the stored bytes: decrypted and verified when it can be, else (an
    /// encrypted backup and no identity) the stored bytes' digest.
    async fn read_once(
        &self,
        key: &str,
        expected: Option<&BackupMeta>,
        ids: &Arc<Identities>,
    ) -> Result<Readback, StorageError> {
        let unavailable = |detail: String| StorageError::ReadbackUnavailable {
            key: key.to_string(),
            detail,
        };
        let wrong = |detail: String| StorageError::Readback {
            key: key.to_string(),
            detail,
        };
        let encrypted = expected.is_some_and(BackupMeta::encrypted);
        let body = self
            .get(key)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if encrypted && ids.is_empty() {
            return ciphertext_digest(key, body)
                .await
                .map(|(d, n)| Readback::Ciphertext(d, n));
        }
        let checked = verify_stored(body, expected, ids, Discard, ReadOptions::default(), ()).await;
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
                | VerifyError::Pipeline(PipelineError::Invalid(_) | PipelineError::Source(_))),
            ) if encrypted => Ok(Readback::Undecryptable(e.to_string(), false)),
            Err(e @ (VerifyError::Open(_) | VerifyError::Pipeline(PipelineError::Invalid(_)))) => {
                Err(wrong(e.to_string()))
            }
            Err(VerifyError::Digest { actual, stored }) => Err(wrong(format!(
                "archive SHA-256 {actual} differs from the stored {stored}"
            ))),
            Err(e) => Err(unavailable(e.to_string())),
        }
    }

    /// The SHA-256 and length of the stored bytes.
    async fn stored_digest(&self, key: &str) -> Result<(String, u64), StorageError> {
        let body = self
            .get(key)
            .await
            .map_err(|e| StorageError::ReadbackUnavailable {
                key: key.to_string(),
                detail: e.to_string(),
            })?;
        ciphertext_digest(key, body).await
    }
}

/// Judges an encrypted backup by its stored bytes (`digest`, `len`) against the recorded
/// ciphertext digest and size; `why` it was not decrypted (and whether because no identity
/// given is a recipient), `None` when there was no identity to try.
fn judge_ciphertext(
    key: &str,
    expected: Option<&BackupMeta>,
    digest: &str,
    len: u64,
    why: Option<(String, bool)>,
) -> Result<Option<ArchiveReport>, StorageError> {
    let want = expected.and_then(|m| m.ciphertext_sha256.as_deref());
    let want_len = expected.and_then(|m| m.ciphertext_size);
    if want.is_some_and(|w| w != digest) || want_len.is_some_and(|w| w != len) {
        return Err(StorageError::Readback {
            key: key.to_string(),
            detail: format!(
                "the stored age file ({len} bytes, SHA-256 {digest}) differs from what was written ({} bytes, SHA-256 {})",
                want_len.map_or("?".into(), |n| n.to_string()),
                want.unwrap_or("?")
            ),
        });
    }
    match why {
        None => {
            tracing::info!(key, "read-back checked the ciphertext's SHA-256 (no --age-identity to decrypt and verify the archive)");
        }
        // Nothing recorded to compare with: the agent cannot tell, so it keeps the backup.
        Some((why, _)) if want.is_none() => {
            return Err(StorageError::ReadbackUnavailable {
                key: key.to_string(),
                detail: format!(
                    "{why}; no ciphertext digest is recorded to check the stored bytes against"
                ),
            })
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
async fn ciphertext_digest(key: &str, mut body: ByteStream) -> Result<(String, u64), StorageError> {
    use futures_util::StreamExt;
    use sha2::{Digest, Sha256};
    let (mut sha, mut len) = (Sha256::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StorageError::ReadbackUnavailable {
            key: key.to_string(),
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
