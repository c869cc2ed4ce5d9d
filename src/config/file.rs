//! The configuration file: Consul Enterprise's `snapshot_agent` JSON schema (spec
//! consul-http-api.md §8.2), so an existing Enterprise config loads unchanged, plus a few keys
//! of our own (marked "ours"). TOML files with the same keys are accepted too. Unknown keys are
//! errors that name their path (`snapshot_agent.snapshot.intervall`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole file: `{"snapshot_agent": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub snapshot_agent: Option<AgentSection>,
}

/// `snapshot_agent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    pub http_addr: Option<String>,
    pub token: Option<String>,
    pub datacenter: Option<String>,
    pub ca_file: Option<String>,
    pub ca_path: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Enterprise licensing; not needed here, accepted and ignored.
    pub license_path: Option<String>,
    pub tls_server_name: Option<String>,
    pub login: Option<Login>,
    pub log: Option<Log>,
    pub snapshot: Option<SnapshotSection>,
    pub local_storage: Option<LocalStorage>,
    pub aws_storage: Option<AwsStorage>,
    pub azure_blob_storage: Option<BTreeMap<String, Value>>,
    pub google_storage: Option<BTreeMap<String, Value>>,
    /// Ours: address of the /metrics and /health listener.
    pub metrics_addr: Option<String>,
    /// Ours: webhook notifications.
    pub notify: Option<Notify>,
}

/// `snapshot_agent.notify` (ours).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// URLs that receive a JSON POST on cycle start, success and failure.
    pub webhooks: Option<Vec<String>>,
    /// Bound on each delivery, retries included (Go duration). Default 10s.
    pub timeout: Option<String>,
}

/// `snapshot_agent.login` (Enterprise auth-method login; not supported, must stay empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub auth_method: Option<String>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub meta: Option<BTreeMap<String, String>>,
}

/// `snapshot_agent.log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub level: Option<String>,
    pub enable_syslog: Option<bool>,
    pub syslog_facility: Option<String>,
    /// Ours: JSON log lines.
    pub json: Option<bool>,
}

/// `snapshot_agent.snapshot`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// Go duration; `"0"` = one snapshot, then exit.
    pub interval: Option<String>,
    pub retain: Option<u32>,
    pub stale: Option<bool>,
    pub service: Option<String>,
    pub deregister_after: Option<String>,
    pub lock_key: Option<String>,
    pub max_failures: Option<u32>,
    /// Enterprise's scratch space; snapshots stream here, so it is accepted and unused.
    pub local_scratch_path: Option<String>,
    /// Ours: cron expression instead of `interval`.
    pub cron: Option<String>,
    /// Ours: IANA zone for `cron` (default UTC).
    pub cron_zone: Option<String>,
    /// Ours: random delay added to each run, at most this long.
    pub jitter: Option<String>,
    /// Ours: restic-style retention rules.
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<String>,
    /// Ours: TTL of the leader-election session.
    pub session_ttl: Option<String>,
    /// Ours: lock-delay of that session.
    pub lock_delay: Option<String>,
    /// Ours: stream each stored backup back through the verifier.
    pub verify_readback: Option<bool>,
}

/// `snapshot_agent.local_storage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalStorage {
    pub path: Option<String>,
}

/// `snapshot_agent.aws_storage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsStorage {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub iam_endpoint: Option<String>,
    pub role_arn: Option<String>,
    pub role_session_name: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub sts_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_key_prefix: Option<String>,
    pub s3_server_side_encryption: Option<bool>,
    pub s3_static_snapshot_name: Option<String>,
    pub s3_force_path_style: Option<bool>,
    pub s3_endpoint: Option<String>,
    pub s3_enable_kms: Option<bool>,
    pub s3_kms_key: Option<String>,
    /// Ours.
    pub s3_storage_class: Option<String>,
    /// Ours: `when_required` or `when_supported`.
    pub s3_checksum: Option<String>,
    /// Ours: e.g. `"16MiB"`.
    pub s3_part_size: Option<String>,
    /// Ours.
    pub s3_concurrency: Option<usize>,
    /// Ours: bound on each S3 request (Go duration).
    pub s3_request_timeout: Option<String>,
}

/// Errors loading files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{path}: unknown or invalid key at {key}: {reason}")]
    Key {
        path: String,
        key: String,
        reason: String,
    },
    #[error("no configuration file has a snapshot_agent object")]
    NoAgentSection,
}

