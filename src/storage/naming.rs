//! Backup object names: `<prefix>consul-<dc>-<UTC yyyymmddThhmmssZ>-<index>.snap`, and
//! `.snap.age` for a backup encrypted with age.
//!
//! The timestamp comes before the index and is fixed-width, so lexical order of names under one
//! prefix and datacenter is time order (Litestream's sortable names). A name parses back into
//! its fields; listings skip every name [`parse_key`] rejects, so objects that are not ours are
//! never touched.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// Layout of the timestamp field.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const TIME_LEN: usize = 16;

/// The fields encoded in a backup's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupName {
    /// When the snapshot was taken, to the second, UTC.
    pub time: DateTime<Utc>,
    /// Datacenter of the snapshot (may contain `-`).
    pub datacenter: String,
    /// Raft index of the snapshot.
    pub index: u64,
    /// Whether the backup is encrypted with age (its name ends in `.snap.age`). Plain and
    /// encrypted backups of one datacenter are one series for retention and `--latest`.
    pub encrypted: bool,
}

/// The name (without prefix) for `name`.
pub fn format_name(name: &BackupName) -> String {
    format!(
        "consul-{}-{}-{}.snap{}",
        name.datacenter,
        name.time.format(TIME_FORMAT),
        name.index,
        if name.encrypted { ".age" } else { "" }
    )
}

/// The full key: `prefix` + name. A non-empty prefix is used as given (add a trailing `/` to
/// make it a folder).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use consul_snapshot_agent::storage::naming::{format_key, parse_key, BackupName};
///
/// let name = BackupName {
///     encrypted: false,
///     time: Utc.with_ymd_and_hms(2026, 11, 21, 19, 0, 0).unwrap(),
///     datacenter: "us-east-1".into(),
///     index: 146,
/// };
/// let key = format_key("backups/", &name);
/// assert_eq!(key, "backups/consul-us-east-1-20261121T190000Z-146.snap");
/// assert_eq!(parse_key("backups/", &key), Some(name));
/// assert_eq!(parse_key("backups/", "backups/notes.txt"), None);
/// ```
/// A key prefix as a "folder": a `/` added to a non-empty prefix without one.
pub fn folder_prefix(prefix: &str) -> String {
    match prefix {
        "" => String::new(),
        p if p.ends_with('/') => p.to_string(),
        p => format!("{p}/"),
    }
}

/// The full key of a backup under `prefix` (already a folder: [`folder_prefix`]).
pub fn format_key(prefix: &str, name: &BackupName) -> String {
    format!("{prefix}{}", format_name(name))
}

/// Parses a full key under `prefix`; `None` for anything that is not exactly our scheme.
pub fn parse_key(prefix: &str, key: &str) -> Option<BackupName> {
    parse_name(key.strip_prefix(prefix)?)
}

/// Parses a bare name.
pub fn parse_name(name: &str) -> Option<BackupName> {
    let rest = name.strip_prefix("consul-")?;
    let (rest, encrypted) = match rest.strip_suffix(".snap.age") {
        Some(r) => (r, true),
        None => (rest.strip_suffix(".snap")?, false),
    };
    let (rest, index) = rest.rsplit_once('-')?;
    if index.is_empty()
        || !index.bytes().all(|b| b.is_ascii_digit())
        || (index.len() > 1 && index.starts_with('0'))
    {
        return None;
    }
    let index: u64 = index.parse().ok()?;
    let (dc, time) = rest.rsplit_once('-')?;
    if time.len() != TIME_LEN || dc.is_empty() || dc.contains('/') {
        return None;
    }
    let time = NaiveDateTime::parse_from_str(time, TIME_FORMAT).ok()?;
    Some(BackupName {
        encrypted,
        time: Utc.from_utc_datetime(&time),
        datacenter: dc.to_string(),
        index,
    })
}

/// Whether `dc` can go into a name (non-empty, no `/`, printable ASCII).
pub fn valid_datacenter(dc: &str) -> bool {
    !dc.is_empty() && dc.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn format_and_parse() {
        let n = BackupName {
            encrypted: false,
            time: at("2026-11-21T19:00:00Z"),
            datacenter: "us-east-1".into(),
            index: 146,
        };
        assert_eq!(
            format_key("backups/", &n),
            "backups/consul-us-east-1-20261121T190000Z-146.snap"
        );
        assert_eq!(
            parse_key(
                "backups/",
                "backups/consul-us-east-1-20261121T190000Z-146.snap"
            ),
            Some(n)
        );
    }

    #[test]
    fn foreign_names_are_rejected() {
        for key in [
            "p/consul-dc1-20261121T190000Z-146.snap.unverified",
            "p/consul-dc1-20261121T190000Z-146.snap.meta.json",
            "p/consul-dc1-20261121T190000Z-.snap",
            "p/consul-dc1-20261121T190000Z-0146.snap",
            "p/consul-dc1-2026112T190000Z-146.snap",
            "p/consul--20261121T190000Z-146.snap",
            "p/consul-dc1-20261321T190000Z-146.snap",
            "p/other/consul-dc1-20261121T190000Z-146.snap",
            "q/consul-dc1-20261121T190000Z-146.snap",
            "p/consul-1700000000000000000.snap",
            "p/notes.txt",
        ] {
            assert_eq!(parse_key("p/", key), None, "{key}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(secs in 0i64..4_000_000_000, dc in "[a-z0-9][a-z0-9-]{0,15}", index in any::<u64>()) {
            let n = BackupName { encrypted: false, time: Utc.timestamp_opt(secs, 0).single().expect("time"), datacenter: dc, index };
            prop_assert_eq!(parse_key("x/", &format_key("x/", &n)), Some(n));
        }

        #[test]
        fn lexical_order_is_time_order(a in 0i64..4_000_000_000, b in 0i64..4_000_000_000, ia in any::<u64>(), ib in any::<u64>()) {
            let mk = |s: i64, i: u64| format_name(&BackupName { encrypted: false, time: Utc.timestamp_opt(s, 0).single().expect("t"), datacenter: "dc1".into(), index: i });
            if a < b {
                prop_assert!(mk(a, ia) < mk(b, ib));
            }
        }
    }
}
