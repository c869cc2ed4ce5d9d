//! A local file published atomically: bytes go to `<path><suffix>` (mode 0600); commit flushes,
//! fsyncs, renames to `<path>` and fsyncs the directory so the rename survives a crash; abort
//! removes the temporary file. Readers of `<path>` never see a partial or unverified archive.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::archive::ArchiveReport;
use crate::pipeline::ArchiveSink;

/// Buffer in front of the file, in bytes: writes reach the kernel in large blocks.
const WRITE_BUFFER: usize = 1 << 20;

/// See the module docs.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<tokio::fs::File>,
}

impl AtomicFile {
    /// Creates (or truncates a leftover) `<path><suffix>` with mode 0600.
    pub async fn create(path: &Path, suffix: &str) -> io::Result<Self> {
        Self::open(path, suffix, false).await
    }

    /// Creates `<path><suffix>` with mode 0600 only if it does not exist, so that two writers
    /// never share one temporary file (the second fails with `AlreadyExists`).
    pub async fn create_new(path: &Path, suffix: &str) -> io::Result<Self> {
        Self::open(path, suffix, true).await
    }

    async fn open(path: &Path, suffix: &str, exclusive: bool) -> io::Result<Self> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(suffix);
        let tmp = PathBuf::from(tmp);
        let mut opts = tokio::fs::OpenOptions::new();
        if exclusive {
            opts.write(true).create_new(true);
        } else {
            opts.write(true).create(true).truncate(true);
        }
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(&tmp)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", tmp.display())))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
        })
    }

    /// The temporary path bytes are written to.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Appends bytes to the temporary file.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", self.tmp.display())))
    }

    /// Publishes without an archive report (for small files such as metadata sidecars).
    pub async fn finish_plain(self) -> io::Result<PathBuf> {
        self.publish().await
    }

    async fn publish(mut self) -> io::Result<PathBuf> {
        let res = async {
            self.file.flush().await?;
            self.file.get_mut().sync_all().await?;
            tokio::fs::rename(&self.tmp, &self.path).await?;
            sync_dir(&self.path).await
        }
        .await;
        if let Err(e) = res {
            let _ = tokio::fs::remove_file(&self.tmp).await;
            return Err(io::Error::new(
                e.kind(),
                format!("publishing {}: {e}", self.path.display()),
            ));
        }
        Ok(self.path)
    }

    /// Removes the temporary file.
    pub async fn discard(self) {
        drop(self.file);
        if let Err(e) = tokio::fs::remove_file(&self.tmp).await {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.tmp.display(), error = %e, "could not remove temporary file");
            }
        }
    }
}

impl ArchiveSink for AtomicFile {
    type Committed = PathBuf;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        AtomicFile::write(self, chunk).await
    }

    async fn commit(
        self,
        _report: &ArchiveReport,
        _notes: &crate::pipeline::Annotations,
    ) -> io::Result<PathBuf> {
        self.publish().await
    }

    async fn abort(self) {
        self.discard().await;
    }
}

/// fsync of the directory holding `path`, so that a rename in it is durable.
async fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}
