//! `agent --print-config`: the effective configuration in the file schema (so it can be saved
//! and reused as a config file), with every secret replaced by `<redacted>`.

use serde_json::{json, Value};

use super::AgentConfig;
use crate::consul::config::Address;
use crate::consul::duration::format_go_duration;
use crate::storage::s3::{ChecksumMode, Encryption};

const REDACTED: &str = "<redacted>";

/// The effective configuration as JSON; secrets redacted, unset ones empty.
pub fn effective(c: &AgentConfig) -> Value {
    let secret = |set: bool| if set { REDACTED } else { "" };
    let addr = match &c.consul.address {
        Address::Http(u) => u.as_str().trim_end_matches('/').to_string(),
        Address::Unix(p) => format!("unix://{}", p.display()),
    };
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let (interval, cron, zone) = match &c.schedule {
        None => ("0".to_string(), String::new(), String::new()),
        Some(crate::schedule::Schedule::Interval(i)) => {
            (format_go_duration(*i), String::new(), String::new())
        }
        Some(
            crate::schedule::Schedule::Cron { expr, zone, .. }
            | crate::schedule::Schedule::Crontab { expr, zone, .. },
        ) => (String::new(), expr.clone(), zone.to_string()),
    };
    let r = &c.retention;
    let mut snapshot = json!({
        "interval": interval, "retain": r.retain, "stale": c.stale, "service": c.ha.service,
        "deregister_after": format_go_duration(c.ha.deregister_after), "lock_key": c.ha.lock_key,
        "max_failures": c.ha.max_failures, "session_ttl": format_go_duration(c.ha.session_ttl),
        "lock_delay": format_go_duration(c.ha.lock_delay), "jitter": format_go_duration(c.jitter),
        "verify_readback": c.verify_readback,
    });
    if let Some(map) = snapshot.as_object_mut() {
        if !cron.is_empty() {
            map.insert("cron".into(), json!(cron));
            map.insert("cron_zone".into(), json!(zone));
        }
        for (k, v) in [
            ("keep_last", r.keep_last),
            ("keep_hourly", r.keep_hourly),
            ("keep_daily", r.keep_daily),
            ("keep_weekly", r.keep_weekly),
            ("keep_monthly", r.keep_monthly),
            ("keep_yearly", r.keep_yearly),
        ] {
            if let Some(v) = v {
                map.insert(k.into(), json!(v));
            }
        }
        if let Some(w) = r.keep_within {
            map.insert("keep_within".into(), json!(format_go_duration(w)));
        }
    }
    let aws = match &c.storage.s3 {
        None => json!({}),
        Some(s) => json!({
            "s3_bucket": s.bucket, "s3_key_prefix": s.prefix, "s3_region": s.region.clone().unwrap_or_default(),
            "s3_endpoint": s.endpoint.clone().unwrap_or_default(), "s3_force_path_style": s.path_style(),
            "s3_server_side_encryption": s.encryption == Encryption::S3,
            "s3_enable_kms": matches!(s.encryption, Encryption::Kms(_)),
            "s3_kms_key": match &s.encryption { Encryption::Kms(Some(k)) => k.clone(), _ => String::new() },
            "s3_storage_class": s.storage_class.clone().unwrap_or_default(),
            "s3_checksum": match s.checksum_mode() { ChecksumMode::WhenRequired => "when_required", ChecksumMode::WhenSupported => "when_supported" },
            "s3_part_size": crate::config::format_size(s.part_size), "s3_concurrency": s.concurrency,
            "s3_request_timeout": format_go_duration(s.request_timeout),
            "access_key_id": s.access_key_id.clone().unwrap_or_default(),
            "secret_access_key": secret(s.secret_access_key.is_some()),
            "session_token": secret(s.session_token.is_some()),
        }),
    };
    json!({"snapshot_agent": {
        "http_addr": addr,
        "token": secret(c.consul.token.is_some()),
        "datacenter": c.consul.datacenter.clone().unwrap_or_default(),
        "ca_file": path(&c.consul.ca_file), "ca_path": path(&c.consul.ca_path),
        "cert_file": path(&c.consul.client_cert), "key_file": path(&c.consul.client_key),
        "tls_server_name": c.consul.tls_server_name.clone().unwrap_or_default(),
        "log": {"level": c.log_level.clone().unwrap_or_else(|| "INFO".into()), "json": c.log_json},
        "snapshot": snapshot,
        "local_storage": {"path": path(&c.storage.local)},
        "aws_storage": aws,
        "metrics_addr": c.metrics_addr.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        // Webhook URLs often carry credentials: only their hosts are shown.
        "notify": {"webhooks": c.webhooks.iter().map(|u| format!("{}://{}/<redacted>", u.scheme(), u.host_str().unwrap_or(""))).collect::<Vec<_>>(),
                   "timeout": format_go_duration(c.webhook_timeout)},
    }})
}
