//! The configuration's sections, one typed struct each. The same struct is filled by clap from
//! flags (and a few environment variables), read by serde from a file's section, layered by
//! [`conflate::Merge`] (the left side wins: flags over environment over files over
//! [`AgentOptions::defaults`]), and written back by serde for `--print-config`, secrets
//! redacted by their type ([`Secret`], [`Webhook`]).
//!
//! Field names are the file keys of Consul Enterprise's `snapshot_agent` schema (spec
//! consul-http-api.md §8.2) plus a few of our own (the README's configuration reference marks
//! them); flag names are those of Enterprise's `consul snapshot agent` (`-local-path`,
//! `-aws-s3-bucket`, `-interval`...) with `--`. Every field is optional here: a struct is one
//! layer, not yet the answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use conflate::Merge;
use serde::{Deserialize, Serialize};

use super::merged;
use super::storage::{AzureOptions, GcsOptions, LocalOptions, S3Options};
use super::values::Webhook;
use crate::consul::{ConsulArgs, Secret};
use crate::retention::RetentionPolicy;
use crate::units::duration::parse_go_duration_arg;
use crate::units::duration::serde_option as go_duration;

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

/// A whole configuration file: `{"snapshot_agent": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub snapshot_agent: Option<AgentOptions>,
}

/// `snapshot_agent`: the Consul connection at the top, then one section per concern.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
pub struct AgentOptions {
    /// `http_addr`, `token`, `datacenter`, `ca_file`, `ca_path`, `cert_file`, `key_file`,
    /// `tls_server_name`.
    #[command(flatten)]
    #[serde(flatten)]
    #[merge(strategy = conflate::Merge::merge)]
    pub consul: ConsulArgs,
    /// Enterprise licensing; not needed here, accepted and ignored.
    #[arg(skip)]
    pub license_path: Option<String>,
    /// Enterprise's auth-method login (`login`): the agent gets its ACL token from
    /// `POST /v1/acl/login` instead of a configured one.
    #[command(flatten)]
    #[serde(default, skip_serializing_if = "Login::is_empty")]
    #[merge(strategy = conflate::Merge::merge)]
    pub login: Login,
    /// `log`; the command line sets these with `--log-level` and `--log-json`.
    #[arg(skip)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub log: LogOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub snapshot: SnapshotOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub local_storage: LocalOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub aws_storage: S3Options,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub azure_blob_storage: AzureOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub google_storage: GcsOptions,
    /// Address of the /metrics and /health listener; "off" disables it. Default
    /// 127.0.0.1:9464.
    #[arg(long = "metrics-addr", value_name = "ADDR", help_heading = "Agent")]
    pub metrics_addr: Option<String>,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub notify: NotifyOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub encryption: EncryptionOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub shrink_guard: ShrinkGuardOptions,
    #[command(flatten)]
    #[serde(default)]
    #[merge(strategy = conflate::Merge::merge)]
    pub drill: DrillOptions,
}

impl AgentOptions {
    /// Every default, as the lowest layer: the one place a default value is written (the
    /// resolvers take every value from the merged tree; `--print-config` prints it).
    /// Retention's default (`retain 30` when no rule is set) and local storage's (`.` when
    /// no bucket is set) depend on other settings and are applied by the merge.
    pub fn defaults() -> Self {
        AgentOptions {
            consul: ConsulArgs {
                http_addr: Some("127.0.0.1:8500".into()),
                ..ConsulArgs::default()
            },
            log: LogOptions {
                level: Some("INFO".into()),
                json: Some(false),
                ..LogOptions::default()
            },
            snapshot: SnapshotOptions {
                interval: Some(Duration::from_secs(3600)),
                jitter: Some(Duration::ZERO),
                stale: Some(false),
                service: Some("consul-snapshot".into()),
                deregister_after: Some(Duration::from_secs(72 * 3600)),
                lock_key: Some("consul-snapshot/lock".into()),
                max_failures: Some(3),
                session_ttl: Some(Duration::from_secs(15)),
                session_ttl_min: Some(Duration::from_secs(10)),
                lock_delay: Some(Duration::ZERO),
                verify_readback: Some(false),
                ..SnapshotOptions::default()
            },
            aws_storage: S3Options::defaults(),
            azure_blob_storage: AzureOptions::defaults(),
            google_storage: GcsOptions::defaults(),
            metrics_addr: Some("127.0.0.1:9464".into()),
            notify: NotifyOptions {
                webhooks: None,
                timeout: Some(Duration::from_secs(10)),
            },
            shrink_guard: ShrinkGuardOptions {
                thresholds: Some(
                    crate::guard::Measure::ALL
                        .map(|measure| crate::guard::Threshold {
                            measure,
                            percent: measure.default_threshold(),
                        })
                        .to_vec(),
                ),
                anomaly_hold: Some(crate::guard::DEFAULT_HOLD),
            },
            ..AgentOptions::default()
        }
    }
}

