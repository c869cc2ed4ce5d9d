//! `agent --print-config`: the effective configuration in the file schema (so it can be saved
//! and reused as a config file), written by serde from the same option structs the files are
//! read into. Secrets print as `<redacted>` by their type ([`crate::consul::Secret`],
//! [`super::Webhook`]); unset keys and empty sections are left out.

use serde_json::Value;

use super::{AgentConfig, FileConfig};

/// The effective configuration as JSON.
///
/// # Errors
/// None in practice: every option type serializes to JSON.
pub fn effective(c: &AgentConfig) -> serde_json::Result<Value> {
    let mut v = serde_json::to_value(FileConfig {
        snapshot_agent: Some(c.effective.clone()),
    })?;
    drop_nulls(&mut v);
    Ok(v)
}

/// Removes nulls, then objects left empty, below the top.
fn drop_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.values_mut().for_each(drop_nulls);
        m.retain(|_, v| !v.is_null() && !v.as_object().is_some_and(|o| o.is_empty()));
    }
}
