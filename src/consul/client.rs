//! The Consul HTTP client: one `reqwest::Client` configured like the `consul` CLI (address,
//! TLS, token), and the typed errors of talking to Consul.
//!
//! The token travels only in the `X-Consul-Token` header, marked sensitive so that HTTP layers
//! never print it; it is never put in a URL, so no error (which may quote the URL) can carry it.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::config::{Address, ConsulConfig};

/// Errors of talking to Consul. None of them can contain the ACL token.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// The client could not be built (bad CA file, bad client certificate...).
    #[error("Consul client configuration: {0}")]
    Setup(String),
    /// No HTTP answer: connection refused, TLS failure, timeout.
    #[error("error connecting to Consul agent at {addr}: {detail}")]
    Connect { addr: String, detail: String },
    /// Consul answered with a non-success status; worded as the `consul` CLI words it.
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    /// The answer could not be decoded.
    #[error("unexpected answer from Consul to {what}: {detail}")]
    Decode { what: String, detail: String },
}

impl ConsulError {
    /// Whether retrying may help: no connection, or a 5xx / 429 answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ConsulError::Connect { .. } => true,
            ConsulError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Builds the error for a transport failure, with the whole cause chain (TLS reasons live
    /// deep in it) but without anything secret: reqwest errors quote only the URL.
    pub fn from_transport(addr: &str, e: &reqwest::Error) -> Self {
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        ConsulError::Connect {
            addr: addr.to_string(),
            detail,
        }
    }
}

/// A configured Consul HTTP client.
#[derive(Debug, Clone)]
pub struct ConsulClient {
    http: reqwest::Client,
    base: Url,
    display_addr: String,
    datacenter: Option<String>,
}

impl ConsulClient {
    /// Builds the client. Errors: unreadable or invalid CA / client certificate files.
    pub fn new(cfg: &ConsulConfig) -> Result<Self, ConsulError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .user_agent(concat!("consul-snapshot-agent/", env!("CARGO_PKG_VERSION")))
            // Consul answers plain bytes; never let a proxy env var reroute snapshot traffic
            // silently. (HTTP(S)_PROXY is honoured by curl but not by the consul CLI either.)
            .no_proxy();
        let mut headers = HeaderMap::new();
        if let Some(token) = &cfg.token {
            let mut v = HeaderValue::from_str(token.expose()).map_err(|_| {
                ConsulError::Setup(
                    "the ACL token contains characters not allowed in an HTTP header".into(),
                )
            })?;
            v.set_sensitive(true);
            headers.insert("X-Consul-Token", v);
        }
        if let Some((user, pass)) = &cfg.basic_auth {
            use base64::Engine;
            let raw = format!("{user}:{}", pass.as_ref().map_or("", |p| p.expose()));
            let mut v = HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
            .map_err(|_| ConsulError::Setup("invalid CONSUL_HTTP_AUTH".into()))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        b = b.default_headers(headers);

        let (base, display_addr) = match &cfg.address {
            Address::Http(url) => {
                let mut base = url.clone();
                if let Some(name) = &cfg.tls_server_name {
                    // Verify against (and send SNI for) the configured name while connecting to
                    // the configured address: resolve the name to the address.
                    let port = url.port_or_known_default().unwrap_or(8501);
                    let addrs: Vec<std::net::SocketAddr> = match url.host() {
                        Some(url::Host::Ipv4(ip)) => vec![(ip, port).into()],
                        Some(url::Host::Ipv6(ip)) => vec![(ip, port).into()],
                        Some(url::Host::Domain(d)) => {
                            std::net::ToSocketAddrs::to_socket_addrs(&(d, port))
                                .map_err(|e| ConsulError::Setup(format!("resolving {d}: {e}")))?
                                .collect()
                        }
                        None => vec![],
                    };
                    b = b.resolve_to_addrs(name, &addrs);
                    base.set_host(Some(name)).map_err(|e| {
                        ConsulError::Setup(format!("tls server name {name:?}: {e}"))
                    })?;
                }
                (base, url.as_str().trim_end_matches('/').to_string())
            }
            Address::Unix(path) => {
                b = b.unix_socket(path.clone());
                (
                    Url::parse("http://localhost/")
                        .map_err(|e| ConsulError::Setup(e.to_string()))?,
                    format!("unix://{}", path.display()),
                )
            }
        };
        b = configure_tls(b, cfg)?;
        let http = b.build().map_err(|e| ConsulError::Setup(e.to_string()))?;
        Ok(ConsulClient {
            http,
            base,
            display_addr,
            datacenter: cfg.datacenter.clone(),
        })
    }

