//! `GET`/`PUT /v1/snapshot` of the test server (spec consul-http-api.md §2). Archives are made
//! by the project's writer from the current state.bin (synthetic, or the last restored one) and
//! cached per index; restores are verified exactly like saves and answered with Consul's texts.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{Stream, StreamExt};
use tokio::sync::Mutex;
use tokio_util::io::ReaderStream;

use super::faults::Faults;
use super::http::{authorize, meta_headers, no_leader, text, Need, Params};
use super::{AppState, SnapshotSource};
use crate::archive::synth::SynthSpec;
use crate::archive::{
    read_archive, write_archive, ReadOptions, RecordInfo, RecordVisitor, SnapshotMeta, WriteOptions,
};
use crate::pipeline::{stream_verified, Discard, PipelineError};

/// What a successful restore received, for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreRecord {
    /// `meta.json` of the restored archive.
    pub meta: SnapshotMeta,
    /// SHA-256 of the restored archive bytes.
    pub archive_sha256: [u8; 32],
    /// SHA-256 of its state.bin.
    pub state_sha256: [u8; 32],
    /// The Raft index the restore was applied at.
    pub applied_index: u64,
}

struct Current {
    state: PathBuf,
    meta: SnapshotMeta,
    archive: Option<PathBuf>,
}

/// The snapshot the server would save right now.
pub struct SnapshotStore {
    dir: PathBuf,
    current: Mutex<Current>,
    seq: AtomicU64,
}

