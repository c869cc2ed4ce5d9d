//! Which stored backup a restore uses: `--latest`, `--key K`, or `--before TIME` (the newest
//! taken at or before TIME). Pure.
//!
//! `--latest` and `--before` (and so drills and `peers-json --latest`) pass over what must not
//! be restored by accident, and say so: a backup named more than
//! [`crate::retention::FUTURE_TOLERANCE`] in the future (a copy, or a host with a bad clock),
//! one the shrink guard marked as an unacknowledged anomaly (the state after a wipe), and a
//! restore's safety snapshot (the state a restore replaced). `--key` reaches any backup.

use chrono::{DateTime, Utc};

use crate::storage::StoredBackup;

/// How the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Latest,
    Key(String),
    Before(DateTime<Utc>),
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::Latest => f.write_str("--latest"),
            Selection::Key(k) => write!(f, "--key {k}"),
            Selection::Before(t) => write!(f, "--before {}", t.to_rfc3339()),
        }
    }
}

/// Why `--latest` or `--before` passed a backup over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Named more than the tolerance after `now`.
    Future,
    /// Marked by the shrink guard as an anomaly nobody acknowledged.
    Anomaly,
    /// A restore's safety snapshot.
    Safety,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Skip::Future => "named in the future (a clock or a copy)",
            Skip::Anomaly => "an unacknowledged shrink-guard anomaly (`prune --acknowledge-anomaly KEY` if it is the truth)",
            Skip::Safety => "a restore's safety snapshot (the state a restore replaced)",
        })
    }
}

/// Why `b` must not be chosen by `--latest` or `--before` at `now`, if it must not.
/// Metadata not read counts as no mark.
pub fn skip_reason(b: &StoredBackup, now: DateTime<Utc>) -> Option<Skip> {
    let tolerance = chrono::Duration::from_std(crate::retention::FUTURE_TOLERANCE)
        .unwrap_or_else(|_| chrono::Duration::minutes(5));
    if b.name.time > now + tolerance {
        return Some(Skip::Future);
    }
    let meta = b.meta.as_ref()?;
    if meta.is_safety_snapshot() {
        Some(Skip::Safety)
    } else if meta.unacknowledged_anomaly() {
        Some(Skip::Anomaly)
    } else {
        None
    }
}

/// What a selection found: the chosen backup, and the newer ones it passed over with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected<'a> {
    pub chosen: Option<&'a StoredBackup>,
    pub skipped: Vec<(&'a StoredBackup, Skip)>,
}

/// The chosen backup among `backups` (any order, metadata read where it matters) at `now`.
pub fn select<'a>(
    backups: &'a [StoredBackup],
    sel: &Selection,
    now: DateTime<Utc>,
) -> Selected<'a> {
    if let Selection::Key(k) = sel {
        // A key, a bare name, or a path ending in the name (`/backups/consul-…snap`).
        let name = k.rsplit('/').next().unwrap_or(k);
        let chosen = backups
            .iter()
            .find(|b| &b.key == k || b.key.rsplit('/').next() == Some(name));
        return Selected {
            chosen,
            skipped: Vec::new(),
        };
    }
    // The one order of list and retention: time, then Raft index.
    let mut ordered: Vec<&StoredBackup> = backups
        .iter()
        .filter(|b| match sel {
            Selection::Before(t) => b.name.time <= *t,
            _ => true,
        })
        .collect();
    ordered.sort_by(|a, b| {
        crate::retention::newest_first(
            (&a.name.time, a.name.index, &a.key),
            (&b.name.time, b.name.index, &b.key),
        )
    });
    let mut skipped = Vec::new();
    for b in ordered {
        match skip_reason(b, now) {
            Some(why) => skipped.push((b, why)),
            None => {
                return Selected {
                    chosen: Some(b),
                    skipped,
                }
            }
        }
    }
    Selected {
        chosen: None,
        skipped,
    }
}

