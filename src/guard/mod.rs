//! The shrink guard: a backup agent must not rotate out the last good snapshot after someone
//! wiped a KV tree. Every backup records its record counts ([`crate::archive::RecordCounts`]);
//! a new snapshot markedly smaller than the last backup ([`detect::judge`]) is still stored
//! (it is the truth now) but marked as an anomaly ([`AnomalyMark`], in its metadata), and
//! retention holds the backups from before the drop ([`hold`]) until an operator acknowledges
//! the anomaly (`prune --acknowledge-anomaly KEY`) or the hold lapses.
//!
//! * [`detect`]: measures, thresholds, the comparison (pure);
//! * [`hold`]: which backups an anomaly holds (pure);
//! * [`sink`]: the pipeline sink that judges a verified snapshot before it is committed.

pub mod detect;
pub mod hold;
pub mod sink;

use serde::{Deserialize, Serialize};

pub use detect::{judge, Anomaly, Measure, Measures, Threshold, Thresholds};
pub use hold::{Hold, DEFAULT_HOLD};
pub use sink::{Baseline, Guarded};

/// The shrink guard as it takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// Percent drop per measure beyond which a snapshot is an anomaly.
    pub thresholds: Thresholds,
    /// How long an unacknowledged anomaly holds the backups from before it.
    pub hold: std::time::Duration,
}

impl GuardConfig {
    /// From the settings (`None` fields take the defaults); `None` when every threshold is
    /// 0: the guard is off, nothing is judged and nothing held.
    pub fn new(thresholds: &[Threshold], hold: Option<std::time::Duration>) -> Option<Self> {
        let thresholds = Thresholds::with(thresholds);
        (!thresholds.all_off()).then(|| GuardConfig {
            thresholds,
            hold: hold.unwrap_or(DEFAULT_HOLD),
        })
    }
}

/// The anomaly record stored with an anomalous backup (sidecar JSON `anomaly`; S3 user
/// metadata `anomaly`, `anomaly-baseline`, `anomaly-acknowledged`). ASCII only, as S3
/// metadata must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyMark {
    /// The drop: `kv_entries 120 -> 0 (-100%) since <baseline>` ([`Anomaly::reason`]).
    pub reason: String,
    /// Name of the backup compared with.
    pub baseline: String,
    /// RFC 3339 time an operator acknowledged it (`prune --acknowledge-anomaly`); from then
    /// on it holds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}
