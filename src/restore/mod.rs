//! Restore: choose a backup ([`select`]), fetch and verify it into a private temporary file
//! (archive SHA-256 against the stored digest, and every check of the archive reader), then
//! stream the verified file to `PUT /v1/snapshot`. Nothing reaches Consul unverified.

pub mod diff;
pub mod drill;
pub mod fleet;
pub mod kv;
pub mod peers;
pub mod scratch;
pub mod select;

use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use crate::archive::pretty::byte_size;
use crate::archive::{
    ArchiveReport, InspectReport, InspectStats, ReadOptions, RecordVisitor, TypePolicy,
};
use crate::crypto::Identities;
use crate::pipeline::PipelineError;
use crate::storage::verify::{verify_stored, VerifyError};
use crate::storage::{BackupMeta, Store, StoredBackup};
pub use scratch::{ScratchCopy, ScratchFile};
use std::sync::Arc;

/// Where the archive comes from.
pub enum Source {
    /// A local `.snap` file.
    File(PathBuf),
    /// A backup at a destination.
    Stored {
        store: Box<Store>,
        backup: Box<StoredBackup>,
    },
    /// The cluster now: a fresh `GET /v1/snapshot` (not `?stale`), verified as it streams.
    Live(Box<crate::consul::ConsulClient>),
}

/// Restore failures before anything is sent to Consul.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("reading {what}: {detail}")]
    Fetch { what: String, detail: String },
    #[error("the backup is not a valid snapshot: {0}")]
    Invalid(crate::archive::ArchiveError),
    #[error("{0}")]
    Open(String),
    #[error("the archive's SHA-256 {actual} differs from the digest stored with the backup ({stored}): the backup was altered or damaged")]
    DigestMismatch { actual: String, stored: String },
}

/// A verified archive in a private, unnamed temporary file, ready to send.
pub struct Prepared {
    /// The verified copy (plaintext), open until this is dropped.
    pub copy: ScratchCopy,
    pub report: ArchiveReport,
    pub stats: InspectReport,
    /// Whether a stored digest was compared (false for plain files and backups without one).
    pub digest_checked: bool,
}

/// Fetches and verifies `source` into an unnamed temporary file ([`ScratchFile`]: it cannot
/// outlive the process), decrypting an age-encrypted backup with `ids` on the way: the file
/// holds the plaintext archive.
pub async fn fetch_verified(
    source: &Source,
    types: TypePolicy,
    ids: &Arc<Identities>,
) -> Result<Prepared, RestoreError> {
    fetch_verified_with(source, types, ids, ())
        .await
        .map(|(p, ())| p)
}

/// [`fetch_verified`], with `visitor` also fed every state.bin record of the same pass (a
/// drill's fingerprint): the archive is read once.
pub async fn fetch_verified_with<V: RecordVisitor + Send + 'static>(
    source: &Source,
    types: TypePolicy,
    ids: &Arc<Identities>,
    visitor: V,
) -> Result<(Prepared, V), RestoreError> {
    let sink = ScratchFile::create().map_err(|e| RestoreError::Fetch {
        what: source.to_string(),
        detail: e.to_string(),
    })?;
    let (report, (stats, visitor), copy, digest_checked) =
        verify_into(source, types, ids, sink, (InspectStats::new(None), visitor)).await?;
    let stats = stats.into_report(&report.meta);
    let prepared = Prepared {
        copy,
        report,
        stats,
        digest_checked,
    };
    Ok((prepared, visitor))
}

/// [`fetch_verified_with`] keeping no copy: what a dry run shows. The report, the record
/// statistics, whether a stored digest was compared, and the visitor.
pub async fn check_verified<V: RecordVisitor + Send + 'static>(
    source: &Source,
    types: TypePolicy,
    ids: &Arc<Identities>,
    visitor: V,
) -> Result<(ArchiveReport, InspectReport, bool, V), RestoreError> {
    let stats = InspectStats::new(None);
    let (report, (stats, visitor), (), digest_checked) = verify_into(
        source,
        types,
        ids,
        crate::pipeline::Discard,
        (stats, visitor),
    )
    .await?;
    let stats = stats.into_report(&report.meta);
    Ok((report, stats, digest_checked, visitor))
}

