//! Destination and retention options shared by `agent`, `list` and `prune`. The flag names are
//! those of Consul Enterprise's `consul snapshot agent` (`-local-path`, `-aws-s3-bucket`...),
//! with `--`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::consul::Secret;
use crate::retention::RetentionPolicy;
use crate::storage::s3::{ChecksumMode, Encryption};
use crate::storage::{LocalStore, S3Config, S3Store, Store};

/// Where backups are stored.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Storage")]
pub struct StorageArgs {
    /// Store backups in this directory. Default "." when no S3 bucket is set; with a bucket,
    /// local storage is used only when this is given (as in Consul Enterprise).
    #[arg(long = "local-path", value_name = "DIR")]
    pub local_path: Option<PathBuf>,
    /// S3 bucket for backups.
    #[arg(long = "aws-s3-bucket", value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Key prefix ("folder") in the bucket.
    #[arg(
        long = "aws-s3-key-prefix",
        value_name = "PREFIX",
        default_value = "consul-snapshot"
    )]
    pub s3_key_prefix: String,
    /// Signing region (env AWS_REGION; us-east-1 with a custom endpoint).
    #[arg(long = "aws-s3-region", value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Custom S3 endpoint: MinIO, Garage, Ceph RGW, R2... (env AWS_S3_ENDPOINT).
    #[arg(long = "aws-s3-endpoint", value_name = "URL", env = "AWS_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Path-style addressing (default on with a custom endpoint).
    #[arg(long = "aws-s3-force-path-style", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub s3_force_path_style: Option<bool>,
    /// Server-side encryption with S3-managed keys (SSE-S3, AES256).
    #[arg(long = "aws-s3-server-side-encryption")]
    pub s3_sse: bool,
    /// Server-side encryption with KMS (SSE-KMS).
    #[arg(long = "aws-s3-enable-kms")]
    pub s3_kms: bool,
    /// KMS key ID for SSE-KMS (default: the bucket's AWS-managed key).
    #[arg(long = "aws-s3-kms-key", value_name = "KEY_ID")]
    pub s3_kms_key: Option<String>,
    /// Storage class of stored backups, e.g. STANDARD_IA.
    #[arg(long = "aws-s3-storage-class", value_name = "CLASS")]
    pub s3_storage_class: Option<String>,
    /// When the S3 client computes request checksums. Default when_required with a custom
    /// endpoint (many S3-compatible servers reject aws-chunked trailers), when_supported on AWS.
    #[arg(long = "aws-s3-checksum", value_enum, value_name = "MODE")]
    pub s3_checksum: Option<ChecksumMode>,
    /// Multipart part size (at least 5MiB).
    #[arg(long = "aws-s3-part-size", value_name = "SIZE", default_value = "16MiB", value_parser = super::generate::parse_size)]
    pub s3_part_size: u64,
    /// Parts uploaded at once (memory is about part size × (this + 1)).
    #[arg(long = "aws-s3-concurrency", value_name = "N", default_value_t = 4)]
    pub s3_concurrency: usize,
    /// Access key ID; without it the standard AWS chain is used (env AWS_ACCESS_KEY_ID, shared
    /// profile, web identity, ECS/EC2 roles).
    #[arg(long = "aws-access-key-id", value_name = "ID")]
    pub aws_access_key_id: Option<String>,
    /// Secret access key (prefer env AWS_SECRET_ACCESS_KEY: flags are visible in `ps`).
    #[arg(
        long = "aws-secret-access-key",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    #[arg(
        long = "aws-session-token",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub aws_session_token: Option<String>,
}

