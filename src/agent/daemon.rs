//! The long-running agent: register, contend for the lock, and while leader run a backup cycle
//! on the schedule; stop cleanly on SIGINT/SIGTERM (abort the upload in flight, release the
//! lock, destroy the session, deregister).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::cycle::{run_cycle, CycleConfig, CycleError};
use super::leader::{acquire, monitor, Session};
use super::notify::{Event, Notifier};
use super::registration::{CheckStatus, Registration, ALIVE_TTL};
use super::telemetry::{self, Role, Telemetry};
use crate::config::AgentConfig;
use crate::consul::ConsulClient;
use crate::retry::RetryPolicy;
use crate::schedule::Schedule;
use crate::storage::Store;

/// Back-off of the service registration at start-up (retried until it works or a stop).
const REGISTER_RETRY: RetryPolicy =
    RetryPolicy::new(0, Duration::from_secs(1), Duration::from_secs(30));

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A uniform draw in `[0, 1)` for jitter.
fn draw() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// Sleeps `d` unless `stop` fires first; returns whether it slept the whole time.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Runs the agent until a signal (or `stop`) ends it.
pub async fn run(
    cfg: AgentConfig,
    cycle: CycleConfig,
    schedule: Schedule,
) -> anyhow::Result<ExitCode> {
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            stop.cancel();
        });
    }
    run_until(cfg, cycle, schedule, stop).await
}

/// [`run`] with an explicit stop token (for embedding, e.g. `dev`).
pub async fn run_until(
    cfg: AgentConfig,
    cycle: CycleConfig,
    schedule: Schedule,
    stop: CancellationToken,
) -> anyhow::Result<ExitCode> {
    // Every coordination call ends before the session could expire under us.
    let client = ConsulClient::new(&cfg.consul)?
        .with_call_timeout((cfg.ha.session_ttl / 2).max(Duration::from_secs(1)));
    let stores = cfg.storage.stores().await?;
    let telemetry = Arc::new(Telemetry::new(schedule.health_window(Utc::now())));
    if let Some((interval, _)) = &cfg.drill {
        telemetry.drill_interval(*interval);
    }
    let notifier = Arc::new(Notifier::new(cfg.webhooks.clone(), cfg.webhook_timeout));
    if let Some(addr) = cfg.metrics_addr {
        let (bound, _) = telemetry::serve(addr, telemetry.clone(), stop.clone()).await?;
        tracing::info!(addr = %bound, "serving /metrics and /health");
    }
    check_destinations(&stores, &telemetry).await;
    let reg = registration(&cfg);
    tracing::info!(
        schedule = %schedule.to_string(),
        destinations = %stores.iter().map(Store::to_string).collect::<Vec<_>>().join(", "),
        service_id = %reg.service_id,
        lock_key = %cfg.ha.lock_key,
        "Snapshot agent running"
    );
    if !join(&client, &reg, &stop).await? {
        return Ok(ExitCode::SUCCESS);
    }
    let heartbeat = spawn_heartbeat(client.clone(), reg.clone(), stop.clone());

    let mut session: Option<Session> = None;
    while !stop.is_cancelled() {
        let Some(s) = live_session(session.take(), &client, &reg, &cfg, &stop).await else {
            continue;
        };
        telemetry.role(Role::Standby);
        let holder = holder_value(&reg.service_id, Utc::now(), None);
        let on_held = |value: &[u8]| {
            if let Some(t) = holder_last_success(value) {
                telemetry.holder_stored(t);
            }
        };
        if acquire(&client, &cfg.ha.lock_key, &s, &holder, &on_held, &stop)
            .await
            .is_err()
        {
            session = Some(s);
            continue;
        }
        tracing::info!(lock_key = %cfg.ha.lock_key, "Obtained leadership");
        let end = Leader {
            client: &client,
            stores: &stores,
            cycle: &cycle,
            cfg: &cfg,
            schedule: &schedule,
            reg: &reg,
            telemetry: &telemetry,
            notifier: &notifier,
        }
        .lead(&s, &stop)
        .await;
        step_down(end, &client, &cfg, &reg, &telemetry, &s, &stop).await;
        session = Some(s);
    }

    shut_down(&client, &cfg, &reg, session, heartbeat, &notifier).await;
    Ok(ExitCode::SUCCESS)
}

