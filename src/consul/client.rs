//! The Consul HTTP client: one `reqwest::Client` configured like the `consul` CLI (address,
//! TLS, token), and the typed errors of talking to Consul.
//!
//! The token travels only in the `X-Consul-Token` header, marked sensitive so that HTTP layers
//! never print it; it is never put in a URL, so no error (which may quote the URL) can carry it.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use url::Url;

use super::config::{Address, ConsulConfig, LoginConfig};
use super::secret::Secret;

/// Errors of talking to Consul. None of them can contain the ACL token.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// The client could not be built (bad CA file, bad client certificate...).
    #[error("Consul client configuration: {0}")]
    Setup(String),
    /// No HTTP answer: connection refused, TLS failure, timeout.
    #[error("error connecting to Consul agent at {addr}: {detail}")]
    Connect { addr: String, detail: String },
    /// A transfer stopped moving for longer than the read timeout.
    #[error("the transfer to the Consul agent at {addr} stalled: {detail}")]
    Stalled { addr: String, detail: String },
    /// Connected and sent the request, but the connection closed before Consul's answer
    /// (its headers) arrived: a transfer cut short, not a failure to connect.
    #[error("the snapshot transfer failed: the connection to the Consul agent at {addr} was closed before its answer arrived: {detail}")]
    Cut { addr: String, detail: String },
    /// Consul answered with a non-success status; worded as the `consul` CLI words it.
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    /// 403 `ACL not found`: the token given does not exist (in this datacenter). Consul's
    /// wording per acl/errors.go (`ErrNotFound`).
    #[error("Unexpected response code: 403 ({body}): the ACL token does not exist in this datacenter (deleted, expired, or a typo); check --token, --token-file or CONSUL_HTTP_TOKEN")]
    AclNotFound { body: String },
    /// 403 `Permission denied`: the token exists (or none was given: the anonymous token) but
    /// lacks a rule for the call. Consul's wording per acl/errors.go (`ErrPermissionDenied`).
    #[error("Unexpected response code: 403 ({body}): the token (the anonymous token when none is given) lacks a rule for this call; snapshot save and restore need acl = \"write\" (deploy/acl has the least-privilege policy)")]
    PermissionDenied { body: String },
    /// The whole snapshot was sent for a restore, and Consul did not answer in time. It may
    /// still be applying it: a second restore now would race it.
    #[error("Consul did not answer the restore within {waited} (--restore-timeout). It may still be restoring: do not start another restore; check for a leader (GET /v1/status/leader) and the servers (`consul operator raft list-peers`), then the data")]
    RestorePending { waited: String },
    /// The answer could not be decoded.
    #[error("unexpected answer from Consul to {what}: {detail}")]
    Decode { what: String, detail: String },
}

