//! `GET /v1/snapshot` as one stream (spec consul-http-api.md §2.1), retried with back-off while
//! no byte has been accepted: connection errors and 5xx/429 answers. A body cut short after the
//! 200 cannot be retried (the caller already consumed part of it) and is caught by verification.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Method;

use backon::Retryable;

use super::client::{ConsulClient, ConsulError};

pub use crate::retry::RetryPolicy;

/// An open snapshot download.
pub struct SnapshotDownload {
    /// `X-Consul-Index`: the snapshot's Raft index.
    pub index: Option<u64>,
    /// `X-Consul-KnownLeader`.
    pub known_leader: Option<bool>,
    /// `Content-Length`, when Consul sent one (it usually streams chunked).
    pub content_length: Option<u64>,
    /// `Date`: Consul's clock when it answered (a check on this host's clock).
    pub date: Option<chrono::DateTime<chrono::Utc>>,
    /// The archive bytes.
    pub body: BoxStream<'static, io::Result<Bytes>>,
}

impl std::fmt::Debug for SnapshotDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotDownload")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Opens `GET /v1/snapshot[?stale]`, retrying per `retry` until headers of a 200 arrive.
pub async fn get_snapshot(
    client: &ConsulClient,
    stale: bool,
    retry: RetryPolicy,
) -> Result<SnapshotDownload, ConsulError> {
    let query: &[(&str, &str)] = if stale { &[("stale", "")] } else { &[] };
    let resp = (|| client.send(client.request(Method::GET, "/v1/snapshot", query)))
        .retry(retry.backoff())
        .when(ConsulError::is_transient)
        .notify(|e, delay| {
            tracing::warn!(error = %e, retry_in = ?delay, "snapshot request failed, retrying")
        })
        .await?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let index = header("X-Consul-Index").and_then(|v| v.parse().ok());
    let known_leader = header("X-Consul-KnownLeader").map(|v| v == "true");
    let content_length = resp.content_length();
    let date = header("Date").and_then(|d| crate::units::parse_http_date(&d));
    let body = resp
        .bytes_stream()
        .map_err(|e| io::Error::other(transfer_error(&e)))
        .boxed();
    Ok(SnapshotDownload {
        index,
        known_leader,
        content_length,
        date,
        body,
    })
}

/// A body error with its cause chain (e.g. "error decoding response body: operation timed out").
fn transfer_error(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// `PUT /v1/snapshot` (restore), streaming `body` of `len` bytes. Never `?stale` (Consul
/// refuses it). Consul's errors come back as [`ConsulError::Status`] with its text.
///
/// Two limits, because Consul answers a restore only after applying it: while the body is
/// being sent, the client's read timeout bounds each silence (Consul not reading); once it
/// is sent, `restore_timeout` bounds the wait for the answer (`None`: no bound). When that
/// expires the error says Consul may still be restoring ([`ConsulError::RestorePending`]).
pub async fn put_snapshot(
    client: &ConsulClient,
    body: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + Sync + 'static,
    len: u64,
    restore_timeout: Option<Duration>,
) -> Result<(), ConsulError> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let started = std::time::Instant::now();
    let last_progress = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicBool::new(false));
    let body = {
        let (last_progress, sent, sent_end) = (last_progress.clone(), sent.clone(), sent.clone());
        let millis = move || started.elapsed().as_millis() as u64;
        let mut total = 0u64;
        // With a Content-Length, hyper stops polling once `len` bytes went out: count them
        // rather than wait for the end of the stream.
        body.map(move |c| {
            last_progress.store(millis(), Ordering::Relaxed);
            if let Ok(chunk) = &c {
                total += chunk.len() as u64;
                if total >= len {
                    sent.store(true, Ordering::Relaxed);
                }
            }
            c
        })
        .chain(futures_util::stream::poll_fn(move |_| {
            sent_end.store(true, Ordering::Relaxed);
            std::task::Poll::Ready(None)
        }))
    };
    let req = client
        .restore_request("/v1/snapshot")
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body));
    let send = client.send(req);
    tokio::pin!(send);
    let idle = client.read_timeout();
    let mut sent_at: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            r = &mut send => return r.map(drop),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if !sent.load(Ordering::Relaxed) {
            let since = started
                .elapsed()
                .saturating_sub(Duration::from_millis(last_progress.load(Ordering::Relaxed)));
            if since > idle {
                return Err(ConsulError::Stalled {
                    addr: client.addr().to_string(),
                    detail: format!(
                        "Consul stopped reading the snapshot for {} while it was being sent (--read-timeout); nothing was restored",
                        crate::units::duration::format_go_duration(idle)
                    ),
                });
            }
            continue;
        }
        let at = *sent_at.get_or_insert_with(std::time::Instant::now);
        if let Some(limit) = restore_timeout {
            if at.elapsed() > limit {
                return Err(ConsulError::RestorePending {
                    waited: crate::units::duration::format_go_duration(limit),
                });
            }
        }
    }
}
