//! The command-line layer of the configuration: what was typed, validated only for shape.
//! Flag names are those of Consul Enterprise's `consul snapshot agent` (`-local-path`,
//! `-aws-s3-bucket`, `-interval`...), with `--`. Every option is optional here; defaults,
//! files and the environment are layered in by [`super::resolve_agent`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::consul::Secret;
use crate::storage::s3::ChecksumMode;

/// Configuration files (Consul Enterprise's `snapshot_agent` JSON, or TOML with the same keys).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Configuration files")]
pub struct FileArgs {
    /// A configuration file (.json or .toml); repeatable, later files win.
    #[arg(long = "config-file", value_name = "FILE")]
    pub config_file: Vec<PathBuf>,
    /// A directory whose .json and .toml files are read in name order; repeatable.
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
}

/// Which datacenter's backups `list` and `prune` work on.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatacenterArg {
    /// Only backups of this datacenter (by name and metadata). `prune` needs it when backups
    /// of several datacenters share the destination; otherwise the one present is used.
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
}

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
    /// Default "consul-snapshot".
    #[arg(long = "aws-s3-key-prefix", value_name = "PREFIX")]
    pub s3_key_prefix: Option<String>,
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
    /// Multipart part size (at least 5MiB). Default 16MiB.
    #[arg(long = "aws-s3-part-size", value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub s3_part_size: Option<u64>,
    /// Parts uploaded at once (memory is about part size × (this + 1)). Default 4.
    #[arg(long = "aws-s3-concurrency", value_name = "N")]
    pub s3_concurrency: Option<usize>,
    /// Bound on each S3 request (and each silence of a streamed body); a hung endpoint fails
    /// the cycle after this, and the next cycle tries again. Default 5m.
    #[arg(long = "aws-s3-request-timeout", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub s3_request_timeout: Option<Duration>,
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
    pub aws_secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    #[arg(
        long = "aws-session-token",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub aws_session_token: Option<Secret>,
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
    #[arg(long = "keep-within", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub keep_within: Option<Duration>,
}

/// Retries of the snapshot request while no byte has arrived.
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// Retries of the snapshot request while no byte has arrived (connection errors, 5xx).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// First delay between retries; doubled each time.
    #[arg(long = "retry-delay", default_value = "1s", value_parser = crate::consul::duration::parse_go_duration_arg, value_name = "DURATION")]
    pub retry_delay: Duration,
}

impl RetryArgs {
    /// As a retry policy.
    pub fn policy(&self) -> crate::consul::RetryPolicy {
        crate::consul::RetryPolicy {
            retries: self.retries,
            base: self.retry_delay,
            ..crate::consul::RetryPolicy::default()
        }
    }
}

/// Scheduling, election and registration of the long-running agent.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Agent")]
pub struct AgentArgs {
    /// Time between snapshots, e.g. 1h, 30m. 0 takes one snapshot and exits. Default 1h.
    #[arg(long, value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg, conflicts_with = "cron")]
    pub interval: Option<Duration>,
    /// Cron expression instead of --interval: 5 fields (crontab) or 6-7 with seconds first.
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// IANA time zone for --cron (default UTC).
    #[arg(long = "cron-zone", value_name = "ZONE")]
    pub cron_zone: Option<String>,
    /// Random delay of up to this long added to each run (spreads load across clusters).
    #[arg(long, value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub jitter: Option<Duration>,
    /// Let any server answer, not only the leader.
    #[arg(long)]
    pub stale: bool,
    /// Service name registered in Consul. Default consul-snapshot.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Deregister the service after its checks were critical this long. Default 72h.
    #[arg(long = "deregister-after", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub deregister_after: Option<Duration>,
    /// KV key of the leader lock. Default consul-snapshot/lock.
    #[arg(long = "lock-key", value_name = "KEY")]
    pub lock_key: Option<String>,
    /// Consecutive failed snapshots after which the leader gives up the lock. Default 3.
    #[arg(long = "max-failures", value_name = "N")]
    pub max_failures: Option<u32>,
    /// TTL of the leader-election session (renewed every TTL/2). Default 15s.
    #[arg(long = "session-ttl", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub session_ttl: Option<Duration>,
    /// Lock-delay of that session. Default 0s: the leader stops working once it has not renewed
    /// for a full TTL, before Consul can expire the session (2 × TTL).
    #[arg(long = "lock-delay", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub lock_delay: Option<Duration>,
    /// Address of the /metrics and /health listener; "off" disables it. Default 127.0.0.1:9464.
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Stream each stored backup back through the verifier.
    #[arg(long = "verify-readback")]
    pub verify_readback: bool,
    /// POST a JSON notification to this URL on cycle start, success and failure; repeatable.
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    /// Longest time spent delivering one notification to one URL, retries included.
    #[arg(long = "webhook-timeout", value_name = "DURATION", value_parser = crate::consul::duration::parse_go_duration_arg)]
    pub webhook_timeout: Option<Duration>,
}

/// A resolved listener address, or none.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    match s {
        "" | "off" | "none" => Ok(None),
        a => a
            .parse()
            .map(Some)
            .map_err(|e| format!("invalid listen address {a:?}: {e}")),
    }
}
