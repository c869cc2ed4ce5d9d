//! The storage sections (`local_storage`, `aws_storage`, `azure_blob_storage`,
//! `google_storage`): their options, merged over the environment and the files, and each
//! resolved next to its type into the destination's settings ([`S3Options::resolve`] and its
//! siblings) and opened as stores ([`StorageConfig::stores`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use conflate::Merge;
use serde::{Deserialize, Serialize};

use super::{merged, Env};
use crate::consul::Secret;
use crate::storage::gcs::GcsConfig;
use crate::storage::object::azure::{AzureConfig, AzureEnvironment};
use crate::storage::s3::{ChecksumMode, Encryption};
use crate::storage::{LocalStore, S3Config, S3Store, Store};
use crate::units::duration::parse_go_duration_arg;
use crate::units::duration::serde_option as go_duration;
use crate::units::size::serde_option as size;

/// Where backups are stored: the command-line view of `local_storage` and `aws_storage`,
/// for the commands that read backups (`list`, `prune`, `restore`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StorageArgs {
    #[command(flatten)]
    pub local: LocalOptions,
    #[command(flatten)]
    pub s3: S3Options,
    #[command(flatten)]
    pub azure: AzureOptions,
    #[command(flatten)]
    pub gcs: GcsOptions,
}

/// `snapshot_agent.local_storage`.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Storage")]
pub struct LocalOptions {
    /// Store backups in this directory. Default "." when no S3 bucket is set; with a bucket,
    /// local storage is used only when this is given on the command line (as in Consul
    /// Enterprise).
    #[arg(long = "local-path", value_name = "DIR")]
    pub path: Option<PathBuf>,
}

