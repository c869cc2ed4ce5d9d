//! The fleet view of `list --summary`: one line per destination and datacenter (operators of
//! many clusters send every site's backups to one bucket under one prefix; names carry the
//! datacenter), and which datacenters are stale or missing. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::select::skip_reason;
use crate::storage::StoredBackup;

/// One datacenter at one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatacenterSummary {
    /// `local:/path` or `s3://bucket/prefix/`.
    pub destination: String,
    pub datacenter: String,
    /// Backups of the datacenter there (safety snapshots and future-named ones included).
    pub count: usize,
    /// Their total size, in bytes (as stored).
    pub total_bytes: u64,
    /// The newest backup `restore --latest` would choose: not named in the future, not a
    /// safety snapshot, not an unacknowledged anomaly. `None` when there is none.
    pub newest: Option<Newest>,
    /// Whether any backup there carries an unacknowledged shrink-guard anomaly.
    pub anomaly: bool,
}

/// The newest usable backup of a datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Newest {
    pub key: String,
    /// When it was taken (its name), RFC 3339.
    pub time: DateTime<Utc>,
    /// Age at the time of the summary, in whole seconds.
    pub age_seconds: u64,
    /// Raft index of the snapshot.
    pub index: u64,
    /// Stored encrypted (age).
    pub encrypted: bool,
}

/// Groups `backups` (each with its destination) by destination and datacenter, in that order.
/// Metadata should be read (anomalies and safety snapshots are known from it).
pub fn summarize(backups: &[(String, StoredBackup)], now: DateTime<Utc>) -> Vec<DatacenterSummary> {
    let mut groups: BTreeMap<(String, String), Vec<&StoredBackup>> = BTreeMap::new();
    for (dest, b) in backups {
        groups
            .entry((dest.clone(), b.name.datacenter.clone()))
            .or_default()
            .push(b);
    }
    groups
        .into_iter()
        .map(|((destination, datacenter), list)| {
            let newest = list
                .iter()
                .filter(|b| skip_reason(b, now).is_none())
                .max_by(|a, b| (a.name.time, a.name.index).cmp(&(b.name.time, b.name.index)))
                .map(|b| Newest {
                    key: b.key.clone(),
                    time: b.name.time,
                    age_seconds: (now - b.name.time).num_seconds().max(0).unsigned_abs(),
                    index: b.name.index,
                    encrypted: b.name.encrypted,
                });
            DatacenterSummary {
                destination,
                datacenter,
                count: list.len(),
                total_bytes: list.iter().map(|b| b.size).sum(),
                newest,
                anomaly: list
                    .iter()
                    .any(|b| b.meta.as_ref().is_some_and(|m| m.unacknowledged_anomaly())),
            }
        })
        .collect()
}

/// What a fleet check found wrong: one line per datacenter, naming it.
///
/// `max_age`: a datacenter whose newest usable backup is older (at any destination holding it)
/// is stale; `expect`: datacenters that must have a backup somewhere.
pub fn problems(
    summaries: &[DatacenterSummary],
    max_age: Option<Duration>,
    expect: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = max_age {
        for s in summaries {
            match &s.newest {
                Some(n) if n.age_seconds > max.as_secs() => out.push(format!(
                    "{} at {}: newest backup {} is {} old (over {})",
                    s.datacenter,
                    s.destination,
                    n.time.to_rfc3339(),
                    humantime::format_duration(Duration::from_secs(n.age_seconds)),
                    humantime::format_duration(max)
                )),
                Some(_) => {}
                None => out.push(format!(
                    "{} at {}: no usable backup (only safety snapshots, anomalies or future-named ones)",
                    s.datacenter, s.destination
                )),
            }
        }
    }
    for dc in expect {
        if !summaries.iter().any(|s| &s.datacenter == dc) {
            out.push(format!("{dc}: no backup at any destination"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::naming::{format_name, BackupName};
    use crate::storage::BackupMeta;
    use chrono::TimeZone;

    fn b(dc: &str, hour: u32, size: u64) -> StoredBackup {
        let name = BackupName {
            encrypted: false,
            time: Utc
                .with_ymd_and_hms(2026, 12, 7, hour, 0, 0)
                .single()
                .expect("t"),
            datacenter: dc.into(),
            index: u64::from(hour),
        };
        StoredBackup {
            key: format_name(&name),
            name,
            size,
            modified: None,
            meta: None,
        }
    }

    #[test]
    fn one_line_per_datacenter_and_stale_or_missing_ones_named() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 7, 12, 0, 0)
            .single()
            .expect("t");
        let mut safety = b("dc2", 11, 5);
        safety.meta = Some(BackupMeta {
            safety_snapshot: Some(true),
            ..BackupMeta::default()
        });
        let s3 = "s3://bkt/p/".to_string();
        let all = vec![
            (s3.clone(), b("dc1", 10, 100)),
            (s3.clone(), b("dc1", 11, 200)),
            (s3.clone(), b("dc2", 6, 50)),
            (s3.clone(), safety),
        ];
        let sums = summarize(&all, now);
        assert_eq!(sums.len(), 2);
        assert_eq!((sums[0].count, sums[0].total_bytes), (2, 300));
        assert_eq!(sums[0].newest.as_ref().map(|n| n.index), Some(11));
        assert_eq!(sums[0].newest.as_ref().map(|n| n.age_seconds), Some(3600));
        // The safety snapshot is not dc2's newest.
        assert_eq!(sums[1].newest.as_ref().map(|n| n.index), Some(6));
        let p = problems(
            &sums,
            Some(Duration::from_secs(2 * 3600)),
            &["dc1".into(), "dc3".into()],
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("dc2 at s3://bkt/p/: newest backup"),
            "{p:?}"
        );
        assert_eq!(p[1], "dc3: no backup at any destination");
        assert!(problems(&sums, Some(Duration::from_secs(7 * 3600)), &[]).is_empty());
    }
}
