//! Google Cloud Storage through its JSON API (`storage/v1`), with a resumable upload that is
//! finalized only after verification: chunks go up as the archive streams, the last one (with
//! the object's total size, which is what finalizes a resumable upload) is held back until the
//! commit. An aborted upload cancels its session (DELETE on the session URI, answered 499), so
//! nothing becomes visible; an abandoned one expires after a week and was never an object.
//!
//! Layout as in Azure and locally: the archive under `<prefix><name>` and its metadata in the
//! sidecar `<prefix><name>.meta.json`, written just before the final chunk. Credentials are
//! Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's, workload
//! identity or the metadata server, through the `gcp_auth` crate); with an endpoint override
//! (an emulator) no credentials are sent.
//!
//! Why not `object_store` as for Azure: its GCS client uploads through the XML multipart API,
//! which GCS's emulators do not implement, so it could not be tested here; the JSON API's
//! resumable upload is also what the issue asks for.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::backend::{Backend, BackendUpload, ByteStream};
use super::naming::{folder_prefix, format_key, parse_key, BackupName};
use super::object::SIDECAR;
use super::{BackupMeta, StorageError, StoredBackup};

/// GCS requires every chunk but the last of a resumable upload to be a multiple of this.
pub const CHUNK_UNIT: u64 = 256 << 10;
/// The public JSON API endpoint.
pub const PUBLIC_ENDPOINT: &str = "https://storage.googleapis.com";
/// OAuth scope for reading and writing objects.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// A listing with more pages than this is an error, not a loop.
const MAX_PAGES: usize = 100_000;
/// Error bodies are read to this many bytes at most.
const MAX_ERROR_BODY: usize = 4096;

/// Everything needed to reach one bucket under one prefix.
#[derive(Debug, Clone)]
pub struct GcsConfig {
    pub bucket: String,
    /// Key prefix, e.g. `consul-snapshot` (a `/` is added to a non-empty prefix without one).
    pub prefix: String,
    /// JSON API endpoint; an override (an emulator) also turns credentials off.
    pub endpoint: Option<String>,
    /// Bytes per resumable-upload chunk (a multiple of 256 KiB).
    pub chunk_size: u64,
    /// Bound on each request (and each silence of a streamed body).
    pub request_timeout: Duration,
}

impl GcsConfig {
    /// Checks what can be checked without a request.
    ///
    /// # Errors
    /// No bucket, or a chunk size that is not a positive multiple of 256 KiB.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("google_storage.bucket is required".into());
        }
        if self.chunk_size == 0 || !self.chunk_size.is_multiple_of(CHUNK_UNIT) {
            return Err(format!(
                "GCS chunk size {} is not a multiple of 256KiB",
                crate::units::format_size(self.chunk_size)
            ));
        }
        Ok(())
    }

    /// Builds the backend; credentials are looked up now (no request to the bucket is made).
    ///
    /// # Errors
    /// Invalid settings, or no Application Default Credentials for the public endpoint.
    pub async fn backend(&self) -> Result<GcsBackend, StorageError> {
        self.validate().map_err(StorageError::Config)?;
        let auth = match &self.endpoint {
            Some(_) => None,
            None => Some(gcp_auth::provider().await.map_err(|e| {
                StorageError::Config(format!("Google Application Default Credentials: {e}"))
            })?),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.request_timeout.min(Duration::from_secs(30)))
            .read_timeout(self.request_timeout)
            .build()
            .map_err(|e| StorageError::Config(format!("HTTP client: {e}")))?;
        // Object names cannot start with `/`.
        let prefix = folder_prefix(self.prefix.trim_start_matches('/'));
        Ok(GcsBackend {
            http,
            auth,
            base: self
                .endpoint
                .clone()
                .unwrap_or_else(|| PUBLIC_ENDPOINT.into())
                .trim_end_matches('/')
                .to_string(),
            cfg: Arc::new(self.clone()),
            prefix,
            clock: crate::storage::ServerClock::default(),
        })
    }
}

/// A bucket under a prefix; see the module docs.
#[derive(Clone)]
pub struct GcsBackend {
    http: reqwest::Client,
    auth: Option<Arc<dyn gcp_auth::TokenProvider>>,
    /// Endpoint without a trailing `/`.
    base: String,
    cfg: Arc<GcsConfig>,
    prefix: String,
    /// The server's clock, from the `Date` of every answer.
    clock: crate::storage::ServerClock,
}

