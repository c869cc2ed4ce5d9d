//! Retention as a pure function: `(backups, policy) → keep or delete, with reasons`.
//!
//! Rules (restic's `forget` semantics, plus Consul Enterprise's `retain`):
//! * `retain N`: keep the newest N; `retain 0` keeps everything (as Consul Enterprise).
//! * `keep-last N`: keep the newest N.
//! * `keep-hourly/daily/weekly/monthly/yearly N`: for the newest N hours (days, ISO weeks,
//!   months, years) that have backups, keep the newest backup of each. Buckets are UTC.
//! * `keep-within D`: keep every backup taken within D of the *newest backup* (not of the wall
//!   clock, so a stopped agent does not age its backups out).
//!
//! A backup is kept if any rule keeps it. The newest backup is always kept. A policy with no
//! rule is refused rather than read as "delete everything".
//!
//! Order is time, then Raft index (two backups in the same second), everywhere: here, in
//! `list` and in `restore --latest`.
//!
//! A backup named more than [`FUTURE_TOLERANCE`] after `now` (the agent's clock was ahead, or
//! a host was restored with a wrong clock) is kept and reported, but takes no part in the
//! plan: it would otherwise stay "newest" for as long as the skew lasts, and `keep-within`,
//! measured from the newest, would delete every real backup.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// The retention policy; `None` fields are off. The one definition of each rule: clap reads
/// it from flags (`--retain`, `--keep-daily`...), serde from a configuration file's
/// `snapshot_agent.snapshot` section (`retain` is Consul Enterprise's key; the `keep_*` keys
/// are ours), and [`conflate::Merge`] layers flags over files. Without any rule,
/// [`RetentionPolicy::or_default`] gives `retain 30` (Consul Enterprise's default).
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    clap::Args,
    serde::Serialize,
    serde::Deserialize,
    conflate::Merge,
)]
#[serde(deny_unknown_fields)]
#[merge(strategy = conflate::option::overwrite_none)]
#[command(next_help_heading = "Retention")]
pub struct RetentionPolicy {
    /// Keep the newest N backups; 0 keeps all (Consul Enterprise's `retain`). Default 30 when
    /// no keep-* rule is given.
    #[arg(long, value_name = "N")]
    pub retain: Option<u32>,
    /// Keep the newest N backups.
    #[arg(long = "keep-last", value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one (UTC).
    #[arg(long = "keep-hourly", value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one (UTC).
    #[arg(long = "keep-daily", value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long = "keep-weekly", value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long = "keep-monthly", value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest backup of each of the last N years that have one.
    #[arg(long = "keep-yearly", value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every backup taken within this long of the newest one, e.g. 7d, 36h.
    #[arg(long = "keep-within", value_name = "DURATION", value_parser = crate::units::duration::parse_go_duration_arg)]
    #[serde(default, with = "crate::units::duration::serde_option")]
    pub keep_within: Option<Duration>,
}

/// Consul Enterprise's default when no rule is set: keep the newest 30.
pub const DEFAULT_RETAIN: u32 = 30;

/// Backups named at most this far ahead of `now` are ordinary (clocks of two hosts differ a
/// little); beyond it they are "in the future".
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(300);

/// A backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub time: DateTime<Utc>,
    /// Raft index: orders backups of the same second.
    pub index: u64,
}

/// Newest first: time, then Raft index, then key (total, so a plan never depends on input
/// order).
pub fn newest_first(
    a: (&DateTime<Utc>, u64, &str),
    b: (&DateTime<Utc>, u64, &str),
) -> std::cmp::Ordering {
    b.0.cmp(a.0).then(b.1.cmp(&a.1)).then_with(|| b.2.cmp(a.2))
}

/// Reason given to a backup named in the future.
pub const FUTURE_REASON: &str = "named in the future (clock skew?): kept, not counted";

/// The verdict for one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub key: String,
    pub time: DateTime<Utc>,
    pub keep: bool,
    /// Why it is kept (`newest`, `last 3`, `daily 2026-11-21`, `within 7d`...), or why it goes.
    pub reasons: Vec<String>,
}