/// Logs in (an auth-method login first: every call needs its token), then registers the
/// service, each retried (back-off with jitter, at most 30 s apart) while Consul is
/// unreachable. Returns `false` when the agent was stopped first.
async fn join(
    client: &ConsulClient,
    reg: &Registration,
    stop: &CancellationToken,
) -> anyhow::Result<bool> {
    if client.has_login() {
        let login = (|| client.login())
            .retry(REGISTER_RETRY.backoff().without_max_times())
            .notify(|e, _| tracing::warn!(error = %e, "logging in to Consul failed; retrying"));
        tokio::select! {
            () = stop.cancelled() => return Ok(false),
            r = login => r?,
        }
    }
    let register = (|| reg.register(client))
        .retry(REGISTER_RETRY.backoff().without_max_times())
        .notify(|e, _| tracing::warn!(error = %e, "service registration failed; retrying"));
    tokio::select! {
        () = stop.cancelled() => Ok(false),
        r = register => r.map(|_| true).map_err(Into::into),
    }
}

/// After a term of leadership: back to standby, the leader check removed. After giving up
/// (`max_failures`), the agent reports itself unhealthy until a snapshot is stored (by it
/// or the next holder: a lone agent that keeps failing must not look healthy between its
/// turns), releases the lock, and pauses so that another agent can take over.
async fn step_down(
    end: LeadEnd,
    client: &ConsulClient,
    cfg: &AgentConfig,
    reg: &Registration,
    telemetry: &Telemetry,
    session: &Session,
    stop: &CancellationToken,
) {
    telemetry.role(Role::Standby);
    if let Err(e) = reg.remove_saving_check(client).await {
        tracing::debug!(error = %e, "removing the leader check failed");
    }
    if !matches!(end, LeadEnd::GaveUp) {
        return;
    }
    telemetry.unhealthy(format!(
        "its leadership ended after {} consecutive failed snapshots (last: {})",
        cfg.ha.max_failures,
        telemetry.last_error().unwrap_or_else(|| "unknown".into())
    ));
    if let Err(e) = client.kv_release(&cfg.ha.lock_key, &session.id).await {
        tracing::warn!(error = %e, "releasing the lock failed");
    }
    pause(cfg.ha.session_ttl.max(Duration::from_secs(1)), stop).await;
}

/// Checks at start-up that every destination can be written (an upload begun and aborted,
/// leaving nothing); a failure is logged and makes `/health` report 503 until a snapshot is
/// stored. The agent still contends for the lock: a standby that cannot write is reported,
/// and a leader's cycles say why they fail.
async fn check_destinations(stores: &[Store], telemetry: &Telemetry) {
    // Each backend bounds its own requests; this bounds their retries too.
    const CHECK_LIMIT: Duration = Duration::from_secs(120);
    for store in stores {
        let r = match tokio::time::timeout(CHECK_LIMIT, store.check_writable()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(CHECK_LIMIT)
            )),
        };
        match r {
            Ok(()) => tracing::info!(destination = %store, "destination is writable"),
            Err(e) => {
                tracing::error!(destination = %store, error = %e, "a destination failed the write check at start-up; /health reports unhealthy until a snapshot is stored");
                telemetry.unhealthy(format!("{store} failed the write check at start-up: {e}"));
            }
        }
    }
}

/// The value of the lock key: who holds it, since when, and the time of its last stored
/// snapshot (JSON). Standbys read `last_success` to know the holder is storing.
fn holder_value(
    service_id: &str,
    since: chrono::DateTime<Utc>,
    last_success: Option<chrono::DateTime<Utc>>,
) -> Vec<u8> {
    let mut v = serde_json::json!({"service_id": service_id, "since": since.to_rfc3339()});
    if let Some(t) = last_success {
        v["last_success"] = serde_json::Value::String(t.to_rfc3339());
    }
    v.to_string().into_bytes()
}

/// `last_success` from a lock value written by [`holder_value`]; `None` for anything else.
fn holder_last_success(value: &[u8]) -> Option<chrono::DateTime<Utc>> {
    let v: serde_json::Value = serde_json::from_slice(value).ok()?;
    let t = v.get("last_success")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// This agent's service registration: a service ID unique to the process.
fn registration(cfg: &AgentConfig) -> Registration {
    Registration {
        service: cfg.ha.service.clone(),
        service_id: format!(
            "{}-{}",
            cfg.ha.service,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        deregister_after: cfg.ha.deregister_after,
    }
}

/// Keeps the "alive" TTL check passing until `stop`.
fn spawn_heartbeat(
    client: ConsulClient,
    reg: Registration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut generation = client.login_generation();
        while pause(ALIVE_TTL / 3, &stop).await {
            if let Err(e) = reg.heartbeat(&client).await {
                tracing::warn!(error = %e, "alive check update failed");
            }
            // A new login token: the service and its checks are registered again under it
            // (the local agent syncs them to the catalog with the token they were given).
            if client.login_generation() != generation {
                generation = client.login_generation();
                match reg.register(&client).await {
                    Ok(()) => tracing::info!("service registered again with the new login token"),
                    Err(e) => {
                        tracing::warn!(error = %e, "registering again after a new login failed")
                    }
                }
            }
        }
    })
}

