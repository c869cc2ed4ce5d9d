//! One backup cycle:
//! `GET /v1/snapshot` → verify + inspect in the stream → store to every destination (each
//! published only after verification) → optional read-back → retention per destination.
//!
//! What can never happen: a failed or unverified save deleting anything (retention runs only
//! for a destination whose upload committed, only over a complete listing, and never deletes
//! the backup just stored); a destination failing taking the others down with it; retention
//! deleting the backups from before a markedly smaller snapshot (the shrink guard: the new
//! snapshot is judged against the last backup before it is committed, marked as an anomaly if
//! it shrank, and retention holds what came before).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::SubsecRound;
use tokio_util::sync::CancellationToken;

use super::clock::ClockCheck;
use crate::archive::{ArchiveReport, InspectReport, InspectStats, ReadOptions, TypePolicy};
use crate::consul::{get_snapshot, ConsulClient, ConsulError, RetryPolicy};
use crate::crypto::{Identities, Recipients, Sealing};
use crate::guard::{Anomaly, Baseline, GuardConfig, Guarded, Hold, Measures, Thresholds};
use crate::pipeline::{stream_verified, FanOut, PipelineError};
use crate::retention::{Decision, RetentionPolicy};
use crate::storage::{
    sort_newest_first, BackupMeta, BackupName, ErrorKind, StorageError, Store, StoredBackup,
};

/// Multipart uploads and `.partial` files of ours older than this are removed at the start of
/// a cycle (younger ones may belong to a writer at work).
pub const STALE_UPLOAD_AGE: Duration = Duration::from_secs(6 * 3600);

/// What a cycle does.
#[derive(Debug, Clone)]
pub struct CycleConfig {
    /// Let a follower answer (`?stale`).
    pub stale: bool,
    /// Retries of the snapshot request before the first byte.
    pub retry: RetryPolicy,
    /// Datacenter for names; asked from `/v1/agent/self` when `None`.
    pub datacenter: Option<String>,
    /// Record type strictness.
    pub types: TypePolicy,
    /// Stream every stored backup back through the verifier.
    pub verify_readback: bool,
    /// Retention applied to each destination after a successful store.
    pub retention: RetentionPolicy,
    /// Encrypt every backup to these recipients (only ciphertext reaches a destination).
    pub encryption: Option<Arc<Recipients>>,
    /// What the read-back decrypts with; empty: it checks an encrypted backup's ciphertext
    /// digest only.
    pub identities: Arc<Identities>,
    /// The shrink guard; `None`: off.
    pub guard: Option<GuardConfig>,
    /// This is a restore's safety snapshot (marked so in its metadata: never chosen by
    /// `--latest`, never a shrink-guard baseline).
    pub safety_snapshot: bool,
}

impl CycleConfig {
    /// The cycle the agent configuration `cfg` describes, with the request `retry` policy and
    /// the record-type strictness `types` (both from the command line only).
    pub fn of_agent(
        cfg: &crate::config::AgentConfig,
        retry: RetryPolicy,
        types: TypePolicy,
    ) -> Self {
        CycleConfig {
            stale: cfg.stale,
            retry,
            datacenter: cfg.consul.datacenter.clone(),
            types,
            verify_readback: cfg.verify_readback,
            retention: cfg.retention.clone(),
            encryption: cfg.encryption.clone(),
            identities: cfg.identities.clone(),
            guard: cfg.guard.clone(),
            safety_snapshot: false,
        }
    }
}

