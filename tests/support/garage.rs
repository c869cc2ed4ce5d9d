//! A real S3 server for tests: Garage, started on free loopback ports with a fresh bucket and
//! key (recipe: shared/s3-test-server.md), stopped by pid on drop. With `S3_ENDPOINT` set the
//! tests use that server instead (MinIO, AWS...): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `S3_BUCKET` and `AWS_REGION` (default us-east-1) describe it, and every test works under a
//! fresh random prefix.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consul_snapshot_agent::config::S3Options;
use consul_snapshot_agent::consul::Secret;
use consul_snapshot_agent::storage::S3Config;

/// Where the S3 server for this test lives.
pub struct S3Target {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    /// Garage child when we started one.
    pub garage: Option<Garage>,
}

pub struct Garage {
    child: Option<Child>,
    dir: tempfile::TempDir,
    s3_port: u16,
    rpc_port: u16,
    env: Vec<(String, String)>,
}

fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        return PathBuf::from(p);
    }
    let home =
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo/bin/garage");
    if home.is_file() {
        return home;
    }
    PathBuf::from("garage")
}

fn hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

impl Garage {
    fn spawn(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.dir.path().join("garage.log")).map_err(|e| e.to_string())?;
        let child = Command::new(garage_bin())
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(["server", "--single-node", "--default-bucket"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run garage ({}): {e}; install it with `cargo install garage --locked`",
                    garage_bin().display()
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("garage exited with {status}: {}", self.log()));
            }
            if probe(self.s3_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("garage not ready after 15 s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// The server's process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and reaps it; its data stays for [`Garage::restart`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn().expect("restart garage");
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Garage answers anonymous S3 requests with this text once key and bucket exist.
fn probe(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("Garage does not support anonymous access")
}

fn start_garage() -> Result<S3Target, String> {
    let dir = tempfile::Builder::new()
        .prefix("garage-test-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let (s3_port, rpc_port) = (super::net::free_port(), super::net::free_port());
    let (key_id, secret, bucket) = (format!("GK{}", hex(24)), hex(64), "test-bucket".to_string());
    let config = format!(
        "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
         rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\nrpc_public_addr = \"127.0.0.1:{rpc_port}\"\nrpc_secret = \"{secret}\"\n\n\
         [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\nroot_domain = \".s3.garage.localhost\"\n",
        d = dir.path().display(),
        secret = hex(64),
    );
    std::fs::write(dir.path().join("garage.toml"), config).map_err(|e| e.to_string())?;
    let env = vec![
        ("GARAGE_DEFAULT_ACCESS_KEY".to_string(), key_id.clone()),
        ("GARAGE_DEFAULT_SECRET_KEY".to_string(), secret.clone()),
        ("GARAGE_DEFAULT_BUCKET".to_string(), bucket.clone()),
    ];
    let mut g = Garage {
        child: None,
        dir,
        s3_port,
        rpc_port,
        env,
    };
    g.spawn()?;
    Ok(S3Target {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        region: "garage".into(),
        bucket,
        key_id,
        secret,
        garage: Some(g),
    })
}

/// A real S3 server for one test: `S3_ENDPOINT` if set, else a fresh Garage (3 tries).
pub fn s3_target() -> S3Target {
    if let Ok(endpoint) = std::env::var("S3_ENDPOINT") {
        let var = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| panic!("S3_ENDPOINT is set, so {k} must be too"))
        };
        return S3Target {
            endpoint,
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            bucket: var("S3_BUCKET"),
            key_id: var("AWS_ACCESS_KEY_ID"),
            secret: var("AWS_SECRET_ACCESS_KEY"),
            garage: None,
        };
    }
    let mut last = String::new();
    for _ in 0..3 {
        match start_garage() {
            Ok(t) => return t,
            Err(e) => last = e,
        }
    }
    panic!("could not start Garage: {last}");
}

impl S3Target {
    /// Store settings under a fresh prefix, with small parts so multipart paths are exercised.
    pub fn config(&self) -> S3Config {
        S3Options {
            s3_bucket: Some(self.bucket.clone()),
            s3_key_prefix: Some(format!("test-{}/", uuid::Uuid::new_v4().simple())),
            s3_region: Some(self.region.clone()),
            s3_endpoint: Some(self.endpoint.clone()),
            access_key_id: Some(self.key_id.clone()),
            secret_access_key: Some(Secret::new(self.secret.clone())),
            s3_part_size: Some(5 << 20),
            ..S3Options::default()
        }
        .with_defaults()
        .resolve()
        .expect("valid S3 settings")
        .expect("a bucket")
    }

    /// Flags for the CLI pointing at this server and `prefix`.
    pub fn cli_args(&self, prefix: &str) -> Vec<String> {
        vec![
            "--aws-s3-bucket".into(),
            self.bucket.clone(),
            "--aws-s3-key-prefix".into(),
            prefix.into(),
            "--aws-s3-endpoint".into(),
            self.endpoint.clone(),
            "--aws-s3-region".into(),
            self.region.clone(),
        ]
    }

    /// Environment with the credentials, for CLI runs.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
        ]
    }
}
