//! Configuration, resolved once: defaults < files (Consul Enterprise's `snapshot_agent` JSON or
//! TOML, [`mod@file`]) < environment (`CONSUL_*`, `AWS_*`) < flags. Each section is one typed
//! struct ([`options`]) that all four layers fill and `--print-config` writes back; the
//! resolver here turns the merged layers into what the agent runs with. Nothing downstream
//! reads the environment or the files again.

pub mod file;
pub mod options;
pub mod print;
pub mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use conflate::Merge;

pub use options::{
    parse_listen, AgentOptions, AzureOptions, DatacenterArg, FileArgs, FileConfig, GcsOptions,
    LocalOptions, LogOptions, NotifyOptions, RetryArgs, S3Options, SnapshotOptions, StorageArgs,
};
pub use values::Webhook;

use crate::consul::{ConsulArgs, ConsulConfig};
use crate::retention::RetentionPolicy;
use crate::schedule::Schedule;
use crate::storage::gcs::{GcsConfig, DEFAULT_CHUNK_SIZE};
use crate::storage::object::azure::{AzureConfig, DEFAULT_BLOCK_SIZE};
use crate::storage::s3::Encryption;
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

/// Loads the files named by `args`.
pub fn load_files(args: &FileArgs) -> anyhow::Result<FileConfig> {
    Ok(file::load(&args.config_file, &args.config_dir)?)
}

/// The recipients (`None`: no encryption) and identities an encryption section names.
///
/// # Errors
/// A recipient that does not parse, an unreadable or invalid recipients or identity file.
pub fn encryption_keys(
    e: &crate::config::options::EncryptionOptions,
) -> anyhow::Result<(
    Option<std::sync::Arc<crate::crypto::Recipients>>,
    std::sync::Arc<crate::crypto::Identities>,
)> {
    let (inline, files) = (
        e.age_recipients.clone().unwrap_or_default(),
        e.age_recipients_files.clone().unwrap_or_default(),
    );
    let recipients = if inline.is_empty() && files.is_empty() {
        None
    } else {
        Some(std::sync::Arc::new(
            crate::crypto::Recipients::parse(&inline, &files)
                .context("snapshot_agent.encryption")?,
        ))
    };
    let identities = crate::crypto::Identities::load(&e.age_identities.clone().unwrap_or_default())
        .context("--age-identity")?;
    Ok((recipients, std::sync::Arc::new(identities)))
}

/// Encryption settings from `flags` over the files' `snapshot_agent.encryption`, as keys.
///
/// # Errors
/// As [`encryption_keys`].
pub fn resolve_encryption(
    flags: &crate::config::options::EncryptionOptions,
    file: &FileConfig,
) -> anyhow::Result<(
    Option<std::sync::Arc<crate::crypto::Recipients>>,
    std::sync::Arc<crate::crypto::Identities>,
)> {
    let mut e = flags.clone();
    e.merge(file_layer(file).encryption);
    encryption_keys(&e)
}

/// Scheduled drills from a `drill` section: `None` when the interval is unset or 0.
///
/// # Errors
/// An interval without a target, or a target that does not parse.
pub fn drill_config(
    d: &crate::config::options::DrillOptions,
) -> anyhow::Result<Option<(Duration, crate::consul::ConsulConfig)>> {
    let Some(interval) = d.interval.filter(|i| !i.is_zero()) else {
        return Ok(None);
    };
    let Some(addr) = &d.target_http_addr else {
        bail!("drill.interval is set but drill.target_http_addr (--drill-target-http-addr) is not: a drill needs a scratch Consul");
    };
    let target = scratch_consul(ConsulArgs {
        http_addr: Some(addr.clone()),
        token: d.target_token.clone(),
        token_file: d.target_token_file.clone(),
        ca_file: d.target_ca_file.clone(),
        ..ConsulArgs::default()
    })
    .context("drill.target_http_addr")?;
    Ok(Some((interval, target)))
}

/// The connection to a drill's scratch cluster from its own settings only: the `CONSUL_*`
/// environment and the files' `consul` section belong to the cluster backed up, and must never
/// reach (or point) the target.
///
/// # Errors
/// An address, token file or TLS file that does not work.
pub fn scratch_consul(target: ConsulArgs) -> anyhow::Result<crate::consul::ConsulConfig> {
    Ok(target.resolve(&|_| None)?)
}