/// Why a cycle failed before anything was stored. Nothing was deleted.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("asking the Consul agent for its datacenter: {0}")]
    AgentSelf(ConsulError),
    #[error("snapshot request failed: {0}")]
    Request(ConsulError),
    #[error("snapshot verification failed: {0}")]
    Invalid(crate::archive::ArchiveError),
    #[error("snapshot transfer failed: {0}")]
    Transfer(std::io::Error),
    #[error("storing the snapshot failed everywhere: {0}")]
    Store(String),
    /// No destination could begin its upload (each failed or timed out earlier in the
    /// cycle): per destination, its display name, its kind (the metrics' label) and why.
    #[error("storing the snapshot failed everywhere: {}", .0.iter().map(|f| f.why.as_str()).collect::<Vec<_>>().join("; "))]
    NoneBegan(Vec<NotBegun>),
    #[error("no destination is configured")]
    NoDestination,
    #[error("cancelled (leadership lost or shutting down); nothing was stored")]
    Cancelled,
}

impl CycleError {
    /// Every [`CycleError::reason`] label.
    pub const REASONS: [&'static str; 5] =
        ["consul", "transfer", "verification", "storage", "cancelled"];

    /// A short label for metrics (`failures by reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            CycleError::AgentSelf(_) | CycleError::Request(_) => "consul",
            CycleError::Invalid(_) => "verification",
            CycleError::Transfer(_) => "transfer",
            CycleError::Store(_) | CycleError::NoneBegan(_) | CycleError::NoDestination => {
                "storage"
            }
            CycleError::Cancelled => "cancelled",
        }
    }
}

/// A destination whose upload could not begin in a cycle.
#[derive(Debug)]
pub struct NotBegun {
    /// `local:/path` or `s3://bucket/prefix/`.
    pub destination: String,
    /// The backend's kind (`local`, `s3`, `azure`, `gcs`).
    pub kind: &'static str,
    /// The kind of failure (the `error` label of the failure metric).
    pub error: ErrorKind,
    pub why: String,
}

