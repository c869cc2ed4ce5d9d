//! When to take the next snapshot: a fixed interval or a cron expression, plus optional jitter.
//! Pure: callers pass `now` and the jitter draw, so tests never ask the clock.
//!
//! After downtime or a cycle longer than the interval there is no burst of catch-up runs: the
//! next run is the next slot after `now` (an interval schedule runs once, right away).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every `interval` after the previous run started.
    Interval(Duration),
    /// A cron expression evaluated in a time zone (UTC by default).
    Cron {
        expr: String,
        schedule: Box<cron::Schedule>,
        zone: Tz,
    },
}

/// Errors parsing a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {expr:?}: {reason}")]
    Cron { expr: String, reason: String },
    #[error("unknown time zone {0:?} (use an IANA name such as Europe/Paris)")]
    Zone(String),
    #[error("the cron expression {0:?} has no future run")]
    Never(String),
}

impl Schedule {
    /// Parses a cron expression: 6 or 7 fields (seconds first, as the `cron` crate wants), or a
    /// classic 5-field crontab line, which runs at second 0. `zone` is an IANA name; UTC if
    /// `None`.
    pub fn cron(expr: &str, zone: Option<&str>) -> Result<Self, ScheduleError> {
        let fields = expr.split_whitespace().count();
        let full = if fields == 5 {
            format!("0 {expr}")
        } else {
            expr.to_string()
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| ScheduleError::Cron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
        let zone = match zone {
            None | Some("") => Tz::UTC,
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| ScheduleError::Zone(z.to_string()))?,
        };
        Ok(Schedule::Cron {
            expr: expr.to_string(),
            schedule: Box::new(schedule),
            zone,
        })
    }

    /// The next run strictly after the previous one (`last_start`), never before `now`, plus
    /// `jitter × draw` where `draw` is in `[0, 1)`. `None` for a cron expression with no
    /// future run.
    pub fn next(
        &self,
        last_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        jitter: Duration,
        draw: f64,
    ) -> Option<DateTime<Utc>> {
        let base = match self {
            Schedule::Interval(interval) => match last_start {
                None => now,
                Some(last) => {
                    let due = last
                        + chrono::Duration::from_std(*interval).unwrap_or(chrono::Duration::MAX);
                    due.max(now)
                }
            },
            Schedule::Cron { schedule, zone, .. } => {
                let from = last_start.map_or(now, |l| l.max(now));
                schedule
                    .after(&from.with_timezone(zone))
                    .next()?
                    .with_timezone(&Utc)
            }
        };
        let jitter = jitter.mul_f64(draw.clamp(0.0, 1.0));
        Some(base + chrono::Duration::from_std(jitter).unwrap_or_default())
    }

    /// How long the agent may go without a snapshot and still be healthy: two periods.
    pub fn health_window(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Interval(i) => *i * 2,
            Schedule::Cron { schedule, zone, .. } => {
                let mut it = schedule.after(&now.with_timezone(zone));
                match (it.next(), it.next()) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(3600)) * 2,
                    _ => Duration::from_secs(7200),
                }
            }
        }
    }

    /// For messages and `--print-config`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Interval(i) => format!("every {}", humantime::format_duration(*i)),
            Schedule::Cron { expr, zone, .. } => format!("cron {expr:?} ({zone})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn interval_runs_at_once_then_every_interval_without_catch_up() {
        let s = Schedule::Interval(Duration::from_secs(3600));
        let now = t("2026-11-21T10:00:00Z");
        assert_eq!(s.next(None, now, Duration::ZERO, 0.0), Some(now));
        assert_eq!(
            s.next(Some(now), now, Duration::ZERO, 0.0),
            Some(t("2026-11-21T11:00:00Z"))
        );
        // Down for 5 hours: one run now, not five.
        let later = t("2026-11-21T16:00:00Z");
        assert_eq!(s.next(Some(now), later, Duration::ZERO, 0.0), Some(later));
        assert_eq!(
            s.next(Some(later), later, Duration::ZERO, 0.0),
            Some(t("2026-11-21T17:00:00Z"))
        );
    }

    #[test]
    fn jitter_scales_with_the_draw() {
        let s = Schedule::Interval(Duration::from_secs(60));
        let now = t("2026-11-21T10:00:00Z");
        assert_eq!(
            s.next(Some(now), now, Duration::from_secs(30), 0.5),
            Some(t("2026-11-21T10:01:15Z"))
        );
        assert_eq!(
            s.next(Some(now), now, Duration::from_secs(30), 7.0),
            Some(t("2026-11-21T10:01:30Z"))
        );
    }

    #[test]
    fn cron_in_utc_and_five_field_lines() {
        let s = Schedule::cron("0 30 2 * * *", None).expect("cron");
        assert_eq!(
            s.next(None, t("2026-11-21T10:00:00Z"), Duration::ZERO, 0.0),
            Some(t("2026-11-22T02:30:00Z"))
        );
        let five = Schedule::cron("*/15 * * * *", None).expect("5 fields");
        assert_eq!(
            five.next(None, t("2026-11-21T10:07:30Z"), Duration::ZERO, 0.0),
            Some(t("2026-11-21T10:15:00Z"))
        );
        // After downtime: the next slot after now, not every missed one.
        assert_eq!(
            five.next(
                Some(t("2026-11-21T08:00:00Z")),
                t("2026-11-21T10:07:30Z"),
                Duration::ZERO,
                0.0
            ),
            Some(t("2026-11-21T10:15:00Z"))
        );
        assert!(matches!(
            Schedule::cron("every day", None),
            Err(ScheduleError::Cron { .. })
        ));
        assert!(matches!(
            Schedule::cron("0 0 * * *", Some("Mars/Base")),
            Err(ScheduleError::Zone(_))
        ));
    }

    #[test]
    fn cron_follows_a_zone_across_dst() {
        // 02:30 local in Europe/London: 02:30Z in winter (GMT), 01:30Z in summer (BST).
        let s = Schedule::cron("0 30 2 * * *", Some("Europe/London")).expect("cron");
        assert_eq!(
            s.next(
                None,
                Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0)
                    .single()
                    .expect("t"),
                Duration::ZERO,
                0.0
            ),
            Some(t("2026-01-11T02:30:00Z"))
        );
        assert_eq!(
            s.next(
                None,
                Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0)
                    .single()
                    .expect("t"),
                Duration::ZERO,
                0.0
            ),
            Some(t("2026-07-11T01:30:00Z"))
        );
    }

    #[test]
    fn health_window_is_two_periods() {
        assert_eq!(
            Schedule::Interval(Duration::from_secs(60)).health_window(Utc::now()),
            Duration::from_secs(120)
        );
        let s = Schedule::cron("0 0 * * * *", None).expect("hourly");
        assert_eq!(
            s.health_window(t("2026-11-21T10:20:00Z")),
            Duration::from_secs(7200)
        );
    }
}