impl SnapshotStore {
    /// Prepares the initial state in `dir` (a directory the server owns).
    pub async fn init(dir: &Path, source: &SnapshotSource) -> io::Result<Self> {
        let state = dir.join("state-0.bin");
        let current = match source {
            SnapshotSource::Synthetic(spec) => {
                let spec: SynthSpec = spec.clone();
                let path = state.clone();
                let len = tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::create(&path)?;
                    spec.write_state(io::BufWriter::with_capacity(1 << 20, f))
                })
                .await
                .map_err(io::Error::other)??;
                let mut meta = source_meta(source);
                meta.size = len as i64;
                Current {
                    state,
                    meta,
                    archive: None,
                }
            }
            SnapshotSource::Archive(path) => {
                let (path, out) = (path.clone(), state.clone());
                let report = tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::open(&path)?;
                    let mut copy = StateCopy::create(&out)?;
                    let r = read_archive(f, ReadOptions::default(), &mut copy).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: {e}", path.display()),
                        )
                    })?;
                    copy.finish()?;
                    Ok::<_, io::Error>((r, path))
                })
                .await
                .map_err(io::Error::other)??;
                Current {
                    state,
                    meta: report.0.meta,
                    archive: Some(report.1),
                }
            }
        };
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
            seq: AtomicU64::new(1),
        })
    }

    /// Raft index of the current snapshot.
    pub async fn index(&self) -> u64 {
        self.current.lock().await.meta.index
    }

    /// The current archive (built on first use) and its metadata.
    async fn archive(&self) -> io::Result<(PathBuf, SnapshotMeta)> {
        let mut cur = self.current.lock().await;
        if let Some(a) = &cur.archive {
            return Ok((a.clone(), cur.meta.clone()));
        }
        let out = self.dir.join(format!("snapshot-{}.snap", cur.meta.index));
        let (state, meta, dest) = (cur.state.clone(), cur.meta.clone(), out.clone());
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            let mut src = io::BufReader::with_capacity(1 << 20, std::fs::File::open(&state)?);
            let len = std::fs::metadata(&state)?.len();
            let tmp = dest.with_extension("tmp");
            let f = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            let (f, _) = write_archive(f, &meta, &mut src, len, &WriteOptions::default())
                .map_err(io::Error::other)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &dest)
        })
        .await
        .map_err(io::Error::other)??;
        cur.archive = Some(out.clone());
        Ok((out, cur.meta.clone()))
    }

    async fn replace(&self, state: PathBuf, meta: SnapshotMeta) {
        let mut cur = self.current.lock().await;
        let old = std::mem::replace(
            &mut *cur,
            Current {
                state,
                meta,
                archive: None,
            },
        );
        self.forget(old.state).await;
    }

    /// Removes a replaced state file of ours, so that restores do not pile up copies of
    /// state.bin in the data directory (a snapshot being served from it keeps its open file).
    async fn forget(&self, state: PathBuf) {
        if state.starts_with(&self.dir) {
            let _ = tokio::fs::remove_file(&state).await;
        }
    }

    /// Removes the KV entries under `prefix` from the snapshot state, as a recursive KV delete
    /// does in Consul: the next snapshot (at Raft index `index`) no longer has them. Returns how
    /// many were removed.
    pub async fn delete_kv_tree(&self, prefix: &[u8], index: u64) -> io::Result<u64> {
        let mut cur = self.current.lock().await;
        let (from, to, prefix) = (cur.state.clone(), self.next_path(), prefix.to_vec());
        let out = to.clone();
        let (len, dropped) = tokio::task::spawn_blocking(move || -> io::Result<(u64, u64)> {
            let mut src = std::fs::File::open(&from)?;
            let mut filter = KvFilter {
                prefix,
                out: io::BufWriter::new(std::fs::File::create(&out)?),
                buf: Vec::new(),
                buf_start: 0,
                last_end: 0,
                kept: 0,
                dropped: 0,
                err: None,
            };
            let mut parser =
                crate::archive::StateParser::new(crate::archive::TypePolicy::AnyBelowFlag);
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let n = io::Read::read(&mut src, &mut chunk)?;
                if n == 0 {
                    break;
                }
                filter.state_bytes(&chunk[..n]);
                parser
                    .feed(&chunk[..n], &mut filter)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            }
            parser
                .finish()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if let Some(e) = filter.err.take() {
                return Err(e);
            }
            // What follows the last record: nothing, or the header of a state without records.
            let rest = std::mem::take(&mut filter.buf);
            filter.out.write_all(&rest)?;
            filter.out.flush()?;
            Ok((filter.kept + rest.len() as u64, filter.dropped))
        })
        .await
        .map_err(io::Error::other)??;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut meta = cur.meta.clone();
        meta.index = index.max(meta.index + 1);
        meta.id = format!("{}-{}-{}", meta.term, meta.index, millis);
        meta.size = len as i64;
        let old = std::mem::replace(
            &mut *cur,
            Current {
                state: to,
                meta,
                archive: None,
            },
        );
        self.forget(old.state).await;
        Ok(dropped)
    }

    fn next_path(&self) -> PathBuf {
        self.dir.join(format!(
            "state-{}.bin",
            self.seq.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

fn source_meta(source: &SnapshotSource) -> SnapshotMeta {
    match source {
        SnapshotSource::Synthetic(spec) => spec.meta(),
        SnapshotSource::Archive(_) => SnapshotMeta::default(),
    }
}

/// Copies a state.bin stream record by record, leaving out the KVS records under `prefix`.
struct KvFilter {
    prefix: Vec<u8>,
    out: io::BufWriter<std::fs::File>,
    /// Raw bytes from offset `buf_start` not yet written or skipped.
    buf: Vec<u8>,
    buf_start: u64,
    /// End offset of the last record (0 before the first: the header comes with it).
    last_end: u64,
    /// Bytes written.
    kept: u64,
    /// Records left out.
    dropped: u64,
    err: Option<io::Error>,
}

impl KvFilter {
    /// Writes (`keep`) or skips the buffered bytes up to offset `end`.
    fn take_until(&mut self, end: u64, keep: bool) {
        let n = usize::try_from(end.saturating_sub(self.buf_start))
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        if keep && self.err.is_none() {
            match self.out.write_all(&self.buf[..n]) {
                Ok(()) => self.kept += n as u64,
                Err(e) => self.err = Some(e),
            }
        }
        self.buf.drain(..n);
        self.buf_start += n as u64;
    }
}

impl RecordVisitor for KvFilter {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        let end = self.last_end + rec.size;
        // The header (before the first record) is always kept.
        self.take_until(rec.offset, true);
        let drop = rec.type_byte == crate::archive::types::msg::KVS
            && rec.kv_key.is_some_and(|k| k.starts_with(&self.prefix));
        self.take_until(end, !drop);
        self.dropped += u64::from(drop);
        self.last_end = end;
    }

    fn state_bytes(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }
}

/// Keeps a copy of state.bin while an archive is verified, as Consul streams it to a temp file.
struct StateCopy {
    out: io::BufWriter<std::fs::File>,
    err: Option<io::Error>,
}

impl StateCopy {
    fn create(path: &Path) -> io::Result<Self> {
        Ok(StateCopy {
            out: io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?),
            err: None,
        })
    }

    fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

impl RecordVisitor for StateCopy {
    fn record(&mut self, _rec: &RecordInfo<'_>) {}

    fn state_bytes(&mut self, chunk: &[u8]) {
        if self.err.is_none() {
            if let Err(e) = self.out.write_all(chunk) {
                self.err = Some(e);
            }
        }
    }
}

/// `GET /v1/snapshot`.
pub async fn save(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &q, Need::Operator) {
        return r.into_response();
    }
    let faults = s.faults();
    if faults.no_leader && !q.contains_key("stale") {
        return no_leader();
    }
    if let Some(msg) = s.take_snapshot_error() {
        let status = faults
            .snapshot_error_status
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(pad) = faults.snapshot_error_padding {
            return (status, Body::from_stream(padded(s.clone(), msg, pad))).into_response();
        }
        return text(status, msg);
    }
    let (path, meta) = match s.store.archive().await {
        Ok(a) => a,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to create snapshot file: {e}"),
            )
        }
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to open snapshot file: {e}"),
            )
        }
    };
    let chunk = faults
        .rate_bytes_per_sec
        .map_or(64 * 1024, |r| (r / 20).clamp(1024, 64 * 1024) as usize);
    let body = Body::from_stream(faulty(ReaderStream::with_capacity(file, chunk), faults));
    let mut r = (StatusCode::OK, body).into_response();
    meta_headers(&s, r.headers_mut(), meta.index);
    r.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/x-gzip"),
    );
    r
}