/// `snapshot_agent.aws_storage`: an S3 bucket (AWS or any S3-compatible server).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Storage")]
pub struct S3Options {
    /// Access key ID; without it the standard AWS chain is used (env AWS_ACCESS_KEY_ID, shared
    /// profile, web identity, ECS/EC2 roles).
    #[arg(long = "aws-access-key-id", value_name = "ID")]
    pub access_key_id: Option<String>,
    /// Secret access key (prefer env AWS_SECRET_ACCESS_KEY: flags are visible in `ps`).
    #[arg(
        long = "aws-secret-access-key",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    #[arg(
        long = "aws-session-token",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub session_token: Option<Secret>,
    /// Accepted as Enterprise accepts it, and unused: the AWS SDK's credential providers have
    /// no IAM endpoint setting (a warning says so).
    #[arg(long = "aws-iam-endpoint", value_name = "URL")]
    pub iam_endpoint: Option<String>,
    /// Assume this IAM role for S3: AssumeRole with the credentials of the chain (or the keys
    /// given), or AssumeRoleWithWebIdentity with --aws-web-identity-token-file. Temporary
    /// credentials are renewed before they expire. (The environment's AWS_ROLE_ARN works
    /// too, through the AWS credential chain.)
    #[arg(long = "aws-role-arn", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The session name of the assumed role (default "consul-snapshot-agent").
    #[arg(long = "aws-role-session-name", value_name = "NAME")]
    pub role_session_name: Option<String>,
    /// A web identity token (an OIDC JWT, e.g. a Kubernetes projected service-account token)
    /// to assume --aws-role-arn with; read again at every renewal, so a rotated token is used.
    #[arg(long = "aws-web-identity-token-file", value_name = "FILE")]
    pub web_identity_token_file: Option<String>,
    /// The STS endpoint for assuming the role (default: the region's AWS STS endpoint).
    #[arg(long = "aws-sts-endpoint", value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// Signing region (env AWS_REGION; us-east-1 with a custom endpoint).
    #[arg(long = "aws-s3-region", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// S3 bucket for backups.
    #[arg(long = "aws-s3-bucket", value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Key prefix ("folder") in the bucket. Default "consul-snapshot".
    #[arg(long = "aws-s3-key-prefix", value_name = "PREFIX")]
    pub s3_key_prefix: Option<String>,
    /// Server-side encryption with S3-managed keys (SSE-S3, AES256).
    #[arg(long = "aws-s3-server-side-encryption", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub s3_server_side_encryption: Option<bool>,
    /// Write every snapshot to this one object name under the prefix instead of a name per
    /// snapshot (Enterprise's `s3_static_snapshot_name`): the bucket's versioning keeps the
    /// history, retention does not apply, and a snapshot the shrink guard flags never
    /// replaces it. Refused in a bucket without versioning unless
    /// --allow-unversioned-static-name.
    #[arg(long = "aws-s3-static-snapshot-name", value_name = "NAME")]
    pub s3_static_snapshot_name: Option<String>,
    /// Allow --aws-s3-static-snapshot-name in a bucket without versioning, where each
    /// snapshot destroys the one before it.
    #[arg(long = "allow-unversioned-static-name", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_unversioned_static_name: Option<bool>,
    /// Path-style addressing (default on with a custom endpoint).
    #[arg(long = "aws-s3-force-path-style", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub s3_force_path_style: Option<bool>,
    /// Custom S3 endpoint: MinIO, Garage, Ceph RGW, R2... (env AWS_S3_ENDPOINT).
    #[arg(long = "aws-s3-endpoint", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Server-side encryption with KMS (SSE-KMS).
    #[arg(long = "aws-s3-enable-kms", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub s3_enable_kms: Option<bool>,
    /// KMS key ID for SSE-KMS (default: the bucket's AWS-managed key).
    #[arg(long = "aws-s3-kms-key", value_name = "KEY_ID")]
    pub s3_kms_key: Option<String>,
    /// Storage class of stored backups, e.g. STANDARD_IA.
    #[arg(long = "aws-s3-storage-class", value_name = "CLASS")]
    pub s3_storage_class: Option<String>,
    /// When the S3 client computes request checksums. Default when_required with a custom
    /// endpoint (many S3-compatible servers reject aws-chunked trailers), when_supported on
    /// AWS.
    #[arg(long = "aws-s3-checksum", value_enum, value_name = "MODE")]
    pub s3_checksum: Option<ChecksumMode>,
    /// Multipart part size (at least 5MiB). Default 16MiB.
    #[arg(long = "aws-s3-part-size", value_name = "SIZE", value_parser = super::parse_size)]
    #[serde(default, with = "size")]
    pub s3_part_size: Option<u64>,
    /// Parts uploaded at once (memory is about part size × (this + 1)). Default 4.
    #[arg(long = "aws-s3-concurrency", value_name = "N")]
    pub s3_concurrency: Option<usize>,
    /// Bound on each S3 request (and each silence of a streamed body); a hung endpoint fails
    /// the cycle after this, and the next cycle tries again. Default 5m.
    #[arg(long = "aws-s3-request-timeout", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub s3_request_timeout: Option<Duration>,
}

/// `snapshot_agent.azure_blob_storage`: an Azure Blob Storage container (Consul Enterprise's
/// keys, plus ours for the endpoint, prefix, block size and concurrency).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Storage")]
pub struct AzureOptions {
    /// Azure storage account name (env AZURE_STORAGE_ACCOUNT_NAME).
    #[arg(long = "azure-blob-account-name", value_name = "ACCOUNT")]
    pub account_name: Option<String>,
    /// Storage account key (prefer env AZURE_STORAGE_ACCOUNT_KEY: flags are visible in `ps`).
    /// Without it: AZURE_STORAGE_SAS_KEY, a service principal, workload or managed identity.
    #[arg(
        long = "azure-blob-account-key",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub account_key: Option<Secret>,
    /// Container for backups; setting it enables Azure Blob Storage.
    #[arg(long = "azure-blob-container-name", value_name = "CONTAINER")]
    pub container_name: Option<String>,
    /// Azure cloud. Default AZUREPUBLICCLOUD.
    #[arg(long = "azure-blob-environment", value_enum, value_name = "CLOUD")]
    pub environment: Option<AzureEnvironment>,
    /// The account's blob endpoint URL (Azurite: http://127.0.0.1:10000/devstoreaccount1, or a
    /// private endpoint). Default https://ACCOUNT.blob.core.windows.net (per cloud).
    #[arg(long = "azure-blob-endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Key prefix ("folder") in the container. Default "consul-snapshot".
    #[arg(long = "azure-blob-key-prefix", value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Block size of uploads (1MiB to 4000MiB). Default 16MiB.
    #[arg(long = "azure-blob-block-size", value_name = "SIZE", value_parser = super::parse_size)]
    #[serde(default, with = "size")]
    pub block_size: Option<u64>,
    /// Blocks uploaded at once (memory is about block size × (this + 1)). Default 4.
    #[arg(long = "azure-blob-concurrency", value_name = "N")]
    pub concurrency: Option<usize>,
    /// Bound on each request to Azure. Default 5m.
    #[arg(long = "azure-blob-request-timeout", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub request_timeout: Option<Duration>,
}

