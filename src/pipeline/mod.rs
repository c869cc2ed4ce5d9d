//! The one pipeline: bytes arrive once from a source (Consul, a file, an object store) and go
//! both to a sink and to the archive verifier, concurrently. The sink publishes only after the
//! verifier accepted every byte; otherwise it aborts, leaving nothing behind.
//!
//! Chunks from the source are gathered into blocks of [`BLOCK`] bytes, so that the verifier's
//! threads and the sink are woken once per block rather than once per network read. Memory is
//! bounded by the verifier queue ([`VERIFY_QUEUE`] blocks) plus the block being gathered and
//! what the reader and the sink hold themselves; the slowest of the three sets the pace.

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

/// Blocks queued for the verifier before the source is made to wait: with [`BLOCK`], 1 MiB,
/// a few milliseconds of decompression, enough to ride out a scheduling delay of the thread that
/// feeds it on a busy machine.
pub const VERIFY_QUEUE: usize = 4;

/// Bytes gathered from the source before they go to the verifier and the sink (the last
/// block of a stream may be shorter).
pub const BLOCK: usize = 256 * 1024;

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
    body: B,
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
    let mut blocks = Blocks::new(body);
    loop {
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                failure = Some(PipelineError::Cancelled);
                break;
            }
            item = blocks.next() => item,
        };
        let block = match item {
            Some(Ok(block)) => block,
            None => break,
            Some(Err(e)) => {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string()))).await;
                failure = Some(PipelineError::Source(e));
                break;
            }
        };
        // The verifier and the sink take the block at the same time: neither waits for the
        // other's I/O.
        let (written, verifying) = tokio::select! {
            biased;
            () = cancel.cancelled() => (Err(None), true),
            r = async { tokio::join!(sink.write(&block), tx.send(Ok(block.clone()))) } => {
                (r.0.map_err(Some), r.1.is_ok())
            }
        };
        if let Err(e) = written {
            failure = Some(e.map_or(PipelineError::Cancelled, PipelineError::Sink));
            break;
        }
        if !verifying {
            break; // the verifier stopped: it has found a problem
        }
    }
    drop(tx);
    let (report, visitor) = match judge(failure, verifier.await) {
        Ok(verified) => verified,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    let committed = sink
        .commit(&report, &Annotations::default())
        .await
        .map_err(PipelineError::Sink)?;
    Ok((report, visitor, committed))
}

/// What the transfer and the verifier say together: the report and the visitor only if the
/// transfer ended without failure and the verifier accepted every byte.
fn judge<V>(
    failure: Option<PipelineError>,
    verifier: Result<(Result<ArchiveReport, ArchiveError>, V), tokio::task::JoinError>,
) -> Result<(ArchiveReport, V), PipelineError> {
    match (failure, verifier) {
        (Some(f), _) => Err(f),
        (None, Err(join)) => Err(PipelineError::Source(io::Error::other(format!(
            "verifier task failed: {join}"
        )))),
        (None, Ok((Err(ArchiveError::Source(e)), _))) => Err(PipelineError::Source(e)),
        (None, Ok((Err(e), _))) => Err(PipelineError::Invalid(e)),
        (None, Ok((Ok(report), visitor))) => Ok((report, visitor)),
    }
}

/// A source's chunks gathered into blocks of at least [`BLOCK`] bytes (the last may be
/// shorter); a chunk that is a whole block already passes without a copy. The source is not
/// polled again once it has ended.
struct Blocks<B> {
    body: B,
    gathered: bytes::BytesMut,
    ended: bool,
}

impl<B: Stream<Item = io::Result<Bytes>> + Unpin> Blocks<B> {
    fn new(body: B) -> Self {
        Blocks {
            body,
            gathered: bytes::BytesMut::new(),
            ended: false,
        }
    }