impl fmt::Debug for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcsBackend({self})")
    }
}

impl fmt::Display for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gs://{}/{}", self.cfg.bucket, self.prefix)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectResource {
    name: String,
    /// Bytes, as a decimal string (JSON API convention for uint64).
    size: String,
    updated: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<ObjectResource>,
    next_page_token: Option<String>,
}

fn gcs_err(op: &str, detail: impl fmt::Display) -> StorageError {
    gcs_err_of(op, detail, crate::storage::ErrorKind::Transient)
}

/// [`gcs_err`] of a known kind.
fn gcs_err_of(
    op: &str,
    detail: impl fmt::Display,
    class: crate::storage::ErrorKind,
) -> StorageError {
    StorageError::Object {
        kind: "gcs".into(),
        op: op.into(),
        detail: detail.to_string(),
        class,
    }
}

/// An error answer as `status: message`, the body read to [`MAX_ERROR_BODY`] at most.
async fn answer_err(op: &str, r: reqwest::Response) -> StorageError {
    let status = r.status();
    let mut body = Vec::new();
    let mut stream = r.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    gcs_err_of(
        op,
        format!("{status}: {message}"),
        crate::storage::ErrorKind::of_status(status.as_u16()),
    )
}

impl GcsBackend {
    /// The object URL of the JSON API.
    fn object_url(&self, key: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            self.cfg.bucket,
            urlencode(key)
        )
    }

    fn upload_url(&self) -> String {
        format!("{}/upload/storage/v1/b/{}/o", self.base, self.cfg.bucket)
    }

    /// A request with the bearer token (none for an emulator), bounded as a whole by the
    /// request timeout.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        Ok(self
            .streaming_request(method, url)
            .await?
            .timeout(self.cfg.request_timeout))
    }

    /// A request whose answer may stream for longer than the request timeout (an archive):
    /// only each silence is bounded, by the client's read timeout.
    async fn streaming_request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, StorageError> {
        let mut rb = self.http.request(method, url);
        if let Some(auth) = &self.auth {
            let token = auth
                .token(&[SCOPE])
                .await
                .map_err(|e| gcs_err("authentication", e))?;
            rb = rb.bearer_auth(token.as_str());
        }
        Ok(rb)
    }

    async fn send(
        &self,
        op: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StorageError> {
        let answer = rb.send().await;
        if let Some(date) = answer
            .as_ref()
            .ok()
            .and_then(|r| r.headers().get(reqwest::header::DATE))
            .and_then(|d| d.to_str().ok())
        {
            self.clock.observe(date);
        }
        answer.map_err(|e| {
            if e.is_timeout() {
                StorageError::Timeout {
                    backend: "gcs".into(),
                    op: op.into(),
                    detail: "no answer within the request timeout".into(),
                }
            } else {
                gcs_err(op, without_url(e))
            }
        })
    }

    fn ours(&self, key: &str) -> Result<BackupName, StorageError> {
        parse_key(&self.prefix, key).ok_or_else(|| StorageError::NotOurs(key.to_string()))
    }

    /// Uploads a small object in one request (the metadata sidecar).
    async fn put_small(&self, key: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let rb = self
            .request(reqwest::Method::POST, &self.upload_url())
            .await?
            .query(&[("uploadType", "media"), ("name", key)])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let r = self.send("insert", rb).await?;
        if !r.status().is_success() {
            return Err(answer_err("insert", r).await);
        }
        Ok(())
    }

    async fn delete_one(&self, key: &str) -> Result<(), StorageError> {
        let rb = self
            .request(reqwest::Method::DELETE, &self.object_url(key))
            .await?;
        let r = self.send("delete", rb).await?;
        if r.status().is_success() || r.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(answer_err("delete", r).await)
        }
    }
}

