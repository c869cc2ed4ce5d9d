//! A webhook receiver for tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A webhook receiver on a free loopback port.
pub struct Receiver {
    /// Where to POST (with a query string standing for a credential).
    pub url: String,
    /// Every JSON body received, in order.
    pub got: Arc<Mutex<Vec<serde_json::Value>>>,
    _rt: tokio::runtime::Runtime,
}

/// `stall`: never answer (a hung endpoint).
pub fn receiver(stall: bool) -> Receiver {
    use axum::routing::post;
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!(
        "http://{}/hook?token=shh",
        listener.local_addr().expect("addr")
    );
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let g = g.clone();
            async move {
                if stall {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                g.lock().expect("lock").push(v);
                "ok"
            }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Receiver { url, got, _rt: rt }
}