    /// The next block, an error of the source, or `None` once everything was handed out.
    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        while !self.ended {
            match self.body.next().await {
                Some(Ok(chunk)) if self.gathered.is_empty() && chunk.len() >= BLOCK => {
                    return Some(Ok(chunk))
                }
                Some(Ok(chunk)) => {
                    self.gathered.extend_from_slice(&chunk);
                    if self.gathered.len() >= BLOCK {
                        return Some(Ok(self.gathered.split().freeze()));
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => self.ended = true,
            }
        }
        (!self.gathered.is_empty()).then(|| Ok(self.gathered.split().freeze()))
    }
}

#[cfg(all(test, feature = "dev"))]
mod tests {
    use super::*;
    use crate::archive::synth::SynthSpec;
    use crate::archive::WriteOptions;
    use sha2::{Digest, Sha256};

    /// Keeps every write, to compare with what was sent.
    #[derive(Default)]
    struct Recorder {
        bytes: Vec<u8>,
        writes: usize,
    }

    impl ArchiveSink for Recorder {
        type Committed = (Vec<u8>, usize);
        async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
            self.bytes.extend_from_slice(chunk);
            self.writes += 1;
            Ok(())
        }
        async fn commit(self, _: &ArchiveReport, _: &Annotations) -> io::Result<Self::Committed> {
            Ok((self.bytes, self.writes))
        }
        async fn abort(self) {}
    }

    fn archive() -> Vec<u8> {
        SynthSpec::with_state_size(3 << 20)
            .write_archive(Vec::new(), &WriteOptions::default())
            .expect("write")
    }

    /// The archive cut into chunks of the given sizes, cycling through them.
    fn chunked(bytes: &[u8], sizes: &[usize]) -> Vec<io::Result<Bytes>> {
        let mut out = Vec::new();
        let mut pos = 0;
        for &n in sizes.iter().cycle() {
            if pos >= bytes.len() {
                break;
            }
            let end = (pos + n).min(bytes.len());
            out.push(Ok(Bytes::copy_from_slice(&bytes[pos..end])));
            pos = end;
        }
        out
    }

    #[tokio::test]
    async fn small_and_large_chunks_reach_sink_and_verifier_whole_and_in_order() {
        let bytes = archive();
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        // Tiny network reads, then chunks larger than a block, then a mix.
        for sizes in [vec![1500], vec![BLOCK + 3, 17], vec![100, BLOCK * 2, 4096]] {
            let body = futures_util::stream::iter(chunked(&bytes, &sizes));
            let (report, (), (stored, writes)) =
                stream_verified(body, Recorder::default(), ReadOptions::default(), (), None)
                    .await
                    .expect("valid archive");
            assert_eq!(stored, bytes, "sizes {sizes:?}");
            assert_eq!(report.archive_sha256, digest);
            // Gathered into blocks: far fewer writes than network chunks for tiny reads.
            if sizes == [1500] {
                assert!(
                    writes <= bytes.len() / BLOCK + 1,
                    "{writes} writes for {} bytes",
                    bytes.len()
                );
            }
        }
    }

    #[tokio::test]
    async fn a_source_error_after_gathered_bytes_fails_and_commits_nothing() {
        let bytes = archive();
        let mut items = chunked(&bytes[..bytes.len() / 2], &[1000]);
        items.push(Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut")));
        let body = futures_util::stream::iter(items);
        match stream_verified(body, Recorder::default(), ReadOptions::default(), (), None).await {
            Err(PipelineError::Source(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            Err(other) => panic!("expected a source error, got {other}"),
            Ok(_) => panic!("a cut stream was committed"),
        }
    }

    #[tokio::test]
    async fn a_truncated_stream_is_invalid_even_when_it_ends_mid_block() {
        let bytes = archive();
        let cut = bytes.len() - BLOCK / 3;
        let body = futures_util::stream::iter(chunked(&bytes[..cut], &[7000]));
        match stream_verified(body, Recorder::default(), ReadOptions::default(), (), None).await {
            Err(PipelineError::Invalid(_)) => {}
            Err(other) => panic!("expected an invalid archive, got {other}"),
            Ok(_) => panic!("a truncated archive was committed"),
        }
    }
}
