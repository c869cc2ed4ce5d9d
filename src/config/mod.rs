//! Configuration, resolved once: defaults < files (Consul Enterprise's `snapshot_agent` JSON or
//! TOML, [`mod@file`]) < environment (`CONSUL_*`, `AWS_*`) < flags ([`args`]). Nothing downstream
//! reads the environment or the files again.

pub mod args;
pub mod file;
pub mod print;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

pub use args::{AgentArgs, DatacenterArg, FileArgs, RetentionArgs, RetryArgs, StorageArgs};
pub use file::FileConfig;

use crate::consul::duration::parse_duration;
use crate::consul::{ConsulArgs, ConsulConfig, Secret};
use crate::retention::RetentionPolicy;
use crate::schedule::Schedule;
use crate::storage::s3::{ChecksumMode, Encryption};
use crate::storage::{LocalStore, S3Config, S3Store, Store};

/// Default metrics/health listener.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// Reads an environment variable (injected for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses a size in bytes: `512`, `64KiB`, `100MiB`, `1GiB` (binary), `5MB`, `1GB` (decimal:
/// what the units mean), and the single letters `K`, `M`, `G` as binary (as `dd` and most
/// tools read them). Case-insensitive; a space before the unit is allowed.
///
/// ```
/// use consul_snapshot_agent::config::{format_size, parse_size};
/// assert_eq!(parse_size("16MiB"), Ok(16 << 20));
/// assert_eq!(parse_size("16MB"), Ok(16_000_000));
/// assert_eq!(parse_size(&format_size(5632 << 10)), Ok(5632 << 10));
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 100MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// Formats a size so that [`parse_size`] reads it back exactly: the largest binary unit that
/// divides it (`16MiB`, `5632KiB`), else bytes.
pub fn format_size(n: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n != 0 && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    n.to_string()
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn duration_key(v: &Option<String>, key: &str) -> anyhow::Result<Option<Duration>> {
    match nonempty(v) {
        None => Ok(None),
        Some(s) => parse_duration(&s)
            .map(Some)
            .map_err(|e| anyhow!("{key}: {e}")),
    }
}

/// Loads the files named by `args`.
pub fn load_files(args: &FileArgs) -> anyhow::Result<FileConfig> {
    Ok(file::load(&args.config_file, &args.config_dir)?)
}

/// The Consul connection: flags > environment > file > defaults.
pub fn resolve_consul(
    flags: &ConsulArgs,
    file: &FileConfig,
    env: Env<'_>,
) -> anyhow::Result<ConsulConfig> {
    let a = file.snapshot_agent.clone().unwrap_or_default();
    let layer = ConsulArgs {
        http_addr: nonempty(&a.http_addr),
        token: nonempty(&a.token).map(Secret::new),
        ca_file: nonempty(&a.ca_file).map(PathBuf::from),
        ca_path: nonempty(&a.ca_path).map(PathBuf::from),
        client_cert: nonempty(&a.cert_file).map(PathBuf::from),
        client_key: nonempty(&a.key_file).map(PathBuf::from),
        tls_server_name: nonempty(&a.tls_server_name),
        datacenter: nonempty(&a.datacenter),
        ..ConsulArgs::default()
    };
    if a.login
        .as_ref()
        .and_then(|l| nonempty(&l.auth_method))
        .is_some()
    {
        bail!("snapshot_agent.login: auth-method login is not supported; give an ACL token (token or CONSUL_HTTP_TOKEN_FILE)");
    }
    Ok(flags.resolve_layered(env, &layer)?)
}

/// Where backups go, resolved.
#[derive(Debug, Clone, Default)]
pub struct StorageConfig {
    pub local: Option<PathBuf>,
    pub s3: Option<S3Config>,
}

impl StorageConfig {
    /// Opens the destinations (creating the local directory), local first.
    pub async fn stores(&self) -> anyhow::Result<Vec<Store>> {
        let mut out = Vec::new();
        if let Some(dir) = &self.local {
            out.push(Store::Local(
                LocalStore::new(dir).map_err(|e| anyhow!("{e}"))?,
            ));
        }
        if let Some(cfg) = &self.s3 {
            out.push(Store::S3(
                S3Store::new(cfg.clone())
                    .await
                    .map_err(|e| anyhow!("{e}"))?,
            ));
        }
        Ok(out)
    }
}

/// Destinations: flags > environment > file > defaults. As in Consul Enterprise, a configured
/// bucket disables local storage unless `--local-path` is given.
pub fn resolve_storage(
    flags: &StorageArgs,
    file: &FileConfig,
    env: Env<'_>,
) -> anyhow::Result<StorageConfig> {
    let a = file.snapshot_agent.clone().unwrap_or_default();
    let aws = a.aws_storage.clone().unwrap_or_default();
    for (section, map) in [
        ("azure_blob_storage", &a.azure_blob_storage),
        ("google_storage", &a.google_storage),
    ] {
        if map.iter().flatten().any(|(_, v)| {
            !matches!(v, serde_json::Value::String(s) if s.is_empty()) && !v.is_null()
        }) {
            bail!("snapshot_agent.{section}: only local and S3-compatible storage are supported");
        }
    }
    for (key, v) in [
        ("role_arn", &aws.role_arn),
        ("role_session_name", &aws.role_session_name),
        ("web_identity_token_file", &aws.web_identity_token_file),
        ("iam_endpoint", &aws.iam_endpoint),
        ("sts_endpoint", &aws.sts_endpoint),
    ] {
        if nonempty(v).is_some() {
            bail!(
                "snapshot_agent.aws_storage.{key} is not supported in the file; the AWS credential chain reads \
                 AWS_ROLE_ARN, AWS_ROLE_SESSION_NAME and AWS_WEB_IDENTITY_TOKEN_FILE from the environment"
            );
        }
    }
    if nonempty(&aws.s3_static_snapshot_name).is_some() {
        bail!("snapshot_agent.aws_storage.s3_static_snapshot_name is not supported: every backup gets its own key so that retention and restore can choose among them");
    }
    let bucket = flags.s3_bucket.clone().or_else(|| nonempty(&aws.s3_bucket));
    let s3 = match bucket {
        None => None,
        Some(bucket) => {
            let sse = flags.s3_sse || aws.s3_server_side_encryption.unwrap_or(false);
            let kms = flags.s3_kms || aws.s3_enable_kms.unwrap_or(false);
            let kms_key = flags
                .s3_kms_key
                .clone()
                .or_else(|| nonempty(&aws.s3_kms_key));
            if sse && kms {
                bail!(
                    "choose one of SSE-S3 (s3_server_side_encryption) and SSE-KMS (s3_enable_kms)"
                );
            }
            let encryption = if kms || kms_key.is_some() {
                Encryption::Kms(kms_key)
            } else if sse {
                Encryption::S3
            } else {
                Encryption::None
            };
            // Explicit keys from the file only when the environment has none (env beats file).
            let env_keys = env("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty());
            let file_key = |v: &Option<String>| if env_keys { None } else { nonempty(v) };
            let checksum = match nonempty(&aws.s3_checksum).as_deref() {
                None => None,
                Some("when_required") => Some(ChecksumMode::WhenRequired),
                Some("when_supported") => Some(ChecksumMode::WhenSupported),
                Some(other) => bail!("snapshot_agent.aws_storage.s3_checksum: {other:?} is not when_required or when_supported"),
            };
            let part_size = match (flags.s3_part_size, nonempty(&aws.s3_part_size)) {
                (Some(p), _) => p,
                (None, Some(p)) => parse_size(&p)
                    .map_err(|e| anyhow!("snapshot_agent.aws_storage.s3_part_size: {e}"))?,
                (None, None) => 16 << 20,
            };
            let prefix = flags
                .s3_key_prefix
                .clone()
                .or_else(|| aws.s3_key_prefix.clone())
                .unwrap_or_else(|| "consul-snapshot".into());
            let cfg = S3Config {
                bucket,
                prefix,
                region: flags
                    .s3_region
                    .clone()
                    .or_else(|| env("AWS_REGION").filter(|v| !v.is_empty()))
                    .or_else(|| nonempty(&aws.s3_region)),
                endpoint: flags
                    .s3_endpoint
                    .clone()
                    .filter(|e| !e.is_empty())
                    .or_else(|| nonempty(&aws.s3_endpoint)),
                force_path_style: flags
                    .s3_force_path_style
                    .or(aws.s3_force_path_style.filter(|v| *v)),
                access_key_id: flags
                    .aws_access_key_id
                    .clone()
                    .or_else(|| file_key(&aws.access_key_id)),
                secret_access_key: flags
                    .aws_secret_access_key
                    .clone()
                    .or_else(|| file_key(&aws.secret_access_key).map(Secret::new)),
                session_token: flags
                    .aws_session_token
                    .clone()
                    .or_else(|| file_key(&aws.session_token).map(Secret::new)),
                encryption,
                storage_class: flags
                    .s3_storage_class
                    .clone()
                    .or_else(|| nonempty(&aws.s3_storage_class)),
                checksum: flags.s3_checksum.or(checksum),
                part_size,
                concurrency: flags.s3_concurrency.or(aws.s3_concurrency).unwrap_or(4),
                request_timeout: match flags.s3_request_timeout {
                    Some(t) => t,
                    None => duration_key(
                        &aws.s3_request_timeout,
                        "snapshot_agent.aws_storage.s3_request_timeout",
                    )?
                    .unwrap_or(crate::storage::s3::config::DEFAULT_REQUEST_TIMEOUT),
                },
                ..S3Config::default()
            };
            cfg.validate().map_err(|e| anyhow!(e))?;
            Some(cfg)
        }
    };
    let local_file = a
        .local_storage
        .as_ref()
        .and_then(|l| nonempty(&l.path))
        .map(PathBuf::from);
    let local = match (&flags.local_path, &s3) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(local_file.unwrap_or_else(|| PathBuf::from("."))),
    };
    Ok(StorageConfig { local, s3 })
}

/// The retention policy: flags over file, rule by rule; `retain 30` when nothing is set.
pub fn resolve_retention(
    flags: &RetentionArgs,
    file: &FileConfig,
) -> anyhow::Result<RetentionPolicy> {
    let s = file
        .snapshot_agent
        .as_ref()
        .and_then(|a| a.snapshot.clone())
        .unwrap_or_default();
    let p = RetentionPolicy {
        retain: flags.retain.or(s.retain),
        keep_last: flags.keep_last.or(s.keep_last),
        keep_hourly: flags.keep_hourly.or(s.keep_hourly),
        keep_daily: flags.keep_daily.or(s.keep_daily),
        keep_weekly: flags.keep_weekly.or(s.keep_weekly),
        keep_monthly: flags.keep_monthly.or(s.keep_monthly),
        keep_yearly: flags.keep_yearly.or(s.keep_yearly),
        keep_within: match flags.keep_within {
            Some(d) => Some(d),
            None => duration_key(&s.keep_within, "snapshot_agent.snapshot.keep_within")?,
        },
    };
    Ok(if p.is_empty() {
        RetentionPolicy {
            retain: Some(30),
            ..p
        }
    } else {
        p
    })
}

/// Leader election and registration settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    pub service: String,
    pub deregister_after: Duration,
    pub lock_key: String,
    pub max_failures: u32,
    pub session_ttl: Duration,
    pub lock_delay: Duration,
}

