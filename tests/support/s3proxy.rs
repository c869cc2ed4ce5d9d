//! A fault-injecting HTTP proxy in front of a real S3 server (Garage, or a plain-HTTP
//! `S3_ENDPOINT` such as MinIO), started by a test on a free loopback port and stopped when
//! dropped. Requests pass through unchanged (the Host header included, so SigV4 signatures stay
//! valid) unless a [`Rule`] matches: then the proxy answers an S3 error, cuts the response after
//! its headers, or truncates a listing. A server that never answers is [`Blackhole`]. Every
//! request's operation is recorded, so tests can assert what the agent did (e.g. that it
//! deleted an object).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// The S3 operation of a request, from its method, query and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListMultipartUploads,
    PutObject,
    CopyObject,
    HeadObject,
    GetObject,
    DeleteObject,
    DeleteObjects,
    ListObjectsV2,
    GetBucketVersioning,
    Other,
}

fn classify(method: &Method, query: &str, headers: &HeaderMap, path: &str) -> Op {
    let has = |k: &str| {
        query
            .split('&')
            .any(|p| p == k || p.starts_with(&format!("{k}=")))
    };
    // Path style: "/bucket" is the bucket, "/bucket/key" an object.
    let object = path.trim_start_matches('/').contains('/');
    match *method {
        Method::POST if has("uploads") => Op::CreateMultipartUpload,
        Method::POST if has("uploadId") => Op::CompleteMultipartUpload,
        Method::POST if has("delete") => Op::DeleteObjects,
        Method::PUT if has("uploadId") => Op::UploadPart,
        Method::PUT if headers.contains_key("x-amz-copy-source") => Op::CopyObject,
        Method::PUT if object => Op::PutObject,
        Method::DELETE if has("uploadId") => Op::AbortMultipartUpload,
        Method::DELETE if object => Op::DeleteObject,
        Method::HEAD if object => Op::HeadObject,
        Method::GET if has("uploads") => Op::ListMultipartUploads,
        Method::GET if has("list-type") => Op::ListObjectsV2,
        Method::GET if has("versioning") => Op::GetBucketVersioning,
        Method::GET if object => Op::GetObject,
        _ => Op::Other,
    }
}

/// What to do instead of forwarding.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer this status with an S3 XML error (`<Code>`, `<Message>`); HEAD gets no body.
    Error {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
    /// Forward, send the answer's status and headers and this many body bytes, then cut the
    /// connection.
    CutAfter(usize),
    /// Forward, then send only this many body bytes and end the body cleanly (chunked, no
    /// length): a read cut short that the transport does not report.
    ShortBody(usize),
    /// Forward a listing and make it claim to be truncated without a continuation token.
    TruncateWithoutToken,
    /// Answer 200 with this XML body instead of forwarding (what a server Garage is not
    /// would say, e.g. a bucket with versioning enabled).
    Reply(&'static str),
}

/// Applies `action` to matching requests number `skip + 1` to `skip + times` (1-based among
/// requests of `op`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub op: Op,
    pub skip: u32,
    pub times: u32,
    pub action: Action,
}

impl Rule {
    /// The next `times` requests of `op` get `action`.
    pub fn next(op: Op, times: u32, action: Action) -> Self {
        Rule {
            op,
            skip: 0,
            times,
            action,
        }
    }

    /// `InternalError: injected` with status 500.
    pub fn error500(op: Op, times: u32) -> Self {
        Rule::next(
            op,
            times,
            Action::Error {
                status: 500,
                code: "InternalError",
                message: "injected",
            },
        )
    }
}

#[derive(Default)]
struct Inner {
    rules: Vec<(Rule, u32)>,
    seen: Vec<(Op, String)>,
}

struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    inner: Mutex<Inner>,
}

/// The running proxy.
pub struct S3Proxy {
    pub endpoint: String,
    state: Arc<ProxyState>,
    _served: super::serve::Served,
}

