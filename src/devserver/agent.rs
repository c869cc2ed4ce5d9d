//! `/v1/agent/*` and `/v1/status/*` of the test server (spec consul-http-api.md §3, §6).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::http::{
    authorize, json as json_resp, json_body, now, parse_go_duration, require_leader, text,
    ApiError, Need, Params,
};
use super::state::{Check, CheckStatus, Service};
use super::AppState;

/// The leader's RPC address this single-node double reports.
const LEADER: &str = "127.0.0.1:8300";

pub async fn leader(State(s): State<Arc<AppState>>) -> Response {
    let v = if s.faults().no_leader {
        json!("")
    } else {
        json!(LEADER)
    };
    json_resp(&s, s.index(), &v)
}

pub async fn peers(State(s): State<Arc<AppState>>) -> Response {
    json_resp(&s, s.index(), &json!([LEADER]))
}

/// `GET /v1/operator/raft/configuration`: this one server, leader and voter (`operator:read`;
/// without a leader only with `?stale`, as Consul).
pub async fn raft_configuration(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read).and_then(|()| require_leader(&s, &q)) {
        return r.into_response();
    }
    let leader = !s.faults().no_leader;
    json_resp(
        &s,
        s.index(),
        &json!({
            "Servers": [{"ID": s.cfg.node_id, "Node": s.cfg.node_name, "Address": LEADER,
                         "Leader": leader, "ProtocolVersion": "3", "Voter": true}],
            "Index": s.index()
        }),
    )
}

pub async fn agent_self(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read) {
        return r.into_response();
    }
    let c = &s.cfg;
    json_resp(
        &s,
        s.index(),
        &json!({
            "Config": {"Datacenter": c.datacenter, "NodeName": c.node_name, "NodeID": c.node_id,
                       "Server": true, "Revision": "testdouble", "Version": c.version},
            "DebugConfig": {},
            "Coord": {"Adjustment": 0, "Error": 1.5, "Vec": [0, 0, 0, 0, 0, 0, 0, 0]},
            "Member": {"Name": c.node_name, "Addr": "127.0.0.1", "Port": 8301, "Tags": {"dc": c.datacenter, "role": "consul"}, "Status": 1},
            "Meta": {}
        }),
    )
}

/// A JSON field by CamelCase or snake_case name, as Consul's decoder accepts both.
fn field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a Value> {
    let obj = v.as_object()?;
    names.iter().find_map(|n| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v)
    })
}

fn str_of(v: &Value, names: &[&str]) -> Option<String> {
    field(v, names).and_then(Value::as_str).map(str::to_string)
}

fn parse_check(
    v: &Value,
    service_id: &str,
    service_name: &str,
    n: usize,
    total: usize,
) -> Result<Check, ApiError> {
    let ttl = str_of(v, &["TTL"])
        .and_then(|t| parse_go_duration(&t))
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "Invalid check: TTL must be > 0 for TTL checks".into(),
            )
        })?;
    let id = str_of(v, &["CheckID", "ID", "check_id"]).unwrap_or_else(|| {
        if total == 1 {
            format!("service:{service_id}")
        } else {
            format!("service:{service_id}:{}", n + 1)
        }
    });
    let status = match str_of(v, &["Status"]).as_deref() {
        None | Some("") => CheckStatus::Critical,
        Some(st) => CheckStatus::parse(st).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("Invalid check status {st:?}"),
            )
        })?,
    };
    let deregister_after = str_of(
        v,
        &[
            "DeregisterCriticalServiceAfter",
            "deregister_critical_service_after",
        ],
    )
    .and_then(|d| parse_go_duration(&d));
    Ok(Check {
        id,
        name: str_of(v, &["Name"]).unwrap_or_else(|| format!("Service '{service_name}' check")),
        service_id: service_id.to_string(),
        ttl,
        status,
        output: str_of(v, &["Notes"]).unwrap_or_default(),
        deregister_after,
        last_update: now(),
        critical_since: None,
    })
}

pub async fn service_register(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Write) {
        return r.into_response();
    }
    let v: Value = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let Some(name) = str_of(&v, &["Name"]).filter(|n| !n.is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "Missing service name");
    };
    let id = str_of(&v, &["ID"])
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| name.clone());
    let mut check_values: Vec<&Value> = Vec::new();
    if let Some(c) = field(&v, &["Check"]).filter(|c| !c.is_null()) {
        check_values.push(c);
    }
    if let Some(Value::Array(cs)) = field(&v, &["Checks"]) {
        check_values.extend(cs.iter());
    }
    let mut checks = Vec::new();
    for (n, c) in check_values.iter().enumerate() {
        match parse_check(c, &id, &name, n, check_values.len()) {
            Ok(c) => checks.push(c),
            Err(r) => return r.into_response(),
        }
    }
    let svc = Service {
        id,
        name,
        tags: field(&v, &["Tags"])
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        meta: field(&v, &["Meta"])
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        port: field(&v, &["Port"]).and_then(Value::as_u64).unwrap_or(0),
    };
    s.mutate(|c| c.service_register(svc, checks));
    StatusCode::OK.into_response()
}

