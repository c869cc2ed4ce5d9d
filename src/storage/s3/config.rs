//! S3 settings and the aws-sdk-s3 client built from them (one struct → one client, as s3sync's
//! client builder). Credentials: explicit keys if given, else the standard AWS chain
//! (environment, shared profile, web identity, ECS/EC2 instance roles).

use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};

use super::role::AssumeRole;
use crate::consul::Secret;

/// Smallest multipart part S3 accepts (except the last one), in bytes.
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Server-side encryption.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS, with a key ID (the bucket's default key when `None`).
    Kms(Option<String>),
}

/// Whether the SDK computes request checksums. Recent SDKs default to `WhenSupported`, which
/// sends aws-chunked bodies with trailing checksums that many S3-compatible servers reject or
/// store inside the object (Garage 2.5 over http: `Invalid payload signature`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// Only where an operation requires one (DeleteObjects). Works everywhere.
    WhenRequired,
    /// Wherever supported (AWS default).
    WhenSupported,
}

/// Everything needed to talk to one bucket under one prefix.
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix, e.g. `consul-snapshot` (a `/` is added to a non-empty prefix without one).
    pub prefix: String,
    /// Signing region; `us-east-1` when unset and a custom endpoint is used.
    pub region: Option<String>,
    /// Custom endpoint (MinIO, Garage, Ceph RGW, R2...).
    pub endpoint: Option<String>,
    /// Path-style addressing; `None`: [`S3Config::default_path_style`].
    pub force_path_style: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub encryption: Encryption,
    /// Storage class, e.g. `STANDARD_IA`.
    pub storage_class: Option<String>,
    /// Request checksums; `None`: [`S3Config::default_checksum`].
    pub checksum: Option<ChecksumMode>,
    /// Multipart part size, in bytes (≥ 5 MiB).
    pub part_size: u64,
    /// Parts uploaded at once; memory is about `part_size × (concurrency + 1)`.
    pub concurrency: usize,
    /// Bound on each S3 request attempt (connect, send, answer) and on each silence while a
    /// body streams; a server that accepts and never answers fails the request after this.
    pub request_timeout: std::time::Duration,
    /// An IAM role to assume for every request (Enterprise's `role_arn` and its companions).
    pub role: Option<AssumeRole>,
    /// Enterprise's `s3_static_snapshot_name`: every snapshot is written to this one name
    /// under the prefix (history is the bucket's versioning; retention never applies to it).
    pub static_name: Option<String>,
    /// Write the static name in a bucket without versioning (each snapshot destroys the last).
    pub allow_unversioned_static_name: bool,
}

impl S3Config {
    /// The prefix with a trailing `/` when non-empty.
    pub fn normalized_prefix(&self) -> String {
        crate::storage::naming::folder_prefix(&self.prefix)
    }

    /// Path-style addressing in effect.
    pub fn path_style(&self) -> bool {
        self.force_path_style
            .unwrap_or_else(|| Self::default_path_style(self.endpoint.as_deref()))
    }

    /// Checksum mode in effect.
    pub fn checksum_mode(&self) -> ChecksumMode {
        self.checksum
            .unwrap_or_else(|| Self::default_checksum(self.endpoint.as_deref()))
    }

    /// Path-style addressing unless set: on with a custom endpoint (most S3-compatible
    /// servers have no virtual-host DNS), off on AWS.
    pub fn default_path_style(endpoint: Option<&str>) -> bool {
        endpoint.is_some()
    }

    /// Request checksums unless set: only where required with a custom endpoint (many
    /// S3-compatible servers reject aws-chunked trailers), wherever supported on AWS.
    pub fn default_checksum(endpoint: Option<&str>) -> ChecksumMode {
        if endpoint.is_some() {
            ChecksumMode::WhenRequired
        } else {
            ChecksumMode::WhenSupported
        }
    }