/// Percent-encodes an object name for a URL path segment (`/` too, as the JSON API wants).
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn parse_time(s: &Option<String>) -> Option<DateTime<Utc>> {
    s.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[async_trait]
impl Backend for GcsBackend {
    fn kind(&self) -> &'static str {
        "gcs"
    }

    fn server_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.clock.now()
    }

    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        let url = format!("{}/storage/v1/b/{}/o", self.base, self.cfg.bucket);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut rb = self
                .request(reqwest::Method::GET, &url)
                .await?
                .query(&[("prefix", self.prefix.as_str())]);
            if let Some(t) = &token {
                rb = rb.query(&[("pageToken", t.as_str())]);
            }
            let r = self.send("list", rb).await?;
            if !r.status().is_success() {
                return Err(answer_err("list", r).await);
            }
            let page: ObjectList = r
                .json()
                .await
                .map_err(|e| gcs_err("list", e.without_url()))?;
            for o in page.items {
                if let Some(name) = parse_key(&self.prefix, &o.name) {
                    out.push(StoredBackup {
                        size: o.size.parse().map_err(|_| {
                            gcs_err("list", format!("size {:?} of {}", o.size, o.name))
                        })?,
                        modified: parse_time(&o.updated),
                        key: o.name,
                        name,
                        meta: None,
                    });
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                None => return Ok(out),
                Some(t) if Some(&t) == token.as_ref() => {
                    return Err(gcs_err("list", "the same page token twice"))
                }
                Some(t) => token = Some(t),
            }
        }
        Err(gcs_err("list", format!("more than {MAX_PAGES} pages")))
    }

    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        let name = self.ours(key)?;
        let rb = self
            .request(reqwest::Method::GET, &self.object_url(key))
            .await?;
        let r = self.send("get", rb).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(StorageError::NotFound(key.to_string()));
        }
        if !r.status().is_success() {
            return Err(answer_err("get", r).await);
        }
        let o: ObjectResource = r
            .json()
            .await
            .map_err(|e| gcs_err("get", e.without_url()))?;
        let rb = self
            .request(
                reqwest::Method::GET,
                &self.object_url(&format!("{key}{SIDECAR}")),
            )
            .await?
            .query(&[("alt", "media")]);
        let r = self.send("get", rb).await?;
        let meta = if r.status().is_success() {
            let raw = r
                .bytes()
                .await
                .map_err(|e| gcs_err("get", e.without_url()))?;
            serde_json::from_slice::<BackupMeta>(&raw).ok()
        } else if r.status() == reqwest::StatusCode::NOT_FOUND {
            None
        } else {
            return Err(answer_err("get", r).await);
        };
        Ok(StoredBackup {
            key: key.to_string(),
            name,
            size: o
                .size
                .parse()
                .map_err(|_| gcs_err("get", format!("size {:?} of {key}", o.size)))?,
            modified: parse_time(&o.updated),
            meta,
        })
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        self.ours(key)?;
        let rb = self
            .streaming_request(reqwest::Method::GET, &self.object_url(key))
            .await?
            .query(&[("alt", "media")]);
        let r = self.send("get", rb).await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(StorageError::NotFound(key.to_string()));
        }
        if !r.status().is_success() {
            return Err(answer_err("get", r).await);
        }
        Ok(r.bytes_stream()
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                };
                io::Error::new(kind, e.without_url())
            })
            .boxed())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        for key in keys {
            self.ours(key)?;
        }
        for key in keys {
            self.delete_one(key).await?;
            self.delete_one(&format!("{key}{SIDECAR}")).await?;
        }
        Ok(())
    }

    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError> {
        self.head(key).await?;
        let json = serde_json::to_vec_pretty(meta).map_err(|e| gcs_err("insert", e))?;
        self.put_small(&format!("{key}{SIDECAR}"), json).await
    }

    async fn begin(
        &self,
        name: &BackupName,
        _pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError> {
        let key = format_key(&self.prefix, name);
        let rb = self
            .request(reqwest::Method::POST, &self.upload_url())
            .await?
            .query(&[("uploadType", "resumable"), ("name", key.as_str())])
            .header("X-Upload-Content-Type", "application/octet-stream")
            .json(&serde_json::json!({"name": key, "contentType": "application/octet-stream"}));
        let r = self.send("start resumable upload", rb).await?;
        if !r.status().is_success() {
            return Err(answer_err("start resumable upload", r).await);
        }
        let session = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| gcs_err("start resumable upload", "no session URI in the answer"))?;
        Ok(Box::new(GcsUpload {
            backend: self.clone(),
            session,
            buffer: BytesMut::new(),
            sent: 0,
            key,
            name: name.clone(),
        }))
    }

    /// Nothing to sweep: an abandoned resumable session is not an object and expires after a
    /// week.
    async fn sweep(&self, _older_than: Duration) -> Result<usize, StorageError> {
        Ok(0)
    }
}