impl ConsulError {
    /// Whether retrying may help: no connection, or a 5xx / 429 answer.
    pub fn is_transient(&self) -> bool {
        match self {
            ConsulError::Connect { .. } | ConsulError::Cut { .. } => true,
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
        // Connected, and the connection ended before Consul's answer: by the error's kind
        // (hyper's incomplete message, an I/O reset), not its text.
        let cut = !e.is_connect() && !e.is_timeout() && connection_cut(e);
        detail.push_str(tls_hint(addr, e, e.is_connect()));
        if cut {
            ConsulError::Cut {
                addr: addr.to_string(),
                detail,
            }
        } else {
            ConsulError::Connect {
                addr: addr.to_string(),
                detail,
            }
        }
    }
}

/// Whether a connection ended before a whole answer arrived: hyper's incomplete message or a
/// reset, anywhere in `e`'s source chain.
fn connection_cut(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_canceled())
            || err.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                )
            })
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// What to give when a TLS handshake failed, from the TLS library's typed reason anywhere in
/// `e`'s source chain (rustls: an unknown issuer, a name the certificate is not valid for, a
/// client certificate required), or an `https://` connection the server closed while
/// connecting (`connecting`: the handshake is part of connecting; a connection cut later, with
/// the answer on its way, is no TLS matter): the operator sees what to pass, not only the
/// library's words.
fn tls_hint(addr: &str, e: &(dyn std::error::Error + 'static), connecting: bool) -> &'static str {
    use rustls::{AlertDescription, CertificateError, Error as TlsError};
    const CA: &str = " (the server's certificate is not signed by a CA this client trusts: give the CA that signed it with --ca-file or CONSUL_CACERT)";
    const NAME: &str = " (the server's certificate is not valid for this address: give the name it carries with --tls-server-name, e.g. server.dc1.consul)";
    const CLIENT_CERT: &str = " (the server closed the TLS handshake: if it requires a client certificate (verify_incoming), give --client-cert and --client-key)";
    let mut cur = Some(e);
    while let Some(err) = cur {
        let tls = tls_error_in(err);
        if let Some(t) = tls {
            return match t {
                TlsError::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => CA,
                TlsError::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => NAME,
                TlsError::AlertReceived(AlertDescription::CertificateRequired) => CLIENT_CERT,
                _ => "",
            };
        }
        cur = err.source();
    }
    if connecting && addr.starts_with("https://") && connection_cut(e) {
        CLIENT_CERT
    } else {
        ""
    }
}

/// The rustls error `err` is, or that the I/O errors wrapped around it carry as their inner
/// error (an I/O error's `source` skips its inner error, so the chain alone never shows it;
/// the TLS layers wrap it in one I/O error or two).
fn tls_error_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(err);
    for _ in 0..4 {
        let e = cur?;
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        cur = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
    }
    None
}

/// Largest JSON answer read, in bytes: Consul's answers to the calls the agent makes are a few
/// KiB; a larger one is an error, never a growing buffer.
pub const MAX_JSON_BODY: usize = 8 << 20;

/// Reads an answer's body, at most [`MAX_JSON_BODY`] bytes; more is an error naming `what`.
pub async fn bounded_body(resp: Response, what: &str, addr: &str) -> Result<Vec<u8>, ConsulError> {
    bounded_body_max(resp, what, addr, MAX_JSON_BODY).await
}

/// [`bounded_body`] with a bound of `max` bytes (a KV listing may be larger than the
/// agent's own calls).
pub async fn bounded_body_max(
    mut resp: Response,
    what: &str,
    addr: &str,
    max: usize,
) -> Result<Vec<u8>, ConsulError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ConsulError::from_transport(addr, &e))?
    {
        if out.len() + chunk.len() > max {
            return Err(ConsulError::Decode {
                what: what.to_string(),
                detail: format!(
                    "the answer is larger than {} MiB; not read further",
                    max >> 20
                ),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A configured Consul HTTP client.
#[derive(Debug, Clone)]
pub struct ConsulClient {
    http: reqwest::Client,
    /// The same client without a read timeout, for a restore: Consul answers a restore only
    /// once it has applied it, minutes later for a large snapshot (bounded separately).
    http_restore: reqwest::Client,
    read_timeout: std::time::Duration,
    /// Deadline of every request but the snapshot streams (set below the session TTL by the
    /// daemon, so that no coordination call can outlive the lock it serves).
    call_timeout: Option<std::time::Duration>,
    base: Url,
    display_addr: String,
    datacenter: Option<String>,
    /// The ACL token, sent on every request; shared by clones, so that a login reaches every
    /// task holding a clone.
    auth: std::sync::Arc<Auth>,
}

/// The token a client sends, and the login that gives it (if any).
#[derive(Debug, Default)]
struct Auth {
    token: std::sync::RwLock<Option<Secret>>,
    login: Option<LoginConfig>,
    /// Counts logins: tasks compare it to know the token changed (and re-register).
    generation: std::sync::atomic::AtomicU64,
    /// AccessorID of the login token (not a secret), for messages and logout.
    accessor: std::sync::Mutex<Option<String>>,
    /// One login at a time.
    relogin: tokio::sync::Mutex<()>,
}

impl ConsulClient {
    /// Builds the client. Errors: unreadable or invalid CA / client certificate files.
    pub fn new(cfg: &ConsulConfig) -> Result<Self, ConsulError> {
        let (http, base, display_addr) = Self::build(cfg, Some(cfg.read_timeout))?;
        let (http_restore, _, _) = Self::build(cfg, None)?;
        if let Some(t) = &cfg.token {
            HeaderValue::from_str(t.expose()).map_err(|_| {
                ConsulError::Setup(
                    "the ACL token contains characters not allowed in an HTTP header".into(),
                )
            })?;
        }
        Ok(ConsulClient {
            http,
            http_restore,
            read_timeout: cfg.read_timeout,
            call_timeout: Some(cfg.connect_timeout + cfg.read_timeout),
            base,
            display_addr,
            datacenter: cfg.datacenter.clone(),
            auth: std::sync::Arc::new(Auth {
                // With a login, the configured token is not used.
                token: std::sync::RwLock::new(cfg.token.clone().filter(|_| cfg.login.is_none())),
                login: cfg.login.clone(),
                ..Auth::default()
            }),
        })
    }

    /// The token header value now (sensitive: HTTP layers never print it).
    fn token_header(&self) -> Option<HeaderValue> {
        let token = self.auth.token.read().ok()?.clone()?;
        let mut v = HeaderValue::from_str(token.expose()).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// Whether this client logs in with an auth method.
    pub fn has_login(&self) -> bool {
        self.auth.login.is_some()
    }

    /// How many logins this client (and its clones) made: it moves when the token changes.
    pub fn login_generation(&self) -> u64 {
        self.auth
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `POST /v1/acl/login` with the configured auth method and bearer token (read again from
    /// its file); the token it returns is sent from then on by this client and its clones.
    /// Does nothing without a login configured.
    ///
    /// Errors: the bearer token file cannot be read; Consul refuses the login (403: the
    /// bearer token is not valid for the method, or no binding rule matched).
    pub async fn login(&self) -> Result<(), ConsulError> {
        let Some(login) = &self.auth.login else {
            return Ok(());
        };
        let bearer = login.bearer.read().map_err(ConsulError::Setup)?;
        let mut req = self.bare_request(Method::POST, "/v1/acl/login");
        req = req.json(&serde_json::json!({
            "AuthMethod": login.auth_method,
            "BearerToken": bearer.expose(),
            "Meta": login.meta,
        }));
        let resp = self.send_once(req).await?;
        let body = bounded_body(resp, "/v1/acl/login", &self.display_addr).await?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ConsulError::Decode {
                what: "/v1/acl/login".into(),
                detail: e.to_string(),
            })?;
        let (Some(secret), accessor) = (v["SecretID"].as_str(), v["AccessorID"].as_str()) else {
            return Err(ConsulError::Decode {
                what: "/v1/acl/login".into(),
                detail: "no SecretID in the answer".into(),
            });
        };
        HeaderValue::from_str(secret).map_err(|_| ConsulError::Decode {
            what: "/v1/acl/login".into(),
            detail: "the token is not a valid header value".into(),
        })?;
        if let Ok(mut t) = self.auth.token.write() {
            *t = Some(Secret::new(secret));
        }
        if let Ok(mut a) = self.auth.accessor.lock() {
            *a = accessor.map(str::to_string);
        }
        self.auth
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(auth_method = %login.auth_method, accessor = accessor.unwrap_or("?"), "logged in to Consul");
        Ok(())
    }

    /// Logs in again unless another task already did since `seen` (a
    /// [`Self::login_generation`]).
    async fn relogin(&self, seen: u64) -> Result<(), ConsulError> {
        let _one = self.auth.relogin.lock().await;
        if self.login_generation() != seen {
            return Ok(());
        }
        tracing::warn!("Consul no longer knows the login token (ACL not found); logging in again");
        self.login().await
    }

    /// `POST /v1/acl/logout`: destroys the login token. Does nothing without a login, or
    /// before one. Errors are Consul's.
    pub async fn logout(&self) -> Result<(), ConsulError> {
        if self.auth.login.is_none() || self.login_generation() == 0 {
            return Ok(());
        }
        let mut req = self.bare_request(Method::POST, "/v1/acl/logout");
        if let Some(v) = self.token_header() {
            req = req.header("X-Consul-Token", v);
        }
        self.send_once(req).await?;
        let accessor = self.auth.accessor.lock().ok().and_then(|a| a.clone());
        tracing::info!(
            accessor = accessor.as_deref().unwrap_or("?"),
            "logged out of Consul"
        );
        if let Ok(mut t) = self.auth.token.write() {
            *t = None;
        }
        Ok(())
    }

    /// The same client with a deadline on every call but the snapshot streams (a blocking
    /// query gets its wait on top). Without it the deadline is the connect timeout plus the
    /// read timeout: a small answer gets one read timeout's worth in all, so a server that
    /// trickles a byte at a time cannot keep a cron job running forever.
    pub fn with_call_timeout(mut self, d: std::time::Duration) -> Self {
        self.call_timeout = Some(d);
        self
    }

    /// The deadline of non-streaming calls, if any.
    pub fn call_timeout(&self) -> Option<std::time::Duration> {
        self.call_timeout
    }

    /// The longest silence allowed while bytes flow.
    pub fn read_timeout(&self) -> std::time::Duration {
        self.read_timeout
    }

    /// [`Self::request`] on the client without a read timeout (restore only).
    pub fn restore_request(&self, path: &str) -> RequestBuilder {
        let url = self
            .request(Method::PUT, path, &[])
            .build()
            .map(|r| r.url().clone());
        match url {
            Ok(url) => {
                let req = self.http_restore.request(Method::PUT, url);
                match self.token_header() {
                    Some(v) => req.header("X-Consul-Token", v),
                    None => req,
                }
            }
            // Unreachable for our own paths; keep the error for send() to report.
            Err(_) => self.request(Method::PUT, path, &[]),
        }
    }

    fn build(
        cfg: &ConsulConfig,
        read_timeout: Option<std::time::Duration>,
    ) -> Result<(reqwest::Client, Url, String), ConsulError> {
        let mut b = reqwest::Client::builder().connect_timeout(cfg.connect_timeout);
        if let Some(t) = read_timeout {
            b = b.read_timeout(t);
        }
        let mut b = b
            .user_agent(concat!("consul-snapshot-agent/", env!("CARGO_PKG_VERSION")))
            // Consul answers plain bytes; never let a proxy env var reroute snapshot traffic
            // silently. (HTTP(S)_PROXY is honoured by curl but not by the consul CLI either.)
            .no_proxy();
        // The ACL token is added per request (see `request`): a login can replace it.
        let mut headers = HeaderMap::new();
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
        Ok((http, base, display_addr))
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
        let mut req = self.http.request(method, url);
        if let Some(v) = self.token_header() {
            req = req.header("X-Consul-Token", v);
        }
        match self.call_timeout {
            Some(t) if path != "/v1/snapshot" => req.timeout(t),
            _ => req,
        }
    }

    /// A request without a token and without `dc=` (login, logout), with the call deadline.
    fn bare_request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        let req = self.http.request(method, url);
        match self.call_timeout {
            Some(t) => req.timeout(t),
            None => req,
        }
    }

    /// Sends `req`; a non-success status becomes a [`ConsulError`] ([`classify`]). With a
    /// login, an answer "ACL not found" (the login token was deleted or expired) logs in again
    /// and sends the request once more with the new token (when its body can be replayed).
    pub async fn send(&self, req: RequestBuilder) -> Result<Response, ConsulError> {
        let (http, built) = req.build_split();
        let request = built.map_err(|e| ConsulError::from_transport(&self.display_addr, &e))?;
        let again = if self.has_login() {
            request.try_clone()
        } else {
            None
        };
        let seen = self.login_generation();
        match self.execute(&http, request).await {
            Err(ConsulError::AclNotFound { body }) if self.has_login() => {
                self.relogin(seen).await?;
                match (again, self.token_header()) {
                    (Some(mut again), Some(token)) => {
                        again.headers_mut().insert("X-Consul-Token", token);
                        self.execute(&http, again).await
                    }
                    _ => Err(ConsulError::AclNotFound { body }),
                }
            }
            other => other,
        }
    }

    /// Sends `req` once, without logging in again (login and logout themselves).
    async fn send_once(&self, req: RequestBuilder) -> Result<Response, ConsulError> {
        let (http, built) = req.build_split();
        let request = built.map_err(|e| ConsulError::from_transport(&self.display_addr, &e))?;
        self.execute(&http, request).await
    }

    async fn execute(
        &self,
        http: &reqwest::Client,
        request: reqwest::Request,
    ) -> Result<Response, ConsulError> {
        let resp = http
            .execute(request)
            .await
            .map_err(|e| ConsulError::from_transport(&self.display_addr, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(status_error(resp).await)
    }

    /// `GET /v1/operator/raft/configuration` (with `?stale`: any server answers, as during an
    /// outage): the body, for [`crate::restore::peers::from_operator`].
    pub async fn raft_configuration(&self) -> Result<Vec<u8>, ConsulError> {
        let resp = self
            .send(self.request(
                Method::GET,
                "/v1/operator/raft/configuration",
                &[("stale", "")],
            ))
            .await?;
        bounded_body(resp, "/v1/operator/raft/configuration", &self.display_addr).await
    }

    /// `GET /v1/agent/self`: the agent's datacenter, node name and version.
    pub async fn agent_self(&self) -> Result<AgentSelf, ConsulError> {
        let resp = self
            .send(self.request(Method::GET, "/v1/agent/self", &[]))
            .await?;
        let body = bounded_body(resp, "/v1/agent/self", &self.display_addr).await?;
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

/// Bytes of an error body read at most: Consul's error texts are one line; a proxy's HTML page
/// or a hostile server's endless body is not read further.
pub const MAX_ERROR_BODY: usize = 4096;

/// Reads a non-success response into a [`ConsulError`] ([`classify`]): at most
/// [`MAX_ERROR_BODY`] bytes of its body, trimmed; the rest is never read.
pub async fn status_error(mut resp: Response) -> ConsulError {
    let status = resp.status();
    let mut raw = Vec::new();
    let mut cut = false;
    // Each chunk is bounded by the read timeout; the loop by the byte budget.
    while let Ok(Some(chunk)) = resp.chunk().await {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_ERROR_BODY {
            raw.truncate(MAX_ERROR_BODY);
            cut = true;
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let mut body = text.trim().trim_end_matches('\u{FFFD}').to_string();
    if cut {
        body.push('…');
    }
    if body.is_empty() {
        body = status.canonical_reason().unwrap_or("").to_string();
    }
    classify(status.as_u16(), body)
}

/// A non-success answer as a typed error: Consul's documented 403 bodies (acl/errors.go) get
/// their own kinds, so that nothing else matches on Consul's text.
pub fn classify(status: u16, body: String) -> ConsulError {
    match status {
        403 if body.starts_with("ACL not found") => ConsulError::AclNotFound { body },
        403 if body.starts_with("Permission denied") => ConsulError::PermissionDenied { body },
        _ => ConsulError::Status { status, body },
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
