//! S3-compatible object storage through aws-sdk-s3. Uploads are multipart with a bounded number
//! of parts in flight and are completed only after verification ([`upload`]).

/// Adds the configured server-side encryption to a request builder (each S3 operation has its
/// own builder type, hence a macro). Defined before the modules that use it.
macro_rules! with_sse {
    ($req:expr, $cfg:expr) => {
        match &$cfg.encryption {
            $crate::storage::s3::Encryption::None => $req,
            $crate::storage::s3::Encryption::S3 => {
                $req.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
            }
            $crate::storage::s3::Encryption::Kms(k) => $req
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .set_ssekms_key_id(k.clone()),
        }
    };
}

pub mod config;
pub mod role;
pub mod upload;

use std::io;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

pub use config::{ChecksumMode, Encryption, S3Config};
pub use role::AssumeRole;
pub use upload::S3Upload;

use super::metadata::{name_from_meta, BackupMeta};
use super::naming::{format_key, parse_key, BackupName};
use super::{Backend, BackendUpload, ByteStream, ErrorKind, StorageError, StoredBackup};

/// Keys per DeleteObjects request (the S3 maximum).
const DELETE_BATCH: usize = 1000;

/// A bucket and prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    pub(crate) client: aws_sdk_s3::Client,
    pub(crate) cfg: std::sync::Arc<S3Config>,
    prefix: String,
    /// The S3 server's clock, from the `Date` of every answer.
    pub(crate) clock: crate::storage::ServerClock,
    /// With a static name: its full key, where every backup is written.
    static_key: Option<String>,
    /// The versioning check of a static name, made once (its error, if it refused).
    versioning: tokio::sync::OnceCell<Result<(), String>>,
}

/// An AWS timestamp as UTC.
pub(crate) fn aws_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The manifest of the backup `key`: `<key>.meta.json` (as the Azure and GCS sidecars).
pub(crate) fn manifest_key(key: &str) -> String {
    format!("{key}{}", crate::storage::object::SIDECAR)
}

/// Writes the manifest of `key` (the backup's metadata as JSON), with the bucket's
/// encryption settings.
pub(crate) async fn put_manifest(
    client: &aws_sdk_s3::Client,
    cfg: &S3Config,
    key: &str,
    meta: &BackupMeta,
) -> Result<(), StorageError> {
    let json = serde_json::to_vec_pretty(meta).map_err(|e| StorageError::S3 {
        class: ErrorKind::Invalid,
        op: "PutObject".into(),
        detail: format!("encoding the manifest: {e}"),
    })?;
    let req = client
        .put_object()
        .bucket(&cfg.bucket)
        .key(manifest_key(key))
        .content_type("application/json")
        .body(aws_sdk_s3::primitives::ByteStream::from(json));
    with_sse!(req, cfg)
        .send()
        .await
        .map_err(|e| s3_err("PutObject", e))
        .map(drop)
}

/// One DeleteObject (deleting a missing key is not an error in S3).
pub(crate) async fn delete_key(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(), StorageError> {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_err("DeleteObject", e))
        .map(drop)
}

/// The manifest of `key`, `None` when there is none. Errors: the read fails, or the
/// manifest is not valid JSON (a damaged manifest is not silently replaced by older user
/// metadata).
async fn get_manifest(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<BackupMeta>, StorageError> {
    let mkey = manifest_key(key);
    let r = match client.get_object().bucket(bucket).key(&mkey).send().await {
        Ok(r) => r,
        // By status, not by the error body (a cut body still says 404 in its status line).
        Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 404 => return Ok(None),
        Err(e) => return Err(s3_err("GetObject", e)),
    };
    let raw = r.body.collect().await.map_err(|e| StorageError::S3 {
        class: ErrorKind::Transient,
        op: "GetObject".into(),
        detail: format!("reading the manifest {mkey}: {e}"),
    })?;
    serde_json::from_slice(&raw.into_bytes())
        .map(Some)
        .map_err(|e| StorageError::S3 {
            class: ErrorKind::Invalid,
            op: "GetObject".into(),
            detail: format!("the manifest {mkey} is not valid: {e}"),
        })
}

/// [`head_object`], with the metadata of the manifest when there is one (it wins over the
/// object's user metadata).
pub(crate) async fn head_with_manifest(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    name: BackupName,
) -> Result<StoredBackup, StorageError> {
    let mut b = head_object(client, bucket, key, name).await?;
    if let Some(m) = get_manifest(client, bucket, key).await? {
        b.meta = Some(m);
    }
    Ok(b)
}

/// HEAD of `key`: size, time and our user metadata. [`StorageError::NotFound`] if absent.
pub(crate) async fn head_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    name: BackupName,
) -> Result<StoredBackup, StorageError> {
    let r = client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                StorageError::NotFound(key.to_string())
            } else {
                s3_err("HeadObject", e)
            }
        })?;
    Ok(StoredBackup {
        key: key.to_string(),
        name,
        size: r
            .content_length()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
        modified: r.last_modified().and_then(aws_time),
        meta: r.metadata().map(BackupMeta::from_map),
    })
}

