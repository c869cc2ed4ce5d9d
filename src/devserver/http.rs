//! What every endpoint of the test server shares: the router, ACL checks, Consul's response
//! headers and error mapping (spec consul-http-api.md §1), blocking queries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::state::Cluster;
use super::AppState;

/// Query parameters; presence flags (`?stale`) map to an empty string.
pub type Params = HashMap<String, String>;

/// A plain-text error answer, as Consul sends errors.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// An error answer: status and Consul's plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        text(self.0, self.1)
    }
}

/// Decodes a JSON request body; 400 `Request decode failed: …` as Consul answers.
pub fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("Request decode failed: {e}"),
        )
    })
}

/// 500 `No cluster leader`.
pub fn no_leader() -> Response {
    text(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader")
}

/// A JSON answer with Consul's query-meta headers; `X-Consul-Index` is never 0.
pub fn json(shared: &AppState, index: u64, value: &Value) -> Response {
    let mut r = (StatusCode::OK, value.to_string()).into_response();
    let h = r.headers_mut();
    h.insert("Content-Type", HeaderValue::from_static("application/json"));
    meta_headers(shared, h, index);
    r
}

/// `X-Consul-Index`, `X-Consul-LastContact`, `X-Consul-KnownLeader`, default ACL policy.
pub fn meta_headers(shared: &AppState, h: &mut HeaderMap, index: u64) {
    let leader = !shared.faults().no_leader;
    h.insert("X-Consul-Index", HeaderValue::from(index.max(1)));
    h.insert("X-Consul-LastContact", HeaderValue::from_static("0"));
    h.insert(
        "X-Consul-KnownLeader",
        HeaderValue::from_static(if leader { "true" } else { "false" }),
    );
    let policy = if shared.cfg.acl.is_some() {
        "deny"
    } else {
        "allow"
    };
    h.insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static(policy),
    );
}

/// What a request needs from its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Reads (KV, sessions, agent info).
    Read,
    /// Writes (KV, sessions, services).
    Write,
    /// `acl:write`: snapshot save and restore.
    Operator,
}

/// The request's token: `?token=` > `X-Consul-Token` > `Authorization: Bearer` (spec §1.2).
fn token_of<'a>(headers: &'a HeaderMap, q: &'a Params) -> Option<&'a str> {
    if let Some(t) = q.get("token") {
        return Some(t);
    }
    if let Some(t) = headers.get("X-Consul-Token").and_then(|v| v.to_str().ok()) {
        return Some(t);
    }
    let auth = headers.get("Authorization").and_then(|v| v.to_str().ok())?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.split_whitespace().next())
        .flatten()
}

/// ACL enforcement with Consul's 403 texts.
pub fn authorize(
    shared: &AppState,
    headers: &HeaderMap,
    q: &Params,
    need: Need,
) -> Result<(), ApiError> {
    let deny = |msg: String| Err(ApiError(StatusCode::FORBIDDEN, msg));
    // Another datacenter: Consul forwards the request there before any ACL check, and
    // answers 500 when it knows no route (it knows none but its own here).
    if q.get("dc")
        .is_some_and(|dc| !dc.is_empty() && *dc != shared.cfg.datacenter)
    {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No path to datacenter".into(),
        ));
    }
    if shared.faults().forbidden {
        return deny("Permission denied".into());
    }
    let Some(acl) = &shared.cfg.acl else {
        return Ok(());
    };
    let token = token_of(headers, q).filter(|t| !t.is_empty());
    match token {
        Some(t) if t == acl.management => Ok(()),
        Some(t) if acl.no_snapshot.as_deref() == Some(t) => match need {
            Need::Read | Need::Write => Ok(()),
            Need::Operator => deny("Permission denied: token lacks permission 'acl:write'".into()),
        },
        Some(t) if acl.read_only.as_deref() == Some(t) => match need {
            Need::Read => Ok(()),
            Need::Write => deny(format!(
                "Permission denied: token with AccessorID '{}' lacks permission 'key:write'",
                acl.read_only_accessor
            )),
            Need::Operator => deny(format!(
                "Permission denied: token with AccessorID '{}' lacks permission 'acl:write'",
                acl.read_only_accessor
            )),
        },
        Some(_) => deny("ACL not found".into()),
        None => deny("Permission denied: anonymous token lacks permission".into()),
    }
}

/// Answers 500 `No cluster leader` for consistent requests while the no-leader fault is on.
pub fn require_leader(shared: &AppState, q: &Params) -> Result<(), ApiError> {
    if shared.faults().no_leader && !q.contains_key("stale") {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No cluster leader".into(),
        ));
    }
    Ok(())
}

pub use crate::units::duration::parse_go_duration;

/// Parses `?index=` and `?wait=` (default 5 min, at most 10 min, spec §1.3).
pub fn blocking_params(q: &Params) -> Result<(Option<u64>, Duration), ApiError> {
    let bad = |m: &str| ApiError(StatusCode::BAD_REQUEST, m.into());
    let index = match q.get("index") {
        Some(v) => Some(v.parse::<u64>().map_err(|_| bad("Invalid index"))?),
        None => None,
    };
    let wait = match q.get("wait") {
        Some(v) => parse_go_duration(v).ok_or_else(|| bad("Invalid wait time"))?,
        None => Duration::from_secs(300),
    };
    Ok((index.filter(|&i| i > 0), wait.min(Duration::from_secs(600))))
}

/// Runs `compute` until its index passes `min_index` or `wait` elapses; a timeout returns the
/// unchanged result with 200, as Consul does.
pub async fn blocking<T>(
    shared: &AppState,
    min_index: Option<u64>,
    wait: Duration,
    mut compute: impl FnMut(&Cluster) -> (u64, T),
) -> (u64, T) {
    let mut rx = shared.changes.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (idx, val) = compute(&shared.cluster());
        let Some(min) = min_index else {
            return (idx, val);
        };
        if idx > min || tokio::time::Instant::now() >= deadline {
            return (idx, val);
        }
        if tokio::time::timeout_at(deadline, rx.changed())
            .await
            .is_err()
        {
            let (idx, val) = compute(&shared.cluster());
            return (idx, val);
        }
    }
}

/// `now`, for the state rules.
pub fn now() -> Instant {
    Instant::now()
}