/// `current` if it is still alive; otherwise destroys it and creates a new session (`None`
/// after a failure, once a short pause has passed, so the caller loops).
async fn live_session(
    current: Option<Session>,
    client: &ConsulClient,
    reg: &Registration,
    cfg: &AgentConfig,
    stop: &CancellationToken,
) -> Option<Session> {
    match current {
        Some(s) if !s.lost.is_cancelled() => return Some(s),
        Some(old) => old.destroy(client).await,
        None => {}
    }
    let name = format!("consul-snapshot-agent {}", reg.service_id);
    match Session::create(client, &name, cfg.ha.session_ttl, cfg.ha.lock_delay).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "session creation failed; retrying");
            pause(Duration::from_secs(2), stop).await;
            None
        }
    }
}

/// Clean shutdown: release the lock, destroy the session, flush webhooks, deregister.
async fn shut_down(
    client: &ConsulClient,
    cfg: &AgentConfig,
    reg: &Registration,
    session: Option<Session>,
    heartbeat: tokio::task::JoinHandle<()>,
    notifier: &Notifier,
) {
    if let Some(s) = session {
        let _ = client.kv_release(&cfg.ha.lock_key, &s.id).await;
        s.destroy(client).await;
    }
    heartbeat.abort();
    notifier.flush(cfg.webhook_timeout).await;
    match reg.deregister(client).await {
        Ok(()) => tracing::info!(service_id = %reg.service_id, "deregistered"),
        Err(e) => {
            tracing::warn!(error = %e, "deregistration failed; the service will be reaped after deregister_after")
        }
    }
    if let Err(e) = client.logout().await {
        tracing::warn!(error = %e, "logging out of Consul failed; the login token expires with the auth method's MaxTokenTTL");
    }
}

enum LeadEnd {
    /// `max_failures` consecutive failures: the lock is to be released.
    GaveUp,
    /// The lock or the session was lost.
    Lost,
    /// Shutting down.
    Stopped,
}

/// What a leader works with: the parts of the agent a cycle and its reporting need.
struct Leader<'a> {
    client: &'a ConsulClient,
    stores: &'a [Store],
    cycle: &'a CycleConfig,
    cfg: &'a AgentConfig,
    schedule: &'a Schedule,
    reg: &'a Registration,
    telemetry: &'a Arc<Telemetry>,
    notifier: &'a Arc<Notifier>,
}

impl Leader<'_> {
    /// Runs cycles on the schedule while `session` holds the lock, until the lock or session
    /// is lost, `stop` fires, or `max_failures` consecutive failures.
    async fn lead(&self, session: &Session, stop: &CancellationToken) -> LeadEnd {
        let Leader {
            client,
            stores,
            cycle,
            cfg,
            schedule,
            telemetry,
            notifier,
            ..
        } = *self;
        let term = Term::start(client, &cfg.ha.lock_key, session, stop);
        let leadership = &term.token;
        telemetry.role(Role::Leader);
        let check_ttl = schedule.health_window(Utc::now()) + Duration::from_secs(30);
        self.announce(check_ttl).await;
        let mut reporter = CycleReport {
            since: Utc::now(),
            generation: client.login_generation(),
            check_ttl,
        };
        let mut drills = Drills::new(cfg);
        let mut last_start = None;
        let mut failures = 0u32;
        let end = loop {
            // An interval counts on the monotonic clock (a wall-clock step does not move it).
            let last = last_start.map(|(wall, at): (chrono::DateTime<Utc>, std::time::Instant)| {
                (wall, at.elapsed())
            });
            let Some(wait) = schedule.wait(last, Utc::now(), cfg.jitter, draw()) else {
                tracing::warn!("the schedule has no future run");
                leadership.cancelled().await;
                break LeadEnd::Lost;
            };
            if !pause(wait, leadership).await {
                break ended(stop);
            }
            last_start = Some((Utc::now(), std::time::Instant::now()));
            telemetry.attempt();
            notifier.send(Event::new("start"));
            let result = run_cycle(client, stores, cycle, Some(leadership)).await;
            if matches!(result, Err(CycleError::Cancelled)) {
                let why = if stop.is_cancelled() {
                    "shutting down"
                } else {
                    "leadership lost"
                };
                tracing::warn!("snapshot cancelled ({why}); the upload in flight was aborted and nothing was stored");
                break ended(stop);
            }
            for ev in Event::for_cycle(&result) {
                notifier.send(ev);
            }
            let ok = reporter.report(self, session, &result).await;
            failures = if ok { 0 } else { failures + 1 };
            // A drill of the newest backup, when one is due (after a stored snapshot).
            if let (true, Ok(o)) = (ok, &result) {
                drills.maybe_start(self, &o.name.datacenter, leadership);
            }
            if failures >= cfg.ha.max_failures {
                tracing::warn!(failures, "giving up leadership after consecutive failures");
                break LeadEnd::GaveUp;
            }
            if leadership.is_cancelled() {
                break ended(stop);
            }
        };
        if matches!(end, LeadEnd::Lost) {
            tracing::warn!("lost leadership; back to standby");
        }
        end
    }

    /// Registers the leader's check, critical while this agent has stored nothing: a
    /// re-acquired lock does not make an agent that has stored nothing healthy.
    async fn announce(&self, check_ttl: Duration) {
        let (client, reg) = (self.client, self.reg);
        if let Err(e) = reg.add_saving_check(client, check_ttl).await {
            tracing::warn!(error = %e, "registering the leader check failed");
        }
        if let Some(why) = self.telemetry.unhealthy_reason() {
            if let Err(e) = reg.report(client, CheckStatus::Critical, &why).await {
                tracing::debug!(error = %e, "leader check update failed");
            }
        }
    }
}