/// An SDK error as a sentence: the service's code and message (`InternalError: injected`)
/// when the server answered with one, the HTTP status when it answered without a body (HEAD),
/// else the transport failure with its causes (`timeout`, `connection reset`...).
pub(crate) fn s3_err<E>(op: &str, e: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let timeout = |detail: String| StorageError::Timeout {
        backend: "s3".into(),
        op: op.to_string(),
        detail,
    };
    let mut class = ErrorKind::Transient;
    let detail = match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status().as_u16();
            class = ErrorKind::of_status(status);
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => format!("{c} (HTTP {status})"),
                _ => format!("HTTP {status} from the S3 server"),
            }
        }
        SdkError::TimeoutError(_) => return timeout(TIMED_OUT.to_string()),
        other => {
            // Dispatch and response errors: the cause chain, without the SDK's debug dumps
            // and without URLs (a presigned URL is a credential).
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(c) = src {
                let text = c.to_string();
                if !s.contains(&text) {
                    s.push_str(": ");
                    s.push_str(&text);
                }
                src = c.source();
            }
            let s = crate::storage::object::strip_urls(&s);
            // The read and connect timeouts surface as dispatch failures: by the error's
            // kind, say which limit.
            let timed_out = matches!(other, SdkError::DispatchFailure(d) if d.is_timeout())
                || crate::storage::caused_by_timeout(other);
            if timed_out {
                return timeout(format!("{TIMED_OUT} ({s})"));
            }
            s
        }
    };
    if matches!(e, SdkError::ConstructionFailure(_)) {
        class = ErrorKind::Invalid;
    }
    StorageError::S3 {
        op: op.to_string(),
        detail,
        class,
    }
}

/// A builder error (a request we could not even form) as a storage error.
pub(crate) fn build_err(op: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::S3 {
        op: op.to_string(),
        detail: e.to_string(),
        class: ErrorKind::Invalid,
    }
}

/// What a request that hit `--aws-s3-request-timeout` (or its read/connect parts) says.
const TIMED_OUT: &str = "no answer within the S3 request timeout (--aws-s3-request-timeout)";

/// Bound on listing pages (1000 keys each): a server that keeps answering "truncated" is an
/// error, not a loop.
const MAX_PAGES: usize = 100_000;

impl S3Store {
    /// Validates the settings and builds the client (no request is made).
    pub async fn new(cfg: S3Config) -> Result<Self, StorageError> {
        cfg.validate().map_err(StorageError::Config)?;
        let clock = crate::storage::ServerClock::default();
        let client = cfg.client_with_clock(Some(clock.clone())).await;
        let prefix = cfg.normalized_prefix();
        let static_key = cfg.static_name.as_ref().map(|n| format!("{prefix}{n}"));
        Ok(S3Store {
            client,
            cfg: std::sync::Arc::new(cfg),
            prefix,
            clock,
            static_key,
            versioning: tokio::sync::OnceCell::new(),
        })
    }

    /// The key of a backup: its name under the prefix, or the static key.
    pub fn key_for(&self, name: &BackupName) -> String {
        match &self.static_key {
            Some(k) => k.clone(),
            None => format_key(&self.prefix, name),
        }
    }

    /// Whether `key` is one of ours: named by our scheme, or the static key.
    fn ours(&self, key: &str) -> bool {
        parse_key(&self.prefix, key).is_some() || self.static_key.as_deref() == Some(key)
    }