pub async fn service_deregister(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Write) {
        return r.into_response();
    }
    s.mutate(|c| c.service_deregister(&id));
    StatusCode::OK.into_response()
}

pub async fn services(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read) {
        return r.into_response();
    }
    let c = s.cluster();
    let map: serde_json::Map<String, Value> = c
        .services
        .values()
        .map(|sv| (sv.id.clone(), json!({"ID": sv.id, "Service": sv.name, "Tags": sv.tags, "Meta": sv.meta, "Port": sv.port})))
        .collect();
    let index = c.index;
    drop(c);
    json_resp(&s, index, &Value::Object(map))
}

pub async fn checks(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Read) {
        return r.into_response();
    }
    let t = now();
    let c = s.cluster();
    let map: serde_json::Map<String, Value> = c
        .checks
        .values()
        .map(|ch| {
            let service_name = c.services.get(&ch.service_id).map(|sv| sv.name.clone()).unwrap_or_default();
            (
                ch.id.clone(),
                json!({"Node": s.cfg.node_name, "CheckID": ch.id, "Name": ch.name, "Status": ch.effective_status(t).as_str(),
                       "Notes": "", "Output": ch.output, "ServiceID": ch.service_id, "ServiceName": service_name, "Type": "ttl"}),
            )
        })
        .collect();
    let index = c.index;
    drop(c);
    json_resp(&s, index, &Value::Object(map))
}

pub async fn check_register(
    State(s): State<Arc<AppState>>,
    Query(q): Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Write) {
        return r.into_response();
    }
    let v: Value = match json_body(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let service_id = str_of(&v, &["ServiceID", "service_id"]).unwrap_or_default();
    if !service_id.is_empty() && !s.cluster().services.contains_key(&service_id) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("ServiceID {service_id:?} does not exist"),
        );
    }
    let name = str_of(&v, &["Name"]).unwrap_or_default();
    let mut check = match parse_check(&v, &service_id, &name, 0, 1) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if str_of(&v, &["CheckID", "ID"]).is_none() {
        check.id = name.clone();
    }
    s.mutate(|c| {
        c.checks.insert(check.id.clone(), check);
    });
    StatusCode::OK.into_response()
}

pub async fn check_deregister(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Write) {
        return r.into_response();
    }
    s.mutate(|c| c.checks.remove(&id));
    StatusCode::OK.into_response()
}

pub async fn check_update(
    State(s): State<Arc<AppState>>,
    Path((action, id)): Path<(String, String)>,
    Query(q): Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &h, &q, Need::Write) {
        return r.into_response();
    }
    let note = q.get("note").cloned().unwrap_or_default();
    let (status, output) = match action.as_str() {
        "pass" => (CheckStatus::Passing, note),
        "warn" => (CheckStatus::Warning, note),
        "fail" => (CheckStatus::Critical, note),
        "update" => {
            let v: Value = match json_body(&body) {
                Ok(v) => v,
                Err(e) => return e.into_response(),
            };
            let Some(status) = str_of(&v, &["Status"]).and_then(|st| CheckStatus::parse(&st))
            else {
                return text(StatusCode::BAD_REQUEST, "Invalid check status");
            };
            (status, str_of(&v, &["Output"]).unwrap_or_default())
        }
        _ => return text(StatusCode::NOT_FOUND, "404 page not found"),
    };
    match s.mutate(|c| c.check_update(&id, status, output, now())) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(msg) => text(StatusCode::NOT_FOUND, msg),
    }
}

/// A registered service as tests see it: (name, [(check ID, check name, status)]).
pub type Registered = (String, Vec<(String, String, &'static str)>);

/// Registrations by service ID, for assertions without HTTP.
pub fn registered(s: &AppState) -> BTreeMap<String, Registered> {
    let t = now();
    let c = s.cluster();
    c.services
        .values()
        .map(|sv| {
            let checks = c
                .checks
                .values()
                .filter(|ch| ch.service_id == sv.id)
                .map(|ch| {
                    (
                        ch.id.clone(),
                        ch.name.clone(),
                        ch.effective_status(t).as_str(),
                    )
                })
                .collect();
            (sv.id.clone(), (sv.name.clone(), checks))
        })
        .collect()
}