/// Why a destination did not store the backup: the kind of failure (the `error` label of
/// `consul_snapshot_destination_failures_total`) and what happened, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DestinationError {
    /// From a storage error.
    pub fn of(e: &StorageError) -> Self {
        DestinationError {
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// From the pipeline's I/O error (which carries the storage error when there was one).
    pub fn of_io(e: &std::io::Error) -> Self {
        DestinationError {
            kind: ErrorKind::of_io(e),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What happened at one destination.
#[derive(Debug)]
pub struct DestinationOutcome {
    /// `local:/path` or `s3://bucket/prefix/`.
    pub destination: String,
    /// The backend's kind (`local`, `s3`, `azure`, `gcs`): the metrics' label.
    pub kind: &'static str,
    /// The stored backup, or why it failed.
    pub stored: Result<StoredBackup, DestinationError>,
    /// Retention decisions and deletions there; `None` when retention did not run.
    pub retention: Option<Result<Vec<Decision>, String>>,
    /// The shrink guard's active holds there (known when retention ran).
    pub holds: Vec<Hold>,
    /// Why retention deleted nothing there although the backup is stored (this host's clock
    /// is not trusted and the policy reads times).
    pub retention_skipped: Option<String>,
}

impl DestinationOutcome {
    /// Backups deleted by retention here.
    pub fn deleted(&self) -> usize {
        match &self.retention {
            Some(Ok(d)) => d.iter().filter(|d| !d.keep).count(),
            _ => 0,
        }
    }
}

/// A cycle that reached the storage step.
#[derive(Debug)]
pub struct CycleOutcome {
    pub report: ArchiveReport,
    pub stats: InspectReport,
    pub name: BackupName,
    pub destinations: Vec<DestinationOutcome>,
    pub duration: Duration,
    /// Set when this snapshot is markedly smaller than the last backup (shrink guard).
    pub anomaly: Option<Anomaly>,
    /// Set when the shrink guard could not compare this snapshot (a listing failed and no
    /// baseline was found); the backup is marked unjudged.
    pub unjudged: bool,
    /// This host's clock beside an independent one (a destination's or Consul's).
    pub clock: ClockCheck,
}

impl CycleOutcome {
    /// Whether every destination stored the backup and retention succeeded everywhere.
    pub fn all_ok(&self) -> bool {
        self.destinations
            .iter()
            .all(|d| d.stored.is_ok() && !matches!(d.retention, Some(Err(_))))
    }

    /// Reasons of the shrink guard's unacknowledged anomalies: this snapshot's, and every
    /// active hold's at any destination (the same anomaly once). Empty when all is well.
    pub fn anomalies(&self) -> Vec<String> {
        let mut out: Vec<String> = self.anomaly.iter().map(Anomaly::reason).collect();
        for h in self.destinations.iter().flat_map(|d| &d.holds) {
            let name = h.anomaly.rsplit('/').next().unwrap_or(&h.anomaly);
            let line = format!("{name}: {}", h.reason);
            if !out.iter().any(|o| *o == h.reason || *o == line) {
                out.push(line);
            }
        }
        out
    }
}

/// Runs one cycle against `client`, storing to `stores`. `cancel` stops it at the next chunk,
/// aborting every upload.
///
/// A destination that times out (by the error's kind) is skipped for the rest of the cycle,
/// so a hung destination costs at most one request timeout × attempts; the others carry on.
/// The leftovers of interrupted uploads are swept after the store, never before it.
pub async fn run_cycle(
    client: &ConsulClient,
    stores: &[Store],
    cfg: &CycleConfig,
    cancel: Option<&CancellationToken>,
) -> Result<CycleOutcome, CycleError> {
    if stores.is_empty() {
        return Err(CycleError::NoDestination);
    }
    let started = Instant::now();
    let datacenter = datacenter_of(client, cfg).await?;
    let mut dead: Vec<Option<String>> = vec![None; stores.len()];
    let guard = match &cfg.guard {
        Some(g) => Some(guard_listing(stores, &datacenter, &g.thresholds, &mut dead).await),
        None => None,
    };
    let download = get_snapshot(client, cfg.stale, cfg.retry)
        .await
        .map_err(CycleError::Request)?;
    let clock = clock_check(stores, download.date);
    if let Some(w) = clock.warning() {
        tracing::warn!("{w}");
    }
    let unjudged = guard.as_ref().is_some_and(GuardListing::unjudged);
    let (name, pending) = identity(cfg, datacenter, &clock, download.index, unjudged);
    let (uploads, mut stored_at) = begin_uploads(stores, &name, &pending, &dead).await?;
    if unjudged {
        tracing::warn!("shrink guard: no destination could be listed for a baseline; this snapshot is stored unjudged (it is never a baseline, and is judged at the next cycle that can list)");
    }
    let baseline = guard.as_ref().and_then(|g| g.baseline.clone());
    let (report, stats, (anomaly, results)) =
        stream_to(download.body, FanOut::new(uploads), cfg, baseline, cancel).await?;
    if let Some(a) = &anomaly {
        tracing::warn!(reason = %a.reason(), "shrink guard: this snapshot is markedly smaller than the last backup; it is stored and marked as an anomaly, and retention holds the backups from before it until `prune --acknowledge-anomaly KEY` or the hold expires");
    }
    if download.index.is_some_and(|i| i != report.meta.index) {
        tracing::warn!(header = ?download.index, meta = report.meta.index, "X-Consul-Index differs from the snapshot's meta.json index");
    }
    for (i, r) in results {
        if let Err(e) = &r {
            if e.kind() == std::io::ErrorKind::TimedOut {
                dead[i] = Some(format!("it timed out storing the backup ({e})"));
            }
        }
        stored_at.insert(i, r.map_err(|e| DestinationError::of_io(&e)));
    }
    let mut destinations = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let stored = stored_at.remove(&i).unwrap_or_else(|| {
            Err(DestinationError {
                kind: ErrorKind::Transient,
                message: "not attempted".into(),
            })
        });
        let at = Destination {
            store,
            listed: guard.as_ref().is_none_or(|g| g.listed[i]),
            dead: &mut dead[i],
        };
        destinations.push(finish_destination(at, stored, cfg, &report, &name, &clock).await);
    }
    sweep_leftovers(stores, &dead, &clock).await;
    let stats = stats.into_report(&report.meta);
    Ok(CycleOutcome {
        report,
        stats,
        name,
        destinations,
        duration: started.elapsed(),
        anomaly,
        unjudged,
        clock,
    })
}

/// The new backup's name and the metadata known before its bytes: named by the time this
/// host's clock gives when trusted (else the reference clock's, [`ClockCheck::naming_time`])
/// and the snapshot's Raft index from `X-Consul-Index`.
fn identity(
    cfg: &CycleConfig,
    datacenter: String,
    clock: &ClockCheck,
    index: Option<u64>,
    unjudged: bool,
) -> (BackupName, BackupMeta) {
    let now = clock.naming_time().trunc_subsecs(0);
    let name = BackupName {
        encrypted: cfg.encryption.is_some(),
        time: now,
        datacenter: datacenter.clone(),
        index: index.unwrap_or(0),
    };
    let pending = BackupMeta {
        datacenter: Some(datacenter),
        created: Some(now.to_rfc3339()),
        safety_snapshot: cfg.safety_snapshot.then_some(true),
        unjudged: unjudged.then_some(true),
        ..Default::default()
    };
    (name, pending)
}

/// What streaming into the destinations yields: the verifier's report, the record
/// statistics, the shrink guard's verdict, and each destination's result by index.
type Streamed = (
    ArchiveReport,
    InspectStats,
    (Option<Anomaly>, Vec<(usize, std::io::Result<StoredBackup>)>),
);

/// Streams the snapshot `body` into every upload at once through the shrink guard (judged
/// against `baseline`) and, when encrypting, age: verified as plaintext, encrypted in the
/// same pass, so destinations get ciphertext only.
async fn stream_to(
    body: crate::storage::ByteStream,
    fanout: FanOut<usize, crate::storage::Upload>,
    cfg: &CycleConfig,
    baseline: Option<Baseline>,
    cancel: Option<&CancellationToken>,
) -> Result<Streamed, CycleError> {
    let (opts, stats) = (ReadOptions { types: cfg.types }, InspectStats::new(None));
    let thresholds = cfg
        .guard
        .as_ref()
        .map_or_else(Thresholds::default, |g| g.thresholds.clone());
    let streamed = match &cfg.encryption {
        Some(recipients) => {
            let sealing = Sealing::new(fanout, recipients)
                .await
                .map_err(|e| CycleError::Store(format!("starting encryption: {e}")))?;
            let sink = Guarded::new(sealing, baseline, thresholds);
            stream_verified(body, sink, opts, stats, cancel).await
        }
        None => {
            let sink = Guarded::new(fanout, baseline, thresholds);
            stream_verified(body, sink, opts, stats, cancel).await
        }
    };
    streamed.map_err(|e| match e {
        PipelineError::Invalid(e) => CycleError::Invalid(e),
        PipelineError::Source(e) => CycleError::Transfer(e),
        PipelineError::Sink(e) => CycleError::Store(e.to_string()),
        PipelineError::Cancelled => CycleError::Cancelled,
    })
}

/// This host's clock beside the first destination's (from the `Date` of its answers), or,
/// when no destination has one, Consul's (`consul_date`, from the snapshot's answer).
fn clock_check(stores: &[Store], consul_date: Option<chrono::DateTime<chrono::Utc>>) -> ClockCheck {
    let local = chrono::Utc::now();
    let reference = stores
        .iter()
        .find_map(|s| s.server_time().map(|t| (t, s.to_string())))
        .or_else(|| consul_date.map(|t| (t, "Consul".to_string())));
    ClockCheck { local, reference }
}

/// Backups looked at per destination to find the shrink guard's baseline (newest first; older
/// agent versions stored no counts; unjudged and safety snapshots are passed over).
const BASELINE_CANDIDATES: usize = 8;

/// What the shrink guard learnt from listing every destination before the snapshot.
#[derive(Debug)]
struct GuardListing {
    /// The newest judged backup with record counts, at any destination.
    baseline: Option<Baseline>,
    /// Per destination: whether its listing succeeded in this cycle (retention runs only
    /// where it did: the guard fails closed).
    listed: Vec<bool>,
}

impl GuardListing {
    /// Nothing to compare with while some destination could not be listed: the snapshot is
    /// stored unjudged.
    fn unjudged(&self) -> bool {
        self.baseline.is_none() && self.listed.contains(&false)
    }
}

/// Lists every destination for the shrink guard's baseline: the newest backup of
/// `datacenter` whose metadata has record counts and that is neither unjudged nor a safety
/// snapshot. Unjudged backups newer than the baseline are judged against it now, and marked
/// (an anomaly, or judged) in their metadata. A destination whose listing times out is marked
/// dead for the cycle in `dead`.
async fn guard_listing(
    stores: &[Store],
    datacenter: &str,
    thresholds: &Thresholds,
    dead: &mut [Option<String>],
) -> GuardListing {
    let mut best: Option<(StoredBackup, Measures)> = None;
    let mut listed = vec![false; stores.len()];
    let mut unjudged: Vec<(usize, StoredBackup, Measures)> = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let fetched = match store.list().await {
            Ok(mut l) => {
                l.retain(|b| b.is_of(datacenter));
                sort_newest_first(&mut l);
                l.truncate(BASELINE_CANDIDATES);
                store.fill_meta(l, |_| true, false).await
            }
            Err(e) => Err(e),
        };
        let listing = match fetched {
            Ok(l) => l,
            Err(e) => {
                if e.is_timeout() {
                    dead[i] = Some(format!("it timed out listing its backups ({e})"));
                }
                tracing::warn!(destination = %store, error = %e, "shrink guard: could not list the last backups there; retention deletes nothing there this cycle");
                continue;
            }
        };
        listed[i] = true;
        for b in listing {
            let Some(m) = b.meta.as_ref() else { continue };
            let (Some(counts), Some(state_bytes)) = (m.counts, m.state_size) else {
                continue;
            };
            let measures = Measures {
                counts,
                state_bytes,
            };
            if m.is_safety_snapshot() {
                continue;
            }
            if m.is_unjudged() {
                unjudged.push((i, b, measures));
                continue;
            }
            let newer = best
                .as_ref()
                .is_none_or(|(x, _)| (b.name.time, b.name.index) > (x.name.time, x.name.index));
            if newer {
                best = Some((b, measures));
            }
            break;
        }
    }
    let baseline = best.map(|(b, measures)| Baseline {
        name: b.key.rsplit('/').next().unwrap_or(&b.key).to_string(),
        measures,
    });
    if let Some(base) = &baseline {
        for (i, b, after) in unjudged {
            judge_later(&stores[i], b, base, &after, thresholds).await;
        }
    }
    GuardListing { baseline, listed }
}

/// Judges a backup stored unjudged against `base` and records the verdict in its metadata
/// (an anomaly mark, which makes retention hold what came before it; or simply judged). A
/// failure to record is logged: the backup stays unjudged and is tried again next cycle.
async fn judge_later(
    store: &Store,
    b: StoredBackup,
    base: &Baseline,
    after: &Measures,
    thresholds: &Thresholds,
) {
    let Some(mut meta) = b.meta.clone() else {
        return;
    };
    let anomaly = crate::guard::judge(&base.name, &base.measures, after, thresholds);
    if let Some(a) = &anomaly {
        tracing::warn!(key = %b.key, reason = %a.reason(), "shrink guard: a backup stored unjudged is markedly smaller than the last backup before it; it is marked as an anomaly");
        meta.anomaly = Some(a.mark());
    }
    meta.unjudged = None;
    if let Err(e) = store.set_meta(&b.key, &meta).await {
        tracing::warn!(destination = %store, key = %b.key, error = %e, "shrink guard: could not record the verdict on an unjudged backup; it is judged again next cycle");
    }
}

/// The datacenter backups are named after: the configured one, else the agent's own from
/// `/v1/agent/self`. A nameless datacenter would make nameless backups, and retention over
/// them could not tell datacenters apart: refused.
async fn datacenter_of(client: &ConsulClient, cfg: &CycleConfig) -> Result<String, CycleError> {
    if let Some(dc) = &cfg.datacenter {
        return Ok(dc.clone());
    }
    // Retried as the snapshot request is (connection errors, 5xx, 429): it is the cycle's
    // first call, and a Consul agent restarting must not fail a cron run at once.
    let dc = {
        use backon::Retryable;
        (|| client.agent_self())
            .retry(cfg.retry.backoff())
            .when(ConsulError::is_transient)
            .notify(|e, delay| {
                tracing::warn!(error = %e, retry_in = ?delay, "asking the Consul agent for its datacenter failed, retrying")
            })
            .await
            .map_err(CycleError::AgentSelf)?
            .datacenter
    };
    if !crate::storage::naming::valid_datacenter(&dc) {
        return Err(CycleError::AgentSelf(ConsulError::Decode {
            what: "/v1/agent/self".into(),
            detail: format!(
                "Config.Datacenter is {dc:?}, not a usable datacenter name; set --datacenter"
            ),
        }));
    }
    Ok(dc)
}

/// Removes what interrupted uploads left (stale multipart uploads, old `.partial` files),
/// after the store and only at destinations that did not time out in this cycle. Failures are
/// logged, never fatal: they only cost space. Nothing is swept while this host's clock is not
/// trusted: "old" is judged by it, and a step forward would make a writer's young leftovers
/// look old.
async fn sweep_leftovers(stores: &[Store], dead: &[Option<String>], clock: &ClockCheck) {
    if clock.untrusted() {
        tracing::warn!("leftovers of interrupted uploads are not swept this cycle: this host's clock is not trusted");
        return;
    }
    for (store, dead) in stores.iter().zip(dead) {
        if dead.is_some() {
            continue;
        }
        if let Err(e) = store.sweep(STALE_UPLOAD_AGE).await {
            tracing::warn!(destination = %store, error = %e, "could not sweep leftovers of interrupted uploads");
        }
    }
}

/// What each destination (by its place in the configuration) has stored, or why not.
type StoredAt = std::collections::BTreeMap<usize, Result<StoredBackup, DestinationError>>;

/// Begins an upload at every destination not marked dead: the uploads begun, keyed by
/// destination, and the destinations that could not begin or were skipped (with why). None
/// able to begin is a [`CycleError::NoneBegan`], naming each.
async fn begin_uploads(
    stores: &[Store],
    name: &BackupName,
    pending: &BackupMeta,
    dead: &[Option<String>],
) -> Result<(Vec<(usize, crate::storage::Upload)>, StoredAt), CycleError> {
    let (mut uploads, mut failed) = (Vec::new(), StoredAt::new());
    for (i, store) in stores.iter().enumerate() {
        if let Some(why) = &dead[i] {
            failed.insert(
                i,
                Err(DestinationError {
                    kind: ErrorKind::Timeout,
                    message: format!("skipped this cycle: {why}"),
                }),
            );
            continue;
        }
        match store.begin(name, pending.clone()).await {
            Ok(u) => uploads.push((i, u)),
            Err(e) => {
                failed.insert(i, Err(DestinationError::of(&e)));
            }
        }
    }
    if uploads.is_empty() {
        let each = failed
            .into_iter()
            .filter_map(|(i, r)| r.err().map(|why| (i, why)))
            .map(|(i, why)| NotBegun {
                destination: stores[i].to_string(),
                kind: stores[i].kind(),
                error: why.kind,
                why: why.message,
            })
            .collect();
        return Err(CycleError::NoneBegan(each));
    }
    Ok((uploads, failed))
}

/// One destination as the end of a cycle sees it.
struct Destination<'a> {
    store: &'a Store,
    /// Whether the shrink guard's listing succeeded there in this cycle (true when the guard
    /// is off).
    listed: bool,
    /// Why the destination is skipped for the rest of the cycle (it timed out).
    dead: &'a mut Option<String>,
}

/// After the store at one destination: the optional read-back ([`read_back`]), then
/// retention ([`retention_at`]), and the log line.
async fn finish_destination(
    mut at: Destination<'_>,
    stored: Result<StoredBackup, DestinationError>,
    cfg: &CycleConfig,
    report: &ArchiveReport,
    name: &BackupName,
    clock: &ClockCheck,
) -> DestinationOutcome {
    let store = at.store;
    let stored = match stored {
        Ok(b) if cfg.verify_readback && at.dead.is_none() => {
            read_back(&mut at, b, cfg, report).await
        }
        other => other,
    };
    let (retention, holds, retention_skipped) =
        retention_at(&mut at, &stored, cfg, name, clock).await;
    match &stored {
        Ok(b) => {
            // Debug: `agent --once` prints the summary, and the daemon logs "Saved snapshot";
            // a cron mail says it once.
            tracing::debug!(destination = %store, key = %b.key, bytes = b.size, "snapshot stored")
        }
        Err(e) => {
            tracing::error!(destination = %store, error = %e, "storing the snapshot failed")
        }
    }
    DestinationOutcome {
        destination: store.to_string(),
        kind: store.kind(),
        stored,
        retention,
        holds,
        retention_skipped,
    }
}

/// The read-back of the backup just stored at one destination. Bytes proved wrong delete it
/// (but at a static name, never deleted); a read that could not be completed keeps it (it
/// verified on upload), and either way the destination reports a failure, so retention does
/// not run there.
async fn read_back(
    at: &mut Destination<'_>,
    b: StoredBackup,
    cfg: &CycleConfig,
    report: &ArchiveReport,
) -> Result<StoredBackup, DestinationError> {
    let store = at.store;
    let expected = b.meta.clone().unwrap_or_else(|| BackupMeta {
        sha256: Some(hex::encode(report.archive_sha256)),
        ..BackupMeta::default()
    });
    match store
        .readback(&b.key, Some(&expected), &cfg.identities)
        .await
    {
        Ok(_) => Ok(b),
        Err(e @ StorageError::Readback { .. }) => {
            // Read and proved wrong: a backup that does not read back intact is no backup.
            if store.static_key().as_deref() == Some(b.key.as_str()) {
                Err(DestinationError {
                    kind: e.kind(),
                    message: format!(
                        "{e}; the object at the static name was left as it is (it is never deleted)"
                    ),
                })
            } else {
                let _ = store.delete(std::slice::from_ref(&b.key)).await;
                Err(DestinationError {
                    kind: e.kind(),
                    message: format!("{e}; the stored backup was deleted"),
                })
            }
        }
        Err(e) => {
            if e.is_timeout() {
                *at.dead = Some(format!("it timed out reading the backup back ({e})"));
            }
            // Could not read it: nothing is known to be wrong, so keep the backup, report,
            // and skip retention here.
            Err(DestinationError {
                kind: e.kind(),
                message: format!("{e}; the backup was kept"),
            })
        }
    }
}

/// Retention at one destination, only if the backup is stored (and read back), the shrink
/// guard's listing succeeded there, the destination did not time out, the key is not a static
/// name, and this host's clock is trusted or the policy reads no times. Returns the
/// decisions (or why none), the shrink guard's active holds, and why retention was skipped
/// when that is not a failure.
async fn retention_at(
    at: &mut Destination<'_>,
    stored: &Result<StoredBackup, DestinationError>,
    cfg: &CycleConfig,
    name: &BackupName,
    clock: &ClockCheck,
) -> (
    Option<Result<Vec<Decision>, String>>,
    Vec<crate::guard::Hold>,
    Option<String>,
) {
    let store = at.store;
    let hold = cfg.guard.as_ref().map(|g| g.hold);
    let mut retention_skipped = None;
    let (retention, holds) = match stored {
        Err(_) => (None, Vec::new()),
        Ok(_) if !at.listed => (
            Some(Err("the shrink guard could not list the last backups here at the start of this cycle, so retention deleted nothing here (it runs again once a listing succeeds)".to_string())),
            Vec::new(),
        ),
        Ok(_) if at.dead.is_some() => (
            Some(Err(format!(
                "retention skipped: {}",
                at.dead.as_deref().unwrap_or_default()
            ))),
            Vec::new(),
        ),
        Ok(b) if store.static_key().as_deref() == Some(b.key.as_str()) => {
            retention_skipped = Some(
                "retention does not apply to a static name: the bucket's versioning keeps the history"
                    .to_string(),
            );
            (None, Vec::new())
        }
        Ok(_) if clock.untrusted() && cfg.retention.uses_time() => {
            let why = format!(
                "retention deleted nothing: this host's clock is off by {}s from {}'s, and the policy reads backup times (keep-within, hourly..yearly)",
                clock.skew_seconds().unwrap_or_default(),
                clock.reference.as_ref().map_or("?", |(_, w)| w.as_str())
            );
            tracing::warn!(destination = %store, "{why}");
            retention_skipped = Some(why);
            (None, Vec::new())
        }
        Ok(b) => match apply_retention(store, &cfg.retention, &b.key, &name.datacenter, hold).await
        {
            Ok((decisions, holds)) => (Some(Ok(decisions)), holds),
            Err(e) => {
                if e.is_timeout() {
                    *at.dead = Some(format!("it timed out during retention ({e})"));
                }
                (Some(Err(e.to_string())), Vec::new())
            }
        },
    };
    (retention, holds, retention_skipped)
}

/// Lists, plans and deletes at one destination, over the backups of `datacenter` only, never
/// deleting `just_stored` nor what the shrink guard holds (`hold`: the guard is on). A listing
/// that does not contain `just_stored` is not trusted (eventual consistency, a wrong prefix):
/// nothing is deleted then. Returns the decisions and the active holds.
pub async fn apply_retention(
    store: &Store,
    policy: &RetentionPolicy,
    just_stored: &str,
    datacenter: &str,
    hold: Option<Duration>,
) -> Result<(Vec<Decision>, Vec<Hold>), StorageError> {
    let plan = store.plan_retention(policy, datacenter, hold).await?;
    let (listed, decisions) = (plan.listed, plan.decisions);
    for d in decisions.iter().filter(|d| {
        d.reasons
            .iter()
            .any(|r| r == crate::retention::FUTURE_REASON)
    }) {
        tracing::warn!(destination = %store, key = %d.key, "a backup is named in the future (clock skew on the host that took it?); it is kept and not counted by retention");
    }
    if !listed.iter().any(|b| b.key == just_stored) {
        return Err(StorageError::UntrustedListing {
            destination: store.to_string(),
            why: format!("it does not show the backup just stored ({just_stored})"),
        });
    }
    let doomed: Vec<String> = decisions
        .iter()
        .filter(|d| !d.keep && d.key != just_stored)
        .map(|d| d.key.clone())
        .collect();
    if !doomed.is_empty() {
        store.delete(&doomed).await?;
        tracing::debug!(destination = %store, deleted = doomed.len(), "retention applied");
    }
    for h in &plan.holds {
        tracing::warn!(destination = %store, anomaly = %h.anomaly, held = h.held.len(), until = %h.until, "shrink guard: holding the backups from before an unacknowledged anomaly");
    }
    Ok((decisions, plan.holds))
}