impl AzureOptions {
    /// The environment's layer: `AZURE_STORAGE_ACCOUNT_NAME` (the account key and other
    /// credentials are read by the Azure client itself).
    pub fn from_env(env: super::Env<'_>) -> Self {
        AzureOptions {
            account_name: env("AZURE_STORAGE_ACCOUNT_NAME").filter(|v| !v.is_empty()),
            ..AzureOptions::default()
        }
    }
}

/// `snapshot_agent.google_storage`: a Google Cloud Storage bucket (Consul Enterprise's
/// `bucket`, plus ours for the endpoint, prefix, chunk size and request timeout). Credentials
/// are Application Default Credentials.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Storage")]
pub struct GcsOptions {
    /// Google Cloud Storage bucket for backups; credentials from Application Default
    /// Credentials (GOOGLE_APPLICATION_CREDENTIALS, workload identity, the metadata server).
    #[arg(long = "gcs-bucket", value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// JSON API endpoint override (an emulator such as fake-gcs-server); no credentials are
    /// sent to it. Default https://storage.googleapis.com.
    #[arg(id = "gcs_endpoint", long = "gcs-endpoint", value_name = "URL")]
    pub endpoint: Option<String>,
    /// Key prefix ("folder") in the bucket. Default "consul-snapshot".
    #[arg(id = "gcs_key_prefix", long = "gcs-key-prefix", value_name = "PREFIX")]
    pub key_prefix: Option<String>,
    /// Resumable-upload chunk size, a multiple of 256KiB. Default 16MiB.
    #[arg(long = "gcs-chunk-size", value_name = "SIZE", value_parser = super::parse_size)]
    #[serde(default, with = "size")]
    pub chunk_size: Option<u64>,
    /// Bound on each request to GCS. Default 5m.
    #[arg(id = "gcs_request_timeout", long = "gcs-request-timeout", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub request_timeout: Option<Duration>,
}

impl S3Options {
    /// The environment's layer: `AWS_REGION` and `AWS_S3_ENDPOINT` (empty values are unset).
    /// Credentials in the environment are read by the AWS credential chain itself.
    pub fn from_env(env: super::Env<'_>) -> Self {
        let var = |k: &str| env(k).filter(|v| !v.is_empty());
        S3Options {
            s3_region: var("AWS_REGION"),
            s3_endpoint: var("AWS_S3_ENDPOINT"),
            ..S3Options::default()
        }
    }
}

/// Where backups go, resolved.
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    pub local: Option<PathBuf>,
    pub s3: Option<S3Config>,
    pub azure: Option<AzureConfig>,
    pub gcs: Option<GcsConfig>,
}

impl StorageConfig {
    /// Opens the destinations (creating the local directory), local first.
    pub async fn stores(&self) -> anyhow::Result<Vec<Store>> {
        self.stores_with(true).await
    }

    /// The destinations for commands that read or prune (`list`, `prune`, `restore`, `drill`,
    /// `peers-json`): a local directory that does not exist is an error, never created.
    pub async fn existing_stores(&self) -> anyhow::Result<Vec<Store>> {
        self.stores_with(false).await
    }

