//! A stored backup's bytes, decrypted and verified into a sink: the one function behind the
//! read-back after a store ([`super::Store::readback`]) and `restore`'s fetch-and-verify
//! ([`crate::restore::fetch_verified`]), so that both apply the same checks in the same order:
//! the age header (recipients from the metadata), every check of the archive reader
//! (SHA256SUMS, meta.json, state.bin), then the archive SHA-256 against the stored digest.

use std::sync::Arc;

use super::{BackupMeta, ByteStream};
use crate::archive::{ArchiveReport, ReadOptions, RecordVisitor};
use crate::crypto::{open_stream, Identities, OpenError};
use crate::pipeline::{stream_verified, ArchiveSink, PipelineError};

/// Why [`verify_stored`] failed. Each caller decides what a failure proves: a read-back
/// keeps a backup it could not read, a restore refuses to send it.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The age file could not be opened (no identity, not a recipient, a header that is not
    /// age's or was cut short).
    #[error("{0}")]
    Open(OpenError),
    /// The transfer or the archive failed (the stream was cut, the bytes are not a valid
    /// archive, the sink failed); the sink was aborted.
    #[error("{0}")]
    Pipeline(PipelineError),
    /// The archive verified, but its SHA-256 (lowercase hex) is not the digest stored with
    /// the backup; the sink had already committed.
    #[error(
        "the archive's SHA-256 {actual} differs from the digest stored with the backup ({stored})"
    )]
    Digest { actual: String, stored: String },
}

/// Streams `body` (a stored backup's bytes: a plain archive, or an age file decrypted with
/// `ids`, whose recipients `meta` names for the error messages) through the archive reader
/// into `sink`, with `visitor` fed the state.bin records, then compares the archive's SHA-256
/// with `meta.sha256` when there is one.
///
/// Returns the plaintext archive's report, the visitor, what the sink committed, and whether
/// a stored digest was compared.
///
/// # Errors
/// [`VerifyError`]: the sink is aborted on [`VerifyError::Open`] and
/// [`VerifyError::Pipeline`]; on [`VerifyError::Digest`] it has committed (a scratch file or
/// nothing, in both callers) and the caller discards it.
pub async fn verify_stored<S, V>(
    body: ByteStream,
    meta: Option<&BackupMeta>,
    ids: &Arc<Identities>,
    sink: S,
    opts: ReadOptions,
    visitor: V,
) -> Result<(ArchiveReport, V, S::Committed, bool), VerifyError>
where
    S: ArchiveSink,
    V: RecordVisitor + Send + 'static,
{
    let recipients = meta.and_then(|m| m.recipients.clone()).unwrap_or_default();
    let body = match open_stream(body, ids.clone(), recipients).await {
        Ok(b) => b,
        Err(e) => {
            sink.abort().await;
            return Err(VerifyError::Open(e));
        }
    };
    let (report, visitor, committed) = stream_verified(body, sink, opts, visitor, None)
        .await
        .map_err(VerifyError::Pipeline)?;
    let stored = meta.and_then(|m| m.sha256.clone());
    if let Some(stored) = &stored {
        let actual = hex::encode(report.archive_sha256);
        if *stored != actual {
            return Err(VerifyError::Digest {
                actual,
                stored: stored.clone(),
            });
        }
    }
    Ok((report, visitor, committed, stored.is_some()))
}
