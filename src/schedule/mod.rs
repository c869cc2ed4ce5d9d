//! When to take the next snapshot: a fixed interval or a cron expression, plus optional jitter.
//! Pure: callers pass `now` and the jitter draw, so tests never ask the clock.
//!
//! After downtime or a cycle longer than the interval there is no burst of catch-up runs: the
//! next run is the next slot after `now` (an interval schedule runs once, right away).
//!
//! Five-field expressions are crontab(5) ([`crontab`]); six and seven fields (seconds first)
//! go to the `cron` crate, whose day-of-week numbers are Quartz's (1–7 from Sunday).

pub mod crontab;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;

use crontab::Crontab;

/// How far ahead a crontab expression is searched: `0 0 29 2 *` can be 8 years away (2096 to
/// 2104); past this an expression never runs.
const CRONTAB_HORIZON_DAYS: u32 = 366 * 9;

/// A schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every `interval` after the previous run started.
    Interval(Duration),
    /// A five-field crontab(5) expression evaluated in a time zone (UTC by default).
    Crontab {
        expr: String,
        tab: Box<Crontab>,
        zone: Tz,
    },
    /// A six- or seven-field expression (seconds first) in a time zone, by the `cron` crate.
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
    /// Parses a cron expression: a classic five-field crontab line or `@daily`-style nickname
    /// (crontab(5) meaning, at second 0), or 6 or 7 fields (seconds first, as the `cron` crate
    /// wants). `zone` is an IANA name; UTC if `None`.
    pub fn cron(expr: &str, zone: Option<&str>) -> Result<Self, ScheduleError> {
        let zone = match zone {
            None | Some("") => Tz::UTC,
            Some(z) => z
                .parse::<Tz>()
                .map_err(|_| ScheduleError::Zone(z.to_string()))?,
        };
        let fields = expr.split_whitespace().count();
        if !(fields == 6 || fields == 7) {
            let tab = Crontab::parse(expr).map_err(|e| ScheduleError::Cron {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
            return Ok(Schedule::Crontab {
                expr: expr.to_string(),
                tab: Box::new(tab),
                zone,
            });
        }
        let schedule = cron::Schedule::from_str(expr).map_err(|e| ScheduleError::Cron {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
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
            Schedule::Crontab { .. } | Schedule::Cron { .. } => {
                self.run_after(last_start.map_or(now, |l| l.max(now)))?
            }
        };
        let jitter = jitter.mul_f64(draw.clamp(0.0, 1.0));
        Some(base + chrono::Duration::from_std(jitter).unwrap_or_default())
    }

    /// How long to wait from `now` until the next run, plus `jitter × draw`. `last`: the
    /// previous run's wall-clock start and the time since it by the monotonic clock. An
    /// interval counts on the monotonic clock, so that a step of the wall clock (an NTP
    /// correction, a resumed VM) neither delays nor hastens it; a cron expression names
    /// wall-clock times and follows the wall clock. `None` for a cron expression with no
    /// future run.
    pub fn wait(
        &self,
        last: Option<(DateTime<Utc>, Duration)>,
        now: DateTime<Utc>,
        jitter: Duration,
        draw: f64,
    ) -> Option<Duration> {
        let jitter = jitter.mul_f64(draw.clamp(0.0, 1.0));
        let base = match self {
            Schedule::Interval(interval) => {
                last.map_or(Duration::ZERO, |(_, since)| interval.saturating_sub(since))
            }
            Schedule::Crontab { .. } | Schedule::Cron { .. } => {
                let next = self.next(last.map(|(t, _)| t), now, Duration::ZERO, 0.0)?;
                (next - now).to_std().unwrap_or(Duration::ZERO)
            }
        };
        Some(base + jitter)
    }

    /// The first run of a cron-style schedule strictly after `from`; `None` for an interval
    /// or an expression with no future run.
    fn run_after(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Interval(_) => None,
            Schedule::Cron { schedule, zone, .. } => Some(
                schedule
                    .after(&from.with_timezone(zone))
                    .next()?
                    .with_timezone(&Utc),
            ),
            Schedule::Crontab { tab, zone, .. } => crontab_after(tab, zone, from),
        }
    }

    /// The next `n` runs from `now`, without jitter (for `--print-schedule`). An interval
    /// schedule runs at once, then every interval.
    pub fn upcoming(&self, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out: Vec<DateTime<Utc>> = Vec::with_capacity(n.min(1024));
        while out.len() < n {
            let next = match (self, out.last()) {
                (Schedule::Interval(_), None) => Some(now),
                (Schedule::Interval(i), Some(last)) => chrono::Duration::from_std(*i)
                    .ok()
                    .and_then(|d| last.checked_add_signed(d)),
                (_, last) => self.run_after(last.copied().unwrap_or(now)),
            };
            match next {
                Some(t) => out.push(t),
                None => break,
            }
        }
        out
    }

    /// How long the agent may go without a snapshot and still be healthy: two periods.
    pub fn health_window(&self, now: DateTime<Utc>) -> Duration {
        match self {
            Schedule::Interval(i) => i.saturating_mul(2),
            _ => match self.upcoming(now, 2)[..] {
                [a, b] => (b - a).to_std().unwrap_or(Duration::from_secs(3600)) * 2,
                _ => Duration::from_secs(7200),
            },
        }
    }
}

/// The first run of `tab` in `zone` strictly after `from`. Local times that do not exist (the
/// hour skipped when clocks go forward) run at the first instant after the gap, so a daily
/// backup is not lost; local times that happen twice (clocks going back) run once, at the
/// first occurrence, as Vixie cron runs fixed-time jobs.
fn crontab_after(tab: &Crontab, zone: &Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut cursor = from.with_timezone(zone).naive_local();
    // Each pass moves the cursor past one candidate; DST oddities take at most a few.
    for _ in 0..(24 * 60 * 2) {
        let cand = tab.next_local(cursor, CRONTAB_HORIZON_DAYS)?;
        let at = match zone.from_local_datetime(&cand) {
            LocalResult::Single(t) => Some(t),
            LocalResult::Ambiguous(first, _) => Some(first),
            LocalResult::None => (1..=24 * 60).find_map(|m| {
                let later = cand + chrono::Duration::minutes(m);
                match zone.from_local_datetime(&later) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
                    LocalResult::None => None,
                }
            }),
        };
        if let Some(t) = at.map(|t| t.with_timezone(&Utc)).filter(|t| *t > from) {
            return Some(t);
        }
        cursor = cand;
    }
    None
}