/// Parses `--before`: RFC 3339 (`2026-11-21T19:00:00Z`) or the name timestamp form
/// (`20261121T190000Z`).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .map(|t| t.and_utc())
        .map_err(|_| {
            format!("invalid time {s:?}: use RFC 3339 (2026-11-21T19:00:00Z) or 20261121T190000Z")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::naming::{format_name, BackupName};
    use chrono::TimeZone;

    fn b(hour: u32) -> StoredBackup {
        let name = BackupName {
            encrypted: false,
            time: Utc
                .with_ymd_and_hms(2026, 11, 21, hour, 0, 0)
                .single()
                .expect("t"),
            datacenter: "dc1".into(),
            index: u64::from(hour),
        };
        StoredBackup {
            key: format!("p/{}", format_name(&name)),
            name,
            size: 1,
            modified: None,
            meta: None,
        }
    }

    fn pick<'a>(all: &'a [StoredBackup], sel: &Selection) -> Option<&'a StoredBackup> {
        select(all, sel, Utc::now()).chosen
    }

    #[test]
    fn latest_and_before_pass_over_future_anomalous_and_safety_backups() {
        use crate::guard::AnomalyMark;
        use crate::storage::BackupMeta;
        let mut future = b(12);
        future.name.time = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("t");
        let mut wiped = b(11);
        wiped.meta = Some(BackupMeta {
            anomaly: Some(AnomalyMark {
                reason: "kv_entries 200 -> 0".into(),
                baseline: "x".into(),
                acknowledged: None,
            }),
            ..BackupMeta::default()
        });
        let mut safety = b(10);
        safety.meta = Some(BackupMeta {
            safety_snapshot: Some(true),
            ..BackupMeta::default()
        });
        let all = vec![b(3), future.clone(), wiped.clone(), safety.clone(), b(9)];
        let now = Utc
            .with_ymd_and_hms(2026, 11, 21, 13, 0, 0)
            .single()
            .expect("t");
        let got = select(&all, &Selection::Latest, now);
        assert_eq!(got.chosen.map(|x| x.name.index), Some(9));
        let why: Vec<Skip> = got.skipped.iter().map(|(_, w)| *w).collect();
        assert_eq!(why, vec![Skip::Future, Skip::Anomaly, Skip::Safety]);
        let before = Selection::Before(parse_time("2026-11-21T11:30:00Z").expect("t"));
        assert_eq!(
            select(&all, &before, now).chosen.map(|x| x.name.index),
            Some(9)
        );
        // An acknowledged anomaly is the truth again.
        let mut acked = wiped.clone();
        if let Some(a) = acked.meta.as_mut().and_then(|m| m.anomaly.as_mut()) {
            a.acknowledged = Some("2026-11-21T12:00:00Z".into());
        }
        let all2 = vec![b(3), acked];
        assert_eq!(
            select(&all2, &Selection::Latest, now)
                .chosen
                .map(|x| x.name.index),
            Some(11)
        );
        // --key reaches any of them.
        let key = Selection::Key(safety.key.clone());
        assert_eq!(
            select(&all, &key, now).chosen.map(|x| x.name.index),
            Some(10)
        );
        let key = Selection::Key(future.key.clone());
        assert_eq!(
            select(&all, &key, now).chosen.map(|x| x.name.index),
            Some(12)
        );
    }

    #[test]
    fn selections() {
        let all = vec![b(3), b(10), b(7)];
        assert_eq!(
            pick(&all, &Selection::Latest).map(|x| x.name.index),
            Some(10)
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Before(parse_time("2026-11-21T08:30:00Z").expect("t"))
            )
            .map(|x| x.name.index),
            Some(7)
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Before(parse_time("20261121T070000Z").expect("t"))
            )
            .map(|x| x.name.index),
            Some(7),
            "at or before"
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Before(parse_time("2026-11-21T01:00:00Z").expect("t"))
            ),
            None
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Key("p/consul-dc1-20261121T030000Z-3.snap".into())
            )
            .map(|x| x.name.index),
            Some(3)
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Key("consul-dc1-20261121T030000Z-3.snap".into())
            )
            .map(|x| x.name.index),
            Some(3),
            "bare name"
        );
        assert_eq!(
            pick(
                &all,
                &Selection::Key("/backups/dc1/consul-dc1-20261121T030000Z-3.snap".into())
            )
            .map(|x| x.name.index),
            Some(3),
            "a path to the file"
        );
        assert_eq!(pick(&[], &Selection::Latest), None);
        assert!(parse_time("yesterday").is_err());
    }
}
