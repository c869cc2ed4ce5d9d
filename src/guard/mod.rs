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