/// `every 1h` or `cron "0 3 * * *" (UTC)`, for messages.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Interval(i) => write!(f, "every {}", humantime::format_duration(*i)),
            Schedule::Crontab { expr, zone, .. } | Schedule::Cron { expr, zone, .. } => {
                write!(f, "cron {expr:?} ({zone})")
            }
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
    fn five_fields_mean_crontab_weekdays() {
        // 2026-11-24 is a Tuesday; crontab's 1 is Monday (the cron crate's 1 is Sunday).
        let s = Schedule::cron("0 3 * * 1", None).expect("cron");
        assert_eq!(
            s.upcoming(t("2026-11-24T12:00:00Z"), 2),
            [t("2026-11-30T03:00:00Z"), t("2026-12-07T03:00:00Z")]
        );
        assert!(Schedule::cron("0 3 * * 0", None).is_ok());
    }

    #[test]
    fn crontab_across_dst_runs_skipped_times_after_the_gap_and_repeated_ones_once() {
        // Europe/London: 2027-03-28 01:00 GMT jumps to 02:00 BST; 2026-10-25 02:00 BST goes
        // back to 01:00 GMT.
        let s = Schedule::cron("30 1 * * *", Some("Europe/London")).expect("cron");
        assert_eq!(
            s.upcoming(t("2027-03-27T12:00:00Z"), 2),
            [t("2027-03-28T01:00:00Z"), t("2027-03-29T00:30:00Z")],
            "01:30 does not exist on the 28th: run at 02:00 BST"
        );
        assert_eq!(
            s.upcoming(t("2026-10-24T12:00:00Z"), 2),
            [t("2026-10-25T00:30:00Z"), t("2026-10-26T01:30:00Z")],
            "01:30 happens twice on the 25th: run once"
        );
    }

    #[test]
    fn upcoming_intervals_start_now() {
        let s = Schedule::Interval(Duration::from_secs(600));
        assert_eq!(
            s.upcoming(t("2026-11-24T12:00:00Z"), 3),
            [
                t("2026-11-24T12:00:00Z"),
                t("2026-11-24T12:10:00Z"),
                t("2026-11-24T12:20:00Z")
            ]
        );
        assert!(Schedule::cron("0 0 31 2 *", None)
            .expect("valid")
            .upcoming(t("2026-11-24T12:00:00Z"), 3)
            .is_empty());
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

    #[test]
    fn an_interval_counts_on_the_monotonic_clock_and_cron_on_the_wall_clock() {
        use chrono::TimeZone;
        let now = Utc
            .with_ymd_and_hms(2026, 12, 7, 10, 0, 0)
            .single()
            .expect("t");
        let hour = Duration::from_secs(3600);
        let every = Schedule::Interval(hour);
        assert_eq!(
            every.wait(None, now, Duration::ZERO, 0.0),
            Some(Duration::ZERO)
        );
        // The wall clock was stepped back 2 h since the last run, 50 minutes ago: the next
        // run is in 10 minutes, not 2 h 10 min.
        let last_wall = now + chrono::Duration::hours(2) - chrono::Duration::minutes(50);
        let since = Duration::from_secs(50 * 60);
        assert_eq!(
            every.wait(Some((last_wall, since)), now, Duration::ZERO, 0.0),
            Some(Duration::from_secs(600))
        );
        // Overdue: at once; jitter added on top.
        assert_eq!(
            every.wait(
                Some((last_wall, 2 * hour)),
                now,
                Duration::from_secs(60),
                0.5
            ),
            Some(Duration::from_secs(30))
        );
        // Cron follows the wall clock.
        let cron = Schedule::cron("30 10 * * *", None).expect("cron");
        assert_eq!(
            cron.wait(Some((now, hour)), now, Duration::ZERO, 0.0),
            Some(Duration::from_secs(1800))
        );
    }
}
