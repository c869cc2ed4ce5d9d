//! Whether this host's clock can be trusted for a cycle: it is compared with an independent
//! clock, a destination's (from the `Date` of its answers) or, when no destination has one,
//! Consul's. Pure. A VM resumed with a stale clock or an NTP step must not name backups weeks
//! off nor let time-based retention (`keep_within`, the tiers) delete history.

use chrono::{DateTime, Utc};

/// How far this host's clock may differ from the independent one before it is not trusted:
/// the tolerance retention already allows for backups named in the future (5 minutes).
pub const CLOCK_TOLERANCE: std::time::Duration = crate::retention::FUTURE_TOLERANCE;

/// This host's clock beside the independent one, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockCheck {
    /// This host's wall clock.
    pub local: DateTime<Utc>,
    /// The independent clock and whose it is (`s3://bucket/prefix/`, `Consul`); `None`
    /// when no answer carried a `Date`.
    pub reference: Option<(DateTime<Utc>, String)>,
}

impl ClockCheck {
    /// Local minus reference, in seconds (positive: this host is ahead); `None` without a
    /// reference.
    pub fn skew_seconds(&self) -> Option<i64> {
        self.reference
            .as_ref()
            .map(|(r, _)| (self.local - *r).num_seconds())
    }

    /// Whether the two clocks differ by more than [`CLOCK_TOLERANCE`].
    pub fn untrusted(&self) -> bool {
        self.skew_seconds()
            .is_some_and(|s| s.unsigned_abs() > CLOCK_TOLERANCE.as_secs())
    }

    /// The time to name a backup by: the independent clock when this host's is not trusted.
    pub fn naming_time(&self) -> DateTime<Utc> {
        match &self.reference {
            Some((r, _)) if self.untrusted() => *r,
            _ => self.local,
        }
    }

    /// The warning for an untrusted clock, `None` when it is trusted.
    pub fn warning(&self) -> Option<String> {
        let (r, whose) = self.reference.as_ref().filter(|_| self.untrusted())?;
        Some(format!(
            "this host's clock ({}) differs from {whose}'s ({}) by {}s; the backup is named by {whose}'s clock and time-based retention (keep-within, hourly..yearly) deletes nothing until the clocks agree",
            self.local.to_rfc3339(),
            r.to_rfc3339(),
            self.skew_seconds().unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 10, min, 0)
            .single()
            .expect("t")
    }

    #[test]
    fn a_clock_off_by_more_than_the_tolerance_is_not_trusted() {
        let ok = ClockCheck {
            local: t(7, 4),
            reference: Some((t(7, 0), "s3".into())),
        };
        assert!(!ok.untrusted());
        assert_eq!(ok.naming_time(), t(7, 4));
        assert_eq!(ok.warning(), None);
        let ahead = ClockCheck {
            local: t(30, 0),
            reference: Some((t(7, 0), "Consul".into())),
        };
        assert!(ahead.untrusted());
        assert_eq!(ahead.naming_time(), t(7, 0));
        assert_eq!(ahead.skew_seconds(), Some(23 * 86_400));
        assert!(ahead.warning().is_some_and(|w| w.contains("Consul")));
        let behind = ClockCheck {
            local: t(7, 0),
            reference: Some((t(7, 6), "gcs".into())),
        };
        assert!(behind.untrusted());
        let none = ClockCheck {
            local: t(7, 0),
            reference: None,
        };
        assert!(!none.untrusted());
        assert_eq!(none.naming_time(), t(7, 0));
    }
}
