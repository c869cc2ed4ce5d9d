//! `/v1/kv/<key>` of the test server (spec consul-http-api.md §5): reads with blocking queries,
//! writes with `acquire`/`release`/`cas`/`flags`, deletes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::http::{
    authorize, blocking, blocking_params, json as json_resp, meta_headers, now, require_leader,
    text, Need, Params,
};
use super::state::{Cluster, KvOp, KvWrite};
use super::AppState;

/// Largest value accepted, in bytes (Consul's default `kv_max_value_size`).
pub const MAX_VALUE: usize = 512 * 1024;

pub async fn get(
    s: State<Arc<AppState>>,
    Path(key): Path<String>,
    q: Query<Params>,
    h: HeaderMap,
) -> Response {
    read(s, key, q, h).await
}

pub async fn get_root(s: State<Arc<AppState>>, q: Query<Params>, h: HeaderMap) -> Response {
    read(s, String::new(), q, h).await
}

async fn read(
    State(s): State<Arc<AppState>>,
    key: String,
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
    let recurse = q.contains_key("recurse");
    let keys_only = q.contains_key("keys");
    let (index, found) = blocking(&s, min, wait, |c: &Cluster| {
        if recurse || keys_only {
            let matched: Vec<(&String, &super::state::StoredKv)> =
                c.kv.range(key.clone()..)
                    .take_while(|(k, _)| k.starts_with(&key))
                    .collect();
            let v = if keys_only {
                json!(matched.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            } else {
                Value::Array(
                    matched
                        .iter()
                        .map(|(k, e)| Cluster::kv_json(k, e))
                        .collect(),
                )
            };
            (c.kv_index, (!matched.is_empty()).then_some((v, None)))
        } else {
            match c.kv.get(&key) {
                Some(e) => (
                    e.modify_index,
                    Some((json!([Cluster::kv_json(&key, e)]), e.value.clone())),
                ),
                None => (c.kv_index, None),
            }
        }
    })
    .await;
    match found {
        None => {
            let mut r = StatusCode::NOT_FOUND.into_response();
            meta_headers(&s, r.headers_mut(), index);
            r
        }
        Some((_, Some(raw))) if q.contains_key("raw") => {
            let mut r = (StatusCode::OK, raw).into_response();
            meta_headers(&s, r.headers_mut(), index);
            r.headers_mut()
                .insert("Content-Type", HeaderValue::from_static("text/plain"));
            r
        }
        Some((v, _)) => json_resp(&s, index, &v),
    }
}

pub async fn put(
    s: State<Arc<AppState>>,
    Path(key): Path<String>,
    q: Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    write(s, key, q, h, body).await
}

pub async fn put_root(
    s: State<Arc<AppState>>,
    q: Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    write(s, String::new(), q, h, body).await
}

async fn write(
    State(s): State<Arc<AppState>>,
    key: String,
    Query(q): Query<Params>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) =
        authorize(&s, &h, &q, Need::Write).and_then(|()| require_leader(&s, &Params::new()))
    {
        return r.into_response();
    }
    if key.is_empty() {
        return text(StatusCode::BAD_REQUEST, "Missing key name");
    }
    if body.len() > MAX_VALUE {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body({} bytes) too large, max size: {MAX_VALUE} bytes. See https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.", body.len()),
        );
    }
    let conds: Vec<&str> = ["cas", "acquire", "release"]
        .into_iter()
        .filter(|k| q.contains_key(*k))
        .collect();
    if conds.len() > 1 {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Conflicting flags: {}", conds.join("&")),
        );
    }
    let flags = match q.get("flags").map(|f| f.parse::<u64>()) {
        Some(Ok(f)) => Some(f),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "Invalid flags"),
        None => None,
    };
    let op = if let Some(sid) = q.get("acquire") {
        KvOp::Acquire(sid.clone())
    } else if let Some(sid) = q.get("release") {
        KvOp::Release(sid.clone())
    } else if let Some(c) = q.get("cas") {
        match c.parse() {
            Ok(c) => KvOp::Cas(c),
            Err(_) => return text(StatusCode::BAD_REQUEST, "Invalid cas index"),
        }
    } else {
        KvOp::Set
    };
    match s.mutate(|c| c.kv_put(&key, body.to_vec(), flags, op, now())) {
        KvWrite::Done(ok) => json_resp(&s, s.index(), &json!(ok)),
        KvWrite::Error(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn delete(
    s: State<Arc<AppState>>,
    Path(key): Path<String>,
    q: Query<Params>,
    h: HeaderMap,
) -> Response {
    remove(s, key, q, h).await
}

pub async fn delete_root(s: State<Arc<AppState>>, q: Query<Params>, h: HeaderMap) -> Response {
    remove(s, String::new(), q, h).await
}

async fn remove(
    State(s): State<Arc<AppState>>,
    key: String,
    Query(q): Query<Params>,
    h: HeaderMap,
) -> Response {
    if let Err(r) =
        authorize(&s, &h, &q, Need::Write).and_then(|()| require_leader(&s, &Params::new()))
    {
        return r.into_response();
    }
    let cas = match q.get("cas").map(|c| c.parse::<u64>()) {
        Some(Ok(0)) | Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "Invalid cas index"),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let recurse = q.contains_key("recurse");
    let ok = s.mutate(|c| c.kv_delete(&key, recurse, cas));
    if recurse {
        // The KV entries of the snapshot state go too: the next snapshot shows the wipe.
        if let Err(e) = s.store.delete_kv_tree(key.as_bytes(), s.index()).await {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    json_resp(&s, s.index(), &json!(ok))
}
