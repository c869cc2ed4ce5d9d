//! A local file published atomically: bytes go to `<path><suffix>` (mode 0600); commit flushes,
//! fsyncs, renames to `<path>` and fsyncs the directory so the rename survives a crash; abort
//! removes the temporary file. Readers of `<path>` never see a partial or unverified archive.
//!
//! Writeback overlaps the writing: every [`SYNC_EVERY`] bytes a background `fdatasync` flushes
//! what is written so far (at most one at a time, never waited for by a write), so the fsync
//! at commit only waits for the tail instead of the whole archive. A failed background sync
//! fails the commit. A scratch file ([`AtomicFile::create_scratch`], for a restore's private
//! copy) is never synced: nothing needs it to survive a crash.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::archive::ArchiveReport;
use crate::pipeline::ArchiveSink;

/// Buffer in front of the file, in bytes: small writes reach the kernel in blocks of this size;
/// the pipeline's blocks ([`crate::pipeline::BLOCK`]) are as large and pass straight through.
const WRITE_BUFFER: usize = 256 * 1024;

/// Bytes written between two background syncs.
pub const SYNC_EVERY: u64 = 32 << 20;

/// See the module docs.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<tokio::fs::File>,
    /// A second handle for background syncs; `None` for a scratch file (never synced).
    syncer: Option<std::sync::Arc<std::fs::File>>,
    /// The background sync under way, if any.
    syncing: Option<tokio::task::JoinHandle<io::Result<()>>>,
    /// Bytes written since the last background sync started.
    unsynced: u64,
}

impl AtomicFile {
    /// Creates (or truncates a leftover) `<path><suffix>` with mode 0600.
    pub async fn create(path: &Path, suffix: &str) -> io::Result<Self> {
        Self::open(path, suffix, false, true).await
    }

    /// Creates `<path><suffix>` with mode 0600 only if it does not exist, so that two writers
    /// never share one temporary file (the second fails with `AlreadyExists`).
    pub async fn create_new(path: &Path, suffix: &str) -> io::Result<Self> {
        Self::open(path, suffix, true, true).await
    }

    /// Like [`AtomicFile::create`], for a private working copy that is used at once and never
    /// needs to survive a crash: nothing is fsynced (neither the file nor the directory).
    pub async fn create_scratch(path: &Path, suffix: &str) -> io::Result<Self> {
        Self::open(path, suffix, false, false).await
    }

    /// Opens the temporary file; `durable` files get a second handle for background syncs.
    async fn open(path: &Path, suffix: &str, exclusive: bool, durable: bool) -> io::Result<Self> {
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
        let syncer = if durable {
            match file.try_clone().await {
                Ok(f) => Some(std::sync::Arc::new(f.into_std().await)),
                Err(e) => {
                    drop(file);
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(io::Error::new(
                        e.kind(),
                        format!("opening {} for syncing: {e}", tmp.display()),
                    ));
                }
            }
        } else {
            None
        };
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            syncer,
            syncing: None,
            unsynced: 0,
        })
    }

    /// The temporary path bytes are written to.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Appends bytes to the temporary file.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk).await.map_err(|e| {
            io::Error::new(e.kind(), format!("writing {}: {e}", self.tmp.display()))
        })?;
        self.unsynced += chunk.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.start_sync().await?;
        }
        Ok(())
    }

    /// Starts a background `fdatasync` unless one is still running; reports a finished one's
    /// failure.
    async fn start_sync(&mut self) -> io::Result<()> {
        let Some(syncer) = self.syncer.clone() else {
            return Ok(());
        };
        if let Some(running) = &self.syncing {
            if !running.is_finished() {
                return Ok(()); // the next write tries again
            }
        }
        self.finish_sync().await?;
        self.syncing = Some(tokio::task::spawn_blocking(move || syncer.sync_data()));
        self.unsynced = 0;
        Ok(())
    }

    /// Waits for the background sync under way, if any, and reports its failure.
    async fn finish_sync(&mut self) -> io::Result<()> {
        match self.syncing.take() {
            Some(running) => running.await.map_err(io::Error::other)?.map_err(|e| {
                io::Error::new(e.kind(), format!("syncing {}: {e}", self.tmp.display()))
            }),
            None => Ok(()),
        }
    }

    /// Publishes without an archive report (for small files such as metadata sidecars).
    pub async fn finish_plain(self) -> io::Result<PathBuf> {
        self.publish().await
    }

    async fn publish(mut self) -> io::Result<PathBuf> {
        let durable = self.syncer.is_some();
        let res = async {
            self.file.flush().await?;
            self.finish_sync().await?;
            if durable {
                self.file.get_mut().sync_all().await?;
            }
            tokio::fs::rename(&self.tmp, &self.path).await?;
            if durable {
                sync_dir(&self.path).await?;
            }
            Ok::<(), io::Error>(())
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
    pub async fn discard(mut self) {
        let _ = self.finish_sync().await; // the file goes away: its sync does not matter
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_past_several_background_syncs_publish_every_byte() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.snap");
        let mut f = AtomicFile::create_new(&path, ".partial")
            .await
            .expect("create");
        let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let blocks = (SYNC_EVERY as usize * 3) / block.len() + 1;
        for _ in 0..blocks {
            f.write(&block).await.expect("write");
        }
        let published = f.finish_plain().await.expect("publish");
        assert_eq!(published, path);
        let data = std::fs::read(&path).expect("read");
        assert_eq!(data.len(), blocks * block.len());
        assert!(data.chunks(block.len()).all(|c| c == &block[..]));
        assert!(!dir.path().join("a.snap.partial").exists());
    }

    #[tokio::test]
    async fn a_scratch_file_publishes_and_a_discarded_one_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("r.snap");
        let mut f = AtomicFile::create_scratch(&path, ".unverified")
            .await
            .expect("create");
        f.write(b"archive").await.expect("write");
        f.finish_plain().await.expect("publish");
        assert_eq!(std::fs::read(&path).expect("read"), b"archive");

        let other = dir.path().join("d.snap");
        let mut f = AtomicFile::create(&other, ".partial")
            .await
            .expect("create");
        f.write(&vec![1u8; SYNC_EVERY as usize + 1])
            .await
            .expect("write");
        f.discard().await;
        assert!(!other.exists());
        assert!(!dir.path().join("d.snap.partial").exists());
    }
}
