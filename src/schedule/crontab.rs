//! Five-field crontab expressions with exactly the meaning of crontab(5) (Vixie cron / cronie):
//! `minute hour day-of-month month day-of-week`.
//!
//! * minute 0–59, hour 0–23, day of month 1–31, month 1–12 or `jan`–`dec`, day of week 0–7
//!   or `sun`–`sat` (0 and 7 are both Sunday); names are case-insensitive.
//! * Each field is a list (`,`) of `*`, `N`, `N-M`, optionally with a step (`*/15`, `1-30/5`,
//!   and cronie's `N/step`, meaning `N-max/step`).
//! * When both day of month and day of week are restricted (neither starts with `*`), a day
//!   matches if **either** matches; otherwise both must (Vixie cron's `DOM_STAR`/`DOW_STAR`
//!   rule, so `*/2` counts as unrestricted, as in cron itself).
//! * `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
//!
//! Pure: no clock, no time zone (the caller walks local dates; see [`super::Schedule`]).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A set of allowed values of one field, as a bit mask (bit N = value N).
type Bits = u64;

/// A parsed crontab expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crontab {
    minutes: Bits,
    hours: Bits,
    days_of_month: Bits,
    months: Bits,
    /// Bits 0–6, Sunday = 0 (a 7 in the input is folded onto 0).
    days_of_week: Bits,
    dom_star: bool,
    dow_star: bool,
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CrontabError(String);

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of the first name (1 for months, 0 for days).
    names_from: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
        names_from: 0,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        names_from: 1,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &DAYS,
        names_from: 0,
    },
];

