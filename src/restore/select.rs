//! Which stored backup a restore uses: `--latest`, `--key K`, or `--before TIME` (the newest
//! taken at or before TIME). Pure.

use chrono::{DateTime, Utc};

use crate::storage::StoredBackup;

/// How the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Latest,
    Key(String),
    Before(DateTime<Utc>),
}

/// The chosen backup among `backups` (any order), or `None`.
pub fn select<'a>(backups: &'a [StoredBackup], sel: &Selection) -> Option<&'a StoredBackup> {
    // The one order of list and retention: time, then Raft index.
    let newest = |it: &mut dyn Iterator<Item = &'a StoredBackup>| {
        it.min_by(|a, b| {
            crate::retention::newest_first(
                (&a.name.time, a.name.index, &a.key),
                (&b.name.time, b.name.index, &b.key),
            )
        })
    };
    match sel {
        Selection::Latest => newest(&mut backups.iter()),
        Selection::Key(k) => backups
            .iter()
            .find(|b| &b.key == k || b.key.rsplit('/').next() == Some(k.as_str())),
        Selection::Before(t) => newest(&mut backups.iter().filter(|b| b.name.time <= *t)),
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

    #[test]
    fn selections() {
        let all = vec![b(3), b(10), b(7)];
        assert_eq!(
            select(&all, &Selection::Latest).map(|x| x.name.index),
            Some(10)
        );
        assert_eq!(
            select(
                &all,
                &Selection::Before(parse_time("2026-11-21T08:30:00Z").expect("t"))
            )
            .map(|x| x.name.index),
            Some(7)
        );
        assert_eq!(
            select(
                &all,
                &Selection::Before(parse_time("20261121T070000Z").expect("t"))
            )
            .map(|x| x.name.index),
            Some(7),
            "at or before"
        );
        assert_eq!(
            select(
                &all,
                &Selection::Before(parse_time("2026-11-21T01:00:00Z").expect("t"))
            ),
            None
        );
        assert_eq!(
            select(
                &all,
                &Selection::Key("p/consul-dc1-20261121T030000Z-3.snap".into())
            )
            .map(|x| x.name.index),
            Some(3)
        );
        assert_eq!(
            select(
                &all,
                &Selection::Key("consul-dc1-20261121T030000Z-3.snap".into())
            )
            .map(|x| x.name.index),
            Some(3),
            "bare name"
        );
        assert_eq!(select(&[], &Selection::Latest), None);
        assert!(parse_time("yesterday").is_err());
    }
}