/// One term of leadership: its token is cancelled when the lock is lost (watched on the lock
/// key), the session is lost, or `stop` fires. Dropping the term cancels it and stops its
/// watchers.
struct Term {
    token: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
    linker: tokio::task::JoinHandle<()>,
}

impl Term {
    fn start(
        client: &ConsulClient,
        lock_key: &str,
        session: &Session,
        stop: &CancellationToken,
    ) -> Self {
        let token = CancellationToken::new();
        let watcher = monitor(
            client.clone(),
            lock_key.to_string(),
            session.id.clone(),
            token.clone(),
        );
        let linker = {
            let (l, lost, stop) = (token.clone(), session.lost.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = lost.cancelled() => {}
                    () = stop.cancelled() => {}
                    () = l.cancelled() => {}
                }
                l.cancel();
            })
        };
        Term {
            token,
            watcher,
            linker,
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.token.cancel();
        self.watcher.abort();
        self.linker.abort();
    }
}

/// What the leader tells Consul after each cycle.
struct CycleReport {
    /// When this term began (in the lock's value).
    since: chrono::DateTime<Utc>,
    /// The login generation the leader check was registered under.
    generation: u64,
    check_ttl: Duration,
}

impl CycleReport {
    /// Records the cycle in the metrics and the leader check (registered again under a new
    /// login token), and on success tells the standbys, through the lock's value, that the
    /// holder is storing. Returns whether the cycle stored a backup.
    async fn report(
        &mut self,
        leader: &Leader<'_>,
        session: &Session,
        result: &Result<crate::agent::CycleOutcome, CycleError>,
    ) -> bool {
        let (client, reg) = (leader.client, leader.reg);
        if client.login_generation() != self.generation {
            self.generation = client.login_generation();
            if let Err(e) = reg.add_saving_check(client, self.check_ttl).await {
                tracing::warn!(error = %e, "registering the leader check again failed");
            }
        }
        let (ok, status, output) = record(leader.telemetry, result);
        if let Err(e) = reg.report(client, status, &output).await {
            tracing::debug!(error = %e, "leader check update failed");
        }
        if ok {
            let value = holder_value(&reg.service_id, self.since, Some(Utc::now()));
            if let Err(e) = client
                .kv_acquire(&leader.cfg.ha.lock_key, &session.id, value)
                .await
            {
                tracing::debug!(error = %e, "updating the lock value failed");
            }
        }
        ok
    }
}

/// The scheduled drills of one term: in the background, one at a time, every `interval`
/// after a stored snapshot, so that a slow scratch cluster never delays the schedule.
/// Dropped with the term, which stops the one running.
struct Drills {
    target: Option<(Duration, crate::restore::drill::DrillTarget)>,
    last: Option<std::time::Instant>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Drills {
    fn new(cfg: &AgentConfig) -> Self {
        let target = cfg.drill.as_ref().and_then(|(interval, target)| {
            match crate::restore::drill::DrillTarget::new(target, cfg.consul.token.as_ref()) {
                Ok(c) => Some((*interval, c)),
                Err(e) => {
                    tracing::error!(error = %e, "drill target unusable; no drills");
                    None
                }
            }
        });
        Drills {
            target,
            last: None,
            running: None,
        }
    }

    /// Starts a drill of the newest backup of `datacenter` if one is due and none runs.
    fn maybe_start(
        &mut self,
        leader: &Leader<'_>,
        datacenter: &str,
        leadership: &CancellationToken,
    ) {
        let Some((interval, target)) = &self.target else {
            return;
        };
        let idle = self
            .running
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished);
        if !idle || self.last.is_some_and(|t| t.elapsed() < *interval) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        self.running = Some(spawn_drill(
            DrillJob {
                client: leader.client.clone(),
                stores: leader.stores.to_vec(),
                datacenter: datacenter.to_string(),
                target: target.clone(),
                ids: leader.cycle.identities.clone(),
            },
            Arc::clone(leader.telemetry),
            Arc::clone(leader.notifier),
            leadership.clone(),
        ));
    }
}