/// A resumable upload; the last chunk waits for the commit.
pub struct GcsUpload {
    backend: GcsBackend,
    /// The session URI (it authorizes the upload by itself: never logged).
    session: String,
    buffer: BytesMut,
    /// Bytes already accepted by GCS.
    sent: u64,
    key: String,
    name: BackupName,
}

impl fmt::Debug for GcsUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcsUpload({}{})", self.backend, self.key)
    }
}

/// A transport error's text with its causes (connection refused, reset...) but without the
/// URL: a resumable-upload session URI is a write capability.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        let text = crate::storage::object::strip_urls(&c.to_string());
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = c.source();
    }
    s
}

impl GcsUpload {
    /// Sends `chunk` at the current offset; `total` is given only with the last one.
    async fn put_chunk(&mut self, chunk: Bytes, total: Option<u64>) -> Result<(), StorageError> {
        let len = chunk.len() as u64;
        let range = match (len, total) {
            (0, Some(t)) => format!("bytes */{t}"),
            (_, Some(t)) => format!("bytes {}-{}/{t}", self.sent, self.sent + len - 1),
            (_, None) => format!("bytes {}-{}/*", self.sent, self.sent + len - 1),
        };
        let rb = self
            .backend
            .http
            .put(&self.session)
            .timeout(self.backend.cfg.request_timeout)
            .header(reqwest::header::CONTENT_RANGE, range)
            .body(chunk);
        let r = self.backend.send("upload chunk", rb).await?;
        let status = r.status();
        let done = status.is_success();
        // 308 "Resume Incomplete" acknowledges a middle chunk.
        if (total.is_none() && status.as_u16() != 308) || (total.is_some() && !done) {
            return Err(answer_err("upload chunk", r).await);
        }
        self.sent += len;
        Ok(())
    }

    async fn cancel(&self) {
        let r = self
            .backend
            .http
            .delete(&self.session)
            .timeout(self.backend.cfg.request_timeout)
            .send()
            .await;
        // GCS answers a cancelled session with 499.
        if let Err(e) = r.map_err(without_url) {
            tracing::warn!(key = %self.key, error = %e, "cancelling the resumable upload failed; the session expires on its own");
        }
    }
}

#[async_trait]
impl BackendUpload for GcsUpload {
    async fn write(&mut self, chunk: &Bytes) -> Result<(), StorageError> {
        self.buffer.extend_from_slice(chunk);
        let size = usize::try_from(self.backend.cfg.chunk_size).unwrap_or(usize::MAX);
        // Strictly more than a chunk: at least one byte always waits for the commit, since the
        // chunk that carries the total size finalizes the object.
        while self.buffer.len() > size {
            let part = self.buffer.split_to(size).freeze();
            self.put_chunk(part, None).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, meta: BackupMeta) -> Result<StoredBackup, StorageError> {
        let total = self.sent + self.buffer.len() as u64;
        let expected = meta.stored_size().unwrap_or(0);
        if total != expected {
            self.cancel().await;
            return Err(StorageError::Publish {
                key: self.key.clone(),
                detail: format!("{total} bytes were sent, {expected} were verified"),
                class: super::ErrorKind::Invalid,
            });
        }
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| StorageError::Object {
            kind: "gcs".into(),
            op: "encode metadata".into(),
            detail: e.to_string(),
            class: super::ErrorKind::Invalid,
        })?;
        let sidecar = format!("{}{SIDECAR}", self.key);
        if let Err(e) = self.backend.put_small(&sidecar, json).await {
            self.cancel().await;
            return Err(e);
        }
        let last = std::mem::take(&mut self.buffer).freeze();
        if let Err(e) = self.put_chunk(last, Some(total)).await {
            // Not finalized (or not known to be): remove whatever may be visible.
            let _ = Backend::delete(&self.backend, std::slice::from_ref(&self.key)).await;
            self.cancel().await;
            return Err(e);
        }
        Ok(StoredBackup {
            key: self.key.clone(),
            name: self.name.clone(),
            size: total,
            modified: Some(Utc::now()),
            meta: Some(meta),
        })
    }

    async fn abort(self: Box<Self>) {
        self.cancel().await;
    }
}
