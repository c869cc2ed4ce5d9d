//! What the agent tells the outside: Prometheus metrics and a health answer, served on the
//! metrics listener (`/metrics`, `/health` for alerting and readiness, `/live` for liveness).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::cycle::CycleOutcome;

/// The agent's role in leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Starting,
    Standby,
    Leader,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// A destination failure: the backend (`kind`) and the kind of failure (`error`: not_found,
/// denied, timeout, transient, invalid).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    kind: String,
    error: String,
}

#[derive(Debug)]
struct Status {
    role: Role,
    since: Instant,
    last_success: Option<Instant>,
    last_error: Option<String>,
    /// Set when this agent's own leadership ended in `max_failures` failures (with when and
    /// why), or a destination failed the start-up write check; cleared by a snapshot stored by
    /// this agent or by the current lock holder after that time.
    unhealthy: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

/// Metrics and health state; cheap to update from the agent loop.
pub struct Telemetry {
    registry: Registry,
    last_success: Gauge<f64, AtomicU64>,
    last_attempt: Gauge<f64, AtomicU64>,
    last_duration: Gauge<f64, AtomicU64>,
    last_bytes: Gauge,
    last_index: Gauge,
    leader: Gauge,
    health_window_gauge: Gauge<f64, AtomicU64>,
    anomaly: Gauge,
    clock_skew: Gauge,
    clock_untrusted: Gauge,
    last_drill_success: Gauge<f64, AtomicU64>,
    last_drill_duration: Gauge<f64, AtomicU64>,
    drill_interval: Gauge<f64, AtomicU64>,
    drill_failures: Counter,
    successes: Counter,
    failures: Family<ReasonLabel, Counter>,
    deleted: Counter,
    stored_at: Family<KindLabel, Counter>,
    failed_at: Family<FailureLabel, Counter>,
    status: Mutex<Status>,
    health_window: Duration,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Telemetry {
    /// `health_window`: how long a leader may go without a successful snapshot (two periods).
    pub fn new(health_window: Duration) -> Self {
        let t = Telemetry {
            last_success: Gauge::default(),
            last_attempt: Gauge::default(),
            last_duration: Gauge::default(),
            last_bytes: Gauge::default(),
            last_index: Gauge::default(),
            leader: Gauge::default(),
            health_window_gauge: Gauge::default(),
            anomaly: Gauge::default(),
            clock_skew: Gauge::default(),
            clock_untrusted: Gauge::default(),
            last_drill_success: Gauge::default(),
            last_drill_duration: Gauge::default(),
            drill_interval: Gauge::default(),
            drill_failures: Counter::default(),
            successes: Counter::default(),
            failures: Family::default(),
            deleted: Counter::default(),
            stored_at: Family::default(),
            failed_at: Family::default(),
            status: Mutex::new(Status {
                role: Role::Starting,
                since: Instant::now(),
                last_success: None,
                last_error: None,
                unhealthy: None,
            }),
            health_window,
            registry: Registry::default(),
        };
        t.health_window_gauge.set(health_window.as_secs_f64());
        t.seed_labels();
        let mut registry = Registry::with_prefix("consul_snapshot");
        t.register_cycle(&mut registry);
        t.register_health(&mut registry);
        t.register_drills(&mut registry);
        t.register_destinations(&mut registry);
        Telemetry { registry, ..t }
    }

    /// Creates every label value at 0, so that alert rules see a series before the first
    /// failure and `increase()` counts that failure.
    fn seed_labels(&self) {
        for reason in super::cycle::CycleError::REASONS {
            let _ = self.failures.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            });
        }
        for kind in ["local", "s3", "azure", "gcs"] {
            let _ = self.stored_at.get_or_create(&KindLabel {
                kind: kind.to_string(),
            });
            for error in crate::storage::ErrorKind::ALL {
                let _ = self.failed_at.get_or_create(&FailureLabel {
                    kind: kind.to_string(),
                    error: error.as_str().to_string(),
                });
            }
        }
    }

    /// The cycles: when, how long, how large, how many stored, failed and deleted.
    fn register_cycle(&self, r: &mut Registry) {
        r.register(
            "last_success_timestamp_seconds",
            "Unix time of the last snapshot stored everywhere",
            self.last_success.clone(),
        );
        r.register(
            "last_attempt_timestamp_seconds",
            "Unix time of the last snapshot attempt",
            self.last_attempt.clone(),
        );
        r.register(
            "last_duration_seconds",
            "Duration of the last snapshot cycle",
            self.last_duration.clone(),
        );
        r.register(
            "last_archive_bytes",
            "Size of the last verified archive, in bytes",
            self.last_bytes.clone(),
        );
        r.register(
            "last_raft_index",
            "Raft index of the last verified snapshot",
            self.last_index.clone(),
        );
        r.register(
            "successes",
            "Snapshot cycles that stored everywhere",
            self.successes.clone(),
        );
        r.register(
            "failures",
            "Snapshot cycles that failed, by reason",
            self.failures.clone(),
        );
        r.register(
            "retention_deleted",
            "Backups deleted by retention",
            self.deleted.clone(),
        );
    }