    /// With a static name, once per process: `GetBucketVersioning` must say `Enabled`, since
    /// in an unversioned bucket each snapshot destroys the one before it; refused unless
    /// `allow_unversioned_static_name`. Without a static name, nothing is asked.
    pub async fn check_static_versioning(&self) -> Result<(), StorageError> {
        let Some(key) = &self.static_key else {
            return Ok(());
        };
        let r = self
            .versioning
            .get_or_init(|| async {
                let status = self
                    .client
                    .get_bucket_versioning()
                    .bucket(&self.cfg.bucket)
                    .send()
                    .await
                    .map_err(|e| s3_err("GetBucketVersioning", e).to_string())?;
                let enabled = status.status().map(|s| s.as_str()) == Some("Enabled");
                match (enabled, self.cfg.allow_unversioned_static_name) {
                    (true, _) => Ok(()),
                    (false, true) => {
                        tracing::warn!(key = %key, "the bucket has no versioning: each snapshot written to the static name replaces the one before it (--allow-unversioned-static-name)");
                        Ok(())
                    }
                    (false, false) => Err(format!(
                        "bucket {} has no versioning ({}), so every snapshot written to the static name {key} would destroy the one before it: enable versioning on the bucket, or give --allow-unversioned-static-name to accept that",
                        self.cfg.bucket,
                        status.status().map_or("never enabled", |s| s.as_str())
                    )),
                }
            })
            .await;
        r.clone().map_err(StorageError::Config)
    }

    /// The static object as a backup, its identity (datacenter, time, index) taken from its
    /// metadata (its name does not carry them); `None` when absent or not written by us.
    async fn head_static(&self, key: &str) -> Result<Option<StoredBackup>, StorageError> {
        let placeholder = BackupName {
            time: DateTime::<Utc>::UNIX_EPOCH,
            datacenter: String::new(),
            index: 0,
            encrypted: false,
        };
        let mut b = match head_with_manifest(&self.client, &self.cfg.bucket, key, placeholder).await
        {
            Ok(b) => b,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(name) = b.meta.as_ref().and_then(name_from_meta) else {
            tracing::warn!(
                key,
                "the object at the static name has no backup metadata of ours; it is not listed"
            );
            return Ok(None);
        };
        b.name = name;
        Ok(Some(b))
    }

    /// Every object under the prefix, following continuation tokens. Any page failing, or a
    /// truncated page that names no new next page, fails the whole listing: a silently short
    /// listing must never reach retention.
    async fn objects(&self) -> Result<Vec<aws_sdk_s3::types::Object>, StorageError> {
        let incomplete = |detail: String| StorageError::S3 {
            class: ErrorKind::Invalid,
            op: "ListObjectsV2".into(),
            detail,
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.cfg.bucket)
                .prefix(&self.prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| s3_err("ListObjectsV2", e))?;
            let truncated = page.is_truncated() == Some(true);
            let next = page
                .next_continuation_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            out.extend(page.contents.unwrap_or_default());
            if !truncated {
                return Ok(out);
            }
            match next {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                Some(_) => return Err(incomplete(
                    "the server repeated the same continuation token; the listing is incomplete"
                        .into(),
                )),
                None => {
                    return Err(incomplete(
                        "the listing is truncated but has no continuation token; it is incomplete"
                            .into(),
                    ))
                }
            }
        }
        Err(incomplete(format!(
            "more than {MAX_PAGES} pages; the listing is incomplete"
        )))
    }

    /// Starts uploading the backup `name`. Nothing is sent until the first part is full.
    fn upload(&self, name: &BackupName, pending: BackupMeta) -> S3Upload {
        S3Upload::new(
            self.client.clone(),
            self.cfg.clone(),
            self.key_for(name),
            name.clone(),
            pending,
            self.static_key.is_some(),
        )
    }

