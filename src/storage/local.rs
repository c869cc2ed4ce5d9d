//! A local directory of backups. An archive is written to `<name>.partial` (0600), and on
//! commit its metadata goes to the sidecar `<name>.meta.json` (written atomically), then the
//! archive is fsynced and renamed to `<name>`, and the directory fsynced. A listing sees only
//! complete, verified archives; a missing sidecar only means less metadata.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::atomic_file::AtomicFile;
use super::metadata::BackupMeta;
use super::naming::{format_name, parse_name, BackupName};
use super::{Backend, BackendUpload, ByteStream, StorageError, StoredBackup};

/// Suffix of the temporary file an upload writes to.
const PARTIAL: &str = ".partial";
/// Suffix of the metadata sidecar next to each local backup (`<name>.meta.json`).
pub const SIDECAR: &str = ".meta.json";

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    /// A store in `dir`, created if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| StorageError::io(format!("creating {}", dir.display()), e))?;
        Ok(LocalStore { dir })
    }

    /// An existing directory, never created: for the commands that only read or prune (a
    /// typo in `--local-path` must not look like a destination with no backups).
    ///
    /// Errors: [`StorageError::Config`] when `dir` is not an existing directory.
    pub fn open_existing(dir: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(StorageError::Config(format!(
                "the local destination {} does not exist (check --local-path; only `agent` creates it)",
                dir.display()
            )));
        }
        Ok(LocalStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        // Keys are bare names here; refuse anything that could leave the directory.
        if key.contains('/') || key.starts_with('.') || parse_name(key).is_none() {
            return Err(StorageError::NotOurs(key.to_string()));
        }
        Ok(self.dir.join(key))
    }

    async fn read_sidecar(&self, key: &str) -> Option<BackupMeta> {
        let raw = tokio::fs::read(self.dir.join(format!("{key}{SIDECAR}")))
            .await
            .ok()?;
        serde_json::from_slice(&raw).ok()
    }
}

#[async_trait]
impl Backend for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    /// Every backup in the directory, in name order. An unreadable directory is an error.
    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        let mut rd = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| StorageError::io(format!("listing {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(|e| StorageError::io(format!("listing {}", self.dir.display()), e))?
        {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(parsed) = parse_name(&name) else {
                continue;
            };
            let md = entry
                .metadata()
                .await
                .map_err(|e| StorageError::io(format!("stat {name}"), e))?;
            if !md.is_file() {
                continue;
            }
            out.push(StoredBackup {
                key: name.clone(),
                name: parsed,
                size: md.len(),
                modified: md.modified().ok().map(DateTime::<Utc>::from),
                meta: self.read_sidecar(&name).await,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Size and metadata of one backup; [`StorageError::NotFound`] if absent.
    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        let path = self.path(key)?;
        let md = tokio::fs::metadata(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
                _ => StorageError::io(format!("stat {}", path.display()), e),
            })?;
        Ok(StoredBackup {
            key: key.to_string(),
            name: parse_name(key).ok_or_else(|| StorageError::NotOurs(key.to_string()))?,
            size: md.len(),
            modified: md.modified().ok().map(DateTime::<Utc>::from),
            meta: self.read_sidecar(key).await,
        })
    }

    /// Rewrites the sidecar of an existing backup (atomically).
    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError> {
        self.head(key).await?;
        let sidecar = self.dir.join(format!("{key}{SIDECAR}"));
        write_sidecar(&sidecar, meta)
            .await
            .map_err(|e| StorageError::io(format!("writing {}", sidecar.display()), e))
    }

    /// The archive's bytes.
    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let path = self.path(key)?;
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
                _ => StorageError::io(format!("opening {}", path.display()), e),
            })?;
        Ok(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).boxed())
    }

    /// Deletes backups and their sidecars; absent ones are fine.
    async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        for key in keys {
            let path = self.path(key)?;
            remove_backup(&path)
                .await
                .map_err(|e| StorageError::io(format!("deleting {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Removes `<name>.partial` files of our naming scheme last modified more than
    /// `older_than` ago: what a crash (or SIGKILL, or power loss) mid-write leaves. Younger ones
    /// may belong to a writer still at work and are left alone. Returns how many were removed.
    async fn sweep(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        let listing = |e| StorageError::io(format!("listing {}", self.dir.display()), e);
        let mut rd = tokio::fs::read_dir(&self.dir).await.map_err(listing)?;
        let mut removed = 0;
        while let Some(entry) = rd.next_entry().await.map_err(listing)? {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(base) = name.strip_suffix(PARTIAL) else {
                continue;
            };
            if parse_name(base).is_none() {
                continue;
            }
            let Ok(md) = entry.metadata().await else {
                continue;
            };
            let old = md
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > older_than);
            if md.is_file() && old {
                match tokio::fs::remove_file(entry.path()).await {
                    Ok(()) => {
                        tracing::info!(file = %name, "removed a partial backup left by an interrupted write");
                        removed += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(format!("removing {name}"), e)),
                }
            }
        }
        Ok(removed)
    }

    /// Starts writing the backup `name`.
    async fn begin(
        &self,
        name: &BackupName,
        _pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError> {
        let key = format_name(name);
        let path = self.dir.join(&key);
        // Exclusive: a second writer of the same name (another agent, a clock step) fails
        // instead of writing into the first one's file.
        let file = AtomicFile::create_new(&path, PARTIAL)
            .await
            .map_err(|e| StorageError::io(format!("creating {key}{PARTIAL}"), e))?;
        Ok(Box::new(LocalUpload {
            file,
            key,
            name: name.clone(),
            dir: self.dir.clone(),
        }))
    }
}

/// `local:/path`, for messages.
impl std::fmt::Display for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "local:{}", self.dir.display())
    }
}