/// The shrink guard a `shrink_guard` section sets up (`None`: off).
pub fn guard_config(
    o: &crate::config::options::ShrinkGuardOptions,
) -> Option<crate::guard::GuardConfig> {
    crate::guard::GuardConfig::new(o.thresholds.as_deref().unwrap_or_default(), o.anomaly_hold)
}

/// Shrink-guard settings from `flags` over the files' `snapshot_agent.shrink_guard` (for
/// `prune`, which must hold what the agent holds).
pub fn resolve_guard(
    flags: &crate::config::options::ShrinkGuardOptions,
    file: &FileConfig,
) -> Option<crate::guard::GuardConfig> {
    let mut g = flags.clone();
    g.merge(file_layer(file).shrink_guard);
    guard_config(&g)
}

/// The files' `snapshot_agent` layer (empty when no file was given).
fn file_layer(file: &FileConfig) -> AgentOptions {
    file.snapshot_agent.clone().unwrap_or_default()
}

/// The Consul connection: flags > environment > file > defaults, by the `consul` CLI's rules
/// ([`ConsulArgs::resolve_layered`]).
///
/// # Errors
/// A bad address, token file or TLS pair. (The `login` section is read by the agent only:
/// [`resolve_agent`].)
pub fn resolve_consul(
    flags: &ConsulArgs,
    file: &FileConfig,
    env: Env<'_>,
) -> anyhow::Result<ConsulConfig> {
    let a = file_layer(file);
    Ok(flags.resolve_layered(env, &a.consul)?)
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

/// The storage sections merged (flags > environment > file > defaults), as they take effect.
/// As in Consul Enterprise, a configured bucket disables local storage unless `--local-path`
/// is given on the command line.
fn merge_storage(
    flags: &StorageArgs,
    file: &AgentOptions,
    env: Env<'_>,
) -> anyhow::Result<(LocalOptions, S3Options, AzureOptions, GcsOptions)> {
    let mut file_s3 = file.aws_storage.clone();
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
    s3.merge(AgentOptions::defaults().aws_storage);
    let mut azure = flags.azure.clone();
    azure.merge(AzureOptions::from_env(env));
    azure.merge(file.azure_blob_storage.clone());
    azure.merge(AgentOptions::defaults().azure_blob_storage);
    let mut gcs = flags.gcs.clone();
    gcs.merge(file.google_storage.clone());
    gcs.merge(AgentOptions::defaults().google_storage);
    let remote = s3.s3_bucket.is_some() || azure.container_name.is_some() || gcs.bucket.is_some();
    let path = match (&flags.local.path, remote) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => {
            // Enterprise's rule: a bucket replaces the local directory. Say so, naming both.
            if let Some(ignored) = &file.local_storage.path {
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
            file.local_storage
                .path
                .clone()
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
    };
    Ok((LocalOptions { path }, s3, azure, gcs))
}

/// The GCS destination the merged `google_storage` section describes; `None` without a bucket.
fn gcs_config(g: &GcsOptions) -> anyhow::Result<Option<GcsConfig>> {
    let Some(bucket) = g.bucket.clone() else {
        return Ok(None);
    };
    let cfg = GcsConfig {
        bucket,
        prefix: g.key_prefix.clone().unwrap_or_default(),
        endpoint: g.endpoint.clone(),
        chunk_size: g.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE),
        request_timeout: g
            .request_timeout
            .unwrap_or(crate::storage::s3::config::DEFAULT_REQUEST_TIMEOUT),
    };
    cfg.validate()
        .map_err(|e| anyhow!("snapshot_agent.google_storage: {e}"))?;
    Ok(Some(cfg))
}

/// The Azure destination the merged `azure_blob_storage` section describes; `None` without a
/// container.
fn azure_config(a: &AzureOptions) -> anyhow::Result<Option<AzureConfig>> {
    let Some(container) = a.container_name.clone() else {
        return Ok(None);
    };
    let cfg = AzureConfig {
        account: a.account_name.clone().unwrap_or_default(),
        account_key: a.account_key.clone(),
        container,
        environment: a.environment.unwrap_or_default(),
        endpoint: a.endpoint.clone(),
        prefix: a.key_prefix.clone().unwrap_or_default(),
        block_size: a.block_size.unwrap_or(DEFAULT_BLOCK_SIZE),
        concurrency: a.concurrency.unwrap_or(4),
        request_timeout: a
            .request_timeout
            .unwrap_or(crate::storage::s3::config::DEFAULT_REQUEST_TIMEOUT),
    };
    cfg.validate()
        .map_err(|e| anyhow!("snapshot_agent.azure_blob_storage: {e}"))?;
    Ok(Some(cfg))
}

/// The S3 destination the merged `aws_storage` section describes; `None` without a bucket.
fn s3_config(s3: &S3Options) -> anyhow::Result<Option<S3Config>> {
    let Some(bucket) = s3.s3_bucket.clone() else {
        return Ok(None);
    };
    let sse = s3.s3_server_side_encryption.unwrap_or(false);
    let kms = s3.s3_enable_kms.unwrap_or(false);
    if sse && kms {
        bail!("choose one of SSE-S3 (s3_server_side_encryption) and SSE-KMS (s3_enable_kms)");
    }
    let encryption = if kms || s3.s3_kms_key.is_some() {
        Encryption::Kms(s3.s3_kms_key.clone())
    } else if sse {
        Encryption::S3
    } else {
        Encryption::None
    };
    let defaults = S3Config::default();
    // Enterprise's sample file writes "" for every unset key.
    let set = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    let role = match set(&s3.role_arn) {
        Some(role_arn) => Some(crate::storage::s3::AssumeRole {
            role_arn,
            session_name: set(&s3.role_session_name),
            web_identity_token_file: set(&s3.web_identity_token_file).map(PathBuf::from),
            sts_endpoint: set(&s3.sts_endpoint),
        }),
        None => {
            for (key, v) in [
                ("role_session_name", &s3.role_session_name),
                ("web_identity_token_file", &s3.web_identity_token_file),
                ("sts_endpoint", &s3.sts_endpoint),
            ] {
                if set(v).is_some() {
                    bail!("aws_storage.{key} (--aws-{}) needs role_arn (--aws-role-arn): the role to assume", key.replace('_', "-"));
                }
            }
            None
        }
    };
    if set(&s3.iam_endpoint).is_some() {
        // Printed, not logged: configuration is resolved before logging starts.
        eprintln!(
            "warning: aws_storage.iam_endpoint (--aws-iam-endpoint) is accepted as Consul Enterprise accepts it, and unused: \
             the AWS SDK's credential providers have no IAM endpoint setting (sts_endpoint is the one a role uses)"
        );
    }
    let cfg = S3Config {
        role,
        static_name: set(&s3.s3_static_snapshot_name),
        allow_unversioned_static_name: s3.allow_unversioned_static_name.unwrap_or(false),
        bucket,
        prefix: s3.s3_key_prefix.clone().unwrap_or(defaults.prefix),
        region: s3.s3_region.clone().filter(|r| !r.is_empty()),
        endpoint: s3.s3_endpoint.clone().filter(|e| !e.is_empty()),
        force_path_style: s3.s3_force_path_style,
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: s3.secret_access_key.clone(),
        session_token: s3.session_token.clone(),
        encryption,
        storage_class: s3.s3_storage_class.clone(),
        checksum: s3.s3_checksum,
        part_size: s3.s3_part_size.unwrap_or(defaults.part_size),
        concurrency: s3.s3_concurrency.unwrap_or(defaults.concurrency),
        request_timeout: s3.s3_request_timeout.unwrap_or(defaults.request_timeout),
    };
    cfg.validate().map_err(|e| anyhow!(e))?;
    Ok(Some(cfg))
}

/// Destinations: flags > environment > file > defaults.
///
/// # Errors
/// Unsupported Enterprise settings, or S3 settings that cannot work (part size, SSE choice).
pub fn resolve_storage(
    flags: &StorageArgs,
    file: &FileConfig,
    env: Env<'_>,
) -> anyhow::Result<StorageConfig> {
    let (local, s3, azure, gcs) = merge_storage(flags, &file_layer(file), env)?;
    Ok(StorageConfig {
        local: local.path,
        s3: s3_config(&s3)?,
        azure: azure_config(&azure)?,
        gcs: gcs_config(&gcs)?,
    })
}

/// The retention policy: flags over file, rule by rule; `retain 30` when nothing is set.
pub fn resolve_retention(flags: &RetentionPolicy, file: &FileConfig) -> RetentionPolicy {
    let mut p = flags.clone();
    p.merge(file_layer(file).snapshot.retention);
    p.or_default()
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
    /// Recipients every backup is encrypted to; `None`: stored as plain archives.
    pub encryption: Option<std::sync::Arc<crate::crypto::Recipients>>,
    /// Identities the read-back decrypts with (may be empty).
    pub identities: std::sync::Arc<crate::crypto::Identities>,
    /// The shrink guard; `None` when every threshold is 0.
    pub guard: Option<crate::guard::GuardConfig>,
    /// Scheduled restore drills: how often, and the scratch cluster; `None`: off.
    pub drill: Option<(Duration, crate::consul::ConsulConfig)>,
    /// The merged sections as they take effect, in the file schema: what `--print-config`
    /// writes.
    pub effective: AgentOptions,
}

/// Layers `lower` under `upper`, section by section; a schedule in `upper` (interval or
/// cron) replaces one of either kind in `lower`.
fn merge_layers(mut upper: AgentOptions, mut lower: AgentOptions) -> AgentOptions {
    upper
        .snapshot
        .merge_schedule(std::mem::take(&mut lower.snapshot));
    upper.merge(lower);
    upper
}

/// Resolves everything the agent needs from the files and the command line (`flags`, with the
/// environment variables clap reads). `once` forces one-shot mode.
///
/// # Errors
/// Unreadable or invalid files, and any setting that cannot work, naming the key or flag.
/// The resolved auth-method login of a `login` section (`None` without an `auth_method`).
///
/// # Errors
/// An auth method without a bearer token (or file), or with both.
pub fn login_config(
    l: &crate::config::options::Login,
) -> anyhow::Result<Option<crate::consul::config::LoginConfig>> {
    use crate::consul::config::{Bearer, LoginConfig};
    // Empty strings are unset: Enterprise's example file carries the section empty.
    let token = l.bearer_token.clone().filter(|t| !t.expose().is_empty());
    let file = l.bearer_token_file.clone().filter(|f| !f.is_empty());
    let Some(method) = l.auth_method.clone().filter(|m| !m.is_empty()) else {
        if token.is_some() || file.is_some() {
            bail!("login: a bearer token is given without auth_method (--login-auth-method)");
        }
        return Ok(None);
    };
    let bearer = match (&token, &file) {
        (Some(t), None) => Bearer::Token(t.clone()),
        (None, Some(f)) => Bearer::File(PathBuf::from(f)),
        (Some(_), Some(_)) => {
            bail!("login: give bearer_token or bearer_token_file (--login-bearer-token-file), not both")
        }
        (None, None) => bail!(
            "login.auth_method {method:?} needs a bearer token: bearer_token_file (--login-bearer-token-file) or bearer_token"
        ),
    };
    Ok(Some(LoginConfig {
        auth_method: method,
        bearer,
        meta: l.meta.clone().unwrap_or_default(),
    }))
}

/// Consul's largest session TTL (24h, `SessionTTLMax` in Consul's agent/structs).
pub const SESSION_TTL_MAX: Duration = Duration::from_secs(24 * 3600);

/// Refuses a session TTL outside `min..=`[`SESSION_TTL_MAX`], `min` being the servers'
/// `session_ttl_min` (10s unless lowered there) and never 0: Consul reads a TTL of 0 as
/// "never expires", which would let a killed leader hold the lock forever.
fn check_session_ttl(ttl: Duration, min: Duration) -> anyhow::Result<()> {
    let min = min.max(Duration::from_millis(1));
    if (min..=SESSION_TTL_MAX).contains(&ttl) {
        return Ok(());
    }
    Err(anyhow!(
        "session_ttl (--session-ttl) is {}; Consul accepts a session TTL from {} (its session_ttl_min; --session-ttl-min if your servers set it lower) to 24h, and 0 would mean a session that never expires",
        humantime::format_duration(ttl),
        humantime::format_duration(min)
    ))
}

pub fn resolve_agent(
    files: &FileArgs,
    flags: &AgentOptions,
    once: bool,
    env: Env<'_>,
) -> anyhow::Result<AgentConfig> {
    let file = load_files(files)?;
    let consul = resolve_consul(&flags.consul, &file, env).context("Consul connection")?;
    let from_file = file_layer(&file);
    let storage_flags = StorageArgs {
        local: flags.local_storage.clone(),
        s3: flags.aws_storage.clone(),
        azure: flags.azure_blob_storage.clone(),
        gcs: flags.google_storage.clone(),
    };
    let (local, s3, azure, gcs) = merge_storage(&storage_flags, &from_file, env)?;
    let storage = StorageConfig {
        local: local.path.clone(),
        s3: s3_config(&s3)?,
        azure: azure_config(&azure)?,
        gcs: gcs_config(&gcs)?,
    };
    let mut o = merge_layers(
        merge_layers(flags.clone(), from_file),
        AgentOptions::defaults(),
    );
    let s = &o.snapshot;
    let retention = s.retention.clone().or_default();
    let schedule = match (&s.cron, s.interval) {
        _ if once => None,
        (Some(expr), _) => Some(Schedule::cron(expr, s.cron_zone.as_deref())?),
        (None, interval) => interval.filter(|i| !i.is_zero()).map(Schedule::Interval),
    };
    let ha = HaConfig {
        service: s.service.clone().unwrap_or_default(),
        deregister_after: s.deregister_after.unwrap_or_default(),
        lock_key: s.lock_key.clone().unwrap_or_default(),
        max_failures: s.max_failures.unwrap_or_default().max(1),
        session_ttl: s.session_ttl.unwrap_or_default(),
        lock_delay: s.lock_delay.unwrap_or_default(),
    };
    check_session_ttl(ha.session_ttl, s.session_ttl_min.unwrap_or_default())?;
    let mut consul = consul;
    consul.login = login_config(&o.login)?;
    let metrics_addr =
        parse_listen(o.metrics_addr.as_deref().unwrap_or_default()).map_err(|e| anyhow!(e))?;
    let (encryption, identities) = encryption_keys(&o.encryption)?;
    let cfg = AgentConfig {
        consul,
        storage,
        schedule,
        jitter: s.jitter.unwrap_or_default(),
        stale: s.stale.unwrap_or_default(),
        ha,
        metrics_addr,
        verify_readback: s.verify_readback.unwrap_or_default(),
        log_level: o.log.level.clone(),
        log_json: o.log.json.unwrap_or_default(),
        webhooks: o
            .notify
            .webhooks
            .iter()
            .flatten()
            .map(|w| w.0.clone())
            .collect(),
        webhook_timeout: o.notify.timeout.unwrap_or_default(),
        encryption,
        identities,
        guard: guard_config(&o.shrink_guard),
        drill: drill_config(&o.drill)?,
        retention: retention.clone(),
        effective: AgentOptions::default(),
    };
    // What took effect, for --print-config.
    o.consul = ConsulArgs::effective(&cfg.consul);
    o.snapshot.retention = retention;
    if once {
        o.snapshot.interval = Some(Duration::ZERO);
    }
    if o.snapshot.cron.is_some() {
        o.snapshot.interval = None;
        o.snapshot.cron_zone.get_or_insert_with(|| "UTC".into());
    }
    o.local_storage = local;
    o.aws_storage = match &cfg.storage.s3 {
        Some(c) => S3Options {
            s3_force_path_style: Some(c.path_style()),
            s3_checksum: Some(c.checksum_mode()),
            ..s3
        },
        None => S3Options::default(),
    };
    o.azure_blob_storage = if cfg.storage.azure.is_some() {
        azure
    } else {
        AzureOptions::default()
    };
    o.google_storage = if cfg.storage.gcs.is_some() {
        gcs
    } else {
        GcsOptions::default()
    };
    o.metrics_addr = Some(cfg.metrics_addr.map_or("off".into(), |a| a.to_string()));
    Ok(AgentConfig {
        effective: o,
        ..cfg
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consul::Secret;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    /// `resolve_agent` with these Consul and snapshot flags only.
    fn resolve(
        files: &FileArgs,
        consul: &ConsulArgs,
        snapshot: &SnapshotOptions,
        once: bool,
        env: Env<'_>,
    ) -> anyhow::Result<AgentConfig> {
        let flags = AgentOptions {
            consul: consul.clone(),
            snapshot: snapshot.clone(),
            ..AgentOptions::default()
        };
        resolve_agent(files, &flags, once, env)
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
            &SnapshotOptions::default(),
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
        let flags = SnapshotOptions {
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
        let c = resolve(
            &files,
            &consul_flags,
            &SnapshotOptions::default(),
            true,
            &env,
        )
        .expect("resolve");
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
            &SnapshotOptions::default(),
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
                r#"{"snapshot_agent": {"aws_storage": {"s3_bucket": "b", "sts_endpoint": "http://sts"}}}"#,
                "needs role_arn",
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
                &SnapshotOptions::default(),
                false,
                &none,
            )
            .expect_err(want);
            assert!(format!("{e:#}").contains(want), "{e:#}");
        }
    }

    #[test]
    fn print_config_loads_back_to_the_same_configuration() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = write(
            dir.path(),
            "a.toml",
            r#"[snapshot_agent]
token = "t0k"
[snapshot_agent.snapshot]
cron = "0 3 * * 1-5"
cron_zone = "Europe/Paris"
keep_daily = 7
keep_within = "36h"
stale = true
[snapshot_agent.aws_storage]
s3_bucket = "b"
s3_endpoint = "http://127.0.0.1:3900"
s3_part_size = 5767168
access_key_id = "AKID"
secret_access_key = "s3cr3t"
[snapshot_agent.notify]
webhooks = ["https://hooks.example/T0K3N"]
[snapshot_agent.azure_blob_storage]
account_name = "acct"
account_key = "AZK3Y"
container_name = "backups"
block_size = "4MiB"
"#,
        );
        let none = env_of(&[]);
        let files = |f: PathBuf| FileArgs {
            config_file: vec![f],
            config_dir: vec![],
        };
        let print = |f: PathBuf| {
            let c = resolve(
                &files(f),
                &ConsulArgs::default(),
                &SnapshotOptions::default(),
                false,
                &none,
            )
            .expect("resolve");
            print::effective(&c).expect("print")
        };
        let first = print(f);
        let text = first.to_string();
        for secret in ["t0k\"", "s3cr3t", "T0K3N", "AZK3Y"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let a = &first["snapshot_agent"];
        assert_eq!(a["aws_storage"]["s3_part_size"], "5632KiB");
        assert_eq!(a["snapshot"]["keep_within"], "36h");
        assert_eq!(a["azure_blob_storage"]["block_size"], "4MiB");
        assert_eq!(a["azure_blob_storage"]["environment"], "AZUREPUBLICCLOUD");
        assert_eq!(a["snapshot"]["cron_zone"], "Europe/Paris");
        assert!(a["snapshot"].get("interval").is_none(), "{a}");
        // Given back as it is, the redacted secrets are refused, each named.
        let again = write(dir.path(), "printed.json", &text);
        let refused = resolve(
            &files(again),
            &ConsulArgs::default(),
            &SnapshotOptions::default(),
            false,
            &none,
        )
        .expect_err("redacted values refused")
        .to_string();
        for key in [
            "snapshot_agent.token",
            "snapshot_agent.aws_storage.secret_access_key",
            "snapshot_agent.azure_blob_storage.account_key",
        ] {
            assert!(
                refused.contains(&format!("key {key}: this is a redacted secret")),
                "{key}: {refused}"
            );
        }
        // With the real values put back, it loads to the same configuration.
        let text = text
            .replacen("\"<redacted>\"", "\"s3cr3t\"", 1)
            .replacen("\"<redacted>\"", "\"AZK3Y\"", 1)
            .replacen("\"<redacted>\"", "\"t0k\"", 1);
        let again = write(dir.path(), "restored.json", &text);
        assert_eq!(print(again), first);
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
            &SnapshotOptions::default(),
            false,
            &none,
        )
        .expect("ok");
        assert_eq!(c.schedule, None);
    }
}