    async fn stores_with(&self, create: bool) -> anyhow::Result<Vec<Store>> {
        let mut out = Vec::new();
        if let Some(dir) = &self.local {
            let local = if create {
                LocalStore::new(dir)
            } else {
                LocalStore::open_existing(dir)
            };
            out.push(Store::new(local.map_err(|e| anyhow!("{e}"))?));
        }
        if let Some(cfg) = &self.s3 {
            out.push(Store::new(
                S3Store::new(cfg.clone())
                    .await
                    .map_err(|e| anyhow!("{e}"))?,
            ));
        }
        if let Some(cfg) = &self.azure {
            out.push(Store::new(cfg.backend().map_err(|e| anyhow!("{e}"))?));
        }
        if let Some(cfg) = &self.gcs {
            out.push(Store::new(cfg.backend().await.map_err(|e| anyhow!("{e}"))?));
        }
        Ok(out)
    }
}

/// The key prefix ("folder") of every object-store destination, unless set.
const KEY_PREFIX: &str = "consul-snapshot";
/// The upload part of every object-store destination (S3 part, Azure block, GCS chunk), in
/// bytes: memory per upload is about this × (concurrency + 1).
const UPLOAD_PART: u64 = 16 << 20;
/// Parts uploaded at once, per destination.
const UPLOAD_CONCURRENCY: usize = 4;
/// The bound on each request to an object store (and on each silence of a streamed body).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

impl S3Options {
    /// This section's defaults (the lowest layer; [`super::AgentOptions::defaults`] holds
    /// them with every other section's).
    pub fn defaults() -> Self {
        S3Options {
            s3_key_prefix: Some(KEY_PREFIX.into()),
            s3_part_size: Some(UPLOAD_PART),
            s3_concurrency: Some(UPLOAD_CONCURRENCY),
            s3_request_timeout: Some(REQUEST_TIMEOUT),
            ..S3Options::default()
        }
    }
}

impl AzureOptions {
    /// This section's defaults.
    pub fn defaults() -> Self {
        AzureOptions {
            environment: Some(AzureEnvironment::Public),
            key_prefix: Some(KEY_PREFIX.into()),
            block_size: Some(UPLOAD_PART),
            concurrency: Some(UPLOAD_CONCURRENCY),
            request_timeout: Some(REQUEST_TIMEOUT),
            ..AzureOptions::default()
        }
    }
}

impl GcsOptions {
    /// This section's defaults.
    pub fn defaults() -> Self {
        GcsOptions {
            key_prefix: Some(KEY_PREFIX.into()),
            chunk_size: Some(UPLOAD_PART),
            request_timeout: Some(REQUEST_TIMEOUT),
            ..GcsOptions::default()
        }
    }
}