/// Reads and verifies `source` in one pass, keeping no copy, with `visitor` fed every
/// state.bin record (`kv-export`, `diff`). What the visitor gathered is only good when this
/// returns `Ok`: records are visited before the archive's integrity is known.
pub async fn read_verified<V: RecordVisitor + Send + 'static>(
    source: &Source,
    types: TypePolicy,
    ids: &Arc<Identities>,
    visitor: V,
) -> Result<(ArchiveReport, V), RestoreError> {
    if let Source::File(path) = source {
        // A local file is read on one blocking thread, as `verify` reads it: no async hop.
        let (path, ids) = (path.clone(), ids.clone());
        let what = source.to_string();
        return tokio::task::spawn_blocking(move || read_file(&path, types, &ids, visitor))
            .await
            .map_err(|e| RestoreError::Fetch {
                what,
                detail: e.to_string(),
            })?;
    }
    let (report, visitor, (), _) =
        verify_into(source, types, ids, crate::pipeline::Discard, visitor).await?;
    Ok((report, visitor))
}

/// [`read_verified`] of a local file (decrypted with `ids` when it is an age file).
fn read_file<V: RecordVisitor>(
    path: &std::path::Path,
    types: TypePolicy,
    ids: &Identities,
    mut visitor: V,
) -> Result<(ArchiveReport, V), RestoreError> {
    let fetch_err = |detail: String| RestoreError::Fetch {
        what: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| fetch_err(e.to_string()))?;
    let reader =
        crate::crypto::open_read(file, ids, &[]).map_err(|e| RestoreError::Open(e.to_string()))?;
    let report = crate::archive::read_archive(reader, ReadOptions { types }, &mut visitor)
        .map_err(|e| match e {
            crate::archive::ArchiveError::Source(e) => fetch_err(e.to_string()),
            other => RestoreError::Invalid(other),
        })?;
    Ok((report, visitor))
}

/// The bytes of `source` as stored (an age file or a plain archive), with the metadata
/// stored with it, if any.
async fn open_source(
    source: &Source,
) -> Result<(BoxStream<'static, io::Result<Bytes>>, Option<BackupMeta>), RestoreError> {
    let fetch_err = |detail: String| RestoreError::Fetch {
        what: source.to_string(),
        detail,
    };
    match source {
        Source::File(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| fetch_err(e.to_string()))?;
            Ok((
                tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).boxed(),
                None,
            ))
        }
        Source::Stored { store, backup } => {
            let head = store
                .head(&backup.key)
                .await
                .map_err(|e| fetch_err(e.to_string()))?;
            let body = store
                .get(&backup.key)
                .await
                .map_err(|e| fetch_err(e.to_string()))?;
            Ok((body, head.meta))
        }
        Source::Live(client) => {
            let d =
                crate::consul::get_snapshot(client, false, crate::retry::RetryPolicy::default())
                    .await
                    .map_err(|e| fetch_err(e.to_string()))?;
            Ok((d.body, None))
        }
    }
}

/// Streams `source` through the archive reader into `sink` ([`verify_stored`], as the
/// read-back does); the report, the visitor, what the sink committed, and whether a stored
/// digest was compared.
async fn verify_into<S, V>(
    source: &Source,
    types: TypePolicy,
    ids: &Arc<Identities>,
    sink: S,
    visitor: V,
) -> Result<(ArchiveReport, V, S::Committed, bool), RestoreError>
where
    S: crate::pipeline::ArchiveSink,
    V: RecordVisitor + Send + 'static,
{
    let (body, meta) = open_source(source).await?;
    verify_stored(
        body,
        meta.as_ref(),
        ids,
        sink,
        ReadOptions { types },
        visitor,
    )
    .await
    .map_err(|e| match e {
        VerifyError::Open(e) => RestoreError::Open(e.to_string()),
        VerifyError::Pipeline(PipelineError::Invalid(e)) => RestoreError::Invalid(e),
        VerifyError::Pipeline(other) => RestoreError::Fetch {
            what: source.to_string(),
            detail: other.to_string(),
        },
        VerifyError::Digest { actual, stored } => RestoreError::DigestMismatch { actual, stored },
    })
}

