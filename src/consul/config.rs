//! How to reach Consul, following the `consul` CLI's conventions (spec consul-http-api.md §7):
//! `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN(_FILE)`, `CONSUL_HTTP_AUTH`, `CONSUL_HTTP_SSL(_VERIFY)`,
//! `CONSUL_CACERT`, `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`,
//! `CONSUL_TLS_SERVER_NAME`, each overridden by its flag. Resolved once into [`ConsulConfig`];
//! nothing downstream reads the environment.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::secret::Secret;

/// The agent address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `http://` or `https://`, with an optional path prefix (`https://gw/consul`).
    Http(Url),
    /// `unix:///path/to.sock`: HTTP over a Unix socket.
    Unix(PathBuf),
}

/// Everything needed to build a client; secrets are redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct ConsulConfig {
    pub address: Address,
    pub token: Option<Secret>,
    /// HTTP basic auth user and optional password (`CONSUL_HTTP_AUTH=user[:password]`).
    pub basic_auth: Option<(String, Option<Secret>)>,
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    /// `false` skips TLS certificate verification (`CONSUL_HTTP_SSL_VERIFY=false`).
    pub tls_verify: bool,
    /// Sent as `dc=` on every request; the agent's own datacenter when absent.
    pub datacenter: Option<String>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response; the total time is unbounded.
    pub read_timeout: Duration,
    /// Log in with an ACL auth method instead of using `token` (the agent only).
    pub login: Option<LoginConfig>,
}

/// An auth-method login (`POST /v1/acl/login`), per Consul Enterprise's `snapshot_agent.login`.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// The auth method's name.
    pub auth_method: String,
    /// Where the bearer token comes from.
    pub bearer: Bearer,
    /// `Meta` of the login token.
    pub meta: std::collections::BTreeMap<String, String>,
}

/// The bearer token of a login: given, or read from a file at every login.
#[derive(Debug, Clone)]
pub enum Bearer {
    Token(Secret),
    File(PathBuf),
}

impl Bearer {
    /// The token now (a file is read again each time: projected tokens rotate).
    ///
    /// Errors: the file cannot be read, or is empty.
    pub fn read(&self) -> Result<Secret, String> {
        match self {
            Bearer::Token(t) => Ok(t.clone()),
            Bearer::File(p) => match std::fs::read_to_string(p) {
                Ok(s) if !s.trim().is_empty() => Ok(Secret::new(s.trim())),
                Ok(_) => Err(format!("the bearer token file {} is empty", p.display())),
                Err(e) => Err(format!(
                    "reading the bearer token file {}: {e}",
                    p.display()
                )),
            },
        }
    }
}

/// Errors resolving the configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("Unknown protocol scheme: {0}")]
    UnknownScheme(String),
    #[error("invalid Consul address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("Error loading token file {path} : {reason}")]
    TokenFile { path: String, reason: String },
    #[error("both client cert and client key must be provided")]
    HalfClientCert,
    #[error("invalid boolean {value:?} in {var}")]
    BadBool { var: String, value: String },
}

/// The flags of the `consul` CLI's HTTP API options, shared by every command that talks to
/// Consul. Each falls back to its environment variable, then to the default. The same struct
/// is the top of a configuration file's `snapshot_agent` object (`http_addr`, `token`,
/// `cert_file`...; spec consul-http-api.md §8.2), the file layer of [`Self::resolve_layered`].
#[derive(
    Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize, conflate::Merge,
)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Consul")]
pub struct ConsulArgs {
    /// Consul agent address: host:port, http(s)://host:port[/prefix] or unix:///path.
    /// Env: CONSUL_HTTP_ADDR. Default 127.0.0.1:8500.
    #[arg(long = "http-addr", value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// ACL token, sent in the X-Consul-Token header. Env: CONSUL_HTTP_TOKEN.
    /// Prefer --token-file: a flag is visible to other users in the process list.
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// File holding the ACL token. Env: CONSUL_HTTP_TOKEN_FILE.
    #[arg(long = "token-file", value_name = "PATH")]
    #[serde(skip)]
    pub token_file: Option<PathBuf>,
    /// CA certificate bundle (PEM) to verify Consul's certificate, instead of the system
    /// roots. Env: CONSUL_CACERT.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Directory of CA certificates (PEM). Env: CONSUL_CAPATH.
    #[arg(long = "ca-path", value_name = "DIR")]
    pub ca_path: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS. Env: CONSUL_CLIENT_CERT.
    #[arg(long = "client-cert", value_name = "PATH")]
    #[serde(rename = "cert_file")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS. Env: CONSUL_CLIENT_KEY.
    #[arg(long = "client-key", value_name = "PATH")]
    #[serde(rename = "key_file")]
    pub client_key: Option<PathBuf>,
    /// Server name to verify Consul's certificate against (and send as SNI).
    /// Env: CONSUL_TLS_SERVER_NAME.
    #[arg(long = "tls-server-name", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Datacenter to query (sent as dc=). Default: the agent's own.
    #[arg(long, value_name = "DC")]
    pub datacenter: Option<String>,
    /// Connect timeout.
    #[arg(long = "connect-timeout", value_name = "DURATION", default_value = "10s", value_parser = crate::units::duration::parse_go_duration_arg)]
    #[serde(skip)]
    #[merge(skip)]
    pub connect_timeout: Duration,
    /// Longest pause allowed between bytes of a response before the transfer is abandoned.
    /// There is no limit on the total time: large snapshots take minutes.
    #[arg(long = "read-timeout", value_name = "DURATION", default_value = "60s", value_parser = crate::units::duration::parse_go_duration_arg)]
    #[serde(skip)]
    #[merge(skip)]
    pub read_timeout: Duration,
}