    /// Leadership, health and the signals that make a backup suspect (anomaly, clock).
    fn register_health(&self, r: &mut Registry) {
        r.register(
            "leader",
            "1 while this agent holds the lock and takes snapshots",
            self.leader.clone(),
        );
        r.register(
            "health_window_seconds",
            "How long the leader may go without a stored snapshot before it counts as unhealthy: two periods of the schedule",
            self.health_window_gauge.clone(),
        );
        r.register(
            "anomaly",
            "1 while a shrink-guard anomaly is unacknowledged (a snapshot markedly smaller than the backup before it; retention holds the older backups)",
            self.anomaly.clone(),
        );
        r.register(
            "clock_skew_seconds",
            "This host's clock minus the independent one (a destination's Date, else Consul's) at the last cycle, in seconds",
            self.clock_skew.clone(),
        );
        r.register(
            "clock_untrusted",
            "1 while this host's clock differs from the independent one by more than 5 minutes: backups are named by that clock and time-based retention deletes nothing",
            self.clock_untrusted.clone(),
        );
    }

    /// The scheduled restore drills.
    fn register_drills(&self, r: &mut Registry) {
        r.register(
            "last_drill_success_timestamp_seconds",
            "Unix time of the last restore drill that passed",
            self.last_drill_success.clone(),
        );
        r.register(
            "last_drill_duration_seconds",
            "Duration of the last restore drill (fetch, verify, restore, read back): the time to recover",
            self.last_drill_duration.clone(),
        );
        r.register(
            "drill_interval_seconds",
            "How often the leader runs a restore drill; 0 when drills are off",
            self.drill_interval.clone(),
        );
        r.register(
            "drill_failures",
            "Restore drills that failed or could not run",
            self.drill_failures.clone(),
        );
    }

    /// Per destination kind: stored, and failed by kind of failure.
    fn register_destinations(&self, r: &mut Registry) {
        r.register(
            "destination_stored",
            "Backups stored (and verified) at a destination, by destination kind",
            self.stored_at.clone(),
        );
        r.register(
            "destination_failures",
            "Backups a destination failed to store or read back, by destination kind and kind of failure (error: not_found, denied, timeout, transient, invalid)",
            self.failed_at.clone(),
        );
    }

    /// Records a cycle attempt starting.
    pub fn attempt(&self) {
        self.last_attempt.set(unix_now());
    }

    /// Records a cycle that reached storage (fully or partly successful).
    pub fn outcome(&self, o: &CycleOutcome) {
        self.last_duration.set(o.duration.as_secs_f64());
        if let Some(skew) = o.clock.skew_seconds() {
            self.clock_skew.set(skew);
        }
        self.clock_untrusted.set(i64::from(o.clock.untrusted()));
        self.last_bytes
            .set(i64::try_from(o.report.archive_len).unwrap_or(i64::MAX));
        self.last_index
            .set(i64::try_from(o.report.meta.index).unwrap_or(i64::MAX));
        self.deleted
            .inc_by(o.destinations.iter().map(|d| d.deleted() as u64).sum());
        // Holds are known where retention ran; without that, only a new anomaly changes it.
        let known = o
            .destinations
            .iter()
            .any(|d| matches!(d.retention, Some(Ok(_))));
        let active = !o.anomalies().is_empty();
        if active || known {
            self.anomaly.set(i64::from(active));
        }
        for d in &o.destinations {
            match &d.stored {
                Ok(_) => {
                    self.stored_at
                        .get_or_create(&KindLabel {
                            kind: d.kind.to_string(),
                        })
                        .inc();
                }
                Err(e) => self.destination_failed(d.kind, e.kind),
            }
        }
        if o.all_ok() {
            self.successes.inc();
            self.last_success.set(unix_now());
            let mut s = self.lock();
            s.last_success = Some(Instant::now());
            s.last_error = None;
            s.unhealthy = None;
        } else {
            self.failure("storage", "a destination failed");
        }
    }

    /// Records a destination that failed a cycle before its upload began (it timed out, or
    /// could not begin).
    pub fn destination_failed(&self, kind: &str, error: crate::storage::ErrorKind) {
        self.failed_at
            .get_or_create(&FailureLabel {
                kind: kind.to_string(),
                error: error.as_str().to_string(),
            })
            .inc();
    }

    /// Sets the drill interval (0: drills off).
    pub fn drill_interval(&self, d: Duration) {
        self.drill_interval.set(d.as_secs_f64());
    }

    /// Records a drill's end.
    pub fn drill(&self, r: &Result<crate::restore::drill::DrillReport, String>) {
        match r {
            Ok(r) => {
                self.last_drill_duration.set(r.durations.total);
                if r.pass {
                    self.last_drill_success.set(unix_now());
                } else {
                    self.drill_failures.inc();
                }
            }
            Err(_) => {
                self.drill_failures.inc();
            }
        }
    }

    /// Records a failed cycle.
    pub fn failure(&self, reason: &str, message: &str) {
        self.failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        self.lock().last_error = Some(message.to_string());
    }