/// An archive being written to a [`LocalStore`]: `<name>.partial` until the commit.
#[derive(Debug)]
pub struct LocalUpload {
    file: AtomicFile,
    key: String,
    name: BackupName,
    dir: PathBuf,
}

#[async_trait]
impl BackendUpload for LocalUpload {
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        self.file
            .write(chunk)
            .await
            .map_err(|e| StorageError::io(format!("writing {}{PARTIAL}", self.key), e))
    }

    async fn commit(self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError> {
        let LocalUpload {
            file,
            key,
            name,
            dir,
        } = *self;
        let sidecar = dir.join(format!("{key}{SIDECAR}"));
        if let Err(e) = write_sidecar(&sidecar, &meta).await {
            file.discard().await;
            return Err(StorageError::io(
                format!("writing {}", sidecar.display()),
                e,
            ));
        }
        let path = file
            .finish_plain()
            .await
            .map_err(|e| StorageError::io(format!("publishing {key}"), e))?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| StorageError::io(format!("stat {key}"), e))?
            .len();
        if Some(size) != meta.stored_size() {
            // Not what was verified: removed again, with its sidecar.
            let removed = match remove_backup(&path).await {
                Ok(()) => "deleted".to_string(),
                Err(e) => format!("deleting it failed too ({e})"),
            };
            return Err(StorageError::Publish {
                key,
                detail: format!(
                    "it holds {size} bytes, {} were verified; {removed}",
                    meta.stored_size().unwrap_or(0)
                ),
                class: super::ErrorKind::Invalid,
            });
        }
        Ok(StoredBackup {
            key,
            name,
            size,
            modified: Some(Utc::now()),
            meta: Some(meta),
        })
    }

    async fn abort(self: Box<Self>) {
        self.file.discard().await;
    }
}

/// Removes a backup's archive and its sidecar; either missing is fine.
async fn remove_backup(path: &Path) -> io::Result<()> {
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(SIDECAR);
    for p in [path, Path::new(&sidecar)] {
        match tokio::fs::remove_file(p).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn write_sidecar(path: &Path, meta: &BackupMeta) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
    let mut f = AtomicFile::create(path, ".tmp").await?;
    f.write(&Bytes::from(json)).await?;
    f.finish_plain().await.map(|_| ())
}