/// Errors of [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the retention policy keeps nothing explicitly; set retain (0 keeps all) or a keep-* rule"
    )]
    Empty,
}

impl RetentionPolicy {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        *self == RetentionPolicy::default()
    }

    /// This policy, or `retain 30` ([`DEFAULT_RETAIN`]) when it has no rule.
    pub fn or_default(self) -> Self {
        if self.is_empty() {
            RetentionPolicy {
                retain: Some(DEFAULT_RETAIN),
                ..self
            }
        } else {
            self
        }
    }

    /// Whether any rule reads the backups' times (`keep_within` and the hourly to yearly
    /// tiers): those are refused while this host's clock is not trusted. `retain` and
    /// `keep_last` only count.
    pub fn uses_time(&self) -> bool {
        let set = |n: Option<u32>| n.is_some_and(|n| n > 0);
        self.keep_within.is_some_and(|d| !d.is_zero())
            || set(self.keep_hourly)
            || set(self.keep_daily)
            || set(self.keep_weekly)
            || set(self.keep_monthly)
            || set(self.keep_yearly)
    }

    /// Whether this policy never deletes anything (`retain 0` and no other rule).
    pub fn keeps_all(&self) -> bool {
        self.retain == Some(0)
    }
}

type BucketFn = fn(&DateTime<Utc>) -> String;

fn hour(t: &DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour()
    )
}
fn day(t: &DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}
fn week(t: &DateTime<Utc>) -> String {
    let w = t.iso_week();
    format!("{:04}-W{:02}", w.year(), w.week())
}
fn month(t: &DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}
fn year(t: &DateTime<Utc>) -> String {
    format!("{:04}", t.year())
}

/// Decides, for every backup, keep or delete, ignoring the clock. Output is newest first.
pub fn plan(backups: &[Entry], policy: &RetentionPolicy) -> Result<Vec<Decision>, PolicyError> {
    plan_at(backups, policy, None)
}

/// [`plan`] at `now`: backups named in the future (see the module docs) are kept with
/// [`FUTURE_REASON`] and take no part. Output is newest first, future ones first of all.
pub fn plan_at(
    backups: &[Entry],
    policy: &RetentionPolicy,
    now: Option<DateTime<Utc>>,
) -> Result<Vec<Decision>, PolicyError> {
    if policy.is_empty() {
        return Err(PolicyError::Empty);
    }
    let limit = now.map(|n| n + chrono::Duration::from_std(FUTURE_TOLERANCE).unwrap_or_default());
    let (future, present): (Vec<&Entry>, Vec<&Entry>) = backups
        .iter()
        .partition(|e| limit.is_some_and(|l| e.time > l));
    let mut future: Vec<Decision> = future
        .into_iter()
        .map(|e| Decision {
            key: e.key.clone(),
            time: e.time,
            keep: true,
            reasons: vec![FUTURE_REASON.into()],
        })
        .collect();
    future.sort_by(|a, b| newest_first((&a.time, 0, &a.key), (&b.time, 0, &b.key)));
    let mut out = plan_present(present, policy);
    future.append(&mut out);
    Ok(future)
}