impl Drop for Drills {
    fn drop(&mut self) {
        if let Some(d) = self.running.take() {
            d.abort();
        }
    }
}

/// What a background drill works with (owned: it outlives the loop iteration).
struct DrillJob {
    client: ConsulClient,
    stores: Vec<Store>,
    datacenter: String,
    target: crate::restore::drill::DrillTarget,
    ids: Arc<crate::crypto::Identities>,
}

/// Runs a restore drill of the newest backup in the background, recording its end in the
/// metrics and a webhook event; it stops (unrecorded) when `leadership` is cancelled.
fn spawn_drill(
    job: DrillJob,
    telemetry: Arc<Telemetry>,
    notifier: Arc<Notifier>,
    leadership: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let run = super::drill::drill_newest(
            &job.client,
            &job.stores,
            &job.datacenter,
            &job.target,
            &job.ids,
        );
        let r = tokio::select! {
            () = leadership.cancelled() => return,
            r = run => r,
        };
        match &r {
            Ok(rep) if rep.pass => {
                tracing::info!(backup = %rep.source, seconds = rep.durations.total, "restore drill passed")
            }
            Ok(rep) => {
                tracing::error!(backup = %rep.source, differences = %rep.differences.join("; "), "restore drill FAILED")
            }
            Err(e) => tracing::error!(error = %e, "restore drill could not run"),
        }
        telemetry.drill(&r);
        notifier.send(Event::for_drill(&r));
    })
}

/// Why leadership ended when it was cancelled: a shutdown, or the lock lost.
fn ended(stop: &CancellationToken) -> LeadEnd {
    if stop.is_cancelled() {
        LeadEnd::Stopped
    } else {
        LeadEnd::Lost
    }
}

/// Logs a finished (not cancelled) cycle and records it in the metrics; returns whether every
/// destination stored the snapshot, and the status and text for the leader's health check
/// (warning, with the reason, while a shrink-guard anomaly is unacknowledged).
fn record(
    telemetry: &Telemetry,
    result: &Result<super::CycleOutcome, CycleError>,
) -> (bool, CheckStatus, String) {
    match result {
        Ok(o) => {
            telemetry.outcome(o);
            for d in &o.destinations {
                match &d.stored {
                    Ok(b) => {
                        tracing::info!(destination = %d.destination, key = %b.key, index = o.report.meta.index, deleted = d.deleted(), "Saved snapshot")
                    }
                    Err(e) => {
                        tracing::error!(destination = %d.destination, error = %e, "Snapshot failed at this destination")
                    }
                }
            }
            let stored = format!(
                "snapshot index {} stored at {} destination(s)",
                o.report.meta.index,
                o.destinations.iter().filter(|d| d.stored.is_ok()).count()
            );
            let anomalies = o.anomalies();
            let status = match (o.all_ok(), anomalies.is_empty()) {
                (false, _) => CheckStatus::Critical,
                (true, false) => CheckStatus::Warning,
                (true, true) => CheckStatus::Passing,
            };
            let output = if anomalies.is_empty() {
                stored
            } else {
                format!(
                    "{stored}; shrink guard: unacknowledged anomaly ({}); acknowledge with `prune --acknowledge-anomaly KEY`",
                    anomalies.join("; ")
                )
            };
            (o.all_ok(), status, output)
        }
        Err(e) => {
            // No destination could even begin: each of them failed this cycle.
            if let CycleError::NoneBegan(each) = e {
                for d in each {
                    telemetry.destination_failed(d.kind, d.error);
                    tracing::error!(destination = %d.destination, error = %d.why, "Snapshot failed at this destination");
                }
            }
            telemetry.failure(e.reason(), &e.to_string());
            tracing::error!(error = %e, "Snapshot failed (will retry at next interval)");
            (false, CheckStatus::Critical, e.to_string())
        }
    }
}
