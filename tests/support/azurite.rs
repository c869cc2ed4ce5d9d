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
            prefix: format!("t-{}/", super::net::random()),
            azurite: None,
            _dir: None,
        };
    }
    let dir = tempfile::tempdir().expect("tmp");
    for _ in 0..5 {
        let port = super::net::free_port();
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
            container: format!("c{}", super::net::random()),
            prefix: "consul-snapshot/".into(),
            azurite: Some(child),
            _dir: None,
        };
        if super::net::wait_for_port(port, Duration::from_secs(30))
            && target.create_container(port).is_ok()
        {
            target._dir = Some(dir);
            return target;
        }
        // Port taken by someone else between the probe and the bind: try another.
    }
    panic!("Azurite did not start on a free port");
}

/// The Blob service version the harness's own requests speak.
const API_VERSION: &str = "2021-08-06";

fn http_date() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
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
    /// The `Authorization` header value of a request signed with the account's shared key
    /// (string-to-sign per Azure's "Authorize with Shared Key", version 2015-02-21 and later):
    /// `verb`, the body length (`None` for no body), the `x-ms-*` headers in sorted order,
    /// the URL path and the canonicalized query (`\nname:value` lines, sorted).
    fn authorization(
        &self,
        verb: &str,
        len: Option<u64>,
        ms_headers: &[(&str, &str)],
        path: &str,
        query: &str,
    ) -> std::io::Result<String> {
        let len = len.map(|n| n.to_string()).unwrap_or_default();
        let headers: String = ms_headers
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect();
        let string_to_sign = format!(
            "{verb}\n\n\n{len}\n\n\n\n\n\n\n\n\n{headers}/{}{path}{query}",
            self.account
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.decode(&self.key).map_err(std::io::Error::other)?;
        let sig = b64.encode(hmac_sha256(&key, string_to_sign.as_bytes()));
        Ok(format!("SharedKey {}:{sig}", self.account))
    }

    /// Create Container, signed with the account's shared key (Azurite starts empty and the
    /// agent, like Consul Enterprise's, expects the container to exist).
    fn create_container(&self, port: u16) -> std::io::Result<()> {
        let date = http_date();
        let path = format!("/{}/{}", self.account, self.container);
        let auth = self.authorization(
            "PUT",
            None,
            &[("x-ms-date", &date), ("x-ms-version", API_VERSION)],
            &path,
            "\nrestype:container",
        )?;
        let request = format!(
            "PUT {path}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: {API_VERSION}\r\nAuthorization: {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = super::net::raw_http(port, &request)?;
        if answer.starts_with("HTTP/1.1 201") {
            Ok(())
        } else {
            Err(std::io::Error::other(
                answer.lines().next().unwrap_or("").to_string(),
            ))
        }
    }

    /// The URL of `blob` in the container, and its path as the shared key signs it (what
    /// follows the authority: /account/container/blob on Azurite).
    fn blob_url(&self, blob: &str) -> (String, String) {
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", self.account));
        let url = format!("{base}/{}/{blob}", self.container);
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_default();
        (url, path)
    }

    /// A Put Blob of `len` bytes to `blob` (a name inside the container and prefix-free):
    /// its URL and the headers (`Name: value`) that sign it with the account's shared key,
    /// valid for 15 minutes; for uploading with curl (the upload benchmark's baseline).
    pub fn put_blob(&self, blob: &str, len: u64) -> std::io::Result<(String, Vec<String>)> {
        let (url, path) = self.blob_url(blob);
        let date = http_date();
        let ms = [
            ("x-ms-blob-type", "BlockBlob"),
            ("x-ms-date", date.as_str()),
            ("x-ms-version", API_VERSION),
        ];
        let auth = self.authorization("PUT", Some(len), &ms, &path, "")?;
        let mut headers: Vec<String> = ms.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        headers.push(format!("Authorization: {auth}"));
        // curl adds no Content-Type to a -T upload; say so, since it is signed as empty.
        headers.push("Content-Type:".into());
        Ok((url, headers))
    }

    /// The destination's settings, as `--azure-blob-*` flags would resolve them, with blocks
    /// of `block_size` bytes.
    pub fn config(
        &self,
        block_size: u64,
    ) -> consul_snapshot_agent::storage::object::azure::AzureConfig {
        consul_snapshot_agent::storage::object::azure::AzureConfig {
            account: self.account.clone(),
            account_key: Some(consul_snapshot_agent::consul::Secret::new(self.key.clone())),
            container: self.container.clone(),
            environment: Default::default(),
            endpoint: self.endpoint.clone(),
            prefix: self.prefix.clone(),
            block_size,
            concurrency: 4,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Puts `body` at `blob` (a name inside the container, prefix included) with a signed
    /// Put Blob: an object the agent did not write.
    pub async fn put_raw(&self, blob: &str, body: &[u8]) -> std::io::Result<()> {
        let (url, headers) = self.put_blob(blob, body.len() as u64)?;
        let mut req = reqwest::Client::new().put(url).body(body.to_vec());
        for h in headers {
            if let Some((k, v)) = h.split_once(": ") {
                req = req.header(k, v);
            }
        }
        let r = req.send().await.map_err(std::io::Error::other)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "Put Blob {blob}: {}",
                r.status()
            )))
        }
    }

    /// Whether `blob` exists (a signed Get Blob Properties).
    pub async fn exists(&self, blob: &str) -> std::io::Result<bool> {
        let (url, path) = self.blob_url(blob);
        let date = http_date();
        let ms = [("x-ms-date", date.as_str()), ("x-ms-version", API_VERSION)];
        let auth = self.authorization("HEAD", None, &ms, &path, "")?;
        let r = reqwest::Client::new()
            .head(url)
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("Authorization", auth)
            .send()
            .await
            .map_err(std::io::Error::other)?;
        Ok(r.status().is_success())
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
