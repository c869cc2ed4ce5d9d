//! A real Azure Blob Storage API for tests: Azurite (Microsoft's emulator, from the npm
//! registry; `.ci/run` and `tests/run.sh` install it), started on a free loopback port with a
//! fresh container, stopped by pid on drop. The harness finds `azurite-blob` in
//! `$AZURITE_BIN`, `~/.cache/consul-snapshot-agent/azurite/node_modules/.bin` or the PATH.
//!
//! With `AZURE_TEST_ACCOUNT`, `AZURE_TEST_KEY` and `AZURE_TEST_CONTAINER` set, the tests use
//! that real account and container instead, each under a fresh random prefix.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Azurite's well-known development account and key (documented by Microsoft).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Where the Azure Blob service for this test lives.
pub struct AzureTarget {
    pub endpoint: Option<String>,
    pub account: String,
    pub key: String,
    pub container: String,
    /// A fresh prefix for this test (`t-<random>/`).
    pub prefix: String,
    azurite: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

fn azurite_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("AZURITE_BIN") {
        return PathBuf::from(p);
    }
    let cached = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/consul-snapshot-agent/azurite/node_modules/.bin/azurite-blob");
    if cached.is_file() {
        return cached;
    }
    PathBuf::from("azurite-blob")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// The Azure target for one test.
pub fn azure_target() -> AzureTarget {
    if let (Ok(account), Ok(key), Ok(container)) = (
        std::env::var("AZURE_TEST_ACCOUNT"),
        std::env::var("AZURE_TEST_KEY"),
        std::env::var("AZURE_TEST_CONTAINER"),
    ) {
        return AzureTarget {
            endpoint: std::env::var("AZURE_TEST_ENDPOINT").ok(),
            account,
            key,
            container,
            prefix: format!("t-{}/", random()),
            azurite: None,
            _dir: None,
        };
    }
    let dir = tempfile::tempdir().expect("tmp");
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(azurite_bin())
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--disableTelemetry", "--silent"])
            .args(["--skipApiVersionCheck", "--loose"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite-blob (npm install azurite; see README)");
        let mut target = AzureTarget {
            endpoint: Some(format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}")),
            account: DEV_ACCOUNT.into(),
            key: DEV_KEY.into(),
            container: format!("c{}", random()),
            prefix: "consul-snapshot/".into(),
            azurite: Some(child),
            _dir: None,
        };
        if super::wait_for_port(port, Duration::from_secs(30))
            && target.create_container(port).is_ok()
        {
            target._dir = Some(dir);
            return target;
        }
        // Port taken by someone else between the probe and the bind: try another.
    }
    panic!("Azurite did not start on a free port");
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // RFC 2104 over SHA-256 (block size 64).
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

impl AzureTarget {
    /// Create Container, signed with the account's shared key (Azurite starts empty and the
    /// agent, like Consul Enterprise's, expects the container to exist).
    fn create_container(&self, port: u16) -> std::io::Result<()> {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let path = format!("/{}/{}", self.account, self.container);
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{}{path}\nrestype:container",
            self.account
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.decode(&self.key).map_err(std::io::Error::other)?;
        let sig = b64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        let request = format!(
            "PUT {path}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.account
        );
        let answer = super::raw_http(port, &request)?;
        if answer.starts_with("HTTP/1.1 201") {
            Ok(())
        } else {
            Err(std::io::Error::other(
                answer.lines().next().unwrap_or("").to_string(),
            ))
        }
    }

    /// The agent's flags for this target; the key goes in the environment (`cli_env`).
    pub fn cli_args(&self) -> Vec<String> {
        let mut a = vec![
            "--azure-blob-account-name".to_string(),
            self.account.clone(),
            "--azure-blob-container-name".into(),
            self.container.clone(),
            "--azure-blob-key-prefix".into(),
            self.prefix.clone(),
        ];
        if let Some(e) = &self.endpoint {
            a.extend(["--azure-blob-endpoint".into(), e.clone()]);
        }
        a
    }

    /// The environment carrying the account key.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        vec![("AZURE_STORAGE_ACCOUNT_KEY".into(), self.key.clone())]
    }

    /// Stops Azurite now (a dead endpoint for the tests that need one).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.azurite.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for AzureTarget {
    fn drop(&mut self) {
        self.stop();
    }
}
