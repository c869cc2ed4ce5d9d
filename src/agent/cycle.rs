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

use chrono::{SubsecRound, Utc};
use tokio_util::sync::CancellationToken;

use crate::archive::{ArchiveReport, InspectReport, InspectStats, ReadOptions, TypePolicy};
use crate::consul::{get_snapshot, ConsulClient, ConsulError, RetryPolicy};
use crate::crypto::{Identities, Recipients, Sealing};
use crate::guard::{Anomaly, Baseline, GuardConfig, Guarded, Hold, Measures, Thresholds};
use crate::pipeline::{stream_verified, FanOut, PipelineError};
use crate::retention::{Decision, RetentionPolicy};
use crate::storage::{
    sort_newest_first, BackupMeta, BackupName, StorageError, Store, StoredBackup,
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
            CycleError::Store(_) | CycleError::NoDestination => "storage",
            CycleError::Cancelled => "cancelled",
        }
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
    pub stored: Result<StoredBackup, String>,
    /// Retention decisions and deletions there; `None` when retention did not run.
    pub retention: Option<Result<Vec<Decision>, String>>,
    /// The shrink guard's active holds there (known when retention ran).
    pub holds: Vec<Hold>,
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
    sweep_leftovers(stores).await;
    let baseline = match &cfg.guard {
        Some(_) => baseline_of(stores, &datacenter).await,
        None => None,
    };
    let download = get_snapshot(client, cfg.stale, cfg.retry)
        .await
        .map_err(CycleError::Request)?;
    let now = Utc::now().trunc_subsecs(0);
    let name = BackupName {
        encrypted: cfg.encryption.is_some(),
        time: now,
        datacenter: datacenter.clone(),
        index: download.index.unwrap_or(0),
    };
    let pending = BackupMeta {
        datacenter: Some(datacenter),
        created: Some(now.to_rfc3339()),
        ..Default::default()
    };
    let (uploads, mut stored_at) = begin_uploads(stores, &name, &pending).await?;
    let (opts, stats) = (ReadOptions { types: cfg.types }, InspectStats::new(None));
    let fanout = FanOut::new(uploads);
    let thresholds = cfg
        .guard
        .as_ref()
        .map_or_else(Thresholds::default, |g| g.thresholds.clone());
    let streamed = match &cfg.encryption {
        // Verified as plaintext, encrypted in the same pass: destinations get ciphertext only.
        Some(recipients) => {
            let sealing = Sealing::new(fanout, recipients)
                .await
                .map_err(|e| CycleError::Store(format!("starting encryption: {e}")))?;
            let sink = Guarded::new(sealing, baseline, thresholds);
            stream_verified(download.body, sink, opts, stats, cancel).await
        }
        None => {
            let sink = Guarded::new(fanout, baseline, thresholds);
            stream_verified(download.body, sink, opts, stats, cancel).await
        }
    };
    let (report, stats, (anomaly, results)) = streamed.map_err(|e| match e {
        PipelineError::Invalid(e) => CycleError::Invalid(e),
        PipelineError::Source(e) => CycleError::Transfer(e),
        PipelineError::Sink(e) => CycleError::Store(e.to_string()),
        PipelineError::Cancelled => CycleError::Cancelled,
    })?;
    if let Some(a) = &anomaly {
        tracing::warn!(reason = %a.reason(), "shrink guard: this snapshot is markedly smaller than the last backup; it is stored and marked as an anomaly, and retention holds the backups from before it until `prune --acknowledge-anomaly KEY` or the hold expires");
    }
    if download.index.is_some_and(|i| i != report.meta.index) {
        tracing::warn!(header = ?download.index, meta = report.meta.index, "X-Consul-Index differs from the snapshot's meta.json index");
    }
    stored_at.extend(
        results
            .into_iter()
            .map(|(i, r)| (i, r.map_err(|e| e.to_string()))),
    );
    let mut destinations = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let stored = stored_at
            .remove(&i)
            .unwrap_or_else(|| Err("not attempted".into()));
        destinations.push(finish_destination(store, stored, cfg, &report, &name).await);
    }
    let stats = stats.into_report(&report.meta);
    Ok(CycleOutcome {
        report,
        stats,
        name,
        destinations,
        duration: started.elapsed(),
        anomaly,
    })
}

/// Backups looked at per destination to find the shrink guard's baseline (newest first; older
/// agent versions stored no counts).
const BASELINE_CANDIDATES: usize = 3;

