//! Loading configuration files: Consul Enterprise's `snapshot_agent` JSON schema (spec
//! consul-http-api.md §8.2), so an existing Enterprise config loads unchanged, plus a few keys
//! of our own; TOML files with the same keys are accepted too. The schema itself is the option
//! structs of [`super::options`]. Unknown keys are errors that name their path
//! (`snapshot_agent.snapshot.intervall`), and no error shows a secret.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use super::options::FileConfig;

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
    /// Every refused key of the files, one per line (all of them in one run).
    #[error("{}", .0.join("\n"))]
    Keys(Vec<String>),
    #[error("no configuration file has a snapshot_agent object")]
    NoAgentSection,
}

/// Bound on the refused keys collected from one file (each costs a parse).
const MAX_KEY_ERRORS: usize = 50;

/// What `--print-config` prints for a secret; given back as a value it is an error.
pub const REDACTED: &str = "<redacted>";

/// Every refused key of one file: each with the file, its line and column (where the key is
/// found in the text), its path, and "did you mean" for an unknown key close to a known one.
/// Keys are found one parse at a time (a refused key is removed and the rest parsed again).
fn check_file(v: &Value, path: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut redacted = Vec::new();
    find_redacted(v, String::new(), &mut redacted);
    for key in &redacted {
        out.push(format!(
            "{path}: {}key {key}: this is a redacted secret (what --print-config prints); give the real value",
            position(text, key)
        ));
    }
    let mut v = v.clone();
    for key in &redacted {
        remove_path(&mut v, key);
    }
    for _ in 0..MAX_KEY_ERRORS {
        match parse_value(v.clone(), path) {
            Ok(_) => break,
            Err(FileError::Key { key, reason, .. }) => {
                let hint = did_you_mean(&reason, &key);
                out.push(format!(
                    "{path}: {}key {key}: {reason}{hint}",
                    position(text, &key)
                ));
                if !remove_path(&mut v, &key) {
                    break;
                }
            }
            Err(e) => {
                out.push(e.to_string());
                break;
            }
        }
    }
    // In the file's order.
    out.sort_by_key(|m| {
        m.split("line ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    out
}

/// Paths of string values equal to [`REDACTED`].
fn find_redacted(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s == REDACTED => out.push(at),
        Value::Object(m) => {
            for (k, v) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                find_redacted(v, p, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                find_redacted(v, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Removes the value at a dotted path (`a.b.c`; an array index removes the whole array):
/// whether something was removed.
fn remove_path(v: &mut Value, path: &str) -> bool {
    let path = path.split('[').next().unwrap_or(path);
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (lookup_mut(v, p), l),
        None => (Some(v), path),
    };
    match parent {
        Some(Value::Object(m)) => m.remove(last).is_some(),
        _ => false,
    }
}

/// `line L, column C, ` of the key's last segment in the file's text, or nothing when it
/// cannot be found (a key of the merged configuration).
fn position(text: &str, key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last = last.split('[').next().unwrap_or(last);
    if last.is_empty() {
        return String::new();
    }
    let quoted = format!("\"{last}\"");
    let at = text.find(&quoted).or_else(|| {
        // TOML: a bare key at the start of a line.
        text.match_indices(last).map(|(i, _)| i).find(|&i| {
            let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
            text[line_start..i].trim().is_empty()
                && text[i + last.len()..].trim_start().starts_with('=')
        })
    });
    match at {
        Some(i) => {
            let before = &text[..i];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}, ")
        }
        None => String::new(),
    }
}

/// " (did you mean `interval`?)" for serde's "unknown field `intervall`, expected one of …"
/// when one of the expected names is at most two edits away.
fn did_you_mean(reason: &str, key: &str) -> String {
    if !reason.starts_with("unknown field") {
        return String::new();
    }
    let (parent, unknown) = key.rsplit_once('.').unwrap_or(("", key));
    // The names serde lists, and (serde's flatten lists none) the keys the defaults fill in
    // at the same place.
    let mut known: Vec<String> = reason
        .split("expected one of ")
        .nth(1)
        .map(|l| {
            l.split(',')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .unwrap_or_default();
    let defaults = serde_json::to_value(FileConfig {
        snapshot_agent: Some(super::options::AgentOptions::defaults()),
    })
    .unwrap_or_default();
    let at = if parent.is_empty() {
        Some(&defaults)
    } else {
        lookup(&defaults, parent)
    };
    if let Some(Value::Object(m)) = at {
        known.extend(m.keys().cloned());
    }
    known
        .iter()
        .filter(|c| !c.is_empty() && c.as_str() != unknown)
        .map(|c| (edit_distance(unknown, c), c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance (for key names: short).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
    let mut refused = Vec::new();
    for path in &paths {
        let (v, text) = read_value(path)?;
        if v.get("snapshot_agent").is_none() {
            tracing::info!(path = %path.display(), "ignoring configuration file without a snapshot_agent object");
            continue;
        }
        any = true;
        // Check each file on its own first, so that every refused key names the file (and the
        // line) it is in; all of them are reported in one run.
        refused.extend(check_file(&v, &path.display().to_string(), &text));
        merge(&mut merged, v);
    }
    if !any {
        return Err(FileError::NoAgentSection);
    }
    if !refused.is_empty() {
        return Err(FileError::Keys(refused));
    }
    parse_value(merged, "merged configuration")
}

fn read_value(path: &Path) -> Result<(Value, String), FileError> {
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
        let v = serde_json::to_value(t).map_err(|e| parse_err(e.to_string()))?;
        Ok((v, text))
    } else {
        let v = serde_json::from_str(&text).map_err(|e| {
            let at = offset_of(&text, e.line(), e.column());
            // serde_json appends " at line L column C"; the position is said once, by us.
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            parse_err(syntax_error(&text, at, &msg, Syntax::Json))
        })?;
        Ok((v, text))
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
///
/// An empty string means "not set" (Enterprise's documented example file is full of them),
/// except for `s3_key_prefix`, where it means the bucket's root.
pub fn parse_value(mut v: Value, origin: &str) -> Result<FileConfig, FileError> {
    drop_empty(&mut v);
    let err = match serde_path_to_error::deserialize::<_, FileConfig>(v.clone()) {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    let mut key = err.path().to_string();
    let reason = err.into_inner().to_string();
    // serde's `flatten` (a section made of several option structs) reports the section, not
    // the key: find the key whose removal changes the outcome.
    let section = lookup(&v, &key).and_then(Value::as_object).cloned();
    let mut secret = is_secret_key(&key);
    if let Some(map) = section {
        let culprit = map.keys().find(|k| {
            let mut without = v.clone();
            if let Some(Value::Object(m)) = lookup_mut(&mut without, &key) {
                m.remove(*k);
            }
            match serde_path_to_error::deserialize::<_, FileConfig>(without) {
                Ok(_) => true,
                Err(e) => e.path().to_string() != key || e.into_inner().to_string() != reason,
            }
        });
        match culprit {
            Some(k) => {
                key = if key == "." {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                }
            }
            // Not found: treat the message as possibly quoting any value of the section.
            None => secret |= map.keys().any(|k| is_secret_key(k)),
        }
        secret |= is_secret_key(&key);
    }
    let reason = if secret {
        "invalid value (not shown: this key holds a secret)".to_string()
    } else {
        reason
    };
    Err(FileError::Key {
        path: origin.to_string(),
        key,
        reason,
    })
}

/// Removes `""` values (and nulls) from objects, recursively.
fn drop_empty(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|k, v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty() || k == "s3_key_prefix",
            _ => true,
        });
        m.values_mut().for_each(drop_empty);
    }
}

/// The value at a serde_path_to_error path (`a.b.c`, `.` for the root).
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |v, seg| v.get(seg))
}

fn lookup_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |v, seg| v.get_mut(seg))
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
            a.snapshot.interval,
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(
            a.aws_storage.s3_key_prefix.as_deref(),
            Some("consul-snapshot")
        );
        assert_eq!(a.consul.token, None, "an empty string is not set");
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
        // A key of a section built from several structs (serde's flatten) is still named.
        let v = serde_json::json!({"snapshot_agent": {"snapshot": {"keep_daily": "x"}}});
        let msg = parse_value(v, "c.json").expect_err("type").to_string();
        assert!(msg.contains("snapshot_agent.snapshot.keep_daily"), "{msg}");
        let v = serde_json::json!({"snapshot_agent": {"retain": 3}});
        assert!(parse_value(v, "b.json")
            .expect_err("misplaced")
            .to_string()
            .contains("retain"));
    }

    #[test]
    fn every_refused_key_is_reported_at_once_with_its_place_and_a_near_miss() {
        let text = "{\"snapshot_agent\": {\n  \"snapshot\": {\"intervall\": \"1h\", \"retain\": 3},\n  \"token\": \"<redacted>\",\n  \"bogus\": 1\n}}";
        let msg = load_text("a.json", text);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3, "{msg}");
        assert!(
            msg.contains("a.json: line 2, column 16, key snapshot_agent.snapshot.intervall")
                && msg.contains("(did you mean `interval`?)"),
            "{msg}"
        );
        assert!(
            msg.contains("line 3, column 3, key snapshot_agent.token: this is a redacted secret"),
            "{msg}"
        );
        assert!(msg.contains("key snapshot_agent.bogus"), "{msg}");
        assert_eq!(edit_distance("intervall", "interval"), 1);
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
        let s = c.snapshot_agent.map(|a| a.snapshot).expect("snapshot");
        assert_eq!(
            (s.interval, s.retention.retain),
            (Some(std::time::Duration::from_secs(600)), Some(5))
        );
        let none = tempfile::tempdir().expect("tmp");
        std::fs::write(none.path().join("x.json"), "{}").expect("w");
        assert!(matches!(
            load(&[none.path().join("x.json")], &[]),
            Err(FileError::NoAgentSection)
        ));
    }
}