    /// Marks the agent unhealthy until a snapshot is stored (by it, or by the lock holder
    /// after now): its leadership ended in failures, or a destination is not writable.
    pub fn unhealthy(&self, why: String) {
        self.lock().unhealthy = Some((chrono::Utc::now(), why));
    }

    /// The lock holder reports a snapshot stored at `at`: clears an unhealthy mark set
    /// before then.
    pub fn holder_stored(&self, at: chrono::DateTime<chrono::Utc>) {
        let mut s = self.lock();
        if s.unhealthy.as_ref().is_some_and(|(since, _)| at > *since) {
            s.unhealthy = None;
        }
    }

    /// The last failure's message, if the last cycle failed.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Why the agent is marked unhealthy, if it is.
    pub fn unhealthy_reason(&self) -> Option<String> {
        self.lock().unhealthy.as_ref().map(|(_, why)| why.clone())
    }

    /// Records a role change.
    pub fn role(&self, role: Role) {
        self.leader.set(i64::from(role == Role::Leader));
        let mut s = self.lock();
        if s.role != role {
            s.role = role;
            s.since = Instant::now();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// 200 while a leader's last success (or, before its first, its leadership) is within the
    /// health window, or while a standby holds a live session; 503 otherwise, and 503 while
    /// the agent is marked unhealthy (its own leadership ended in failures, or a destination
    /// failed the start-up write check) until a snapshot is stored by it or the lock holder.
    /// "snapshots current" is said only after a stored snapshot.
    pub fn health(&self) -> (StatusCode, serde_json::Value) {
        let s = self.lock();
        let now = Instant::now();
        let fresh = |t: Instant| now.duration_since(t) <= self.health_window;
        let (ok, why) = match (&s.unhealthy, s.role) {
            (Some((since, why)), role) => (
                false,
                format!(
                    "{}, unhealthy since {}: {why}; no snapshot stored since",
                    format!("{role:?}").to_lowercase(),
                    since.to_rfc3339()
                ),
            ),
            (None, Role::Starting) => (false, "starting".to_string()),
            (None, Role::Standby) => (true, "standby, waiting for the lock".to_string()),
            (None, Role::Leader) => match s.last_success {
                Some(t) if fresh(t) => (true, "leader, snapshots current".to_string()),
                None if fresh(s.since) => (
                    true,
                    "leader, first snapshot pending (within the health window)".to_string(),
                ),
                _ => (
                    false,
                    format!(
                        "leader, no successful snapshot within {}",
                        humantime::format_duration(self.health_window)
                    ),
                ),
            },
        };
        let body = json!({
            "status": if ok { "ok" } else { "unhealthy" },
            "role": format!("{:?}", s.role).to_lowercase(),
            "detail": why,
            "seconds_since_last_success": s.last_success.map(|t| now.duration_since(t).as_secs()),
            "last_error": s.last_error,
        });
        (
            if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            body,
        )
    }
}

const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text (what `prometheus_client` writes) as the Prometheus text format 0.0.4: a
/// counter family `x` is described as `x_total` (the name of its sample), and the `# UNIT` and
/// `# EOF` lines, which that format does not have, are left out.
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let described = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match described {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{p}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Serves `/metrics`, `/health` and `/live` on `addr` until `stop` is cancelled. Binding errors are
/// returned at once.
pub async fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("metrics listener on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    let t1 = telemetry.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let t = t1.clone();
                async move {
                    // Prometheus asks for OpenMetrics; promtool, curl and older scrapers get
                    // the classic text format, in which a counter's HELP names its `_total`.
                    let open = headers
                        .get(axum::http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.contains("application/openmetrics-text"));
                    if open {
                        ([("Content-Type", OPENMETRICS_CONTENT_TYPE)], t.render())
                    } else {
                        (
                            [("Content-Type", TEXT_CONTENT_TYPE)],
                            to_text_format(&t.render()),
                        )
                    }
                }
            }),
        )
        // Liveness: the process answers. Point restart probes here, never at /health, so that
        // an unhealthy agent is reported instead of restarted in a loop.
        .route(
            "/live",
            get(|| async { axum::Json(json!({"status": "alive"})) }),
        )
        .route(
            "/health",
            get(move || {
                let t = telemetry.clone();
                async move {
                    let (code, body) = t.health();
                    (code, axum::Json(body)).into_response()
                }
            }),
        );
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the text format every sample's own name has HELP and TYPE lines (what
    /// `promtool check metrics` demands; `tests/monitoring.rs` runs promtool itself).
    #[test]
    fn text_format_describes_every_sample_by_its_own_name() {
        let t = Telemetry::new(Duration::from_secs(60));
        t.failure("consul", "x");
        let text = to_text_format(&t.render());
        assert!(!text.contains("# EOF"), "{text}");
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(['{', ' ']).next().unwrap_or_default())
            .collect();
        assert!(
            samples.contains(&"consul_snapshot_successes_total"),
            "{text}"
        );
        assert!(samples.contains(&"consul_snapshot_anomaly"), "{text}");
        for name in samples {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}: {text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}: {text}");
        }
    }
}