/// `snapshot_agent.login`: Consul Enterprise's auth-method login, as its snapshot agent reads
/// it. The agent calls `POST /v1/acl/login` with the bearer token, uses the ACL token it gets,
/// logs in again when Consul says that token is gone, and calls `POST /v1/acl/logout` on exit.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Auth-method login")]
pub struct Login {
    /// Log in with this ACL auth method (a `jwt` or `kubernetes` method) instead of using a
    /// configured token. Set the method's MaxTokenTTL: an agent killed with SIGKILL, or a
    /// cron run that dies, cannot log out.
    #[arg(long = "login-auth-method", value_name = "NAME")]
    pub auth_method: Option<String>,
    /// The bearer token to log in with (a JWT, a Kubernetes service-account token). Prefer
    /// --login-bearer-token-file: a command line is visible to other users.
    #[arg(
        long = "login-bearer-token",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub bearer_token: Option<Secret>,
    /// File holding the bearer token; read again at every login (a projected service-account
    /// token is rotated).
    #[arg(long = "login-bearer-token-file", value_name = "PATH")]
    pub bearer_token_file: Option<String>,
    /// Metadata attached to the login token (file only).
    #[arg(skip)]
    pub meta: Option<BTreeMap<String, String>>,
}

impl Login {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Login::default()
    }
}

/// `snapshot_agent.log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
pub struct LogOptions {
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: Option<String>,
    /// Enterprise's syslog output; accepted, logs go to stderr.
    pub enable_syslog: Option<bool>,
    pub syslog_facility: Option<String>,
    /// Ours: JSON log lines.
    pub json: Option<bool>,
}

/// `snapshot_agent.snapshot`: when to take snapshots, leader election and registration, and
/// (flattened, same section) the retention policy.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Agent")]
pub struct SnapshotOptions {
    /// Time between snapshots, e.g. 1h, 30m. 0 takes one snapshot and exits. Default 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration_arg, conflicts_with = "cron")]
    #[serde(default, with = "go_duration")]
    pub interval: Option<Duration>,
    /// Cron expression instead of --interval: 5 fields (crontab) or 6-7 with seconds first.
    ///
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// IANA time zone for --cron (default UTC).
    #[arg(long = "cron-zone", value_name = "ZONE")]
    pub cron_zone: Option<String>,
    /// Random delay of up to this long added to each run (spreads load across clusters).
    ///
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub jitter: Option<Duration>,
    /// Let any server answer, not only the leader.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub stale: Option<bool>,
    /// Service name registered in Consul. Default consul-snapshot.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Deregister the service after its checks were critical this long. Default 72h.
    #[arg(long = "deregister-after", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub deregister_after: Option<Duration>,
    /// KV key of the leader lock. Default consul-snapshot/lock.
    #[arg(long = "lock-key", value_name = "KEY")]
    pub lock_key: Option<String>,
    /// Consecutive failed snapshots after which the leader gives up the lock. Default 3.
    #[arg(long = "max-failures", value_name = "N")]
    pub max_failures: Option<u32>,
    /// Enterprise's scratch space; snapshots stream here, so it is accepted and unused.
    #[arg(skip)]
    pub local_scratch_path: Option<String>,
    /// TTL of the leader-election session (renewed every TTL/2). Default 15s.
    #[arg(long = "session-ttl", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub session_ttl: Option<Duration>,
    /// The smallest session TTL the Consul servers accept: their `session_ttl_min` setting.
    /// Default 10s (Consul's default); lower it only if the servers' is lower. A
    /// --session-ttl below it, or above Consul's 24h maximum, is refused at start.
    #[arg(long = "session-ttl-min", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub session_ttl_min: Option<Duration>,
    /// Lock-delay of that session. Default 0s: the leader stops working once it has not renewed
    /// for a full TTL, before Consul can expire the session (2 × TTL).
    #[arg(long = "lock-delay", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub lock_delay: Option<Duration>,
    /// Stream each stored backup back through the verifier.
    #[arg(long = "verify-readback", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub verify_readback: Option<bool>,
    #[command(flatten)]
    #[serde(flatten)]
    #[merge(strategy = conflate::Merge::merge)]
    pub retention: RetentionPolicy,
}