impl S3Proxy {
    /// Starts a proxy to `upstream` (an `http://` S3 endpoint) on a free loopback port.
    pub fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
            inner: Mutex::new(Inner::default()),
        });
        let served = super::serve::Served::start(
            axum::Router::new()
                .fallback(handle)
                .with_state(state.clone()),
        );
        S3Proxy {
            endpoint: served.url(),
            state,
            _served: served,
        }
    }

    /// Adds a rule (rules are checked in the order added).
    pub fn add(&self, rule: Rule) {
        self.state.inner.lock().expect("lock").rules.push((rule, 0));
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.inner.lock().expect("lock").rules.clear();
    }

    /// Operations seen so far, with their paths.
    pub fn seen(&self) -> Vec<(Op, String)> {
        self.state.inner.lock().expect("lock").seen.clone()
    }

    /// How many requests of `op` were seen.
    pub fn count(&self, op: Op) -> usize {
        self.seen().iter().filter(|(o, _)| *o == op).count()
    }
}

fn xml_error(status: u16, code: &str, message: &str, head: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if head {
        return status.into_response();
    }
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn handle(State(st): State<Arc<ProxyState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_string();
    let path = parts.uri.path().to_string();
    let op = classify(&parts.method, &query, &parts.headers, &path);
    let action = {
        let mut inner = st.inner.lock().expect("lock");
        inner.seen.push((op, path.clone()));
        let mut chosen = None;
        for (rule, matched) in inner.rules.iter_mut() {
            if rule.op != op {
                continue;
            }
            *matched += 1;
            if *matched > rule.skip && *matched <= rule.skip + rule.times {
                chosen = Some(rule.action.clone());
                break;
            }
        }
        chosen
    };
    let body = match axum::body::to_bytes(body, 256 << 20).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if let Some(Action::Error {
        status,
        code,
        message,
    }) = &action
    {
        return xml_error(*status, code, message, parts.method == Method::HEAD);
    }
    if let Some(Action::Reply(body)) = &action {
        return (
            StatusCode::OK,
            [("content-type", "application/xml")],
            body.to_string(),
        )
            .into_response();
    }
    // Forward as received.
    let url = format!("{}{}", st.upstream, parts.uri);
    let mut fwd = st.http.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        if k != "content-length" && k != "transfer-encoding" {
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
    let head = parts.method == Method::HEAD;
    for (k, v) in &headers {
        // The body is re-framed here, but a HEAD answer's length is the object's.
        if (k != "content-length" || head) && k != "transfer-encoding" && k != "connection" {
            out_headers.insert(k, v.clone());
        }
    }
    let body = match action {
        Some(Action::CutAfter(n)) => {
            let head = bytes.slice(..n.min(bytes.len()));
            let stream = futures_util::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected: connection cut",
                )),
            ]);
            Body::from_stream(stream)
        }
        Some(Action::ShortBody(n)) => Body::from(bytes.slice(..n.min(bytes.len()))),
        Some(Action::TruncateWithoutToken) => {
            let text = String::from_utf8_lossy(&bytes).to_string();
            let text = text.replace(
                "<IsTruncated>false</IsTruncated>",
                "<IsTruncated>true</IsTruncated>",
            );
            let text = match (
                text.find("<NextContinuationToken>"),
                text.find("</NextContinuationToken>"),
            ) {
                (Some(a), Some(b)) => {
                    format!(
                        "{}{}",
                        &text[..a],
                        &text[b + "</NextContinuationToken>".len()..]
                    )
                }
                _ => text,
            };
            Body::from(text)
        }
        _ => Body::from(bytes),
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    r
}

/// A loopback listener that accepts connections and never answers: a hung server. Stops
/// accepting (and drops what it holds) when dropped.
pub struct Blackhole {
    pub endpoint: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Blackhole {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            // Bounded: at most 10 minutes, polled every 10 ms.
            for _ in 0..60_000 {
                if s.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if let Ok((c, _)) = listener.accept() {
                    held.push(c);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Blackhole {
            endpoint,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
