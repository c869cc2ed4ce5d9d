//! Configuration, resolved once: defaults < files (Consul Enterprise's `snapshot_agent` JSON or
//! TOML, [`mod@file`]) < environment (`CONSUL_*`, `AWS_*`) < flags. Each section is one typed
//! struct ([`options`]) that all four layers fill and `--print-config` writes back; the
//! resolver here turns the merged layers into what the agent runs with. Nothing downstream
//! reads the environment or the files again.

pub mod file;
pub mod options;
pub mod print;
pub mod storage;
pub mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use conflate::Merge;

/// Sizes parse and print in the leaf module [`crate::units`]; re-exported where they are read.
pub use crate::units::{format_size, parse_size};
pub use options::{
    parse_listen, AgentOptions, DatacenterArg, FileArgs, FileConfig, LogOptions, NotifyOptions,
    RetryArgs, SnapshotOptions,
};
pub use storage::{AzureOptions, GcsOptions, LocalOptions, S3Options, StorageArgs, StorageConfig};
pub use values::Webhook;

use crate::consul::{ConsulArgs, ConsulConfig};
use crate::retention::RetentionPolicy;
use crate::schedule::Schedule;

/// Reads an environment variable (injected for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

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

pub fn resolve_agent(
    files: &FileArgs,
    flags: &AgentOptions,
    once: bool,
    env: Env<'_>,
) -> anyhow::Result<AgentConfig> {
    let file = load_files(files)?;
    let (tree, mut consul) = merge_agent(&file, flags, once, env)?;
    consul.login = login_config(&tree.login)?;
    let s = &tree.snapshot;
    let (encryption, identities) = encryption_keys(&tree.encryption)?;
    Ok(AgentConfig {
        consul,
        storage: storage_of(&tree).resolve()?,
        retention: s.retention.clone(),
        schedule: s.schedule()?,
        jitter: merged(&s.jitter, "snapshot.jitter")?,
        stale: merged(&s.stale, "snapshot.stale")?,
        ha: s.ha()?,
        metrics_addr: parse_listen(&merged(&tree.metrics_addr, "metrics_addr")?)
            .map_err(|e| anyhow!(e))?,
        verify_readback: merged(&s.verify_readback, "snapshot.verify_readback")?,
        log_level: tree.log.level.clone(),
        log_json: merged(&tree.log.json, "log.json")?,
        webhooks: tree
            .notify
            .webhooks
            .iter()
            .flatten()
            .map(|w| w.0.clone())
            .collect(),
        webhook_timeout: merged(&tree.notify.timeout, "notify.timeout")?,
        encryption,
        identities,
        guard: guard_config(&tree.shrink_guard),
        drill: drill_config(&tree.drill)?,
        effective: tree,
    })
}

/// The agent's configuration tree as it takes effect: flags > environment > files > defaults,
/// section by section, with the rules that decide a value from others applied (a schedule
/// given replaces one of the other kind, `--once`, retention's default, where backups go:
/// [`storage::merge_storage`]). `--print-config` prints this tree as it is. The one section
/// not merged as options is Consul's: its environment variables (`CONSUL_HTTP_SSL`,
/// `CONSUL_HTTP_AUTH`, token files) have no file key, so the connection is resolved first and
/// the section written as it connects (address with its scheme, token read).
fn merge_agent(
    file: &FileConfig,
    flags: &AgentOptions,
    once: bool,
    env: Env<'_>,
) -> anyhow::Result<(AgentOptions, ConsulConfig)> {
    let from_file = file_layer(file);
    let consul = flags
        .consul
        .resolve_layered(env, &from_file.consul)
        .context("Consul connection")?;
    let storage = storage::merge_storage(&storage_of(flags), storage_of(&from_file), env);
    let mut tree = merge_layers(
        merge_layers(flags.clone(), from_file),
        AgentOptions::defaults(),
    );
    tree.consul = ConsulArgs::effective(&consul);
    tree.snapshot.settle_schedule(once);
    tree.snapshot.retention = std::mem::take(&mut tree.snapshot.retention).or_default();
    tree.local_storage = storage.local;
    tree.aws_storage = storage.s3;
    tree.azure_blob_storage = storage.azure;
    tree.google_storage = storage.gcs;
    Ok((tree, consul))
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
    storage::merge_storage(flags, storage_of(&file_layer(file)), env).resolve()
}

/// The storage sections of a layer.
fn storage_of(o: &AgentOptions) -> StorageArgs {
    StorageArgs {
        local: o.local_storage.clone(),
        s3: o.aws_storage.clone(),
        azure: o.azure_blob_storage.clone(),
        gcs: o.google_storage.clone(),
    }
}

/// A value the merged tree must hold: the defaults layer ([`AgentOptions::defaults`]) sets
/// it, so its absence is a missing default, said as such rather than a panic.
fn merged<T: Clone>(v: &Option<T>, key: &str) -> anyhow::Result<T> {
    v.clone()
        .ok_or_else(|| anyhow!("snapshot_agent.{key} has no value: its default is missing"))
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

    /// Every flag whose help says "Default X" says the value `AgentOptions::defaults()` holds
    /// (the one place defaults are written; the help text is the operators' copy of it).
    #[test]
    fn the_defaults_the_help_states_are_the_defaults() {
        use clap::Args as _;
        let tree = serde_json::to_value(AgentOptions::defaults()).expect("serialize");
        // Every key of the defaults tree, by name, wherever it stands (ambiguous names skipped).
        let mut values: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
        fn walk(v: &serde_json::Value, out: &mut HashMap<String, Vec<serde_json::Value>>) {
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    if v.is_object() {
                        walk(v, out);
                    } else if !v.is_null() {
                        out.entry(k.clone()).or_default().push(v.clone());
                    }
                }
            }
        }
        walk(&tree, &mut values);
        let cmd = AgentOptions::augment_args(clap::Command::new("agent"));
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some(stated) = help.split("Default ").nth(1) else {
                continue;
            };
            let stated = stated
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .next()
                .unwrap_or_default()
                .trim_end_matches(['.', ')', ':'])
                .trim_matches('"');
            let id = arg.get_id().as_str();
            let key = id
                .rsplit_once('_')
                .filter(|(p, _)| ["gcs", "azure"].contains(p));
            let key = key.map_or(id, |(_, k)| k);
            let Some([v]) = values.get(key).map(Vec::as_slice) else {
                continue;
            };
            let held = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                stated,
                held,
                "--{}: its help says Default {stated}",
                arg.get_long().unwrap_or(id)
            );
            checked += 1;
        }
        assert!(
            checked >= 10,
            "only {checked} stated defaults were compared"
        );
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