fn plan_present(mut sorted: Vec<&Entry>, policy: &RetentionPolicy) -> Vec<Decision> {
    sorted.sort_by(|a, b| newest_first((&a.time, a.index, &a.key), (&b.time, b.index, &b.key)));
    let mut out: Vec<Decision> = sorted
        .iter()
        .map(|e| Decision {
            key: e.key.clone(),
            time: e.time,
            keep: false,
            reasons: vec![],
        })
        .collect();
    let Some(newest) = sorted.first().map(|e| e.time) else {
        return out;
    };

    let mut keep = |i: usize, why: String| {
        out[i].keep = true;
        out[i].reasons.push(why);
    };
    keep(0, "newest".into());
    if policy.keeps_all() {
        for i in 1..sorted.len() {
            keep(i, "retain 0 (keep all)".into());
        }
    }
    for (label, n) in [
        ("retain", policy.retain.filter(|&n| n > 0)),
        ("last", policy.keep_last),
    ] {
        if let Some(n) = n {
            for i in 0..sorted.len().min(n as usize) {
                keep(i, format!("{label} {n}"));
            }
        }
    }
    let buckets: [(&str, Option<u32>, BucketFn); 5] = [
        ("hourly", policy.keep_hourly, hour),
        ("daily", policy.keep_daily, day),
        ("weekly", policy.keep_weekly, week),
        ("monthly", policy.keep_monthly, month),
        ("yearly", policy.keep_yearly, year),
    ];
    for (label, n, bucket_of) in buckets {
        let Some(mut left) = n else { continue };
        let mut last: Option<String> = None;
        for (i, e) in sorted.iter().enumerate() {
            if left == 0 {
                break;
            }
            let b = bucket_of(&e.time);
            if last.as_ref() != Some(&b) {
                keep(i, format!("{label} {b}"));
                last = Some(b);
                left -= 1;
            }
        }
    }
    if let Some(within) = policy.keep_within {
        let within_c = chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        for (i, e) in sorted.iter().enumerate() {
            if newest.signed_duration_since(e.time) <= within_c {
                keep(i, format!("within {}", humantime::format_duration(within)));
            }
        }
    }
    for d in &mut out {
        if !d.keep {
            d.reasons.push("matches no keep rule".into());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A fixed history: every 6 hours for 60 days, then a burst of 5 in the last hour.
    fn history() -> Vec<Entry> {
        let start = Utc
            .with_ymd_and_hms(2026, 9, 1, 0, 0, 0)
            .single()
            .expect("t");
        let mut v: Vec<Entry> = (0..240)
            .map(|i| start + chrono::Duration::hours(6 * i))
            .chain((1..=5).map(|m| {
                Utc.with_ymd_and_hms(2026, 10, 30, 23, m * 10, 0)
                    .single()
                    .expect("t")
            }))
            .map(|t| Entry {
                key: format!("consul-dc1-{}-1.snap", t.format("%Y%m%dT%H%M%SZ")),
                time: t,
                index: 1,
            })
            .collect();
        v.reverse(); // plan must not depend on input order
        v
    }

    fn kept(policy: RetentionPolicy) -> Vec<String> {
        plan(&history(), &policy)
            .expect("plan")
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.time.format("%m-%dT%H:%M").to_string())
            .collect()
    }

    #[test]
    fn empty_policy_is_refused() {
        assert_eq!(
            plan(&history(), &RetentionPolicy::default()),
            Err(PolicyError::Empty)
        );
    }

    #[test]
    fn table() {
        let p = RetentionPolicy::default;
        let cases: Vec<(&str, RetentionPolicy, Vec<&str>)> = vec![
            (
                "retain 3",
                RetentionPolicy {
                    retain: Some(3),
                    ..p()
                },
                vec!["10-30T23:50", "10-30T23:40", "10-30T23:30"],
            ),
            (
                "last 1",
                RetentionPolicy {
                    keep_last: Some(1),
                    ..p()
                },
                vec!["10-30T23:50"],
            ),
            (
                "hourly 3",
                RetentionPolicy {
                    keep_hourly: Some(3),
                    ..p()
                },
                vec!["10-30T23:50", "10-30T18:00", "10-30T12:00"],
            ),
            (
                "daily 3",
                RetentionPolicy {
                    keep_daily: Some(3),
                    ..p()
                },
                vec!["10-30T23:50", "10-29T18:00", "10-28T18:00"],
            ),
            // 2026-10-30 is a Friday; ISO weeks start on Monday.
            (
                "weekly 2",
                RetentionPolicy {
                    keep_weekly: Some(2),
                    ..p()
                },
                vec!["10-30T23:50", "10-25T18:00"],
            ),
            (
                "monthly 3",
                RetentionPolicy {
                    keep_monthly: Some(3),
                    ..p()
                },
                vec!["10-30T23:50", "09-30T18:00"],
            ),
            (
                "yearly 5",
                RetentionPolicy {
                    keep_yearly: Some(5),
                    ..p()
                },
                vec!["10-30T23:50"],
            ),
            (
                "within 12h",
                RetentionPolicy {
                    keep_within: Some(Duration::from_secs(12 * 3600)),
                    ..p()
                },
                vec![
                    "10-30T23:50",
                    "10-30T23:40",
                    "10-30T23:30",
                    "10-30T23:20",
                    "10-30T23:10",
                    "10-30T18:00",
                    "10-30T12:00",
                ],
            ),
            (
                "daily 2 + last 2",
                RetentionPolicy {
                    keep_daily: Some(2),
                    keep_last: Some(2),
                    ..p()
                },
                vec!["10-30T23:50", "10-30T23:40", "10-29T18:00"],
            ),
        ];
        for (name, policy, want) in cases {
            assert_eq!(kept(policy), want, "{name}");
        }
    }

    #[test]
    fn retain_zero_keeps_everything() {
        let d = plan(
            &history(),
            &RetentionPolicy {
                retain: Some(0),
                ..Default::default()
            },
        )
        .expect("plan");
        assert!(d.iter().all(|d| d.keep));
        assert_eq!(d.len(), 245);
    }

    #[test]
    fn newest_is_always_kept_with_reasons() {
        let d = plan(
            &history(),
            &RetentionPolicy {
                keep_daily: Some(1),
                keep_last: Some(1),
                ..Default::default()
            },
        )
        .expect("plan");
        assert_eq!(d[0].reasons, vec!["newest", "last 1", "daily 2026-10-30"]);
        assert_eq!(d[1].reasons, vec!["matches no keep rule"]);
        assert!(!d[1].keep);
    }

    #[test]
    fn plan_is_independent_of_input_order_and_of_the_clock() {
        let mut h = history();
        let policy = RetentionPolicy {
            keep_hourly: Some(10),
            keep_within: Some(Duration::from_secs(86400)),
            ..Default::default()
        };
        let a = plan(&h, &policy).expect("plan");
        h.reverse();
        assert_eq!(plan(&h, &policy).expect("plan"), a);
    }

    #[test]
    fn same_second_backups_order_by_raft_index_not_by_key_text() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 24, 3, 0, 0)
            .single()
            .expect("t");
        let e = |index: u64| Entry {
            key: format!("consul-dc1-20261124T030000Z-{index}.snap"),
            time: t,
            index,
        };
        // As text "100" sorts before "99"; as Raft indexes 100 is newer.
        let d = plan(
            &[e(99), e(100)],
            &RetentionPolicy {
                retain: Some(1),
                ..Default::default()
            },
        )
        .expect("plan");
        assert_eq!(d[0].key, e(100).key);
        assert!(d[0].keep && !d[1].keep);
    }

    #[test]
    fn a_backup_named_in_the_future_neither_pins_retention_nor_ages_out_the_rest() {
        let mut h = history();
        let now = Utc
            .with_ymd_and_hms(2026, 10, 31, 0, 0, 0)
            .single()
            .expect("t");
        let future = Utc
            .with_ymd_and_hms(2027, 6, 1, 0, 0, 0)
            .single()
            .expect("t");
        h.push(Entry {
            key: "consul-dc1-20270601T000000Z-1.snap".into(),
            time: future,
            index: 1,
        });
        let policy = RetentionPolicy {
            keep_within: Some(Duration::from_secs(12 * 3600)),
            ..Default::default()
        };
        let d = plan_at(&h, &policy, Some(now)).expect("plan");
        assert_eq!(d[0].time, future);
        assert!(d[0].keep);
        assert_eq!(d[0].reasons, vec![FUTURE_REASON]);
        // Without the guard, keep-within 12h from 2027-06-01 would keep nothing else.
        assert_eq!(d.iter().filter(|d| d.keep).count(), 8, "{d:#?}");
        let retain = RetentionPolicy {
            retain: Some(2),
            ..Default::default()
        };
        let d = plan_at(&h, &retain, Some(now)).expect("plan");
        assert_eq!(
            d.iter().filter(|d| d.keep).count(),
            3,
            "2 real + the future one"
        );
        assert!(d[1].keep && d[2].keep && !d[3].keep);
    }

    #[test]
    fn empty_listing_plans_nothing() {
        assert_eq!(
            plan(
                &[],
                &RetentionPolicy {
                    retain: Some(1),
                    ..Default::default()
                }
            ),
            Ok(vec![])
        );
    }
}