/// Reads `files` then the `.json`/`.toml` files of each of `dirs` (sorted by name), merging
/// objects key by key, later files winning. Files without `snapshot_agent` are ignored, as
/// Enterprise does; if any file was given, at least one must have it.
pub fn load(files: &[PathBuf], dirs: &[PathBuf]) -> Result<FileConfig, FileError> {
    let mut paths: Vec<PathBuf> = files.to_vec();
    for dir in dirs {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| FileError::Read {
                path: dir.clone(),
                reason: e.to_string(),
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("json") | Some("toml")
                )
            })
            .collect();
        entries.sort();
        paths.extend(entries);
    }
    if paths.is_empty() {
        return Ok(FileConfig::default());
    }
    let mut merged = Value::Object(Default::default());
    let mut any = false;
    for path in &paths {
        let v = read_value(path)?;
        if v.get("snapshot_agent").is_none() {
            tracing::info!(path = %path.display(), "ignoring configuration file without a snapshot_agent object");
            continue;
        }
        any = true;
        // Check each file on its own first, so an unknown key names the file it is in.
        parse_value(v.clone(), &path.display().to_string())?;
        merge(&mut merged, v);
    }
    if !any {
        return Err(FileError::NoAgentSection);
    }
    parse_value(merged, "merged configuration")
}

fn read_value(path: &Path) -> Result<Value, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let parse_err = |reason: String| FileError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    if path.extension().and_then(|e| e.to_str()) == Some("toml") {
        let t: toml::Value = toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            parse_err(syntax_error(&text, at, e.message(), Syntax::Toml))
        })?;
        serde_json::to_value(t).map_err(|e| parse_err(e.to_string()))
    } else {
        serde_json::from_str(&text).map_err(|e| {
            let at = offset_of(&text, e.line(), e.column());
            // serde_json appends " at line L column C"; the position is said once, by us.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            parse_err(syntax_error(&text, at, &msg, Syntax::Json))
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Toml,
    Json,
}

/// Byte offset of a 1-based line and column.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// Keys whose values are secrets: their values never appear in an error message.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let last = k.rsplit('.').next().unwrap_or(&k);
    let last = last.split('[').next().unwrap_or(last);
    (last.contains("token") && !last.ends_with("_file"))
        || last.contains("secret")
        || last.contains("password")
        || last == "account_key"
        || last.contains("webhook")
        || last == "url"
        || last == "sas"
}

/// A parse error as `line L, column C, key K: message`, without the source line: the
/// parsers' own renderings quote it, and it may hold a secret. For a secret-bearing key, any
/// text of that line's value is also cut out of the message.
fn syntax_error(text: &str, at: usize, message: &str, syntax: Syntax) -> String {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let (key, value) = match syntax {
        Syntax::Toml => toml_key_at(text, line),
        Syntax::Json => json_key_before(before),
    };
    let mut msg = message.trim().to_string();
    if let (Some(k), Some(v)) = (&key, &value) {
        if is_secret_key(k) {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            for part in v.split_whitespace().filter(|p| p.len() >= 2) {
                msg = msg.replace(part, "[redacted]");
            }
        }
    }
    match key {
        Some(k) => format!("line {line}, column {column}, key {k}: {msg}"),
        None => format!("line {line}, column {column}: {msg}"),
    }
}

/// The dotted key assigned on 1-based `line` (or the nearest assignment above it) and the text
/// after its `=`.
fn toml_key_at(text: &str, line: usize) -> (Option<String>, Option<String>) {
    let lines: Vec<&str> = text.lines().take(line).collect();
    let mut key = None;
    let mut section = String::new();
    for (i, l) in lines.iter().enumerate().rev() {
        let t = l.trim();
        if key.is_none() {
            if let Some((k, v)) = t.split_once('=') {
                if !t.starts_with('[') && !t.starts_with('#') {
                    key = Some((k.trim().trim_matches('"').to_string(), v.to_string(), i));
                }
            }
        }
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            break;
        }
    }
    match key {
        Some((k, v, _)) if section.is_empty() => (Some(k), Some(v)),
        Some((k, v, _)) => (Some(format!("{section}.{k}")), Some(v)),
        None => ((!section.is_empty()).then_some(section), None),
    }
}

/// The last JSON object key (`"name":`) before the error and the text after it.
fn json_key_before(before: &str) -> (Option<String>, Option<String>) {
    let mut search = before;
    while let Some(colon) = search.rfind(':') {
        let head = search[..colon].trim_end();
        if let Some(h) = head.strip_suffix('"') {
            if let Some(open) = h.rfind('"') {
                let key = h[open + 1..].to_string();
                let value = before[colon + 1..].to_string();
                return (Some(key), Some(value));
            }
        }
        search = &search[..colon];
    }
    (None, None)
}

