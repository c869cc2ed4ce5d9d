//! Webhook notifications for cycle start, success and failure: a JSON POST to each URL,
//! retried, bounded in time, and never holding up a cycle (sent from background tasks).
//! Webhook URLs often embed credentials (Slack, Teams), so logs name only their host.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinHandle;
use url::Url;

/// Attempts per event and URL.
const ATTEMPTS: u32 = 3;

/// The JSON body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// `start`, `success` or `failure`.
    pub event: &'static str,
    /// RFC 3339.
    pub time: String,
    /// Key of the stored backup (the first destination's).
    pub key: Option<String>,
    /// Archive size, in bytes.
    pub size: Option<u64>,
    /// Raft index of the snapshot.
    pub index: Option<u64>,
    /// What went wrong, for `failure`.
    pub error: Option<String>,
}

impl Event {
    pub fn new(event: &'static str) -> Self {
        Event {
            event,
            time: chrono::Utc::now().to_rfc3339(),
            key: None,
            size: None,
            index: None,
            error: None,
        }
    }
}

impl Event {
    /// The `success` or `failure` event for a cycle's result.
    pub fn for_result(
        result: &Result<super::cycle::CycleOutcome, super::cycle::CycleError>,
    ) -> Self {
        match result {
            Ok(o) => {
                let first = o.destinations.iter().find_map(|d| d.stored.as_ref().ok());
                let failed: Vec<String> = o
                    .destinations
                    .iter()
                    .filter_map(|d| {
                        d.stored
                            .as_ref()
                            .err()
                            .map(|e| format!("{}: {e}", d.destination))
                    })
                    .collect();
                Event {
                    key: first.map(|b| b.key.clone()),
                    size: Some(o.report.archive_len),
                    index: Some(o.report.meta.index),
                    error: (!failed.is_empty()).then(|| failed.join("; ")),
                    ..Event::new(if o.all_ok() { "success" } else { "failure" })
                }
            }
            Err(e) => Event {
                error: Some(e.to_string()),
                ..Event::new("failure")
            },
        }
    }
}

/// Sends events to the configured webhooks.
pub struct Notifier {
    client: reqwest::Client,
    urls: Vec<Url>,
    timeout: Duration,
    pending: Mutex<Vec<JoinHandle<()>>>,
}

fn host_of(u: &Url) -> String {
    format!("{}://{}", u.scheme(), u.host_str().unwrap_or("?"))
}

impl Notifier {
    /// `timeout` bounds each event's delivery to each URL, retries included.
    pub fn new(urls: Vec<Url>, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .no_proxy()
            .build()
            .unwrap_or_default();
        Notifier {
            client,
            urls,
            timeout,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Whether any webhook is configured.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Sends `ev` to every URL in the background.
    pub fn send(&self, ev: Event) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|h| !h.is_finished());
        for url in &self.urls {
            let (client, url, ev, budget) =
                (self.client.clone(), url.clone(), ev.clone(), self.timeout);
            pending.push(tokio::spawn(async move {
                let deadline = Instant::now() + budget;
                for attempt in 0..ATTEMPTS {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(left, client.post(url.clone()).json(&ev).send()).await {
                        Ok(Ok(r)) if r.status().is_success() => return,
                        Ok(Ok(r)) => tracing::warn!(webhook = %host_of(&url), status = r.status().as_u16(), event = ev.event, "webhook refused the notification"),
                        Ok(Err(e)) => tracing::warn!(webhook = %host_of(&url), error = %e.without_url(), event = ev.event, "webhook delivery failed"),
                        Err(_) => tracing::warn!(webhook = %host_of(&url), event = ev.event, "webhook delivery timed out"),
                    }
                    if attempt + 1 < ATTEMPTS {
                        tokio::time::sleep(Duration::from_millis(200 << attempt).min(deadline.saturating_duration_since(Instant::now()))).await;
                    }
                }
                tracing::warn!(webhook = %host_of(&url), event = ev.event, "webhook notification dropped after retries");
            }));
        }
    }

    /// Waits at most `max` for deliveries in flight (before exiting).
    pub async fn flush(&self, max: Duration) {
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::time::timeout(max, futures_util::future::join_all(handles)).await;
    }
}