    /// Aborts multipart uploads of our backups (keys named by our scheme) started more than
    /// `older_than` ago: leftovers of a crash or of an abort that could not reach the server.
    /// Returns how many were aborted.
    pub async fn abort_stale_uploads(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StorageError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let mut aborted = 0;
        for (key, id, started) in self.multipart_uploads().await? {
            if !self.ours(&key) || started.is_some_and(|t| t > cutoff) {
                continue;
            }
            self.client
                .abort_multipart_upload()
                .bucket(&self.cfg.bucket)
                .key(&key)
                .upload_id(&id)
                .send()
                .await
                .map_err(|e| s3_err("AbortMultipartUpload", e))?;
            tracing::info!(key, upload_id = id, "aborted a stale multipart upload");
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Deletes manifests left without their backup (a crash between writing a manifest and
    /// completing the upload, or a completion that failed and whose cleanup could not reach
    /// the server) written more than `older_than` ago. Only manifests of keys of ours; a
    /// manifest whose backup exists is never touched. Returns how many were deleted.
    pub async fn remove_orphan_manifests(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, StorageError> {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let objects = self.objects().await?;
        let keys: std::collections::HashSet<&str> =
            objects.iter().filter_map(|o| o.key()).collect();
        let suffix = crate::storage::object::SIDECAR;
        let mut removed = 0;
        for o in &objects {
            let Some(key) = o.key() else { continue };
            let Some(backup) = key.strip_suffix(suffix) else {
                continue;
            };
            let old = o
                .last_modified()
                .and_then(aws_time)
                .is_some_and(|t| t <= cutoff);
            if !self.ours(backup) || keys.contains(backup) || !old {
                continue;
            }
            delete_key(&self.client, &self.cfg.bucket, key).await?;
            tracing::info!(key, "deleted a manifest left without its backup");
            removed += 1;
        }
        Ok(removed)
    }

    /// Every multipart upload in progress under the prefix: (key, upload ID, initiated),
    /// following key and upload-ID markers across pages (1000 uploads each).
    async fn multipart_uploads(
        &self,
    ) -> Result<Vec<(String, String, Option<DateTime<Utc>>)>, StorageError> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        for _ in 0..MAX_PAGES {
            let r = self
                .client
                .list_multipart_uploads()
                .bucket(&self.cfg.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| s3_err("ListMultipartUploads", e))?;
            for u in r.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    out.push((
                        key.to_string(),
                        id.to_string(),
                        u.initiated().and_then(aws_time),
                    ));
                }
            }
            if r.is_truncated() != Some(true) {
                return Ok(out);
            }
            let next = (
                r.next_key_marker()
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
                r.next_upload_id_marker()
                    .filter(|k| !k.is_empty())
                    .map(str::to_string),
            );
            if next.0.is_none() || next == (key_marker.clone(), id_marker.clone()) {
                return Err(StorageError::S3 {
                    class: ErrorKind::Invalid,
                    op: "ListMultipartUploads".into(),
                    detail: "the listing is truncated but names no new next marker".into(),
                });
            }
            (key_marker, id_marker) = next;
        }
        Err(StorageError::S3 {
            op: "ListMultipartUploads".into(),
            detail: format!("more than {MAX_PAGES} pages"),
            class: ErrorKind::Invalid,
        })
    }

    /// Every object key under the prefix, ours or not, manifests included (for checks that
    /// nothing is left behind).
    pub async fn raw_keys(&self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .objects()
            .await?
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect())
    }

    /// Keys of the multipart uploads in progress under the prefix (for checks that none is
    /// left behind).
    pub async fn pending_uploads(&self) -> Result<Vec<String>, StorageError> {
        Ok(self
            .multipart_uploads()
            .await?
            .into_iter()
            .map(|(k, _, _)| k)
            .collect())
    }
}

