//! Encrypting on the way to the destinations: a pipeline sink around another sink (normally
//! the fan-out to every destination). The verifier sees the plaintext archive; the inner sink
//! sees only the age file, and learns at commit what it is ([`Envelope`]).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::keys::Recipients;
use crate::archive::ArchiveReport;
use crate::pipeline::ArchiveSink;

/// What an encrypted backup's stored bytes are; recorded in its metadata beside the plaintext
/// archive's SHA-256 and size (which the verifier reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// SHA-256 of the age file as stored.
    pub ciphertext_sha256: [u8; 32],
    /// Length of the age file, in bytes.
    pub ciphertext_len: u64,
    /// Fingerprints of the recipients it was encrypted to ([`super::keys::fingerprint`]).
    pub recipients: Vec<String>,
}

/// The bytes the age writer produced and the sink has not taken yet. One buffer, reused: the
/// sinks copy what they are given and let it go, so taking a chunk and writing the next one
/// reclaims the same memory instead of allocating (and faulting in) a fresh buffer per chunk.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<BytesMut>>);

impl Write for Pending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("encryption buffer poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pending {
    fn take(&self) -> io::Result<Bytes> {
        Ok(self
            .0
            .lock()
            .map_err(|_| io::Error::other("encryption buffer poisoned"))?
            .split()
            .freeze())
    }

    /// Makes room for the ciphertext of `len` more plaintext bytes (age adds 16 bytes per
    /// 64 KiB chunk), reclaiming the buffer when the last chunk taken has been let go.
    fn reserve(&self, len: usize) -> io::Result<()> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("encryption buffer poisoned"))?
            .reserve(len + (len >> 12) + 64);
        Ok(())
    }
}

/// See the module docs. Memory: the age chunk being filled (64 KiB) plus one chunk's
/// ciphertext between writes.
pub struct Sealing<S> {
    inner: S,
    writer: age::stream::StreamWriter<Pending>,
    pending: Pending,
    sha: Sha256,
    len: u64,
    recipients: Vec<String>,
}

impl<S: ArchiveSink> Sealing<S> {
    /// Encrypts to `recipients` (a fresh file key) whatever is written, into `inner`. On
    /// error `inner` is aborted.
    pub async fn new(inner: S, recipients: &Recipients) -> io::Result<Self> {
        let pending = Pending::default();
        let writer = match recipients
            .encryptor()
            .map_err(io::Error::other)
            .and_then(|enc| enc.wrap_output(pending.clone()))
        {
            Ok(w) => w,
            Err(e) => {
                inner.abort().await;
                return Err(e);
            }
        };
        Ok(Sealing {
            inner,
            writer,
            pending,
            sha: Sha256::new(),
            len: 0,
            recipients: recipients.fingerprints().to_vec(),
        })
    }

    async fn forward(&mut self, bytes: Bytes) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.sha.update(&bytes);
        self.len += bytes.len() as u64;
        self.inner.write(&bytes).await
    }
}

impl<S: ArchiveSink> ArchiveSink for Sealing<S> {
    type Committed = S::Committed;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        self.pending.reserve(chunk.len())?;
        self.writer.write_all(chunk)?;
        let out = self.pending.take()?;
        self.forward(out).await
    }

    async fn commit(
        self,
        report: &ArchiveReport,
        notes: &crate::pipeline::Annotations,
    ) -> io::Result<Self::Committed> {
        let Sealing {
            mut inner,
            writer,
            pending,
            mut sha,
            mut len,
            recipients,
        } = self;
        let last = match writer.finish().and_then(|_| pending.take()) {
            Ok(last) => last,
            Err(e) => {
                inner.abort().await;
                return Err(e);
            }
        };
        if !last.is_empty() {
            sha.update(&last);
            len += last.len() as u64;
            if let Err(e) = inner.write(&last).await {
                inner.abort().await;
                return Err(e);
            }
        }
        let notes = crate::pipeline::Annotations {
            envelope: Some(Envelope {
                ciphertext_sha256: sha.finalize().into(),
                ciphertext_len: len,
                recipients,
            }),
            ..notes.clone()
        };
        inner.commit(report, &notes).await
    }

    async fn abort(self) {
        self.inner.abort().await
    }
}
