//! The one pipeline: bytes arrive once from a source (Consul, a file, an object store) and go
//! both to a sink and to the archive verifier, concurrently. The sink publishes only after the
//! verifier accepted every byte; otherwise it aborts, leaving nothing behind.
//!
//! Memory is bounded by the verifier queue ([`VERIFY_QUEUE`] chunks) plus what the reader and
//! the sink hold themselves; the slowest of the three sets the pace.

mod bridge;
mod fanout;

use std::future::Future;
use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use bridge::ChannelReader;
pub use fanout::FanOut;

pub use crate::crypto::Envelope;

/// The length of the bytes a sink received: the archive's, or its encryption's.
pub fn stored_len(report: &ArchiveReport, notes: &Annotations) -> u64 {
    notes
        .envelope
        .as_ref()
        .map_or(report.archive_len, |e| e.ciphertext_len)
}

/// What wrappers around a sink established before the commit, beyond the archive report
/// (which always describes the plaintext archive).
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    /// Set when the bytes the sink received are the archive encrypted ([`crate::crypto`]):
    /// their length and digest are the envelope's.
    pub envelope: Option<Envelope>,
    /// Set when the shrink guard judged the snapshot markedly smaller than the last backup
    /// ([`crate::guard`]).
    pub anomaly: Option<crate::guard::AnomalyMark>,
}

use crate::archive::{read_archive, ArchiveError, ArchiveReport, ReadOptions, RecordVisitor};

/// Chunks queued for the verifier before the source is made to wait.
pub const VERIFY_QUEUE: usize = 32;

/// Where verified archive bytes go. Implementations document their atomicity: nothing may be
/// visible to readers under the final name before [`ArchiveSink::commit`].
pub trait ArchiveSink: Send {
    /// What a successful commit yields (a path, an object key...).
    type Committed: Send;
    /// Accepts the next chunk, in order. An error stops the pipeline; `abort` follows.
    fn write(&mut self, chunk: &Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Publishes the archive; called only after verification passed. `notes` carry what
    /// wrappers established (an encryption envelope, a shrink-guard anomaly).
    fn commit(
        self,
        report: &ArchiveReport,
        notes: &Annotations,
    ) -> impl Future<Output = io::Result<Self::Committed>> + Send;
    /// Discards everything written. Must not fail: it logs what it could not clean up.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// A sink that keeps nothing: for verifying a stream without storing it (read-back, restore
/// checks).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl ArchiveSink for Discard {
    type Committed = ();

    async fn write(&mut self, _chunk: &Bytes) -> io::Result<()> {
        Ok(())
    }

    async fn commit(self, _report: &ArchiveReport, _notes: &Annotations) -> io::Result<()> {
        Ok(())
    }

    async fn abort(self) {}
}

/// Why the pipeline failed. Whatever the reason, the sink was aborted.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed before the archive was complete (dropped connection, read timeout).
    #[error("the snapshot transfer failed: {0}")]
    Source(io::Error),
    /// The bytes are not a valid snapshot archive (Consul's error text).
    #[error("{0}")]
    Invalid(ArchiveError),
    /// Writing to or publishing in the destination failed.
    #[error("storing the snapshot failed: {0}")]
    Sink(io::Error),
    /// Stopped on request (leadership lost, shutting down); the sink was aborted.
    #[error("cancelled before the snapshot was stored")]
    Cancelled,
}

/// Streams `body` into `sink` while `read_archive` verifies the same bytes (and `visitor`
/// gathers record statistics). Commits the sink only if verification passed; aborts it on any
/// failure. Returns the verification report, the visitor and what the sink committed.
///
/// `cancel`, when given and cancelled, stops the transfer at the next chunk and aborts the
/// sink ([`PipelineError::Cancelled`]); once verification passed, the commit is let finish.
pub async fn stream_verified<B, S, V>(
    mut body: B,
    mut sink: S,
    opts: ReadOptions,
    mut visitor: V,
    cancel: Option<&CancellationToken>,
) -> Result<(ArchiveReport, V, S::Committed), PipelineError>
where
    B: Stream<Item = io::Result<Bytes>> + Unpin,
    S: ArchiveSink,
    V: RecordVisitor + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(VERIFY_QUEUE);
    let verifier = tokio::task::spawn_blocking(move || {
        let r = read_archive(ChannelReader::new(rx), opts, &mut visitor);
        (r, visitor)
    });
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    let mut failure = None;
    loop {
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                failure = Some(PipelineError::Cancelled);
                break;
            }
            item = body.next() => item,
        };
        let Some(item) = item else { break };
        match item {
            Ok(chunk) => {
                let written = tokio::select! {
                    biased;
                    () = cancel.cancelled() => Err(None),
                    r = sink.write(&chunk) => r.map_err(Some),
                };
                match written {
                    Ok(()) => {}
                    Err(e) => {
                        failure = Some(e.map_or(PipelineError::Cancelled, PipelineError::Sink));
                        break;
                    }
                }
                if tx.send(Ok(chunk)).await.is_err() {
                    break; // the verifier stopped: it has found a problem
                }
            }
            Err(e) => {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                failure = Some(PipelineError::Source(e));
                break;
            }
        }
    }
    drop(tx);
    let verdict = verifier.await;
    let (report, visitor) = match (failure, verdict) {
        (Some(f), _) => {
            sink.abort().await;
            return Err(f);
        }
        (None, Err(join)) => {
            sink.abort().await;
            return Err(PipelineError::Source(io::Error::other(format!(
                "verifier task failed: {join}"
            ))));
        }
        (None, Ok((Err(ArchiveError::Source(e)), _))) => {
            sink.abort().await;
            return Err(PipelineError::Source(e));
        }
        (None, Ok((Err(e), _))) => {
            sink.abort().await;
            return Err(PipelineError::Invalid(e));
        }
        (None, Ok((Ok(report), visitor))) => (report, visitor),
    };
    let committed = sink
        .commit(&report, &Annotations::default())
        .await
        .map_err(PipelineError::Sink)?;
    Ok((report, visitor, committed))
}