/// The whole agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub consul: ConsulConfig,
    pub storage: StorageConfig,
    pub retention: RetentionPolicy,
    /// `None`: one snapshot, then exit.
    pub schedule: Option<Schedule>,
    pub jitter: Duration,
    pub stale: bool,
    pub ha: HaConfig,
    pub metrics_addr: Option<SocketAddr>,
    pub verify_readback: bool,
    /// `log.level` of the file, when the command line did not set one.
    pub log_level: Option<String>,
    pub log_json: bool,
    /// Webhook URLs notified of cycles.
    pub webhooks: Vec<url::Url>,
    /// Bound on each webhook delivery.
    pub webhook_timeout: Duration,
}

/// Resolves everything the agent needs. `once` forces one-shot mode.
pub fn resolve_agent(
    files: &FileArgs,
    consul: &ConsulArgs,
    storage: &StorageArgs,
    retention: &RetentionArgs,
    agent: &AgentArgs,
    once: bool,
    env: Env<'_>,
) -> anyhow::Result<AgentConfig> {
    let file = load_files(files)?;
    let a = file.snapshot_agent.clone().unwrap_or_default();
    let s = a.snapshot.clone().unwrap_or_default();
    let consul = resolve_consul(consul, &file, env).context("Consul connection")?;
    let storage = resolve_storage(storage, &file, env)?;
    let retention = resolve_retention(retention, &file)?;
    let cron = agent.cron.clone().or_else(|| {
        if agent.interval.is_some() {
            None
        } else {
            nonempty(&s.cron)
        }
    });
    let schedule = if once {
        None
    } else if let Some(expr) = cron {
        let zone = agent.cron_zone.clone().or_else(|| nonempty(&s.cron_zone));
        Some(Schedule::cron(&expr, zone.as_deref())?)
    } else {
        let interval = match agent.interval {
            Some(i) => i,
            None => duration_key(&s.interval, "snapshot_agent.snapshot.interval")?
                .unwrap_or(Duration::from_secs(3600)),
        };
        (!interval.is_zero()).then_some(Schedule::Interval(interval))
    };
    let ha = HaConfig {
        service: agent
            .service
            .clone()
            .or_else(|| nonempty(&s.service))
            .unwrap_or_else(|| "consul-snapshot".into()),
        deregister_after: match agent.deregister_after {
            Some(d) => d,
            None => duration_key(
                &s.deregister_after,
                "snapshot_agent.snapshot.deregister_after",
            )?
            .unwrap_or(Duration::from_secs(72 * 3600)),
        },
        lock_key: agent
            .lock_key
            .clone()
            .or_else(|| nonempty(&s.lock_key))
            .unwrap_or_else(|| "consul-snapshot/lock".into()),
        max_failures: agent.max_failures.or(s.max_failures).unwrap_or(3).max(1),
        session_ttl: match agent.session_ttl {
            Some(d) => d,
            None => duration_key(&s.session_ttl, "snapshot_agent.snapshot.session_ttl")?
                .unwrap_or(Duration::from_secs(15)),
        },
        lock_delay: match agent.lock_delay {
            Some(d) => d,
            None => duration_key(&s.lock_delay, "snapshot_agent.snapshot.lock_delay")?
                .unwrap_or(Duration::ZERO),
        },
    };
    let metrics = agent
        .metrics_addr
        .clone()
        .or_else(|| a.metrics_addr.clone())
        .unwrap_or_else(|| DEFAULT_METRICS_ADDR.into());
    let metrics_addr = args::parse_listen(&metrics).map_err(|e| anyhow!(e))?;
    let log = a.log.clone().unwrap_or_default();
    let notify = a.notify.clone().unwrap_or_default();
    let hook_strings = if agent.webhooks.is_empty() {
        notify.webhooks.clone().unwrap_or_default()
    } else {
        agent.webhooks.clone()
    };
    let webhooks = hook_strings
        .iter()
        .map(|u| {
            url::Url::parse(u)
                .map_err(|e| anyhow!("webhook URL {:?}: {e}", u.split('?').next().unwrap_or("")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let webhook_timeout = match agent.webhook_timeout {
        Some(t) => t,
        None => duration_key(&notify.timeout, "snapshot_agent.notify.timeout")?
            .unwrap_or(Duration::from_secs(10)),
    };
    Ok(AgentConfig {
        consul,
        storage,
        retention,
        schedule,
        jitter: match agent.jitter {
            Some(j) => j,
            None => {
                duration_key(&s.jitter, "snapshot_agent.snapshot.jitter")?.unwrap_or(Duration::ZERO)
            }
        },
        stale: agent.stale || s.stale.unwrap_or(false),
        ha,
        metrics_addr,
        verify_readback: agent.verify_readback || s.verify_readback.unwrap_or(false),
        log_level: nonempty(&log.level),
        log_json: log.json.unwrap_or(false),
        webhooks,
        webhook_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    /// `resolve_agent` with default storage and retention flags.
    fn resolve(
        files: &FileArgs,
        consul: &ConsulArgs,
        agent: &AgentArgs,
        once: bool,
        env: Env<'_>,
    ) -> anyhow::Result<AgentConfig> {
        resolve_agent(
            files,
            consul,
            &StorageArgs::default(),
            &RetentionArgs::default(),
            agent,
            once,
            env,
        )
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("1TB").is_err());
    }

    #[test]
    fn sizes_mean_their_units_and_print_back_exactly() {
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("5mib"), Ok(5 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2KB"), Ok(2000));
        for n in [
            0u64,
            1,
            1000,
            5_000_000,
            5632 << 10,
            16 << 20,
            3 << 30,
            (1 << 20) + 1,
        ] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{}", format_size(n));
        }
        assert_eq!(format_size(5632 << 10), "5632KiB");
    }

    #[test]
    fn precedence_defaults_file_env_flags() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = write(
            dir.path(),
            "a.json",
            r#"{"snapshot_agent": {"http_addr": "10.0.0.1:8500", "token": "file-token",
                "snapshot": {"interval": "30m", "retain": 7, "lock_key": "x/lock"},
                "aws_storage": {"s3_bucket": "bkt", "s3_region": "eu-west-1", "access_key_id": "AKFILE", "secret_access_key": "filesecret"}}}"#,
        );
        let files = FileArgs {
            config_file: vec![f],
            config_dir: vec![],
        };
        let no_env = env_of(&[]);
        let c = resolve(
            &files,
            &ConsulArgs::default(),
            &AgentArgs::default(),
            false,
            &no_env,
        )
        .expect("resolve");
        assert!(
            matches!(&c.consul.address, crate::consul::config::Address::Http(u) if u.host_str() == Some("10.0.0.1"))
        );
        assert_eq!(
            c.consul.token.as_ref().map(Secret::expose),
            Some("file-token")
        );
        assert_eq!(
            c.schedule,
            Some(Schedule::Interval(Duration::from_secs(1800)))
        );
        assert_eq!(c.retention.retain, Some(7));
        assert_eq!(c.ha.lock_key, "x/lock");
        assert_eq!(c.ha.service, "consul-snapshot");
        assert!(c.storage.local.is_none(), "a bucket disables local storage");
        let s3 = c.storage.s3.clone().expect("s3");
        assert_eq!(
            (s3.region.as_deref(), s3.access_key_id.as_deref()),
            (Some("eu-west-1"), Some("AKFILE"))
        );

        // Environment beats the file; flags beat both.
        let env = env_of(&[
            ("CONSUL_HTTP_TOKEN", "env-token"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ACCESS_KEY_ID", "AKENV"),
        ]);
        let flags = AgentArgs {
            interval: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let c = resolve(&files, &ConsulArgs::default(), &flags, false, &env).expect("resolve");
        assert_eq!(
            c.consul.token.as_ref().map(Secret::expose),
            Some("env-token")
        );
        let s3 = c.storage.s3.expect("s3");
        assert_eq!(s3.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            s3.access_key_id, None,
            "the chain uses AWS_ACCESS_KEY_ID from the environment"
        );
        assert_eq!(
            c.schedule,
            Some(Schedule::Interval(Duration::from_secs(60)))
        );
        let consul_flags = ConsulArgs {
            token: Some(Secret::new("flag-token")),
            ..ConsulArgs::default()
        };
        let c = resolve(&files, &consul_flags, &AgentArgs::default(), true, &env).expect("resolve");
        assert_eq!(
            c.consul.token.as_ref().map(Secret::expose),
            Some("flag-token")
        );
        assert_eq!(c.schedule, None, "--once");
    }

    #[test]
    fn defaults_and_unsupported_settings() {
        let none = env_of(&[]);
        let c = resolve(
            &FileArgs::default(),
            &ConsulArgs::default(),
            &AgentArgs::default(),
            false,
            &none,
        )
        .expect("defaults");
        assert_eq!(
            c.schedule,
            Some(Schedule::Interval(Duration::from_secs(3600)))
        );
        assert_eq!(
            c.retention,
            RetentionPolicy {
                retain: Some(30),
                ..Default::default()
            }
        );
        assert_eq!(
            c.ha,
            HaConfig {
                service: "consul-snapshot".into(),
                deregister_after: Duration::from_secs(72 * 3600),
                lock_key: "consul-snapshot/lock".into(),
                max_failures: 3,
                session_ttl: Duration::from_secs(15),
                lock_delay: Duration::ZERO,
            }
        );
        assert_eq!(c.storage.local, Some(PathBuf::from(".")));
        assert_eq!(
            c.metrics_addr,
            Some("127.0.0.1:9464".parse().expect("addr"))
        );

        let dir = tempfile::tempdir().expect("tmp");
        for (text, want) in [
            (
                r#"{"snapshot_agent": {"azure_blob_storage": {"container_name": "c"}}}"#,
                "azure_blob_storage",
            ),
            (
                r#"{"snapshot_agent": {"aws_storage": {"s3_bucket": "b", "role_arn": "arn:x"}}}"#,
                "role_arn",
            ),
            (
                r#"{"snapshot_agent": {"snapshot": {"interval": "soon"}}}"#,
                "snapshot_agent.snapshot.interval",
            ),
            (
                r#"{"snapshot_agent": {"snapshot": {"intervall": "1h"}}}"#,
                "intervall",
            ),
        ] {
            let f = write(dir.path(), "bad.json", text);
            let e = resolve(
                &FileArgs {
                    config_file: vec![f],
                    config_dir: vec![],
                },
                &ConsulArgs::default(),
                &AgentArgs::default(),
                false,
                &none,
            )
            .expect_err(want);
            assert!(format!("{e:#}").contains(want), "{e:#}");
        }
    }

    #[test]
    fn interval_zero_means_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = write(
            dir.path(),
            "a.json",
            r#"{"snapshot_agent": {"snapshot": {"interval": "0"}}}"#,
        );
        let none = env_of(&[]);
        let c = resolve(
            &FileArgs {
                config_file: vec![f],
                config_dir: vec![],
            },
            &ConsulArgs::default(),
            &AgentArgs::default(),
            false,
            &none,
        )
        .expect("ok");
        assert_eq!(c.schedule, None);
    }
}