/// The storage sections merged (flags > environment > file > defaults), as they take effect:
/// the tree `--print-config` prints and [`StorageArgs::resolve`] resolves. As in Consul
/// Enterprise, a configured bucket disables local storage unless `--local-path` is given on
/// the command line.
pub(super) fn merge_storage(flags: &StorageArgs, file: StorageArgs, env: Env<'_>) -> StorageArgs {
    let mut file_s3 = file.s3;
    // Enterprise's example file says `false` for "not set": only `true` overrides the
    // endpoint-dependent default.
    file_s3.s3_force_path_style = file_s3.s3_force_path_style.filter(|v| *v);
    // Keys in the environment make the file's keys step aside (environment beats file).
    if env("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty()) {
        file_s3.access_key_id = None;
        file_s3.secret_access_key = None;
        file_s3.session_token = None;
    }
    let mut s3 = flags.s3.clone();
    s3.merge(S3Options::from_env(env));
    s3.merge(file_s3);
    s3.merge(S3Options::defaults());
    let mut azure = flags.azure.clone();
    azure.merge(AzureOptions::from_env(env));
    azure.merge(file.azure);
    azure.merge(AzureOptions::defaults());
    let mut gcs = flags.gcs.clone();
    gcs.merge(file.gcs);
    gcs.merge(GcsOptions::defaults());
    let remote = s3.s3_bucket.is_some() || azure.container_name.is_some() || gcs.bucket.is_some();
    let path = match (&flags.local.path, remote) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            // Enterprise's rule: a bucket replaces the local directory. Say so, naming both.
            if let Some(ignored) = &file.local.path {
                let bucket_key = if s3.s3_bucket.is_some() {
                    "aws_storage.s3_bucket"
                } else if azure.container_name.is_some() {
                    "azure_blob_storage.container_name"
                } else {
                    "google_storage.bucket"
                };
                // Printed, not logged: configuration is resolved before logging starts.
                eprintln!(
                    "warning: local_storage.path ({}) is ignored because {bucket_key} is set: backups go to the bucket only (give --local-path to store in both)",
                    ignored.display()
                );
            }
            None
        }
        (None, false) => Some(
            file.local
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
    };
    let local = LocalOptions { path };
    // A destination without its bucket is not configured: its defaults are not part of the
    // configuration in effect.
    if s3.s3_bucket.is_none() {
        s3 = S3Options::default();
    } else {
        // The endpoint-dependent defaults, made explicit.
        let endpoint = set(&s3.s3_endpoint);
        s3.s3_force_path_style
            .get_or_insert(S3Config::default_path_style(endpoint.as_deref()));
        s3.s3_checksum
            .get_or_insert(S3Config::default_checksum(endpoint.as_deref()));
    }
    if azure.container_name.is_none() {
        azure = AzureOptions::default();
    }
    if gcs.bucket.is_none() {
        gcs = GcsOptions::default();
    }
    StorageArgs {
        local,
        s3,
        azure,
        gcs,
    }
}

impl StorageArgs {
    /// The destinations these merged sections describe (what `merge_storage` returns).
    ///
    /// # Errors
    /// As each section's `resolve`.
    pub fn resolve(&self) -> anyhow::Result<StorageConfig> {
        Ok(StorageConfig {
            local: self.local.path.clone(),
            s3: self.s3.resolve()?,
            azure: self.azure.resolve()?,
            gcs: self.gcs.resolve()?,
        })
    }
}

impl GcsOptions {
    /// The GCS destination this merged section describes; `None` without a bucket.
    ///
    /// # Errors
    /// A value the defaults layer should have set is missing, or the settings cannot work
    /// (chunk size).
    pub fn resolve(&self) -> anyhow::Result<Option<GcsConfig>> {
        let Some(bucket) = self.bucket.clone() else {
            return Ok(None);
        };
        let cfg = GcsConfig {
            bucket,
            prefix: merged(&self.key_prefix, "google_storage.key_prefix")?,
            endpoint: self.endpoint.clone(),
            chunk_size: merged(&self.chunk_size, "google_storage.chunk_size")?,
            request_timeout: merged(&self.request_timeout, "google_storage.request_timeout")?,
        };
        cfg.validate()
            .map_err(|e| anyhow!("snapshot_agent.google_storage: {e}"))?;
        Ok(Some(cfg))
    }
}

impl AzureOptions {
    /// The Azure destination this merged section describes; `None` without a container.
    ///
    /// # Errors
    /// A value the defaults layer should have set is missing, or the settings cannot work.
    pub fn resolve(&self) -> anyhow::Result<Option<AzureConfig>> {
        let Some(container) = self.container_name.clone() else {
            return Ok(None);
        };
        let cfg = AzureConfig {
            account: self.account_name.clone().unwrap_or_default(),
            account_key: self.account_key.clone(),
            container,
            environment: merged(&self.environment, "azure_blob_storage.environment")?,
            endpoint: self.endpoint.clone(),
            prefix: merged(&self.key_prefix, "azure_blob_storage.key_prefix")?,
            block_size: merged(&self.block_size, "azure_blob_storage.block_size")?,
            concurrency: merged(&self.concurrency, "azure_blob_storage.concurrency")?,
            request_timeout: merged(&self.request_timeout, "azure_blob_storage.request_timeout")?,
        };
        cfg.validate()
            .map_err(|e| anyhow!("snapshot_agent.azure_blob_storage: {e}"))?;
        Ok(Some(cfg))
    }
}