impl SnapshotOptions {
    /// Merges `lower` under `self`, except that a schedule given here (an interval or a cron
    /// expression) replaces the lower layer's schedule of either kind: `--interval 5m` beats a
    /// file's `cron`.
    pub fn merge_schedule(&mut self, mut lower: SnapshotOptions) {
        if self.interval.is_some() || self.cron.is_some() {
            lower.interval = None;
            lower.cron = None;
        }
        self.merge(lower);
    }

    /// Applies the schedule's rules to this merged section, so that it reads as it takes
    /// effect: `once` (`--once`) is interval 0; a cron expression leaves no interval, its
    /// zone UTC unless set.
    pub fn settle_schedule(&mut self, once: bool) {
        if once {
            self.interval = Some(Duration::ZERO);
            self.cron = None;
        }
        if self.cron.is_some() {
            self.interval = None;
            self.cron_zone.get_or_insert_with(|| "UTC".into());
        }
    }

    /// When to take snapshots: `None` for one snapshot, then exit (interval 0).
    ///
    /// # Errors
    /// A cron expression or zone that does not parse.
    pub fn schedule(&self) -> anyhow::Result<Option<crate::schedule::Schedule>> {
        use crate::schedule::Schedule;
        Ok(match (&self.cron, self.interval) {
            (Some(expr), _) => Some(Schedule::cron(expr, self.cron_zone.as_deref())?),
            (None, interval) => interval.filter(|i| !i.is_zero()).map(Schedule::Interval),
        })
    }

    /// Leader election and registration, from this merged section.
    ///
    /// # Errors
    /// A missing default, or a session TTL Consul would refuse (below the servers'
    /// `session_ttl_min`, above 24h, or 0).
    pub fn ha(&self) -> anyhow::Result<super::HaConfig> {
        let ha = super::HaConfig {
            service: merged(&self.service, "snapshot.service")?,
            deregister_after: merged(&self.deregister_after, "snapshot.deregister_after")?,
            lock_key: merged(&self.lock_key, "snapshot.lock_key")?,
            max_failures: merged(&self.max_failures, "snapshot.max_failures")?.max(1),
            session_ttl: merged(&self.session_ttl, "snapshot.session_ttl")?,
            lock_delay: merged(&self.lock_delay, "snapshot.lock_delay")?,
        };
        check_session_ttl(
            ha.session_ttl,
            merged(&self.session_ttl_min, "snapshot.session_ttl_min")?,
        )?;
        Ok(ha)
    }
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
    Err(anyhow::anyhow!(
        "session_ttl (--session-ttl) is {}; Consul accepts a session TTL from {} (its session_ttl_min; --session-ttl-min if your servers set it lower) to 24h, and 0 would mean a session that never expires",
        humantime::format_duration(ttl),
        humantime::format_duration(min)
    ))
}

/// `snapshot_agent.notify` (ours): webhook notifications.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Agent")]
pub struct NotifyOptions {
    /// POST a JSON notification to this URL on cycle start, success and failure; repeatable.
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Option<Vec<Webhook>>,
    /// Longest time spent delivering one notification to one URL, retries included.
    /// Default 10s.
    #[arg(long = "webhook-timeout", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub timeout: Option<Duration>,
}

/// `snapshot_agent.encryption` (ours): client-side encryption with age. With a recipient set,
/// every backup is encrypted before it reaches any destination and named `...snap.age`.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Encryption")]
pub struct EncryptionOptions {
    /// Encrypt backups to this age recipient (`age1...`, from `age-keygen -y`) or SSH public
    /// key (`ssh-ed25519 ...`, `ssh-rsa ...`); repeatable: any one of them can decrypt.
    #[arg(long = "encrypt-age-recipient", value_name = "RECIPIENT")]
    pub age_recipients: Option<Vec<String>>,
    /// A file of recipients, one per line (`#` comments), as `age -R` reads; repeatable.
    #[arg(long = "encrypt-age-recipients-file", value_name = "FILE")]
    pub age_recipients_files: Option<Vec<PathBuf>>,
    /// An identity (age identity file or unencrypted OpenSSH private key) used only by
    /// `--verify-readback` to decrypt and verify what was stored; without one, the read-back
    /// of an encrypted backup checks the stored ciphertext's SHA-256. Repeatable.
    #[arg(
        long = "age-identity",
        value_name = "FILE",
        env = "CONSUL_SNAPSHOT_AGE_IDENTITY"
    )]
    pub age_identities: Option<Vec<PathBuf>>,
}

