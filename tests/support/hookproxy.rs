//! A loopback HTTP proxy in front of a real Consul server that runs a test's hook before
//! forwarding the n-th request of a method and path, or answers it itself with a status: a
//! concurrent writer between an agent's plan and its write, a failure part-way through a run
//! of transactions. Every request is counted. Stopped when dropped.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What happens to a matched request.
#[derive(Clone)]
pub enum Hook {
    /// Run this, then forward the request.
    Before(Arc<dyn Fn() + Send + Sync>),
    /// Answer with this status and body instead of forwarding.
    Answer(u16, String),
}

struct Rule {
    method: String,
    path: String,
    nth: usize,
    hook: Hook,
}

#[derive(Default)]
struct Inner {
    rules: Vec<Rule>,
    seen: Vec<(String, String)>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    inner: Mutex<Inner>,
}

/// The running proxy; `addr` is `127.0.0.1:PORT`.
pub struct HookProxy {
    pub addr: String,
    state: Arc<ProxyState>,
    _served: super::serve::Served,
}

impl HookProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port.
    pub fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            inner: Mutex::new(Inner::default()),
        });
        let served = super::serve::Served::start(
            axum::Router::new()
                .fallback(handle)
                .with_state(state.clone()),
        );
        HookProxy {
            addr: served.addr.clone(),
            state,
            _served: served,
        }
    }

    /// Applies `hook` to the `nth` (1-based) request of `method` on `path`.
    pub fn on(&self, method: &str, path: &str, nth: usize, hook: Hook) {
        self.state.inner.lock().expect("lock").rules.push(Rule {
            method: method.into(),
            path: path.into(),
            nth,
            hook,
        });
    }

    /// How many requests of `method` on `path` were seen.
    pub fn count(&self, method: &str, path: &str) -> usize {
        let inner = self.state.inner.lock().expect("lock");
        inner
            .seen
            .iter()
            .filter(|(m, p)| m == method && p == path)
            .count()
    }
}

async fn handle(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let hook = {
        let mut inner = st.inner.lock().expect("lock");
        inner.seen.push((method.clone(), path.clone()));
        let n = inner
            .seen
            .iter()
            .filter(|(m, p)| *m == method && *p == path)
            .count();
        inner
            .rules
            .iter()
            .find(|r| r.method == method && r.path == path && r.nth == n)
            .map(|r| r.hook.clone())
    };
    match hook {
        Some(Hook::Answer(status, text)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, text).into_response();
        }
        Some(Hook::Before(f)) => {
            // The hook may block (a call to the real server): off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || f()).await;
        }
        None => {}
    }
    let body = match axum::body::to_bytes(body, 256 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let url = format!("{}{}", st.upstream, parts.uri);
    let mut fwd = st.http.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        if k != "content-length" && k != "transfer-encoding" && k != "host" {
            fwd = fwd.header(k, v);
        }
    }
    let resp = match fwd.body(body).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out_headers = HeaderMap::new();
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out_headers.insert(k, v.clone());
        }
    }
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    r
}
