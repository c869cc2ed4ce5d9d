//! Retention planning at one destination: the pure plan ([`crate::retention::plan_at`]) over
//! one datacenter's listing, then the shrink guard's holds ([`crate::guard::hold`]), which
//! need the metadata of the recent backups (S3, Azure and GCS list without it).
//!
//! Metadata is read once per backup and cached: only an anomaly's acknowledgement ever changes
//! it, so a cached entry is trusted unless it carries an unacknowledged anomaly, which is read
//! again every time (another process may have acknowledged it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};

use super::{plan_listed, BackupMeta, StorageError, Store, StoredBackup};
use crate::guard::hold::{self, Hold};
use crate::retention::{Decision, RetentionPolicy};

/// Metadata read so far, by key.
#[derive(Debug, Clone, Default)]
pub struct MetaCache(Arc<Mutex<HashMap<String, BackupMeta>>>);

impl MetaCache {
    fn get(&self, key: &str) -> Option<BackupMeta> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            // Marks that change later (an anomaly until acknowledged, a backup until judged)
            // are read again each time.
            .filter(|m| m.anomaly.as_ref().is_none_or(|a| a.acknowledged.is_some()))
            .filter(|m| !m.is_unjudged())
            .cloned()
    }

    fn put(&self, key: &str, meta: &BackupMeta) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_string(), meta.clone());
    }

    /// Forgets keys no longer listed (bounds the cache by the listing).
    fn keep_only(&self, listed: &[StoredBackup]) {
        let keys: std::collections::HashSet<&str> = listed.iter().map(|b| b.key.as_str()).collect();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|k, _| keys.contains(k.as_str()));
    }
}

/// Metadata reads in flight at once.
const HEADS_IN_FLIGHT: usize = 16;

/// A retention plan at one destination.
#[derive(Debug)]
pub struct RetentionPlan {
    /// The backups of the datacenter, as listed (with metadata where it was read).
    pub listed: Vec<StoredBackup>,
    /// Every decision, newest first; held backups are kept with the hold as reason.
    pub decisions: Vec<Decision>,
    /// The shrink guard's active holds.
    pub holds: Vec<Hold>,
}

impl Store {
    /// Fills in the metadata of the backups `wanted` selects where the listing had none,
    /// from the cache or with HEAD requests (16 at a time). `strict`: a failed read is an
    /// error (retention must not act without it); otherwise the backup stays without.
    pub async fn fill_meta(
        &self,
        backups: Vec<StoredBackup>,
        wanted: impl Fn(&StoredBackup) -> bool,
        strict: bool,
    ) -> Result<Vec<StoredBackup>, StorageError> {
        let cache = &self.1;
        let wanted = &wanted;
        futures_util::stream::iter(backups)
            .map(|b| async move {
                if b.meta.is_some() || !wanted(&b) {
                    return Ok(b);
                }
                if let Some(meta) = cache.get(&b.key) {
                    return Ok(StoredBackup {
                        meta: Some(meta),
                        ..b
                    });
                }
                match self.head(&b.key).await {
                    Ok(h) => {
                        if let Some(m) = &h.meta {
                            cache.put(&b.key, m);
                        }
                        Ok(StoredBackup { meta: h.meta, ..b })
                    }
                    Err(e) if strict => Err(e),
                    Err(_) => Ok(b),
                }
            })
            .buffered(HEADS_IN_FLIGHT)
            .try_collect()
            .await
    }

    /// Plans retention over `listed` (a complete listing) for `datacenter`: the policy's
    /// decisions, then, when `hold` is set (the shrink guard is on), the holds of every
    /// unacknowledged anomaly younger than `hold`, whose backups are kept. Deletes nothing.
    ///
    /// # Errors
    /// The policy keeps nothing ([`StorageError::Policy`]); the metadata of a backup young
    /// enough to carry an active anomaly could not be read (a hold could be missed, so nothing
    /// may be deleted).
    pub async fn plan(
        &self,
        listed: Vec<StoredBackup>,
        policy: &RetentionPolicy,
        datacenter: &str,
        hold: Option<Duration>,
    ) -> Result<RetentionPlan, StorageError> {
        // A static name is outside retention: its history is the bucket's versioning.
        let static_key = self.static_key();
        let listed: Vec<StoredBackup> = listed
            .into_iter()
            .filter(|b| static_key.as_deref() != Some(b.key.as_str()))
            .collect();
        let (ours, mut decisions) = plan_listed(listed, policy, datacenter)?;
        let Some(hold) = hold else {
            return Ok(RetentionPlan {
                listed: ours,
                decisions,
                holds: Vec::new(),
            });
        };
        let now = Utc::now();
        let since = now - chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
        let ours = self.fill_meta(ours, |b| b.name.time > since, true).await?;
        self.1.keep_only(&ours);
        let marks: HashMap<String, crate::guard::AnomalyMark> = ours
            .iter()
            .filter_map(|b| Some((b.key.clone(), b.meta.as_ref()?.anomaly.clone()?)))
            .collect();
        let entries: Vec<_> = ours.iter().map(StoredBackup::entry).collect();
        let holds =
            hold::holds(&entries, &marks, policy, now, hold).map_err(StorageError::Policy)?;
        hold::apply(&mut decisions, &holds);
        Ok(RetentionPlan {
            listed: ours,
            decisions,
            holds,
        })
    }
}