impl Field {
    fn value(&self, s: &str) -> Result<u32, CrontabError> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(self.names_from + i as u32);
        }
        let v: u32 = s.parse().map_err(|_| {
            CrontabError(format!(
                "{}: {s:?} is not a number{}",
                self.name,
                if self.names.is_empty() {
                    String::new()
                } else {
                    format!(" or a name ({}…)", self.names[..3].join(", "))
                }
            ))
        })?;
        if v < self.min || v > self.max {
            return Err(CrontabError(format!(
                "{}: {v} is out of range {}-{}",
                self.name, self.min, self.max
            )));
        }
        Ok(v)
    }

    /// Parses one field into its bit set.
    fn parse(&self, text: &str) -> Result<Bits, CrontabError> {
        let mut bits: Bits = 0;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().map_err(|_| {
                        CrontabError(format!("{}: step {s:?} is not a number", self.name))
                    })?;
                    if step == 0 || step > self.max {
                        return Err(CrontabError(format!(
                            "{}: step {step} is out of range 1-{}",
                            self.name, self.max
                        )));
                    }
                    (r, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(CrontabError(format!(
                        "{}: range {range:?} runs backwards",
                        self.name
                    )));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(CrontabError(format!("{}: empty item", self.name)));
            } else {
                let v = self.value(range)?;
                // cronie: `N/step` means `N-max/step`.
                (v, if step.is_some() { self.max } else { v })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl Crontab {
    /// Parses a five-field expression or an `@` nickname.
    ///
    /// ```
    /// use consul_snapshot_agent::schedule::crontab::Crontab;
    /// assert!(Crontab::parse("0 3 * * 1-5").is_ok());
    /// assert!(Crontab::parse("0 3 * * 8").is_err());
    /// ```
    pub fn parse(expr: &str) -> Result<Self, CrontabError> {
        let expr = expr.trim();
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(CrontabError(format!(
                    "unknown nickname {expr:?} (@yearly, @monthly, @weekly, @daily, @hourly)"
                )))
            }
            _ => expr,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CrontabError(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        }
        let mut bits = [0 as Bits; 5];
        for (i, (f, text)) in FIELDS.iter().zip(&fields).enumerate() {
            bits[i] = f.parse(text)?;
        }
        // Sunday is 0 or 7.
        let dow = (bits[4] | (bits[4] >> 7)) & 0x7f;
        Ok(Crontab {
            minutes: bits[0],
            hours: bits[1],
            days_of_month: bits[2],
            months: bits[3],
            days_of_week: dow,
            dom_star: fields[2].starts_with('*'),
            dow_star: fields[4].starts_with('*'),
        })
    }

    /// Whether the expression runs on `date` (a local calendar date).
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The local times of day it runs at, in order (hour, minute).
    pub fn times(&self) -> impl Iterator<Item = NaiveTime> + '_ {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(move |h| {
                (0..60u32)
                    .filter(move |m| self.minutes & (1 << m) != 0)
                    .filter_map(move |m| NaiveTime::from_hms_opt(h, m, 0))
            })
    }

    /// The first local time strictly after `after` that matches, looking at most
    /// `max_days` days ahead (`None` past that: e.g. `0 0 30 2 *` never runs).
    pub fn next_local(&self, after: NaiveDateTime, max_days: u32) -> Option<NaiveDateTime> {
        let mut date = after.date();
        for _ in 0..=max_days {
            if self.matches_date(date) {
                for t in self.times() {
                    let at = date.and_time(t);
                    if at > after {
                        return Some(at);
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Whether the first minute of `t` matches (seconds ignored).
    pub fn matches(&self, t: NaiveDateTime) -> bool {
        self.matches_date(t.date())
            && self.hours & (1 << t.hour()) != 0
            && self.minutes & (1 << t.minute()) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time")
    }

    fn next(expr: &str, from: &str) -> String {
        Crontab::parse(expr)
            .expect(expr)
            .next_local(at(from), 366 * 9)
            .map(|t| t.format("%Y-%m-%d %H:%M %a").to_string())
            .unwrap_or_default()
    }

    #[test]
    fn weekdays_are_crontabs() {
        // 2026-11-24 is a Tuesday.
        assert_eq!(
            next("0 3 * * 1", "2026-11-24 12:00"),
            "2026-11-30 03:00 Mon"
        );
        assert_eq!(
            next("0 3 * * 0", "2026-11-24 12:00"),
            "2026-11-29 03:00 Sun"
        );
        assert_eq!(
            next("0 3 * * 7", "2026-11-24 12:00"),
            "2026-11-29 03:00 Sun"
        );
        assert_eq!(
            next("0 3 * * 1-5", "2026-11-27 12:00"),
            "2026-11-30 03:00 Mon"
        );
        assert_eq!(
            next("0 3 * * fri", "2026-11-24 12:00"),
            "2026-11-27 03:00 Fri"
        );
        assert_eq!(
            next("0 3 * * 5-7", "2026-11-28 12:00"),
            "2026-11-29 03:00 Sun"
        );
        assert_eq!(
            next("0 3 * * MON-wed", "2026-11-26 12:00"),
            "2026-11-30 03:00 Mon"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: the 1st OR any Monday.
        assert_eq!(
            next("0 0 1 * 1", "2026-11-24 12:00"),
            "2026-11-30 00:00 Mon"
        );
        assert_eq!(
            next("0 0 1 * 1", "2026-11-30 12:00"),
            "2026-12-01 00:00 Tue"
        );
        // `*/2` starts with `*`: as in Vixie cron, both must match then.
        assert_eq!(
            next("0 0 */2 * 1", "2026-11-24 12:00"),
            "2026-12-07 00:00 Mon"
        );
        // Only one restricted: it alone decides.
        assert_eq!(
            next("0 0 13 * *", "2026-11-24 12:00"),
            "2026-12-13 00:00 Sun"
        );
    }

    #[test]
    fn steps_lists_names_and_nicknames() {
        assert_eq!(
            next("*/15 * * * *", "2026-11-24 10:07"),
            "2026-11-24 10:15 Tue"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-11-24 10:46"),
            "2026-11-24 11:05 Tue"
        );
        assert_eq!(
            next("0 1,13 * * *", "2026-11-24 12:00"),
            "2026-11-24 13:00 Tue"
        );
        assert_eq!(
            next("0 0 1 jan,Jul *", "2026-11-24 12:00"),
            "2027-01-01 00:00 Fri"
        );
        assert_eq!(next("@weekly", "2026-11-24 12:00"), "2026-11-29 00:00 Sun");
        assert_eq!(next("@yearly", "2026-11-24 12:00"), "2027-01-01 00:00 Fri");
        assert_eq!(
            next("0 0 29 2 *", "2026-11-24 12:00"),
            "2028-02-29 00:00 Tue"
        );
        assert_eq!(next("0 0 31 2 *", "2026-11-24 12:00"), "", "never runs");
    }

    #[test]
    fn bad_expressions_say_why() {
        for (expr, why) in [
            ("0 3 * *", "expected 5 fields"),
            ("60 * * * *", "minute: 60 is out of range 0-59"),
            ("0 24 * * *", "hour: 24"),
            ("0 0 0 * *", "day of month: 0"),
            ("0 0 * 13 *", "month: 13"),
            ("0 0 * * 8", "day of week: 8"),
            ("0 0 * * fri-mon", "runs backwards"),
            ("*/0 * * * *", "step 0"),
            ("0 0 * * funday", "not a number or a name"),
            ("0,,5 * * * *", "empty item"),
            ("@reboot", "unknown nickname"),
        ] {
            let e = Crontab::parse(expr).expect_err(expr).to_string();
            assert!(e.contains(why), "{expr}: {e}");
        }
    }
}
