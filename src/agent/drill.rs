//! Scheduled restore drills in the daemon: after a snapshot cycle, once the last drill is older
//! than `drill.interval`, the leader drills its newest backup into the scratch cluster
//! ([`crate::restore::drill::run_drill`], what the `drill` command does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::consul::ConsulClient;
use crate::crypto::Identities;
use crate::restore::drill::{refuse_production, run_drill, DrillReport, DrillTarget};
use crate::restore::select::Selection;
use crate::restore::Source;
use crate::storage::{Store, StoredBackup};

/// How long the scratch cluster may take to apply a drill's restore.
pub const DRILL_RESTORE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Drills the newest backup of `datacenter` across `stores` into `target`, after checking that
/// `target` is not `prod` (the cluster backed up). `Err` says why the drill could not run.
pub async fn drill_newest(
    prod: &ConsulClient,
    stores: &[Store],
    datacenter: &str,
    target: &DrillTarget,
    ids: &Arc<Identities>,
) -> Result<DrillReport, String> {
    let started = Instant::now();
    refuse_production(&target.client, prod)
        .await
        .map_err(|e| e.to_string())?;
    let mut all: Vec<(usize, StoredBackup)> = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        match store.list().await {
            Ok(l) => all.extend(
                l.into_iter()
                    .filter(|b| b.is_of(datacenter))
                    .map(|b| (i, b)),
            ),
            Err(e) => {
                tracing::warn!(destination = %store, error = %e, "drill: listing failed; other destinations are used")
            }
        }
    }
    let picked = crate::restore::pick(stores, all, &Selection::Latest).await;
    let skipped = match &picked {
        Ok(p) => &p.skipped,
        Err(s) => s,
    };
    for (key, why) in skipped {
        tracing::warn!(key = %key, reason = %why, "drill: passed over a backup");
    }
    let (i, backup) = picked
        .map(|p| (p.store, p.backup))
        .map_err(|_| format!("no backup of {datacenter} to drill"))?;
    let source = Source::Stored {
        store: Box::new(stores[i].clone()),
        backup: Box::new(backup),
    };
    run_drill(&source, target, ids, Some(DRILL_RESTORE_TIMEOUT), started)
        .await
        .map_err(|e| e.to_string())
}