impl Default for ConsulArgs {
    /// Nothing set, with the same timeouts as the flags' defaults.
    fn default() -> Self {
        ConsulArgs {
            http_addr: None,
            token: None,
            token_file: None,
            ca_file: None,
            ca_path: None,
            client_cert: None,
            client_key: None,
            tls_server_name: None,
            datacenter: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl ConsulArgs {
    /// Resolves flags over the environment (read through `env`) over defaults.
    pub fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConsulConfig, ConfigError> {
        self.resolve_layered(env, &ConsulArgs::default())
    }

    /// The ACL token, with the consul CLI's precedence: -token-file > -token >
    /// CONSUL_HTTP_TOKEN_FILE > CONSUL_HTTP_TOKEN > the file's `token`; empty is none.
    ///
    /// # Errors
    /// A token file that cannot be read.
    fn token_layered(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        file: &ConsulArgs,
    ) -> Result<Option<Secret>, ConfigError> {
        let env_nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
        let token = if let Some(path) = &self.token_file {
            Some(read_token_file(path)?)
        } else if let Some(t) = &self.token {
            Some(t.clone())
        } else if let Some(path) = env_nonempty("CONSUL_HTTP_TOKEN_FILE") {
            Some(read_token_file(&PathBuf::from(path))?)
        } else if let Some(t) = env_nonempty("CONSUL_HTTP_TOKEN") {
            Some(Secret::new(t))
        } else {
            file.token.clone()
        };
        Ok(token.filter(|t| !t.expose().is_empty()))
    }

    /// Resolves flags over the environment over `file` (values from a configuration file,
    /// same shape) over defaults.
    pub fn resolve_layered(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        file: &ConsulArgs,
    ) -> Result<ConsulConfig, ConfigError> {
        let env_nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
        let addr = self
            .http_addr
            .clone()
            .or_else(|| env_nonempty("CONSUL_HTTP_ADDR"))
            .or_else(|| file.http_addr.clone());
        let ssl = match env_nonempty("CONSUL_HTTP_SSL") {
            Some(v) => parse_bool("CONSUL_HTTP_SSL", &v)?,
            None => false,
        };
        let (address, userinfo) = split_userinfo(parse_address(
            addr.as_deref().unwrap_or("127.0.0.1:8500"),
            ssl,
        )?);
        let tls_verify = match env_nonempty("CONSUL_HTTP_SSL_VERIFY") {
            Some(v) => parse_bool("CONSUL_HTTP_SSL_VERIFY", &v)?,
            None => true,
        };
        let token = self.token_layered(env, file)?;
        // CONSUL_HTTP_AUTH wins over credentials in the address (as the consul CLI: its
        // HttpAuth replaces the URL's user).
        let basic_auth = env_nonempty("CONSUL_HTTP_AUTH")
            .map(|a| match a.split_once(':') {
                Some((u, p)) => (u.to_string(), Some(Secret::new(p))),
                None => (a, None),
            })
            .or(userinfo);
        let path_or_env = |flag: &Option<PathBuf>, var: &str, file: &Option<PathBuf>| {
            flag.clone()
                .or_else(|| env_nonempty(var).map(PathBuf::from))
                .or_else(|| file.clone())
        };
        let client_cert = path_or_env(&self.client_cert, "CONSUL_CLIENT_CERT", &file.client_cert);
        let client_key = path_or_env(&self.client_key, "CONSUL_CLIENT_KEY", &file.client_key);
        if client_cert.is_some() != client_key.is_some() {
            return Err(ConfigError::HalfClientCert);
        }
        let tls_server_name = self
            .tls_server_name
            .clone()
            .or_else(|| env_nonempty("CONSUL_TLS_SERVER_NAME"))
            .or_else(|| file.tls_server_name.clone())
            // A `:port` suffix is stripped, as Consul does.
            .map(|n| n.rsplit_once(':').map_or(n.clone(), |(h, _)| h.to_string()));
        Ok(ConsulConfig {
            address,
            token,
            basic_auth,
            ca_file: path_or_env(&self.ca_file, "CONSUL_CACERT", &file.ca_file),
            ca_path: path_or_env(&self.ca_path, "CONSUL_CAPATH", &file.ca_path),
            client_cert,
            client_key,
            tls_server_name,
            tls_verify,
            datacenter: self
                .datacenter
                .clone()
                .or_else(|| file.datacenter.clone())
                .filter(|d| !d.is_empty()),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            login: None,
        })
    }

    /// The file-shaped view of a resolved connection, for `--print-config`: the address as a
    /// URL, the token present or not (it serializes as `<redacted>`).
    pub fn effective(c: &ConsulConfig) -> ConsulArgs {
        ConsulArgs {
            http_addr: Some(match &c.address {
                Address::Http(u) => u.as_str().trim_end_matches('/').to_string(),
                Address::Unix(p) => format!("unix://{}", p.display()),
            }),
            token: c.token.clone(),
            ca_file: c.ca_file.clone(),
            ca_path: c.ca_path.clone(),
            client_cert: c.client_cert.clone(),
            client_key: c.client_key.clone(),
            tls_server_name: c.tls_server_name.clone(),
            datacenter: c.datacenter.clone(),
            connect_timeout: c.connect_timeout,
            read_timeout: c.read_timeout,
            token_file: None,
        }
    }

    /// Resolves against the process environment.
    pub fn resolve_from_process_env(&self) -> Result<ConsulConfig, ConfigError> {
        self.resolve(&|k| std::env::var(k).ok())
    }
}

fn read_token_file(path: &PathBuf) -> Result<Secret, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim()))
        .map_err(|e| ConfigError::TokenFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ConfigError::BadBool {
            var: var.into(),
            value: v.into(),
        }),
    }
}

