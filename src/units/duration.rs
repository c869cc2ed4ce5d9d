//! Durations as Consul writes them: Go's `time.ParseDuration` (`15s`, `1500ms`, `1h30m`, `72h`,
//! `1.5h`), ported to integer arithmetic so that no input can overflow or panic (grammar and the
//! int64-nanosecond bound per Go's `time/format.go`, `ParseDuration`). The one extension is the
//! unit `d` (24h), so that retention reads naturally (`--keep-within 7d`).
//!
//! This is the only duration parser of the crate: every flag, file key and Consul answer goes
//! through it.

use std::time::Duration;

/// Go's limit: a `time.Duration` is an int64 of nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Why a duration was refused. The message quotes the input (durations are never secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?} (examples: 30s, 1500ms, 15m, 1h30m, 72h, 7d)")]
    Syntax(String),
    #[error("missing unit in duration {0:?} (examples: 30s, 15m, 1h; \"0\" alone needs none)")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {input:?} (units: ns, us, µs, ms, s, m, h, d)")]
    Unit { unit: String, input: String },
    #[error("duration {0:?} is too long (at most 2562047h, Go's limit)")]
    Overflow(String),
    #[error("duration {0:?} is negative")]
    Negative(String),
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration (plus `d`); `"0"` is zero. Negative durations are refused, since every
/// duration here is a timeout, an interval or an age.
///
/// ```
/// use std::time::Duration;
/// use consul_snapshot_agent::units::duration::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_duration("99999999999999999999s").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(input.to_string());
    let mut s = input;
    let negative = if let Some(rest) = s.strip_prefix('-') {
        s = rest;
        true
    } else {
        s = s.strip_prefix('+').unwrap_or(s);
        false
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(syntax());
    }
    let overflow = || DurationError::Overflow(input.to_string());
    let mut total: u128 = 0;
    while !s.is_empty() {
        // Integer part, then an optional fraction: at least one digit in all.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        let (frac_digits, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(syntax());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let scale = unit_nanos(unit).ok_or_else(|| DurationError::Unit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        let mut whole: u128 = 0;
        for b in int_digits.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(b - b'0')))
                .filter(|w| *w <= MAX_NANOS)
                .ok_or_else(overflow)?;
        }
        let mut part = whole.checked_mul(scale).ok_or_else(overflow)?;
        // The fraction: digits past nanosecond precision are dropped, as Go does.
        let mut unit_frac = scale;
        for b in frac_digits.bytes() {
            if unit_frac < 10 {
                break;
            }
            unit_frac /= 10;
            part += u128::from(b - b'0') * unit_frac;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
        s = rest;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    // The remainder of a division by 10^9 always fits in u32.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// [`parse_duration`] as an `Option`, for wire formats (Consul answers, test-server requests).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    parse_duration(s).ok()
}

/// [`parse_duration`] for clap's `value_parser` (its error becomes a usage error, exit 2).
pub fn parse_go_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Formats a duration in Go syntax, zero units left out (`1h` where Go prints `1h0m0s`; `1m30s`,
/// `1.5s`, `250ms`); [`parse_duration`] reads every output back to the same value.
pub fn format_go_duration(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if secs == 0 {
        if nanos == 0 {
            return "0s".into();
        }
        // Below one second Go picks the largest unit that keeps an integer part.
        let (unit, scale) = match nanos {
            n if n >= 1_000_000 => ("ms", 1_000_000),
            n if n >= 1_000 => ("µs", 1_000),
            _ => ("ns", 1),
        };
        return format!(
            "{}{unit}",
            decimal(u64::from(nanos / scale), nanos % scale, scale)
        );
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || nanos > 0 || out.is_empty() {
        out.push_str(&format!("{}s", decimal(s, nanos, 1_000_000_000)));
    }
    out
}

/// `int.frac` with trailing zeros of the fraction dropped; `scale` is the fraction's base.
fn decimal(int: u64, frac: u32, scale: u32) -> String {
    if frac == 0 {
        return int.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

/// `Option<Duration>` as a Go duration string (`"72h"`, `"1m30s"`, `"0"`), per Go's
/// `time.ParseDuration` (Consul Enterprise's file format).
pub mod serde_option {
    use super::*;
    use serde::{de, Deserialize, Deserializer, Serializer};

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_durations() {
        let ok = |s: &str| parse_duration(s).expect(s);
        assert_eq!(ok("15s"), Duration::from_secs(15));
        assert_eq!(ok("15000ms"), Duration::from_secs(15));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("72h"), Duration::from_secs(72 * 3600));
        assert_eq!(ok("7d"), Duration::from_secs(7 * 86400));
        assert_eq!(ok("1h1m1s1ms1us1ns"), Duration::new(3661, 1_001_001));
        assert_eq!(ok("3µs"), Duration::from_micros(3));
        assert_eq!(ok("+5s"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("2562047h"), Duration::from_secs(2562047 * 3600));
        assert_eq!(
            ok("1.0000000001s"),
            Duration::from_secs(1),
            "Go drops sub-ns"
        );
        for bad in ["", "abc", "10", "1x", ".s", "1..5s", "s", "1h-1m", "-"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        for big in [
            "99999999999999999999s",
            "2562048h",
            "9223372036.854775808s",
            "106752d",
            "340282366920938463463374607431768211456ns",
        ] {
            assert!(
                matches!(parse_duration(big), Err(DurationError::Overflow(_))),
                "{big}"
            );
        }
    }

    #[test]
    fn formats_as_go() {
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(format_go_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_go_duration(Duration::new(3601, 5)), "1h1.000000005s");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn never_panics_on_duration_shapes(s in "[+-]?([0-9]{0,25}(\\.[0-9]{0,12})?(ns|us|µs|ms|s|m|h|d|x)?){1,4}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn format_round_trips(secs in 0u64..(MAX_NANOS as u64 / 1_000_000_000), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&format_go_duration(d)), Ok(d));
        }

        #[test]
        fn sums_of_units(h in 0u64..100_000, m in 0u64..100, s in 0u64..100, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let want = Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&text), Ok(want));
        }
    }
}