/// What [`pick`] chose: where, which, and the newer backups it passed over (key, why).
#[derive(Debug)]
pub struct Picked {
    /// Index of the store holding it.
    pub store: usize,
    pub backup: StoredBackup,
    pub skipped: Vec<(String, select::Skip)>,
}

/// Backups whose metadata [`pick`] reads at a time (HEAD requests at S3, Azure, GCS).
const PICK_BATCH: usize = 16;

/// Chooses per `sel` among `listed` (backups with the index of their store). For `--latest`
/// and `--before` the candidates' metadata is read newest first, `PICK_BATCH` (16) at a time,
/// until one is usable ([`select::select`] passes over anomalies and safety snapshots): a
/// bucket of hundreds of backups costs a few reads, not one per backup. A failed read leaves
/// a backup without metadata (no marks known). `Err` carries the passed-over backups when
/// nothing is left.
pub async fn pick(
    stores: &[Store],
    mut listed: Vec<(usize, StoredBackup)>,
    sel: &select::Selection,
) -> Result<Picked, Vec<(String, select::Skip)>> {
    let now = chrono::Utc::now();
    if let select::Selection::Before(t) = sel {
        listed.retain(|(_, b)| b.name.time <= *t);
    }
    if !matches!(sel, select::Selection::Key(_)) {
        listed.sort_by(|(_, a), (_, b)| {
            crate::retention::newest_first(
                (&a.name.time, a.name.index, &a.key),
                (&b.name.time, b.name.index, &b.key),
            )
        });
        let mut read = 0;
        while read < listed.len() {
            let end = (read + PICK_BATCH).min(listed.len());
            fill_batch(stores, &mut listed[read..end]).await;
            read = end;
            // The newest usable backup among the newest `read` is the newest overall.
            let prefix: Vec<StoredBackup> = listed[..read].iter().map(|(_, b)| b.clone()).collect();
            if select::select(&prefix, sel, now).chosen.is_some() {
                break;
            }
        }
        listed.truncate(read);
    }
    let backups: Vec<StoredBackup> = listed.iter().map(|(_, b)| b.clone()).collect();
    let got = select::select(&backups, sel, now);
    let skipped: Vec<(String, select::Skip)> = got
        .skipped
        .iter()
        .map(|(b, why)| (b.key.clone(), *why))
        .collect();
    let Some(chosen) = got.chosen else {
        return Err(skipped);
    };
    listed
        .into_iter()
        .find(|(_, b)| b.key == chosen.key && b.name == chosen.name)
        .map(|(store, backup)| Picked {
            store,
            backup,
            skipped: skipped.clone(),
        })
        .ok_or(skipped)
}

/// Reads the metadata of `batch` (backups with their store's index) where the listing had
/// none, store by store; a failure is logged and leaves those backups without.
async fn fill_batch(stores: &[Store], batch: &mut [(usize, StoredBackup)]) {
    for (i, store) in stores.iter().enumerate() {
        let mine: Vec<StoredBackup> = batch
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, b)| b.clone())
            .collect();
        if mine.is_empty() {
            continue;
        }
        match store.fill_meta(mine, |_| true, false).await {
            Ok(filled) => {
                for b in filled {
                    if let Some(slot) = batch.iter_mut().find(|(j, x)| *j == i && x.key == b.key) {
                        slot.1 = b;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(destination = %store, error = %e, "could not read the backups' metadata; anomalies and safety snapshots there cannot be told apart");
            }
        }
    }
}

/// The summary shown before confirmation.
pub fn summary(p: &Prepared, source: &str) -> String {
    summary_of(&p.report, &p.stats, p.digest_checked, source)
}

