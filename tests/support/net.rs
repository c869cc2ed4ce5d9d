//! Loopback plumbing shared by the emulator harnesses (Garage, Azurite, fake-gcs-server):
//! free ports, waiting for a listener, one raw HTTP request, random names. Kept apart from
//! `support/mod.rs` so the benchmarks can include it (and the harnesses) by path.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago. Bind, read, close: a small race with other
/// processes, which the harnesses retry.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts connections on the loopback `port` (at most `limit`).
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Sends one raw HTTP/1.1 request (with `Connection: close`) to the loopback `port` and
/// returns the whole answer (read for at most 10 s of silence); for setting up emulators
/// without a client library.
pub fn raw_http(port: u16, request: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

/// 12 random hex characters, for bucket, container and prefix names.
pub fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A loopback HTTP server that answers every request `200` with a chunked body that never
/// ends: `chunk` every `every` (a trickle when slow, a flood when fast). It stops sending after
/// `max_chunks` per connection, and stops accepting when dropped.
pub struct EndlessBody {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl EndlessBody {
    pub fn start(chunk: &'static [u8], every: Duration, max_chunks: usize) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if s.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let framed = [
                        format!("{:x}\r\n", chunk.len()).into_bytes(),
                        chunk.to_vec(),
                        b"\r\n".to_vec(),
                    ]
                    .concat();
                    for _ in 0..max_chunks {
                        if flag.load(Ordering::Relaxed) || s.write_all(&framed).is_err() {
                            return;
                        }
                        if !every.is_zero() {
                            std::thread::sleep(every);
                        }
                    }
                });
            }
        });
        EndlessBody { addr, stop }
    }
}

impl Drop for EndlessBody {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