    /// Checks settings that S3 would only reject mid-upload.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("an S3 bucket is required".into());
        }
        if self.part_size < MIN_PART_SIZE {
            return Err(format!(
                "S3 part size {} is below the 5 MiB minimum",
                self.part_size
            ));
        }
        if self.request_timeout.is_zero() {
            return Err("the S3 request timeout must be above zero".into());
        }
        if self.concurrency == 0 {
            return Err("S3 upload concurrency must be at least 1".into());
        }
        if let Some(n) = &self.static_name {
            if n.is_empty() || n.starts_with('/') || n.ends_with('/') {
                return Err(format!(
                    "the static snapshot name {n:?} must be an object name (not empty, no leading or trailing '/')"
                ));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err("give both an access key ID and a secret access key, or neither".into());
        }
        Ok(())
    }

    /// Builds the client.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        self.client_with_clock(None).await
    }

    /// [`S3Config::client`], recording the `Date` of every answer in `clock`.
    pub async fn client_with_clock(
        &self,
        clock: Option<crate::storage::ServerClock>,
    ) -> aws_sdk_s3::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        let region = self
            .region
            .clone()
            .or_else(|| self.endpoint.as_ref().map(|_| "us-east-1".to_string()));
        if let Some(r) = region {
            loader = loader.region(Region::new(r));
        }
        if let Some(ep) = &self.endpoint {
            loader = loader.endpoint_url(ep);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            let creds = Credentials::new(
                id,
                secret.expose(),
                self.session_token.as_ref().map(|t| t.expose().to_string()),
                None,
                "consul-snapshot-agent",
            );
            loader = loader.credentials_provider(creds);
        }
        loader = loader.request_checksum_calculation(match self.checksum_mode() {
            ChecksumMode::WhenRequired => RequestChecksumCalculation::WhenRequired,
            ChecksumMode::WhenSupported => RequestChecksumCalculation::WhenSupported,
        });
        // Nothing waits forever: each attempt, and each silence of a streamed body, is bounded;
        // the SDK's standard retries (3 attempts) then apply to 5xx, throttling and timeouts.
        let t = self.request_timeout;
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(t.min(std::time::Duration::from_secs(30)))
                .read_timeout(t)
                .operation_attempt_timeout(t)
                .build(),
        );
        let mut sdk = loader.load().await;
        if let Some(role) = &self.role {
            sdk = super::role::with_role(sdk, role).await;
        }
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(self.path_style());
        if let Some(clock) = clock {
            conf = conf.interceptor(DateRecorder(clock));
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    }
}

/// Records the `Date` header of every S3 answer (errors included) in a
/// [`crate::storage::ServerClock`].
#[derive(Debug)]
struct DateRecorder(crate::storage::ServerClock);

impl aws_sdk_s3::config::Intercept for DateRecorder {
    fn name(&self) -> &'static str {
        "DateRecorder"
    }

    fn read_after_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_s3::config::RuntimeComponents,
        _cfg: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.observe(date);
        }
        Ok(())
    }
}

/// `s3://bucket/prefix/`, for messages (no credentials).
impl std::fmt::Display for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.normalized_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket on AWS, every setting spelled out.
    fn sample() -> S3Config {
        S3Config {
            bucket: String::new(),
            prefix: "consul-snapshot".into(),
            region: None,
            endpoint: None,
            force_path_style: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            encryption: Encryption::None,
            storage_class: None,
            checksum: None,
            part_size: 16 << 20,
            concurrency: 4,
            request_timeout: std::time::Duration::from_secs(300),
            role: None,
            static_name: None,
            allow_unversioned_static_name: false,
        }
    }

    #[test]
    fn custom_endpoints_get_path_style_and_when_required() {
        let aws = S3Config {
            bucket: "b".into(),
            ..sample()
        };
        assert!(!aws.path_style());
        assert_eq!(aws.checksum_mode(), ChecksumMode::WhenSupported);
        let garage = S3Config {
            endpoint: Some("http://127.0.0.1:3900".into()),
            ..aws.clone()
        };
        assert!(garage.path_style());
        assert_eq!(garage.checksum_mode(), ChecksumMode::WhenRequired);
        let forced = S3Config {
            force_path_style: Some(false),
            checksum: Some(ChecksumMode::WhenSupported),
            ..garage
        };
        assert!(!forced.path_style());
        assert_eq!(forced.checksum_mode(), ChecksumMode::WhenSupported);
    }

    #[test]
    fn validation_and_prefix() {
        let ok = S3Config {
            bucket: "b".into(),
            prefix: "p".into(),
            ..sample()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.normalized_prefix(), "p/");
        assert_eq!(
            S3Config {
                prefix: String::new(),
                ..ok.clone()
            }
            .normalized_prefix(),
            ""
        );
        assert!(S3Config {
            part_size: 1 << 20,
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert!(S3Config {
            access_key_id: Some("a".into()),
            ..ok.clone()
        }
        .validate()
        .is_err());
        let dbg = format!(
            "{:?}",
            S3Config {
                secret_access_key: Some(Secret::new("SUPERSECRET")),
                ..ok
            }
        );
        assert!(!dbg.contains("SUPERSECRET"));
    }
}
