//! Detection: is a new snapshot markedly smaller than the last backup? A pure comparison of
//! [`Measures`] under per-measure [`Thresholds`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::AnomalyMark;
use crate::archive::RecordCounts;

/// What the guard compares: a count of [`RecordCounts`], or the length of state.bin.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Measure {
    KvEntries,
    Nodes,
    Services,
    AclTokens,
    AclPolicies,
    Sessions,
    ConfigEntries,
    PreparedQueries,
    /// state.bin, in bytes.
    StateBytes,
}

impl Measure {
    /// Every measure, in report order.
    pub const ALL: [Measure; 9] = [
        Measure::KvEntries,
        Measure::Nodes,
        Measure::Services,
        Measure::AclTokens,
        Measure::AclPolicies,
        Measure::Sessions,
        Measure::ConfigEntries,
        Measure::PreparedQueries,
        Measure::StateBytes,
    ];

    /// The snake_case name (configuration keys, reasons, webhook fields).
    pub fn name(self) -> &'static str {
        match self {
            Measure::KvEntries => "kv_entries",
            Measure::Nodes => "nodes",
            Measure::Services => "services",
            Measure::AclTokens => "acl_tokens",
            Measure::AclPolicies => "acl_policies",
            Measure::Sessions => "sessions",
            Measure::ConfigEntries => "config_entries",
            Measure::PreparedQueries => "prepared_queries",
            Measure::StateBytes => "state_bytes",
        }
    }

    /// Percent drop beyond which this measure is an anomaly by default (0: not watched):
    /// KV entries, services, ACL tokens and state.bin bytes at 50%.
    pub fn default_threshold(self) -> u32 {
        match self {
            Measure::KvEntries | Measure::Services | Measure::AclTokens | Measure::StateBytes => 50,
            _ => 0,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot as the guard sees it: its record counts and state.bin length (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Measures {
    #[serde(flatten)]
    pub counts: RecordCounts,
    pub state_bytes: u64,
}

impl Measures {
    /// The value of one measure.
    pub fn get(&self, m: Measure) -> u64 {
        let c = &self.counts;
        match m {
            Measure::KvEntries => c.kv_entries,
            Measure::Nodes => c.nodes,
            Measure::Services => c.services,
            Measure::AclTokens => c.acl_tokens,
            Measure::AclPolicies => c.acl_policies,
            Measure::Sessions => c.sessions,
            Measure::ConfigEntries => c.config_entries,
            Measure::PreparedQueries => c.prepared_queries,
            Measure::StateBytes => self.state_bytes,
        }
    }
}

/// One `MEASURE=PERCENT` setting: a drop of more than `percent` percent is an anomaly; `0`
/// switches the measure off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub measure: Measure,
    pub percent: u32,
}

impl FromStr for Threshold {
    type Err = String;

    /// `kv_entries=50`; errors name the valid measures.
    fn from_str(s: &str) -> Result<Self, String> {
        let (m, p) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected MEASURE=PERCENT, e.g. kv_entries=50"))?;
        let measure = Measure::ALL
            .into_iter()
            .find(|x| x.name() == m.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Measure::ALL.iter().map(|x| x.name()).collect();
                format!("unknown measure {m:?}; one of {}", names.join(", "))
            })?;
        let percent: u32 = p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("{p:?}: a percentage from 0 (off) to 100"))?;
        Ok(Threshold { measure, percent })
    }
}

/// The percent drop per measure beyond which a snapshot is an anomaly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds([u32; 9]);

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds(Measure::ALL.map(Measure::default_threshold))
    }
}

impl Thresholds {
    /// The defaults with `settings` applied in order (a later one for the same measure wins).
    pub fn with(settings: &[Threshold]) -> Self {
        let mut t = Thresholds::default();
        for s in settings {
            t.0[s.measure as usize] = s.percent;
        }
        t
    }

    /// The threshold of `m`, in percent; 0 is off.
    pub fn get(&self, m: Measure) -> u32 {
        self.0[m as usize]
    }

    /// Whether every measure is off (the guard does nothing).
    pub fn all_off(&self) -> bool {
        self.0.iter().all(|p| *p == 0)
    }
}

/// One measure that dropped beyond its threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shrink {
    pub measure: Measure,
    pub before: u64,
    pub after: u64,
    /// The threshold it crossed, in percent.
    pub threshold: u32,
}

impl Shrink {
    /// The drop in whole percent, rounded down.
    pub fn percent(&self) -> u64 {
        (self.before - self.after) * 100 / self.before.max(1)
    }
}

