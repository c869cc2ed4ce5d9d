//! How the configuration's typed values read and write in files: Go durations (`"1h30m"`),
//! sizes (`"16MiB"`, or a number of bytes) and webhook URLs. Used through `#[serde(with)]` on
//! the option structs, so a value has the same spelling in a file, on the command line and in
//! `--print-config`, and what `--print-config` prints reads back to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::consul::duration::{format_go_duration, parse_duration};

/// `Option<Duration>` as a Go duration string (`"72h"`, `"1m30s"`, `"0"`), per Go's
/// `time.ParseDuration` (Consul Enterprise's file format).
pub mod go_duration {
    use super::*;

    /// Writes `Some(d)` as a Go duration, `None` as null.
    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&format_go_duration(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads a Go duration string.
    ///
    /// # Errors
    /// A string that is not a Go duration (the message says why: unknown unit, too long...).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_duration(&s).map(Some).map_err(de::Error::custom),
        }
    }
}

/// `Option<u64>` bytes as a size string (`"16MiB"`, `"5MB"`; see [`super::parse_size`]) or a
/// plain number of bytes. Written in the largest binary unit that divides it, so it reads back
/// exactly ([`super::format_size`]).
pub mod size {
    use super::*;

    /// Writes `Some(n)` as a size string, `None` as null.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&super::super::format_size(*n)),
            None => s.serialize_none(),
        }
    }

    /// Reads a size string or an integer number of bytes.
    ///
    /// # Errors
    /// An unknown unit, a negative number or an overflow.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Option<u64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"16MiB\" or a number of bytes")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Some(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(Some)
                    .map_err(|_| E::custom(format!("a size cannot be negative: {n}")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                super::super::parse_size(s).map(Some).map_err(E::custom)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(V)
            }
        }
        d.deserialize_option(V)
    }
}

/// A webhook URL. Such URLs often carry a credential in their path or query (Slack, Teams), so
/// it is written (in `--print-config`) as `scheme://host/<redacted>` and never shown whole in
/// an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook(pub url::Url);

impl FromStr for Webhook {
    type Err = String;

    /// # Errors
    /// Not an absolute URL; the message quotes the text up to any `?` only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        url::Url::parse(s)
            .map(Webhook)
            .map_err(|e| format!("webhook URL {:?}: {e}", s.split('?').next().unwrap_or("")))
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Webhook {
    /// `scheme://host/<redacted>`.
    pub fn redacted(&self) -> String {
        format!(
            "{}://{}/<redacted>",
            self.0.scheme(),
            self.0.host_str().unwrap_or("")
        )
    }
}

impl Serialize for Webhook {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(default, with = "go_duration")]
        d: Option<Duration>,
        #[serde(default, with = "size")]
        s: Option<u64>,
    }

    #[test]
    fn durations_and_sizes_round_trip_through_json() {
        for (d, s) in [
            (Duration::from_secs(72 * 3600), 5632u64 << 10),
            (Duration::from_millis(1500), 5_000_000),
            (Duration::ZERO, 1),
        ] {
            let t = T {
                d: Some(d),
                s: Some(s),
            };
            let text = serde_json::to_string(&t).expect("ser");
            assert_eq!(serde_json::from_str::<T>(&text).expect("de"), t, "{text}");
        }
        let t: T = serde_json::from_str(r#"{"s": 1048576}"#).expect("bytes");
        assert_eq!(t.s, Some(1 << 20));
        assert!(serde_json::from_str::<T>(r#"{"s": -1}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"d": "1y"}"#)
            .expect_err("unit")
            .to_string()
            .contains("unknown unit"));
    }

    #[test]
    fn a_webhook_never_shows_its_path_or_query() {
        let w: Webhook = "https://hooks.example/services/T0K3N?x=SECRET"
            .parse()
            .expect("url");
        let shown = serde_json::to_string(&w).expect("ser") + &format!("{w:?}");
        assert!(
            !shown.contains("T0K3N") && !shown.contains("SECRET"),
            "{shown}"
        );
        let e = "not a url?k=SECRET".parse::<Webhook>().expect_err("bad");
        assert!(!e.contains("SECRET"), "{e}");
    }
}