/// [`summary`] of a verified archive's `report` and record `stats`; `digest_checked`: a stored
/// digest was compared.
pub fn summary_of(
    report: &ArchiveReport,
    stats: &InspectReport,
    digest_checked: bool,
    source: &str,
) -> String {
    let m = &report.meta;
    let mut s = format!(
        "Snapshot to restore ({source}):\n  ID       {}\n  Index    {}\n  Term     {}\n  Size     {} archive, {} state.bin\n  SHA-256  {}{}\n  Largest record types:\n",
        m.id,
        m.index,
        m.term,
        byte_size(report.archive_len),
        byte_size(report.state.len),
        hex::encode(report.archive_sha256),
        if digest_checked { " (matches the stored digest)" } else { " (no stored digest to compare; SHA256SUMS verified)" },
    );
    for t in stats.stats.iter().take(5) {
        s.push_str(&format!(
            "    {:<24} {:>8} records  {}\n",
            String::from_utf8_lossy(&t.name),
            t.count,
            byte_size(t.sum)
        ));
    }
    s
}

/// `body` passed through while its SHA-256 and length are computed again; the last chunk is
/// held back until the end, and released only if both match `expected_sha256` and
/// `expected_len`. Otherwise the stream ends in an error instead, so the receiver (Consul)
/// never gets a complete archive that differs from the one verified.
pub fn checked_body<S>(
    body: S,
    expected_sha256: [u8; 32],
    expected_len: u64,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + 'static
where
    S: futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + Unpin + 'static,
{
    use sha2::{Digest, Sha256};
    struct St<S> {
        body: S,
        held: Option<Bytes>,
        hash: Sha256,
        len: u64,
        done: bool,
    }
    futures_util::stream::unfold(
        St {
            body,
            held: None,
            hash: Sha256::new(),
            len: 0,
            done: false,
        },
        move |mut st| async move {
            if st.done {
                return None;
            }
            loop {
                match st.body.next().await {
                    Some(Ok(chunk)) => {
                        st.hash.update(&chunk);
                        st.len += chunk.len() as u64;
                        if let Some(prev) = st.held.replace(chunk) {
                            return Some((Ok(prev), st));
                        }
                    }
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                    None => {
                        st.done = true;
                        let digest: [u8; 32] = std::mem::take(&mut st.hash).finalize().into();
                        if digest != expected_sha256 || st.len != expected_len {
                            return Some((
                                Err(io::Error::other(format!(
                                    "the file changed after verification ({} bytes, sha256 {}); the restore was stopped before its last bytes",
                                    st.len,
                                    hex::encode(digest)
                                ))),
                                st,
                            ));
                        }
                        return st.held.take().map(|last| (Ok(last), st));
                    }
                }
            }
        },
    )
}

/// The verified copy as a byte stream, and its length in bytes.
pub fn body_of(
    copy: &ScratchCopy,
) -> (
    impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + Unpin + 'static,
    u64,
) {
    (copy.stream(), copy.len())
}

/// The file's path, or `destination key`, for messages.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Stored { store, backup } => write!(f, "{store} {}", backup.key),
            Source::Live(client) => write!(f, "the live cluster at {}", client.addr()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    async fn collect(
        s: impl futures_util::Stream<Item = io::Result<Bytes>>,
    ) -> (Vec<u8>, Option<String>) {
        let mut out = Vec::new();
        futures_util::pin_mut!(s);
        while let Some(c) = s.next().await {
            match c {
                Ok(c) => out.extend_from_slice(&c),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn checked_body_sends_the_verified_bytes_and_withholds_the_end_of_others() {
        let good: [u8; 32] = Sha256::digest(b"abcdef").into();
        let (out, err) = collect(checked_body(chunks(&[b"ab", b"cd", b"ef"]), good, 6)).await;
        assert_eq!((out.as_slice(), err), (&b"abcdef"[..], None));
        // Same length, other bytes: the last chunk never goes out.
        let (out, err) = collect(checked_body(chunks(&[b"ab", b"cd", b"eX"]), good, 6)).await;
        assert_eq!(out, b"abcd");
        assert!(err.expect("error").contains("changed after verification"));
        // Longer: refused too.
        let (out, err) = collect(checked_body(chunks(&[b"abcdef", b"g"]), good, 6)).await;
        assert_eq!(out, b"abcdef");
        assert!(err.is_some());
    }
}