/// `snapshot_agent.shrink_guard` (ours): a new snapshot markedly smaller than the last backup
/// is stored but marked as an anomaly, and retention holds the backups from before the drop.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Shrink guard")]
pub struct ShrinkGuardOptions {
    /// MEASURE=PERCENT: a snapshot whose MEASURE dropped by more than PERCENT since the last
    /// backup is an anomaly; 0 switches the measure off. Repeatable. Measures: kv_entries,
    /// nodes, services, acl_tokens, acl_policies, sessions, config_entries, prepared_queries,
    /// state_bytes. Defaults: kv_entries, services, acl_tokens and state_bytes at 50, the
    /// others off. In a file: "thresholds": {"kv_entries": 50, ...}.
    #[arg(long = "shrink-threshold", value_name = "MEASURE=PERCENT")]
    #[serde(
        default,
        with = "threshold_map",
        skip_serializing_if = "Option::is_none"
    )]
    #[merge(strategy = merge_thresholds)]
    pub thresholds: Option<Vec<crate::guard::Threshold>>,
    /// How long an unacknowledged anomaly holds the backups from before it, e.g. 30d, 72h
    /// (default 30d); `prune --acknowledge-anomaly KEY` ends a hold sooner.
    #[arg(long = "anomaly-hold", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    #[merge(strategy = conflate::option::overwrite_none)]
    pub anomaly_hold: Option<Duration>,
}

/// `snapshot_agent.drill` (ours): the leader restores its newest backup into a scratch Consul
/// on a schedule and compares what comes back (the `drill` command, unattended).
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Serialize, Deserialize, Merge)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Restore drills")]
pub struct DrillOptions {
    /// Run a restore drill of the newest backup this often (e.g. 24h), after a snapshot
    /// cycle; 0 or unset: never. Needs --drill-target-http-addr.
    #[arg(id = "drill_interval", long = "drill-interval", value_name = "DURATION", value_parser = parse_go_duration_arg)]
    #[serde(default, with = "go_duration")]
    pub interval: Option<Duration>,
    /// The scratch Consul drills restore into (its state is replaced); never the cluster
    /// backed up.
    #[arg(
        id = "drill_target_http_addr",
        long = "drill-target-http-addr",
        value_name = "ADDR"
    )]
    pub target_http_addr: Option<String>,
    /// ACL token for the scratch cluster.
    #[arg(
        id = "drill_target_token",
        long = "drill-target-token",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub target_token: Option<Secret>,
    /// File holding the scratch cluster's token.
    #[arg(
        id = "drill_target_token_file",
        long = "drill-target-token-file",
        value_name = "PATH"
    )]
    pub target_token_file: Option<PathBuf>,
    /// CA certificate for the scratch cluster's TLS.
    #[arg(
        id = "drill_target_ca_file",
        long = "drill-target-ca-file",
        value_name = "PATH"
    )]
    pub target_ca_file: Option<PathBuf>,
}

/// Thresholds from flags (`left`) over files (`right`), measure by measure: `right`'s first,
/// so that `left`'s, applied later, win.
fn merge_thresholds(
    left: &mut Option<Vec<crate::guard::Threshold>>,
    right: Option<Vec<crate::guard::Threshold>>,
) {
    if let Some(mut r) = right {
        r.extend(left.take().unwrap_or_default());
        *left = Some(r);
    }
}

/// `thresholds` in a file: a map of measure name to percent.
mod threshold_map {
    use std::collections::BTreeMap;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::guard::{Measure, Threshold};

    pub fn serialize<S: Serializer>(v: &Option<Vec<Threshold>>, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, u32> = v
            .iter()
            .flatten()
            .map(|t| (t.measure.name(), t.percent))
            .collect();
        s.collect_map(map)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Threshold>>, D::Error> {
        let map = BTreeMap::<Measure, u32>::deserialize(d)?;
        map.into_iter()
            .map(|(measure, percent)| {
                if percent > 100 {
                    return Err(D::Error::custom(format!(
                        "thresholds.{measure}: {percent} is not a percentage from 0 (off) to 100"
                    )));
                }
                Ok(Threshold { measure, percent })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Retries of the snapshot request while no byte has arrived.
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// Retries of the snapshot request while no byte has arrived (connection errors, 5xx).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// First delay between retries; doubled each time.
    #[arg(long = "retry-delay", default_value = "1s", value_parser = parse_go_duration_arg, value_name = "DURATION")]
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

/// A resolved listener address, or none (`""`, `off`, `none`).
///
/// # Errors
/// Not a `host:port` socket address.
pub fn parse_listen(s: &str) -> Result<Option<std::net::SocketAddr>, String> {
    match s {
        "" | "off" | "none" => Ok(None),
        a => a
            .parse()
            .map(Some)
            .map_err(|e| format!("invalid listen address {a:?}: {e}")),
    }
}
