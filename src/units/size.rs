//! Sizes in bytes: `512`, `64KiB`, `100MiB`, `5MB`, as flags and files spell them, printed so
//! that they read back exactly.

/// Parses a size in bytes: `512`, `64KiB`, `100MiB`, `1GiB` (binary), `5MB`, `1GB` (decimal:
/// what the units mean), and the single letters `K`, `M`, `G` as binary (as `dd` and most
/// tools read them). Case-insensitive; a space before the unit is allowed.
///
/// ```
/// use consul_snapshot_agent::units::{format_size, parse_size};
/// assert_eq!(parse_size("16MiB"), Ok(16 << 20));
/// assert_eq!(parse_size("16MB"), Ok(16_000_000));
/// assert_eq!(parse_size(&format_size(5632 << 10)), Ok(5632 << 10));
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 100MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1_000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// Formats a size so that [`parse_size`] reads it back exactly: the largest binary unit that
/// divides it (`16MiB`, `5632KiB`), else bytes.
pub fn format_size(n: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n != 0 && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    n.to_string()
}

/// `Option<u64>` bytes as a size string (`"16MiB"`, `"5MB"`; see [`parse_size`]) or a
/// plain number of bytes. Written in the largest binary unit that divides it, so it reads back
/// exactly ([`format_size`]).
pub mod serde_option {
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    /// Writes `Some(n)` as a size string, `None` as null.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(n) => s.serialize_str(&super::format_size(*n)),
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
                super::parse_size(s).map(Some).map_err(E::custom)
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