#[async_trait::async_trait]
impl Backend for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn server_time(&self) -> Option<DateTime<Utc>> {
        self.clock.now()
    }

    /// The static key, when every backup is written to one name.
    fn static_key(&self) -> Option<String> {
        self.static_key.clone()
    }

    /// Checks that backups can be written here: starts a multipart upload under a backup name
    /// of the `write-check` datacenter and aborts it at once (nothing becomes visible; an
    /// upload whose abort fails is swept as a stale one).
    async fn check_writable(&self) -> Result<(), StorageError> {
        let mut u = self.upload(&super::backend::write_check_name(), BackupMeta::default());
        let started = u.ensure_upload().await;
        u.abort_upload().await;
        started.map(|_| ())
    }

    /// Every backup under the prefix, following continuation tokens; objects not named by our
    /// scheme are left out, but for the static key (named from its metadata). Any page
    /// failing fails the whole listing.
    async fn list(&self) -> Result<Vec<StoredBackup>, StorageError> {
        let mut out = Vec::new();
        let mut static_seen = false;
        for obj in self.objects().await? {
            let Some(key) = obj.key() else { continue };
            if self.static_key.as_deref() == Some(key) {
                static_seen = true;
                continue;
            }
            let Some(name) = parse_key(&self.prefix, key) else {
                continue;
            };
            out.push(StoredBackup {
                key: key.to_string(),
                name,
                size: obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                modified: obj.last_modified().and_then(aws_time),
                meta: None,
            });
        }
        if let (true, Some(k)) = (static_seen, &self.static_key) {
            out.extend(self.head_static(k).await?);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Size and user metadata of one backup.
    async fn head(&self, key: &str) -> Result<StoredBackup, StorageError> {
        if self.static_key.as_deref() == Some(key) {
            return self
                .head_static(key)
                .await?
                .ok_or_else(|| StorageError::NotFound(key.to_string()));
        }
        let name =
            parse_key(&self.prefix, key).ok_or_else(|| StorageError::NotOurs(key.to_string()))?;
        head_with_manifest(&self.client, &self.cfg.bucket, key, name).await
    }

    /// The object's bytes, streamed.
    async fn get(&self, key: &str) -> Result<ByteStream, StorageError> {
        let r = self
            .client
            .get_object()
            .bucket(&self.cfg.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    StorageError::NotFound(key.to_string())
                } else {
                    s3_err("GetObject", e)
                }
            })?;
        let body = r.body;
        Ok(futures_util::stream::unfold(body, |mut b| async move {
            b.next().await.map(|r| {
                (
                    r.map_err(|e| io::Error::other(DisplayErrorContext(e).to_string())),
                    b,
                )
            })
        })
        .boxed())
    }

    /// Replaces one backup's metadata: writes its manifest, which wins over the object's
    /// user metadata (no copy of the archive).
    async fn set_meta(&self, key: &str, meta: &BackupMeta) -> Result<(), StorageError> {
        self.head(key).await?;
        put_manifest(&self.client, &self.cfg, key, meta).await
    }

    /// Deletes objects in batches of 1000; keys not under our scheme are refused.
    async fn delete(&self, keys: &[String]) -> Result<(), StorageError> {
        // The static key is never deleted: with versioning a delete would hide every version
        // behind a marker; without it, it is the only copy.
        if let Some(k) = keys
            .iter()
            .find(|k| parse_key(&self.prefix, k).is_none() || self.static_key.as_ref() == Some(*k))
        {
            return Err(StorageError::NotOurs(k.clone()));
        }
        // Each backup with its manifest (deleting a missing one is not an error).
        let keys: Vec<String> = keys
            .iter()
            .flat_map(|k| [k.clone(), manifest_key(k)])
            .collect();
        for batch in keys.chunks(DELETE_BATCH) {
            let ids = batch
                .iter()
                .map(|k| {
                    ObjectIdentifier::builder()
                        .key(k)
                        .build()
                        .map_err(|e| build_err("DeleteObjects", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| build_err("DeleteObjects", e))?;
            let r = self
                .client
                .delete_objects()
                .bucket(&self.cfg.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| s3_err("DeleteObjects", e))?;
            if let Some(err) = r.errors().first() {
                return Err(StorageError::S3 {
                    class: ErrorKind::Transient,
                    op: "DeleteObjects".into(),
                    detail: format!(
                        "{} of {} keys failed, first {}: {} {}",
                        r.errors().len(),
                        batch.len(),
                        err.key().unwrap_or("?"),
                        err.code().unwrap_or(""),
                        err.message().unwrap_or("")
                    ),
                });
            }
        }
        Ok(())
    }

    async fn begin(
        &self,
        name: &BackupName,
        pending: BackupMeta,
    ) -> Result<Box<dyn BackendUpload>, StorageError> {
        self.check_static_versioning().await?;
        Ok(Box::new(self.upload(name, pending)))
    }

    /// Aborts stale multipart uploads, then removes manifests left without their backup.
    async fn sweep(&self, older_than: std::time::Duration) -> Result<usize, StorageError> {
        Ok(self.abort_stale_uploads(older_than).await?
            + self.remove_orphan_manifests(older_than).await?)
    }
}

/// `s3://bucket/prefix/`, for messages.
impl std::fmt::Display for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cfg.fmt(f)
    }
}