/// `msg` followed by `pad` bytes of filler in 64 KiB chunks, counting what is pulled.
fn padded(s: Arc<AppState>, msg: String, pad: u64) -> impl Stream<Item = io::Result<Bytes>> + Send {
    const CHUNK: u64 = 64 * 1024;
    let head = futures_util::stream::once(async move { Ok::<Bytes, io::Error>(Bytes::from(msg)) });
    let filler = futures_util::stream::unfold(pad, move |left| {
        let s = s.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = left.min(CHUNK);
            s.error_body_sent
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Some((Ok(Bytes::from(vec![b'x'; n as usize])), left - n))
        }
    });
    head.chain(filler)
}

struct FaultState<S> {
    inner: S,
    sent: u64,
    faults: Faults,
    done: bool,
}

/// Applies the body faults to the archive stream.
fn faulty<S>(inner: S, faults: Faults) -> impl Stream<Item = io::Result<Bytes>> + Send
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    futures_util::stream::unfold(
        FaultState {
            inner,
            sent: 0,
            faults,
            done: false,
        },
        |mut st| async move {
            if st.done {
                return None;
            }
            let f = &st.faults;
            let stop_at = [f.truncate_after, f.drop_after, f.stall_after]
                .into_iter()
                .flatten()
                .min();
            if stop_at == Some(st.sent) {
                if f.stall_after == Some(st.sent) {
                    futures_util::future::pending::<()>().await;
                }
                if f.drop_after == Some(st.sent) {
                    st.done = true;
                    // Pending first, so that hyper flushes the headers and the bytes so far
                    // before the connection drops: "after N bytes of the body" whatever the
                    // timing (otherwise the client may see no answer at all).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((
                        Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "injected fault: connection dropped",
                        )),
                        st,
                    ));
                }
                return None; // truncate: a clean, early end
            }
            let mut chunk = match st.inner.next().await? {
                Ok(c) => c,
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            };
            if let Some(stop) = stop_at {
                let room = (stop - st.sent) as usize;
                if chunk.len() > room {
                    chunk.truncate(room);
                }
            }
            if let Some(at) = st.faults.flip_byte_at {
                if at >= st.sent && at < st.sent + chunk.len() as u64 {
                    let mut v = chunk.to_vec();
                    v[(at - st.sent) as usize] ^= 0x01;
                    chunk = Bytes::from(v);
                }
            }
            if let Some(rate) = st.faults.rate_bytes_per_sec.filter(|&r| r > 0) {
                tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate as f64)).await;
            }
            st.sent += chunk.len() as u64;
            Some((Ok(chunk), st))
        },
    )
}

