//! `/v1/session/*` of the test server (spec consul-http-api.md §4).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::http::{
    authorize, blocking, blocking_params, json as json_resp, json_body, now, parse_go_duration,
    require_leader, text, Need, Params,
};
use super::state::{Behavior, Cluster, Session};
use super::AppState;

const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// A JSON field by name, matched case-insensitively as Consul's decoder does.
fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

pub async fn create(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) =
        authorize(&s, &h, &q, Need::Write).and_then(|()| require_leader(&s, &Params::new()))
    {
        return r.into_response();
    }
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match json_body(&body) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        }
    };
    let str_field = |n: &str| field(&body, n).and_then(Value::as_str).map(str::to_string);
    let lock_delay = match lock_delay_of(&body) {
        Ok(d) => d,
        Err((code, msg)) => return text(code, msg),
    };
    let behavior = match str_field("Behavior").as_deref() {
        None | Some("") | Some("release") => Behavior::Release,
        Some("delete") => Behavior::Delete,
        Some(other) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Invalid Behavior setting '{other}'"),
            )
        }
    };
    let ttl = match ttl_of(str_field("TTL"), s.cfg.session_ttl_min) {
        Ok(t) => t,
        Err((code, msg)) => return text(code, msg),
    };
    let node = str_field("Node").unwrap_or_else(|| s.cfg.node_name.clone());
    if node != s.cfg.node_name {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Missing node registration for {node:?}"),
        );
    }
    let node_checks = field(&body, "NodeChecks")
        .or_else(|| field(&body, "Checks"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["serfHealth".to_string()]);
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        name: str_field("Name").unwrap_or_default(),
        node,
        lock_delay,
        behavior,
        ttl,
        node_checks,
        create_index: 0,
        expires_at: None,
    };
    let id = s.mutate(|c| c.session_create(session, now()));
    json_resp(&s, s.index(), &json!({ "ID": id }))
}

/// An answer refusing the request: its status and Consul's text.
type Refusal = (StatusCode, String);

/// The session's `LockDelay`: a Go duration string, or a number (under 1000 seconds, else
/// nanoseconds: Consul's quirk); the default when absent. A 400 answer otherwise.
fn lock_delay_of(body: &Value) -> Result<Duration, Refusal> {
    match field(body, "LockDelay") {
        None | Some(Value::Null) => Ok(DEFAULT_LOCK_DELAY),
        Some(Value::String(d)) => parse_go_duration(d).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!("Request decode failed: invalid LockDelay {d:?}"),
            )
        }),
        Some(Value::Number(n)) => {
            let n = n.as_u64().unwrap_or(0);
            Ok(if n < 1000 {
                Duration::from_secs(n)
            } else {
                Duration::from_nanos(n)
            })
        }
        Some(_) => Err((
            StatusCode::BAD_REQUEST,
            "Request decode failed: invalid LockDelay".into(),
        )),
    }
}

/// The session's `TTL` (`None`: no TTL, also for "0"), within `[min, 24h]`; Consul's 500
/// answers otherwise.
fn ttl_of(ttl: Option<String>, min: Duration) -> Result<Option<Duration>, Refusal> {
    let Some(t) = ttl.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match parse_go_duration(&t) {
        None => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Session TTL '{t}' invalid: time: invalid duration {t:?}"),
        )),
        Some(d) if d.is_zero() => Ok(None),
        Some(d) if d < min || d > MAX_TTL => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Invalid Session TTL '{}', must be between [{}={}]",
                d.as_nanos(),
                humantime::format_duration(min),
                "24h0m0s"
            ),
        )),
        Some(d) => Ok(Some(d)),
    }
}

pub async fn renew(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) =
        authorize(&s, &h, &q, Need::Write).and_then(|()| require_leader(&s, &Params::new()))
    {
        return r.into_response();
    }
    if s.faults().stall_session_renew {
        futures_util::future::pending::<()>().await;
    }
    match s.mutate(|c| c.session_renew(&id, now())) {
        Some(sess) => json_resp(&s, s.index(), &json!([Cluster::session_json(&sess)])),
        None => text(
            StatusCode::NOT_FOUND,
            format!("Session id '{id}' not found"),
        ),
    }
}

pub async fn destroy(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) =
        authorize(&s, &h, &q, Need::Write).and_then(|()| require_leader(&s, &Params::new()))
    {
        return r.into_response();
    }
    s.mutate(|c| c.session_invalidate(&id, now()));
    json_resp(&s, s.index(), &json!(true))
}

pub async fn info(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read).and_then(|()| require_leader(&s, &q)) {
        return r.into_response();
    }
    let (min, wait) = match blocking_params(&q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (index, v) = blocking(&s, min, wait, |c| {
        let list: Vec<Value> = c
            .sessions
            .get(&id)
            .map(Cluster::session_json)
            .into_iter()
            .collect();
        (c.index, Value::Array(list))
    })
    .await;
    json_resp(&s, index, &v)
}

pub async fn list(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read).and_then(|()| require_leader(&s, &q)) {
        return r.into_response();
    }
    let (index, v) = {
        let c = s.cluster();
        (
            c.index,
            Value::Array(c.sessions.values().map(Cluster::session_json).collect()),
        )
    };
    json_resp(&s, index, &v)
}
