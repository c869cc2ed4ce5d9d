//! Webhook notifications for cycle start, success, failure and shrink-guard anomaly: a JSON
//! POST to each URL,
//! retried, bounded in time, and never holding up a cycle (sent from background tasks).
//! Webhook URLs often embed credentials (Slack, Teams), so logs name only their host.

use std::sync::Mutex;
use std::time::Duration;

use backon::Retryable;
use serde::Serialize;
use tokio::task::JoinHandle;
use url::Url;

use crate::retry::RetryPolicy;

/// Deliveries per notification: 3 attempts, 200 ms then 400 ms apart (plus jitter).
const DELIVERY_RETRY: RetryPolicy =
    RetryPolicy::new(2, Duration::from_millis(200), Duration::from_secs(2));

/// The JSON body.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// `start`, `success`, `failure`, `anomaly` (the snapshot just stored is markedly
    /// smaller than the last backup; sent after its `success`) or `drill` (a scheduled
    /// restore drill ended).
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
    /// For `anomaly`: which measures dropped, as one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `anomaly`: name of the backup compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// For `anomaly`: the counts of the baseline (KV entries, nodes, services, ACL tokens and
    /// policies, sessions, config entries, prepared queries, state.bin bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<crate::guard::Measures>,
    /// For `anomaly`: the same counts of the new snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<crate::guard::Measures>,
    /// For `drill`: the report (pass, differences, durations, counts per type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<crate::restore::drill::DrillReport>,
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
            reason: None,
            baseline: None,
            before: None,
            after: None,
            drill: None,
        }
    }

    /// The `drill` event: `error` says why it failed or could not run.
    pub fn for_drill(result: &Result<crate::restore::drill::DrillReport, String>) -> Self {
        match result {
            Ok(r) => Event {
                key: Some(r.source.clone()),
                index: Some(r.backup_index),
                error: (!r.pass).then(|| r.differences.join("; ")),
                drill: Some(r.clone()),
                ..Event::new("drill")
            },
            Err(e) => Event {
                error: Some(e.clone()),
                ..Event::new("drill")
            },
        }
    }
}

impl Event {
    /// The events a finished cycle sends: `success` or `failure`, then `anomaly` when the
    /// shrink guard marked the snapshot.
    pub fn for_cycle(
        result: &Result<super::cycle::CycleOutcome, super::cycle::CycleError>,
    ) -> Vec<Self> {
        let mut out = vec![Event::for_result(result)];
        if let Ok(o) = result {
            if let Some(a) = &o.anomaly {
                let first = o.destinations.iter().find_map(|d| d.stored.as_ref().ok());
                out.push(Event {
                    key: first.map(|b| b.key.clone()),
                    size: Some(o.report.archive_len),
                    index: Some(o.report.meta.index),
                    reason: Some(a.reason()),
                    baseline: Some(a.baseline.clone()),
                    before: Some(a.before),
                    after: Some(a.after),
                    ..Event::new("anomaly")
                });
            }
        }
        out
    }

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
                let deliver = || async {
                    match client.post(url.clone()).json(&ev).send().await {
                        Ok(r) if r.status().is_success() => Ok(()),
                        Ok(r) => Err(format!("refused with HTTP {}", r.status().as_u16())),
                        Err(e) => Err(e.without_url().to_string()),
                    }
                };
                // Retried with back-off, and bounded as a whole by the webhook timeout.
                let delivered = tokio::time::timeout(
                    budget,
                    deliver
                        .retry(DELIVERY_RETRY.backoff())
                        .notify(|e, _| tracing::warn!(webhook = %host_of(&url), error = %e, event = ev.event, "webhook delivery failed")),
                )
                .await;
                match delivered {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => tracing::warn!(webhook = %host_of(&url), event = ev.event, "webhook notification dropped after retries"),
                    Err(_) => tracing::warn!(webhook = %host_of(&url), event = ev.event, "webhook notification dropped: no delivery within the webhook timeout"),
                }
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