/// `PUT /v1/snapshot`: verify like Consul, then make the archive the current state.
pub async fn restore(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = authorize(&s, &headers, &q, Need::Operator) {
        return r.into_response();
    }
    if q.contains_key("stale") {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stale not allowed for restore",
        );
    }
    if s.faults().no_leader {
        return no_leader();
    }
    let state_path = s.store.next_path();
    let report = match receive(body, &state_path).await {
        Ok(r) => r,
        Err(msg) => return text(StatusCode::INTERNAL_SERVER_ERROR, msg),
    };
    if let Some(ms) = s.faults().restore_delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    // Raft applies a user restore at max(last index, snapshot index) + 1.
    let applied_index = s.mutate(|c| {
        c.index = c.index.max(report.meta.index) + 1;
        c.index
    });
    let mut meta = report.meta.clone();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    meta.index = applied_index;
    meta.id = format!("{}-{}-{}", meta.term, applied_index, millis);
    s.store.replace(state_path, meta).await;
    if let Some(prefix) = s.faults().restore_drop_kv_prefix {
        if let Err(e) = s
            .store
            .delete_kv_tree(prefix.as_bytes(), applied_index)
            .await
        {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    s.record_restore(RestoreRecord {
        meta: report.meta,
        archive_sha256: report.archive_sha256,
        state_sha256: report.state_sha256,
        applied_index,
    });
    StatusCode::OK.into_response()
}

/// Verifies the uploaded archive as Consul does while copying its state.bin to
/// `state_path`; the report, or Consul's error text (nothing is left at `state_path`).
async fn receive(
    body: Body,
    state_path: &std::path::Path,
) -> Result<crate::archive::ArchiveReport, String> {
    let copy = StateCopy::create(state_path)
        .map_err(|e| format!("failed to create snapshot file: {e}"))?;
    let stream = body
        .into_data_stream()
        .map(|item| item.map_err(|e| io::Error::other(e.to_string())));
    match stream_verified(stream, Discard, ReadOptions::default(), copy, None).await {
        Ok((report, copy, ())) => copy
            .finish()
            .map(|()| report)
            .map_err(|e| format!("failed to write snapshot: {e}")),
        Err(e) => {
            let _ = tokio::fs::remove_file(state_path).await;
            Err(match e {
                PipelineError::Invalid(e) => e.to_string(),
                other => other.to_string(),
            })
        }
    }
}

/// `GET /_testserver/faults`.
pub async fn get_faults(State(s): State<Arc<AppState>>) -> Json<Faults> {
    Json(s.faults())
}

/// `PUT /_testserver/faults` with a complete [`Faults`] object (any content type).
pub async fn put_faults(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            s.set_faults(f);
            StatusCode::OK.into_response()
        }
        Err(e) => text(
            StatusCode::BAD_REQUEST,
            format!("Request decode failed: {e}"),
        ),
    }
}
