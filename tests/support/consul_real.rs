//! A real Consul server for tests: `consul agent -dev` (Debian 11's Consul 1.8.7, installed by
//! tests/servers.sh; `$CONSUL_BIN` points at another binary) on free loopback ports, stopped by
//! pid on drop. A start that loses a port race ("address already in use") is retried on new
//! ports. Recipe: shared/real-consul.md.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::net::free_port;

/// The master token of an ACL-enabled server started by [`RealConsul::with_acl`].
pub const MASTER: &str = "3f7c2b1e-0000-4000-8000-00000000beef";

/// The `-hcl` that turns ACLs on with [`MASTER`] (1.8.7's spelling: `tokens.master`).
pub fn acl_hcl() -> String {
    format!(r#"acl {{ enabled = true default_policy = "deny" tokens {{ master = "{MASTER}" }} }}"#)
}

fn consul_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CONSUL_BIN") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/consul-snapshot-agent/consul/bin/consul");
    if cached.is_file() {
        return cached;
    }
    PathBuf::from("consul")
}

/// One running Consul dev server.
pub struct RealConsul {
    child: Option<Child>,
    pub http_port: u16,
    /// The HTTP address, `127.0.0.1:PORT`.
    pub addr: String,
    /// The master token when ACLs are on.
    pub token: Option<String>,
    /// The datacenter (dc1 unless asked otherwise).
    pub datacenter: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// An HTTP answer: status and body.
pub type Answer = (u16, String);

impl RealConsul {
    /// A dev server without ACLs.
    pub fn start() -> Self {
        Self::start_with("dc1", &[])
    }

    /// A dev server with ACLs on (default deny) and [`MASTER`] as the master token.
    pub fn with_acl() -> Self {
        let mut c = Self::start_with("dc1", &[acl_hcl().as_str()]);
        c.token = Some(MASTER.to_string());
        c
    }

    /// A dev server of `datacenter` with extra `-hcl` snippets. Sessions may be as short as
    /// 1s (`session_ttl_min`, a real server setting), so hand-over tests stay short.
    pub fn start_with(datacenter: &str, hcl: &[&str]) -> Self {
        let mut all = vec!["session_ttl_min = \"1s\""];
        all.extend_from_slice(hcl);
        Self::start_exact(datacenter, &all)
    }

    /// A dev server with exactly these `-hcl` snippets (Consul's defaults otherwise: the
    /// contract test compares defaults).
    pub fn start_exact(datacenter: &str, hcl: &[&str]) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(datacenter, hcl) {
                Ok(c) => return c,
                Err(e) if e.contains("address already in use") => last = e,
                Err(e) => panic!("consul did not start: {e}"),
            }
        }
        panic!("consul did not start after 5 port races: {last}");
    }

    fn try_start(datacenter: &str, hcl: &[&str]) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("consul.log");
        let ports: Vec<u16> = (0..6).map(|_| free_port()).collect();
        let mut cmd = Command::new(consul_bin());
        cmd.args([
            "agent",
            "-dev",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
        ])
        .args([
            "-datacenter",
            datacenter,
            "-node",
            &format!("n-{}", ports[0]),
        ])
        .args(["-http-port", &ports[0].to_string()])
        .args(["-dns-port", &ports[1].to_string()])
        .args(["-grpc-port", &ports[2].to_string()])
        .args(["-serf-lan-port", &ports[3].to_string()])
        .args(["-serf-wan-port", &ports[4].to_string()])
        .args(["-server-port", &ports[5].to_string()])
        .args(["-hcl", "disable_update_check = true"]);
        for h in hcl {
            cmd.args(["-hcl", h]);
        }
        // Both streams to the log: Consul says why it could not start (a port taken between
        // the probe and the bind) on stderr, and that is what a retry looks for.
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdout(out)
            .stderr(err)
            .env_remove("CONSUL_HTTP_ADDR")
            .env_remove("CONSUL_HTTP_TOKEN")
            .spawn()
            .map_err(|e| {
                format!(
                    "spawn {}: {e} (tests/servers.sh installs it)",
                    consul_bin().display()
                )
            })?;
        let mut c = RealConsul {
            child: Some(child),
            http_port: ports[0],
            addr: format!("127.0.0.1:{}", ports[0]),
            token: None,
            datacenter: datacenter.to_string(),
            log,
            _dir: dir,
        };
        // A leader within ~0.2 s normally; allow 30 s on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = c.child.as_mut().map(Child::try_wait) {
                return Err(format!("exited {status}: {}", c.log()));
            }
            let (code, body) = c.get("/v1/status/leader");
            if code == 200 && body.trim().trim_matches('"').contains(':') {
                return Ok(c);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("no leader within 30 s: {}", c.log()))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` with the master token (if any).
    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, self.token.as_deref(), None)
    }

    /// `PUT path` with `body`, with the master token (if any).
    pub fn put(&self, path: &str, body: &[u8]) -> Answer {
        self.call("PUT", path, self.token.as_deref(), Some(body))
    }

    /// Any call, with the token given (none: anonymous). Bounded to 30 s.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Answer {
        call(&self.url(), method, path, token, body)
    }

    /// Writes a KV entry (master token).
    pub fn kv_put(&self, key: &str, value: &[u8]) {
        let (code, body) = self.put(&format!("/v1/kv/{key}"), value);
        assert_eq!(code, 200, "kv put {key}: {body}");
    }

    /// The raw value of a KV entry, `None` when absent.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let (code, body) = self.get(&format!("/v1/kv/{key}?raw"));
        (code == 200).then(|| body.into_bytes())
    }

    /// The keys under `prefix`.
    pub fn kv_keys(&self, prefix: &str) -> Vec<String> {
        let (code, body) = self.get(&format!("/v1/kv/{prefix}?keys"));
        if code == 404 {
            return Vec::new();
        }
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("keys json")
    }

    /// A token holding the policy `rules` (HCL), made with the master token: its SecretID.
    pub fn token_with_policy(&self, name: &str, rules: &str) -> String {
        let (code, body) = self.put(
            "/v1/acl/policy",
            serde_json::json!({"Name": name, "Rules": rules})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(code, 200, "policy: {body}");
        let (code, body) = self.put(
            "/v1/acl/token",
            serde_json::json!({"Description": name, "Policies": [{"Name": name}]})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(code, 200, "token: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("token json");
        v["SecretID"].as_str().expect("secret").to_string()
    }
}

/// One HTTP call to a loopback server: status and body (`(0, error)` when nothing answered).
pub fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .expect("client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.header("X-Consul-Token", t);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        match req.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                (code, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    })
}

impl Drop for RealConsul {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first (a clean leave), then SIGKILL if it lingers.
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