    /// The address, for messages (no secrets in it).
    pub fn addr(&self) -> &str {
        &self.display_addr
    }

    /// A request to `path` (e.g. `/v1/snapshot`) with `dc=` added when configured. A pair with
    /// an empty value is sent as a bare presence flag (`?stale`), as the Go client sends it.
    pub fn request(&self, method: Method, path: &str, query: &[(&str, &str)]) -> RequestBuilder {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        let dc = self.datacenter.as_deref().map(|d| ("dc", d));
        let parts: Vec<String> = query
            .iter()
            .copied()
            .chain(dc)
            .map(|(k, v)| {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                if v.is_empty() {
                    enc(k)
                } else {
                    format!("{}={}", enc(k), enc(v))
                }
            })
            .collect();
        url.set_query((!parts.is_empty()).then(|| parts.join("&")).as_deref());
        self.http.request(method, url)
    }

    /// Sends `req`; a non-success status becomes [`ConsulError::Status`] with Consul's body.
    pub async fn send(&self, req: RequestBuilder) -> Result<Response, ConsulError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ConsulError::from_transport(&self.display_addr, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(status_error(resp).await)
    }

    /// `GET /v1/agent/self`: the agent's datacenter, node name and version.
    pub async fn agent_self(&self) -> Result<AgentSelf, ConsulError> {
        let resp = self
            .send(self.request(Method::GET, "/v1/agent/self", &[]))
            .await?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| ConsulError::from_transport(&self.display_addr, &e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ConsulError::Decode {
                what: "/v1/agent/self".into(),
                detail: e.to_string(),
            })?;
        let field = |k: &str| v["Config"][k].as_str().unwrap_or_default().to_string();
        Ok(AgentSelf {
            datacenter: field("Datacenter"),
            node_name: field("NodeName"),
            version: field("Version"),
        })
    }
}

/// Reads a non-success response into [`ConsulError::Status`] (body trimmed, bounded).
pub async fn status_error(resp: Response) -> ConsulError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let mut body = body.trim().to_string();
    if body.len() > 4096 {
        body.truncate(
            body.char_indices()
                .take_while(|(i, _)| *i < 4096)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8()),
        );
        body.push('…');
    }
    if body.is_empty() {
        body = status.canonical_reason().unwrap_or("").to_string();
    }
    ConsulError::Status {
        status: status.as_u16(),
        body,
    }
}

fn configure_tls(
    mut b: reqwest::ClientBuilder,
    cfg: &ConsulConfig,
) -> Result<reqwest::ClientBuilder, ConsulError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ConsulError::Setup(format!("reading {}: {e}", p.display())))
    };
    let mut roots = Vec::new();
    if let Some(f) = &cfg.ca_file {
        roots.extend(
            reqwest::Certificate::from_pem_bundle(&read(f)?)
                .map_err(|e| ConsulError::Setup(format!("CA file {}: {e}", f.display())))?,
        );
    }
    if let Some(dir) = &cfg.ca_path {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ConsulError::Setup(format!("CA path {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_file() {
                if let Ok(certs) = reqwest::Certificate::from_pem_bundle(&read(&p)?) {
                    roots.extend(certs);
                }
            }
        }
    }
    if !roots.is_empty() {
        // As the consul CLI: a CA file or path replaces the system roots.
        b = b.tls_certs_only(roots);
    }
    if let (Some(cert), Some(key)) = (&cfg.client_cert, &cfg.client_key) {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        b = b.identity(
            reqwest::Identity::from_pem(&pem)
                .map_err(|e| ConsulError::Setup(format!("client certificate: {e}")))?,
        );
    }
    if !cfg.tls_verify {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    Ok(b)
}

/// The parts of `/v1/agent/self` the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSelf {
    pub datacenter: String,
    pub node_name: String,
    pub version: String,
}

/// Exponential back-off delays: `base`, `2×base`, ... capped at `max`.
pub fn backoff(base: Duration, attempt: u32, max: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.min(16)).min(max)
}

/// Whether `status` is worth retrying.
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}