/// Moves `user:password@` out of an HTTP address into basic-auth credentials, so that the
/// address itself (shown in errors, logs, webhooks, drill reports and `--print-config`) never
/// carries a password.
fn split_userinfo(address: Address) -> (Address, Option<(String, Option<Secret>)>) {
    let Address::Http(mut url) = address else {
        return (address, None);
    };
    if url.username().is_empty() && url.password().is_none() {
        return (Address::Http(url), None);
    }
    // The URL keeps userinfo percent-encoded; `+` is a plus sign there, not a space.
    let decode = |s: &str| {
        let (b, mut out, mut i) = (s.as_bytes(), Vec::with_capacity(s.len()), 0);
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let user = decode(url.username());
    let password = url.password().map(|p| Secret::new(decode(p)));
    let _ = url.set_username("");
    let _ = url.set_password(None);
    (Address::Http(url), Some((user, password)))
}

/// An address for messages: without `user:password@` (a malformed address is echoed in
/// errors, so its userinfo is cut by hand).
fn redact_userinfo(addr: &str) -> String {
    let (scheme, rest) = addr.split_once("://").unwrap_or(("", addr));
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{sep}<redacted>@{}", &rest[at + 1..])
        }
        None => addr.to_string(),
    }
}

/// Parses `host:port`, `http(s)://host:port[/prefix]` or `unix:///path`. Userinfo
/// (`user:password@`) is kept here; [`ConsulArgs::resolve_layered`] moves it to basic auth.
/// Errors echo the address without its userinfo.
pub fn parse_address(addr: &str, force_https: bool) -> Result<Address, ConfigError> {
    parse_address_raw(addr, force_https).map_err(|e| match e {
        ConfigError::BadAddress { addr, reason } => ConfigError::BadAddress {
            addr: redact_userinfo(&addr),
            reason,
        },
        e => e,
    })
}