/// A snapshot markedly smaller than the backup before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// Name of the backup compared with (the last one before the drop).
    pub baseline: String,
    pub before: Measures,
    pub after: Measures,
    /// The measures beyond their thresholds.
    pub shrinks: Vec<Shrink>,
}

impl Anomaly {
    /// One ASCII line for logs, checks and metadata:
    /// `kv_entries 120 -> 0 (-100%), state_bytes 48609 -> 9000 (-81%) since <baseline>`.
    pub fn reason(&self) -> String {
        let parts: Vec<String> = self
            .shrinks
            .iter()
            .map(|s| {
                format!(
                    "{} {} -> {} (-{}%)",
                    s.measure,
                    s.before,
                    s.after,
                    s.percent()
                )
            })
            .collect();
        format!("{} since {}", parts.join(", "), self.baseline)
    }

    /// What is stored with the backup.
    pub fn mark(&self) -> AnomalyMark {
        AnomalyMark {
            reason: self.reason(),
            baseline: self.baseline.clone(),
            acknowledged: None,
        }
    }
}

/// Compares `after` with the backup `baseline` (named `baseline_name`): an anomaly when any
/// measure with a non-zero threshold dropped by more than that many percent. A measure that
/// was 0 cannot drop.
pub fn judge(
    baseline_name: &str,
    before: &Measures,
    after: &Measures,
    thresholds: &Thresholds,
) -> Option<Anomaly> {
    let shrinks: Vec<Shrink> = Measure::ALL
        .into_iter()
        .filter_map(|m| {
            let (b, a, t) = (before.get(m), after.get(m), thresholds.get(m));
            // "down by more than t%": (b - a) / b > t / 100, in integers.
            let dropped = t > 0 && a < b && u128::from(b - a) * 100 > u128::from(t) * u128::from(b);
            dropped.then_some(Shrink {
                measure: m,
                before: b,
                after: a,
                threshold: t,
            })
        })
        .collect();
    (!shrinks.is_empty()).then(|| Anomaly {
        baseline: baseline_name.to_string(),
        before: *before,
        after: *after,
        shrinks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: u64, services: u64, state: u64) -> Measures {
        Measures {
            counts: RecordCounts {
                kv_entries: kv,
                services,
                ..RecordCounts::default()
            },
            state_bytes: state,
        }
    }

    #[test]
    fn more_than_the_threshold_is_an_anomaly_exactly_it_is_not() {
        let t = Thresholds::default();
        assert_eq!(judge("b", &m(100, 4, 1000), &m(50, 4, 1000), &t), None);
        let a = judge("b", &m(100, 4, 1000), &m(49, 4, 1000), &t).expect("anomaly");
        assert_eq!(a.shrinks.len(), 1);
        assert_eq!(a.shrinks[0].measure, Measure::KvEntries);
        assert_eq!(a.reason(), "kv_entries 100 -> 49 (-51%) since b");
        // Growth and measures that were 0 never count.
        assert_eq!(judge("b", &m(0, 0, 0), &m(0, 0, 0), &t), None);
        assert_eq!(judge("b", &m(10, 4, 1000), &m(500, 9, 5000), &t), None);
    }

    #[test]
    fn zero_switches_a_measure_off_and_settings_override_defaults() {
        let wiped = (m(120, 4, 50_000), m(0, 4, 10_000));
        let t = Thresholds::with(&["kv_entries=0".parse().unwrap()]);
        let a = judge("b", &wiped.0, &wiped.1, &t).expect("state bytes still watched");
        assert_eq!(a.shrinks[0].measure, Measure::StateBytes);
        let off = Thresholds::with(&[
            "kv_entries=0".parse().unwrap(),
            "state_bytes=0".parse().unwrap(),
        ]);
        assert_eq!(judge("b", &wiped.0, &wiped.1, &off), None);
        assert!(Thresholds::with(&Measure::ALL.map(|measure| Threshold {
            measure,
            percent: 0
        }))
        .all_off());
    }

    #[test]
    fn threshold_settings_parse_with_clear_errors() {
        let t: Threshold = "acl_tokens=25".parse().unwrap();
        assert_eq!((t.measure, t.percent), (Measure::AclTokens, 25));
        let e = "kv=5".parse::<Threshold>().unwrap_err();
        assert!(
            e.contains("unknown measure") && e.contains("kv_entries"),
            "{e}"
        );
        assert!("kv_entries=101".parse::<Threshold>().is_err());
        assert!("kv_entries".parse::<Threshold>().is_err());
    }
}
