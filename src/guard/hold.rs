//! The hold: while an anomaly is neither acknowledged nor expired, retention keeps the
//! anomalous backup (it carries the record of the drop), the last backup before it, and every
//! backup retention would have kept at that moment. Pure: listings and marks in, holds out.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::AnomalyMark;
use crate::retention::{newest_first, plan_at, Decision, Entry, PolicyError, RetentionPolicy};

/// Default for how long a hold lasts without acknowledgement: 30 days.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(30 * 24 * 3600);

/// One anomaly's hold at a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Key of the anomalous backup (what `prune --acknowledge-anomaly` takes).
    pub anomaly: String,
    /// The drop, as stored with the backup.
    pub reason: String,
    /// When the hold lapses without acknowledgement: the anomalous backup's time plus the
    /// hold duration.
    pub until: DateTime<Utc>,
    /// Keys held: the anomalous backup first, then the newest backup before it and those
    /// retention kept at its time, newest first.
    pub held: Vec<String>,
}

impl Hold {
    /// The retention reason given to a held backup.
    pub fn reason_for(&self, key: &str) -> String {
        let what = if key == self.anomaly {
            "the anomaly's record"
        } else {
            "from before the anomaly"
        };
        format!(
            "held by the shrink guard ({what}: {}) until {} or `prune --acknowledge-anomaly {}`",
            self.reason,
            self.until.format("%Y-%m-%dT%H:%M:%SZ"),
            self.anomaly
        )
    }
}

/// The active holds over one datacenter's backups: one per anomaly mark (by key in `marks`)
/// that is not acknowledged and whose backup is younger than `hold` at `now`.
///
/// # Errors
/// The policy cannot be planned ([`PolicyError::Empty`]).
pub fn holds(
    entries: &[Entry],
    marks: &HashMap<String, AnomalyMark>,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<Vec<Hold>, PolicyError> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| newest_first((&a.time, a.index, &a.key), (&b.time, b.index, &b.key)));
    let hold = chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
    let mut out = Vec::new();
    for (i, e) in sorted.iter().enumerate() {
        let Some(mark) = marks.get(&e.key).filter(|m| m.acknowledged.is_none()) else {
            continue;
        };
        let until = e
            .time
            .checked_add_signed(hold)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if until <= now {
            continue;
        }
        // What retention kept just before the drop: a plan over the older backups as of the
        // anomaly's time.
        let older: Vec<Entry> = sorted[i + 1..].iter().map(|e| (*e).clone()).collect();
        let mut held = vec![e.key.clone()];
        held.extend(
            plan_at(&older, policy, Some(e.time))?
                .into_iter()
                .filter(|d| d.keep)
                .map(|d| d.key),
        );
        out.push(Hold {
            anomaly: e.key.clone(),
            reason: mark.reason.clone(),
            until,
            held,
        });
    }
    Ok(out)
}

/// Keeps every held backup in `decisions`, giving the hold as its reason (added to the reasons
/// of one kept anyway).
pub fn apply(decisions: &mut [Decision], holds: &[Hold]) {
    for d in decisions.iter_mut() {
        for h in holds.iter().filter(|h| h.held.contains(&d.key)) {
            if !d.keep {
                d.keep = true;
                d.reasons.clear();
            }
            d.reasons.push(h.reason_for(&d.key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: i64) -> Vec<Entry> {
        let t0 = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap();
        (0..n)
            .map(|i| Entry {
                key: format!("b{i}"),
                time: t0 + chrono::Duration::hours(i),
                index: 10 + i as u64,
            })
            .collect()
    }

    fn mark(acked: bool) -> AnomalyMark {
        AnomalyMark {
            reason: "kv_entries 120 -> 0 (-100%) since b3".into(),
            baseline: "b3".into(),
            acknowledged: acked.then(|| "2026-11-25T00:00:00Z".into()),
        }
    }

    fn retain(n: u32) -> RetentionPolicy {
        RetentionPolicy {
            retain: Some(n),
            ..RetentionPolicy::default()
        }
    }

    #[test]
    fn holds_the_anomaly_and_what_retention_kept_before_it() {
        // b0..b8 hourly; b4 is the first backup after a wipe; retain 2.
        let e = entries(9);
        let marks = HashMap::from([("b4".to_string(), mark(false))]);
        let now = e[8].time;
        let h = holds(&e, &marks, &retain(2), now, DEFAULT_HOLD).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].held, ["b4", "b3", "b2"]);
        let mut d = plan_at(&e, &retain(2), Some(now)).unwrap();
        apply(&mut d, &h);
        let kept: Vec<&str> = d
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(kept, ["b8", "b7", "b4", "b3", "b2"]);
        let b3 = d.iter().find(|d| d.key == "b3").unwrap();
        assert!(
            b3.reasons[0].contains("--acknowledge-anomaly b4"),
            "{:?}",
            b3.reasons
        );
    }

    #[test]
    fn acknowledged_or_expired_anomalies_hold_nothing() {
        let e = entries(9);
        let now = e[8].time;
        let acked = HashMap::from([("b4".to_string(), mark(true))]);
        assert!(holds(&e, &acked, &retain(2), now, DEFAULT_HOLD)
            .unwrap()
            .is_empty());
        let open = HashMap::from([("b4".to_string(), mark(false))]);
        // b4 is 4 hours old at `now`: a 4-hour hold has lapsed, a 5-hour one has not.
        assert!(
            holds(&e, &open, &retain(2), now, Duration::from_secs(4 * 3600))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            holds(&e, &open, &retain(2), now, Duration::from_secs(5 * 3600))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn an_anomaly_with_nothing_before_it_holds_itself() {
        let e = entries(1);
        let marks = HashMap::from([("b0".to_string(), mark(false))]);
        let h = holds(&e, &marks, &retain(2), e[0].time, DEFAULT_HOLD).unwrap();
        assert_eq!(h[0].held, ["b0"]);
    }
}