fn parse_address_raw(addr: &str, force_https: bool) -> Result<Address, ConfigError> {
    if let Some(path) = addr.strip_prefix("unix://") {
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    let with_scheme = match addr.split_once("://") {
        Some((scheme, _)) if scheme == "http" || scheme == "https" => addr.to_string(),
        Some((scheme, _)) => return Err(ConfigError::UnknownScheme(scheme.to_string())),
        None => format!("{}://{addr}", if force_https { "https" } else { "http" }),
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| ConfigError::BadAddress {
        addr: addr.to_string(),
        reason: e.to_string(),
    })?;
    if force_https && url.scheme() == "http" {
        let _ = url.set_scheme("https");
    }
    if url.host_str().is_none() {
        return Err(ConfigError::BadAddress {
            addr: addr.to_string(),
            reason: "no host".into(),
        });
    }
    Ok(Address::Http(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn userinfo_in_the_address_becomes_basic_auth_and_is_never_shown() {
        let c = resolve(
            ConsulArgs::default(),
            &[("CONSUL_HTTP_ADDR", "http://ops:s%40cret@10.0.0.1:8500")],
        )
        .expect("resolve");
        let Address::Http(u) = &c.address else {
            panic!("http")
        };
        assert_eq!(u.as_str(), "http://10.0.0.1:8500/");
        let (user, pw) = c.basic_auth.as_ref().expect("basic auth");
        assert_eq!(user, "ops");
        assert_eq!(pw.as_ref().map(Secret::expose), Some("s@cret"));
        let shown = ConsulArgs::effective(&c).http_addr.unwrap_or_default();
        assert!(!shown.contains("cret") && !shown.contains("ops"), "{shown}");
        let err = parse_address("http://ops:pw@[bad", false).expect_err("bad");
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    fn resolve(args: ConsulArgs, env: &[(&str, &str)]) -> Result<ConsulConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        args.resolve(&|k| env.get(k).cloned())
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("127.0.0.1:8500", false),
            Ok(Address::Http(
                Url::parse("http://127.0.0.1:8500").expect("url")
            ))
        );
        assert_eq!(
            parse_address("127.0.0.1:8501", true),
            Ok(Address::Http(
                Url::parse("https://127.0.0.1:8501").expect("url")
            ))
        );
        assert_eq!(
            parse_address("unix:///run/consul.sock", false),
            Ok(Address::Unix("/run/consul.sock".into()))
        );
        assert_eq!(
            parse_address("ftp://x", false),
            Err(ConfigError::UnknownScheme("ftp".into()))
        );
        let Ok(Address::Http(u)) = parse_address("https://gw.example/consul", false) else {
            panic!("parse")
        };
        assert_eq!(u.path(), "/consul");
    }

    #[test]
    fn flags_beat_env_and_token_precedence() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("tok");
        std::fs::write(&f, "  from-file\n").expect("write");
        let env = [
            ("CONSUL_HTTP_ADDR", "10.0.0.1:8500"),
            ("CONSUL_HTTP_TOKEN", "from-env"),
        ];
        let c = resolve(ConsulArgs::default(), &env).expect("resolve");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-env"));
        assert!(matches!(&c.address, Address::Http(u) if u.host_str() == Some("10.0.0.1")));

        let args = ConsulArgs {
            http_addr: Some("h:1".into()),
            token: Some(Secret::new("flag")),
            ..Default::default()
        };
        let c = resolve(args.clone(), &env).expect("resolve");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("flag"));
        assert!(matches!(&c.address, Address::Http(u) if u.host_str() == Some("h")));

        let env_file = [
            ("CONSUL_HTTP_TOKEN_FILE", f.to_str().expect("p")),
            ("CONSUL_HTTP_TOKEN", "from-env"),
        ];
        let c = resolve(ConsulArgs::default(), &env_file).expect("resolve");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-file"));
        let c = resolve(
            ConsulArgs {
                token_file: Some(f.clone()),
                ..args
            },
            &[],
        )
        .expect("resolve");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("from-file"));
    }

    #[test]
    fn errors_are_clear_and_secret_free() {
        let e = resolve(
            ConsulArgs {
                token_file: Some("/nope/tok".into()),
                ..Default::default()
            },
            &[],
        )
        .expect_err("missing file");
        assert!(e
            .to_string()
            .starts_with("Error loading token file /nope/tok : "));
        assert_eq!(
            resolve(ConsulArgs::default(), &[("CONSUL_CLIENT_CERT", "c.pem")]).expect_err("half"),
            ConfigError::HalfClientCert
        );
        let c = resolve(
            ConsulArgs::default(),
            &[
                ("CONSUL_HTTP_TOKEN", "s3cr3t"),
                ("CONSUL_HTTP_AUTH", "u:pw"),
            ],
        )
        .expect("ok");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("pw"), "{dbg}");
        let c = resolve(ConsulArgs::default(), &[("CONSUL_HTTP_SSL", "true")]).expect("ok");
        assert!(matches!(c.address, Address::Http(u) if u.scheme() == "https"));
    }
}
