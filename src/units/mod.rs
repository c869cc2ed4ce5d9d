//! Sizes, durations and dates as they are written everywhere (flags, files, `--print-config`,
//! Consul's answers and log lines): bytes as `16MiB`, durations as Go writes them (`1h30m`),
//! HTTP dates as servers send them.
//! A leaf module: it depends on nothing else in the crate, so the configuration, the Consul
//! client and the storage backends all read and print values through it.

pub mod date;
pub mod duration;
pub mod size;

pub use date::parse_http_date;
pub use duration::{format_go_duration, parse_duration, parse_go_duration_arg};
pub use size::{format_size, parse_size};

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct T {
        #[serde(default, with = "duration::serde_option")]
        d: Option<Duration>,
        #[serde(default, with = "size::serde_option")]
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
}