/// The shrink guard's baseline: the newest backup of `datacenter`, at any destination, whose
/// metadata has record counts. `None` (nothing judged) when there is none or no destination
/// could be read; that is logged, never fatal.
async fn baseline_of(stores: &[Store], datacenter: &str) -> Option<Baseline> {
    let mut best: Option<(StoredBackup, Measures)> = None;
    for store in stores {
        let mut listed = match store.list().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(destination = %store, error = %e, "shrink guard: could not list the last backups; this snapshot is not compared there");
                continue;
            }
        };
        listed.retain(|b| b.is_of(datacenter));
        sort_newest_first(&mut listed);
        listed.truncate(BASELINE_CANDIDATES);
        let Ok(listed) = store.fill_meta(listed, |_| true, false).await else {
            continue;
        };
        let found = listed.into_iter().find_map(|b| {
            let m = b.meta.as_ref()?;
            let measures = Measures {
                counts: m.counts?,
                state_bytes: m.state_size?,
            };
            Some((b, measures))
        });
        if let Some((b, m)) = found {
            let newer = best
                .as_ref()
                .is_none_or(|(x, _)| (b.name.time, b.name.index) > (x.name.time, x.name.index));
            if newer {
                best = Some((b, m));
            }
        }
    }
    best.map(|(b, measures)| Baseline {
        name: b.key.rsplit('/').next().unwrap_or(&b.key).to_string(),
        measures,
    })
}

/// The datacenter backups are named after: the configured one, else the agent's own from
/// `/v1/agent/self`. A nameless datacenter would make nameless backups, and retention over
/// them could not tell datacenters apart: refused.
async fn datacenter_of(client: &ConsulClient, cfg: &CycleConfig) -> Result<String, CycleError> {
    if let Some(dc) = &cfg.datacenter {
        return Ok(dc.clone());
    }
    let dc = client
        .agent_self()
        .await
        .map_err(CycleError::AgentSelf)?
        .datacenter;
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

/// Removes what interrupted uploads left (stale multipart uploads, old `.partial` files).
/// Failures are logged, never fatal: they only cost space.
async fn sweep_leftovers(stores: &[Store]) {
    for store in stores {
        if let Err(e) = store.sweep(STALE_UPLOAD_AGE).await {
            tracing::warn!(destination = %store, error = %e, "could not sweep leftovers of interrupted uploads");
        }
    }
}

/// What each destination (by its place in the configuration) has stored, or why not.
type StoredAt = std::collections::BTreeMap<usize, Result<StoredBackup, String>>;

/// Begins an upload at every destination: the uploads begun, keyed by destination, and the
/// destinations that could not begin (with why). None able to begin is a
/// [`CycleError::Store`].
async fn begin_uploads(
    stores: &[Store],
    name: &BackupName,
    pending: &BackupMeta,
) -> Result<(Vec<(usize, crate::storage::Upload)>, StoredAt), CycleError> {
    let (mut uploads, mut failed) = (Vec::new(), StoredAt::new());
    for (i, store) in stores.iter().enumerate() {
        match store.begin(name, pending.clone()).await {
            Ok(u) => uploads.push((i, u)),
            Err(e) => {
                failed.insert(i, Err(e.to_string()));
            }
        }
    }
    if uploads.is_empty() {
        let why: Vec<String> = failed.into_values().filter_map(Result::err).collect();
        return Err(CycleError::Store(why.join("; ")));
    }
    Ok((uploads, failed))
}

/// After the store at one destination: the optional read-back, then retention (only if the
/// backup is stored and read back), and the log line.
async fn finish_destination(
    store: &Store,
    mut stored: Result<StoredBackup, String>,
    cfg: &CycleConfig,
    report: &ArchiveReport,
    name: &BackupName,
) -> DestinationOutcome {
    if let (true, Ok(b)) = (cfg.verify_readback, &stored) {
        let expected = b.meta.clone().unwrap_or_else(|| BackupMeta {
            sha256: Some(hex::encode(report.archive_sha256)),
            ..BackupMeta::default()
        });
        match store
            .readback(&b.key, Some(&expected), &cfg.identities)
            .await
        {
            Ok(_) => {}
            Err(e @ StorageError::Readback { .. }) => {
                // Read and proved wrong: a backup that does not read back intact is no
                // backup. Remove it.
                let _ = store.delete(std::slice::from_ref(&b.key)).await;
                stored = Err(format!("{e}; the stored backup was deleted"));
            }
            Err(e) => {
                // Could not read it: nothing is known to be wrong, so keep the backup (it
                // verified on upload), report, and skip retention here.
                stored = Err(format!("{e}; the backup was kept"));
            }
        }
    }
    let hold = cfg.guard.as_ref().map(|g| g.hold);
    let (retention, holds) = match &stored {
        Ok(b) => match apply_retention(store, &cfg.retention, &b.key, &name.datacenter, hold).await
        {
            Ok((decisions, holds)) => (Some(Ok(decisions)), holds),
            Err(e) => (Some(Err(e.to_string())), Vec::new()),
        },
        Err(_) => (None, Vec::new()),
    };
    match &stored {
        Ok(b) => {
            tracing::info!(destination = %store, key = %b.key, bytes = b.size, "snapshot stored")
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
    }
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
        tracing::info!(destination = %store, deleted = doomed.len(), "retention applied");
    }
    for h in &plan.holds {
        tracing::warn!(destination = %store, anomaly = %h.anomaly, held = h.held.len(), until = %h.until, "shrink guard: holding the backups from before an unacknowledged anomaly");
    }
    Ok((decisions, plan.holds))
}
