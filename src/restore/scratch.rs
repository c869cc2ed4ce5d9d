//! A restore's private copy of the verified archive: an unnamed temporary file
//! (`tempfile::tempfile()`, `O_TMPFILE` where the kernel has it), so that no path to it exists
//! and it cannot outlive the process, not even a SIGKILLed one, although it may hold the
//! decrypted plaintext of an encrypted backup. The handle is kept from verification to the
//! `PUT`, which reads it through a second handle by position, never by path.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::archive::ArchiveReport;
use crate::pipeline::{Annotations, ArchiveSink};

/// Write buffer in front of the file, in bytes (the pipeline's blocks are as large).
const WRITE_BUFFER: usize = 256 * 1024;

/// Bytes read per chunk when the copy is sent.
const READ_CHUNK: usize = 256 * 1024;

/// A pipeline sink into an unnamed temporary file; commit yields the [`ScratchCopy`].
#[derive(Debug)]
pub struct ScratchFile {
    file: BufWriter<tokio::fs::File>,
    read: Arc<std::fs::File>,
}

impl ScratchFile {
    /// Creates the unnamed file in `$TMPDIR`, readable and writable by this process only.
    ///
    /// Errors: the temporary directory is missing, full or not writable.
    pub fn create() -> io::Result<Self> {
        let f = tempfile::tempfile()
            .map_err(|e| io::Error::new(e.kind(), format!("creating a temporary file: {e}")))?;
        let read = Arc::new(f.try_clone()?);
        Ok(ScratchFile {
            file: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(f)),
            read,
        })
    }
}

impl ScratchFile {
    /// Flushes what is buffered and hands over the copy.
    async fn finish(mut self) -> io::Result<ScratchCopy> {
        self.file.flush().await?;
        let len = self.read.metadata()?.len();
        Ok(ScratchCopy {
            file: self.read,
            len,
        })
    }
}

impl ArchiveSink for ScratchFile {
    type Committed = ScratchCopy;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        self.file.write_all(chunk).await
    }

    async fn commit(
        self,
        _report: &ArchiveReport,
        _notes: &Annotations,
    ) -> io::Result<ScratchCopy> {
        self.finish().await
    }

    async fn abort(self) {
        // Nothing to remove: the file has no name and goes with its last handle.
    }
}

/// The verified copy: an open, unnamed file of `len` bytes.
#[derive(Debug, Clone)]
pub struct ScratchCopy {
    file: Arc<std::fs::File>,
    len: u64,
}

impl ScratchCopy {
    /// Its length, in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is empty (never, for a verified archive).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole copy as a stream of chunks of up to 256 KiB, read by position (`pread`) on a
    /// blocking thread, so that any number of readers can send it from the start.
    pub fn stream(
        &self,
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + Unpin + 'static {
        let (file, len) = (self.file.clone(), self.len);
        Box::pin(futures_util::stream::try_unfold(0u64, move |at| {
            let file = file.clone();
            async move {
                if at >= len {
                    return Ok(None);
                }
                let want = READ_CHUNK.min((len - at) as usize);
                let buf = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; want];
                    file.read_exact_at(&mut buf, at)?;
                    Ok(buf)
                })
                .await
                .map_err(io::Error::other)??;
                Ok(Some((Bytes::from(buf), at + want as u64)))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn the_copy_reads_back_whole_from_the_start_any_number_of_times() {
        let mut f = ScratchFile::create().expect("create");
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        for part in data.chunks(70_000) {
            f.write(&Bytes::copy_from_slice(part)).await.expect("write");
        }
        let copy = f.finish().await.expect("finish");
        assert_eq!(copy.len(), data.len() as u64);
        for _ in 0..2 {
            let mut got = Vec::new();
            let mut s = copy.stream();
            while let Some(chunk) = s.next().await {
                got.extend_from_slice(&chunk.expect("chunk"));
            }
            assert_eq!(got, data);
        }
    }
}