impl StorageArgs {
    /// The S3 settings, if a bucket is configured.
    pub fn s3_config(&self) -> anyhow::Result<Option<S3Config>> {
        let Some(bucket) = &self.s3_bucket else {
            return Ok(None);
        };
        if self.s3_sse && self.s3_kms {
            bail!("choose one of --aws-s3-server-side-encryption and --aws-s3-enable-kms");
        }
        let encryption = if self.s3_kms || self.s3_kms_key.is_some() {
            Encryption::Kms(self.s3_kms_key.clone())
        } else if self.s3_sse {
            Encryption::S3
        } else {
            Encryption::None
        };
        let cfg = S3Config {
            bucket: bucket.clone(),
            prefix: self.s3_key_prefix.clone(),
            region: self.s3_region.clone(),
            endpoint: self.s3_endpoint.clone().filter(|e| !e.is_empty()),
            force_path_style: self.s3_force_path_style,
            access_key_id: self.aws_access_key_id.clone(),
            secret_access_key: self.aws_secret_access_key.clone().map(Secret::new),
            session_token: self.aws_session_token.clone().map(Secret::new),
            encryption,
            storage_class: self.s3_storage_class.clone(),
            checksum: self.s3_checksum,
            part_size: self.s3_part_size,
            concurrency: self.s3_concurrency,
            ..S3Config::default()
        };
        cfg.validate().map_err(|e| anyhow!(e))?;
        Ok(Some(cfg))
    }

    /// The configured destinations, in the order local, S3.
    pub async fn stores(&self) -> anyhow::Result<Vec<Store>> {
        let s3 = self.s3_config()?;
        let mut stores = Vec::new();
        let local = match (&self.local_path, &s3) {
            (Some(p), _) => Some(p.clone()),
            (None, None) => Some(PathBuf::from(".")),
            (None, Some(_)) => None,
        };
        if let Some(dir) = local {
            stores.push(Store::Local(
                LocalStore::new(&dir).map_err(|e| anyhow!("{e}"))?,
            ));
        }
        if let Some(cfg) = s3 {
            stores.push(Store::S3(
                S3Store::new(cfg).await.map_err(|e| anyhow!("{e}"))?,
            ));
        }
        Ok(stores)
    }
}

/// The retention policy. Without any rule, `--retain 30` applies (Consul Enterprise's default).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionArgs {
    /// Keep the newest N backups; 0 keeps all (Consul Enterprise's `retain`). Default 30 when
    /// no keep-* rule is given.
    #[arg(long, value_name = "N")]
    pub retain: Option<u32>,
    /// Keep the newest N backups.
    #[arg(long = "keep-last", value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one (UTC).
    #[arg(long = "keep-hourly", value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one (UTC).
    #[arg(long = "keep-daily", value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long = "keep-weekly", value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long = "keep-monthly", value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long = "keep-yearly", value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every backup taken within this long of the newest one, e.g. 7d, 36h.
    #[arg(long = "keep-within", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub keep_within: Option<Duration>,
}

impl RetentionArgs {
    /// The policy, with the default `retain 30` when nothing is set.
    pub fn policy(&self) -> RetentionPolicy {
        let p = RetentionPolicy {
            retain: self.retain,
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within,
        };
        if p.is_empty() {
            RetentionPolicy {
                retain: Some(30),
                ..p
            }
        } else {
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retention_is_retain_30_unless_a_rule_is_given() {
        assert_eq!(
            RetentionArgs::default().policy(),
            RetentionPolicy {
                retain: Some(30),
                ..Default::default()
            }
        );
        let daily = RetentionArgs {
            keep_daily: Some(7),
            ..Default::default()
        };
        assert_eq!(
            daily.policy(),
            RetentionPolicy {
                keep_daily: Some(7),
                ..Default::default()
            }
        );
    }

    #[test]
    fn s3_settings() {
        let a = StorageArgs {
            s3_bucket: Some("b".into()),
            s3_key_prefix: "p".into(),
            s3_part_size: 16 << 20,
            s3_concurrency: 4,
            s3_kms: true,
            ..Default::default()
        };
        let c = a.s3_config().expect("ok").expect("some");
        assert_eq!(c.encryption, Encryption::Kms(None));
        assert_eq!(c.normalized_prefix(), "p/");
        let both = StorageArgs {
            s3_sse: true,
            ..a.clone()
        };
        assert!(both.s3_config().is_err());
        let small = StorageArgs {
            s3_part_size: 1 << 20,
            s3_kms: false,
            ..a
        };
        assert!(small.s3_config().is_err());
    }
}