impl S3Options {
    /// This layer over the defaults: for settings built in code (tests, programs embedding
    /// the crate) rather than read from flags and files; resolve it with
    /// [`S3Options::resolve`].
    pub fn with_defaults(mut self) -> Self {
        self.merge(S3Options::defaults());
        self
    }

    /// The S3 destination this merged section describes; `None` without a bucket.
    ///
    /// # Errors
    /// A value the defaults layer should have set is missing, both SSE-S3 and SSE-KMS, role
    /// settings without a role, or settings S3 would refuse (part size).
    pub fn resolve(&self) -> anyhow::Result<Option<S3Config>> {
        let Some(bucket) = self.s3_bucket.clone() else {
            return Ok(None);
        };
        let cfg = S3Config {
            role: self.assume_role()?,
            static_name: set(&self.s3_static_snapshot_name),
            allow_unversioned_static_name: self.allow_unversioned_static_name.unwrap_or(false),
            bucket,
            prefix: merged(&self.s3_key_prefix, "aws_storage.s3_key_prefix")?,
            region: set(&self.s3_region),
            endpoint: set(&self.s3_endpoint),
            force_path_style: self.s3_force_path_style,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            session_token: self.session_token.clone(),
            encryption: self.encryption()?,
            storage_class: self.s3_storage_class.clone(),
            checksum: self.s3_checksum,
            part_size: merged(&self.s3_part_size, "aws_storage.s3_part_size")?,
            concurrency: merged(&self.s3_concurrency, "aws_storage.s3_concurrency")?,
            request_timeout: merged(&self.s3_request_timeout, "aws_storage.s3_request_timeout")?,
        };
        if set(&self.iam_endpoint).is_some() {
            // Printed, not logged: configuration is resolved before logging starts.
            eprintln!(
                "warning: aws_storage.iam_endpoint (--aws-iam-endpoint) is accepted as Consul Enterprise accepts it, and unused: \
                 the AWS SDK's credential providers have no IAM endpoint setting (sts_endpoint is the one a role uses)"
            );
        }
        cfg.validate().map_err(|e| anyhow!(e))?;
        Ok(Some(cfg))
    }

    /// Server-side encryption: SSE-S3, SSE-KMS (with a key or the bucket's), or none.
    fn encryption(&self) -> anyhow::Result<Encryption> {
        let sse = self.s3_server_side_encryption.unwrap_or(false);
        let kms = self.s3_enable_kms.unwrap_or(false);
        if sse && kms {
            bail!("choose one of SSE-S3 (s3_server_side_encryption) and SSE-KMS (s3_enable_kms)");
        }
        Ok(if kms || self.s3_kms_key.is_some() {
            Encryption::Kms(self.s3_kms_key.clone())
        } else if sse {
            Encryption::S3
        } else {
            Encryption::None
        })
    }

    /// The role to assume; its companions without `role_arn` are an error.
    fn assume_role(&self) -> anyhow::Result<Option<crate::storage::s3::AssumeRole>> {
        let Some(role_arn) = set(&self.role_arn) else {
            for (key, v) in [
                ("role_session_name", &self.role_session_name),
                ("web_identity_token_file", &self.web_identity_token_file),
                ("sts_endpoint", &self.sts_endpoint),
            ] {
                if set(v).is_some() {
                    bail!("aws_storage.{key} (--aws-{}) needs role_arn (--aws-role-arn): the role to assume", key.replace('_', "-"));
                }
            }
            return Ok(None);
        };
        Ok(Some(crate::storage::s3::AssumeRole {
            role_arn,
            session_name: set(&self.role_session_name),
            web_identity_token_file: set(&self.web_identity_token_file).map(PathBuf::from),
            sts_endpoint: set(&self.sts_endpoint),
        }))
    }
}

/// A string option that is set and not empty: Enterprise's sample file writes "" for every
/// unset key.
fn set(v: &Option<String>) -> Option<String> {
    v.clone().filter(|v| !v.is_empty())
}