/// Decodes with the path of the first offending key in the error. The reason of a
/// secret-bearing key is not shown: serde quotes the offending value.
pub fn parse_value(v: Value, origin: &str) -> Result<FileConfig, FileError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let key = e.path().to_string();
        let reason = if is_secret_key(&key) {
            "invalid value (not shown: this key holds a secret)".to_string()
        } else {
            e.into_inner().to_string()
        };
        FileError::Key {
            path: origin.to_string(),
            key,
            reason,
        }
    })
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> String {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        load(&[p], &[]).expect_err("must fail").to_string()
    }

    #[test]
    fn parse_errors_name_position_and_key_but_never_a_secret() {
        let cases: [(&str, &str, &str, &str); 6] = [
            ("c.toml", "[snapshot_agent]\ntoken = \"abc-secret-1\n", "abc-secret-1", "key snapshot_agent.token"),
            ("c.toml", "[snapshot_agent.aws_storage]\nsecret_access_key = \"s3cr3t-value\nx = 1\n", "s3cr3t-value", "key snapshot_agent.aws_storage.secret_access_key"),
            ("c.toml", "[snapshot_agent]\ntoken = 'tok-abc' 'more'\n", "tok-abc", "line 2"),
            ("c.json", "{\"snapshot_agent\": {\"token\": \"json-secret-9\n}}", "json-secret-9", "key token"),
            ("c.json", "{\"snapshot_agent\": {\"token\": 12345678}}", "12345678", "snapshot_agent.token"),
            ("c.json", "{\"snapshot_agent\": {\"notify\": {\"webhooks\": [\"https://hooks.example/T0K3N\", 5]}}}", "T0K3N", "webhooks"),
        ];
        for (name, text, secret, want) in cases {
            let msg = load_text(name, text);
            assert!(!msg.contains(secret), "{name}: {msg}");
            assert!(msg.contains(want), "{name}: {msg} lacks {want}");
        }
        // A non-secret key keeps the parser's own words.
        let msg = load_text("c.toml", "[snapshot_agent]\nlock_key = \"x\ny = 1\n");
        assert!(msg.contains("line 2") && msg.contains("lock_key"), "{msg}");
    }

    /// The documented Consul Enterprise defaults (spec consul-http-api.md §8.2), verbatim.
    pub const ENTERPRISE_EXAMPLE: &str =
        include_str!("../../tests/data/enterprise-snapshot-agent.json");

    #[test]
    fn enterprise_example_parses() {
        let c = parse_value(serde_json::from_str(ENTERPRISE_EXAMPLE).expect("json"), "x")
            .expect("parse");
        let a = c.snapshot_agent.expect("section");
        assert_eq!(
            a.snapshot.as_ref().and_then(|s| s.interval.as_deref()),
            Some("1h")
        );
        assert_eq!(
            a.aws_storage
                .as_ref()
                .and_then(|s| s.s3_key_prefix.as_deref()),
            Some("consul-snapshot")
        );
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let v = serde_json::json!({"snapshot_agent": {"snapshot": {"intervall": "1h"}}});
        let e = parse_value(v, "a.json").expect_err("unknown");
        let msg = e.to_string();
        assert!(
            msg.contains("snapshot_agent.snapshot.intervall")
                || msg.contains("snapshot_agent.snapshot"),
            "{msg}"
        );
        assert!(msg.contains("intervall"), "{msg}");
        let v = serde_json::json!({"snapshot_agent": {"retain": 3}});
        assert!(parse_value(v, "b.json")
            .expect_err("misplaced")
            .to_string()
            .contains("retain"));
    }

    #[test]
    fn files_merge_later_wins_and_toml_works() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"snapshot_agent": {"snapshot": {"interval": "1h", "retain": 5}}}"#,
        )
        .expect("w");
        std::fs::write(
            dir.path().join("b.toml"),
            "[snapshot_agent.snapshot]\ninterval = \"10m\"\n",
        )
        .expect("w");
        std::fs::write(dir.path().join("other.json"), r#"{"unrelated": true}"#).expect("w");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("w");
        let c = load(&[], &[dir.path().to_path_buf()]).expect("load");
        let s = c.snapshot_agent.and_then(|a| a.snapshot).expect("snapshot");
        assert_eq!((s.interval.as_deref(), s.retain), (Some("10m"), Some(5)));
        let none = tempfile::tempdir().expect("tmp");
        std::fs::write(none.path().join("x.json"), "{}").expect("w");
        assert!(matches!(
            load(&[none.path().join("x.json")], &[]),
            Err(FileError::NoAgentSection)
        ));
    }
}
