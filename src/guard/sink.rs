//! [`Guarded`]: a pipeline sink wrapper that judges the verified snapshot against the last
//! backup just before the commit, so that the anomaly mark is stored with the backup itself.

use std::io;

use bytes::Bytes;

use super::detect::{judge, Anomaly, Measures, Thresholds};
use crate::archive::ArchiveReport;
use crate::pipeline::{Annotations, ArchiveSink};

/// The backup a new snapshot is compared with: the newest backup of the datacenter whose
/// metadata has record counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Its name (the last path segment of its key).
    pub name: String,
    pub measures: Measures,
}

/// Wraps a sink; on commit it compares the report's counts with `baseline` and passes any
/// anomaly on in the [`Annotations`]. Commits yield the anomaly beside what `inner` yields.
#[derive(Debug)]
pub struct Guarded<S> {
    inner: S,
    baseline: Option<Baseline>,
    thresholds: Thresholds,
}

impl<S> Guarded<S> {
    /// Without a baseline (a first backup, or none with counts) nothing is judged.
    pub fn new(inner: S, baseline: Option<Baseline>, thresholds: Thresholds) -> Self {
        Guarded {
            inner,
            baseline,
            thresholds,
        }
    }
}

/// The measures of a verified archive.
pub fn measures_of(report: &ArchiveReport) -> Measures {
    Measures {
        counts: report.state.counts,
        state_bytes: report.state.len,
    }
}

impl<S: ArchiveSink> ArchiveSink for Guarded<S> {
    type Committed = (Option<Anomaly>, S::Committed);

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        self.inner.write(chunk).await
    }

    async fn commit(
        self,
        report: &ArchiveReport,
        notes: &Annotations,
    ) -> io::Result<Self::Committed> {
        let after = measures_of(report);
        let anomaly = self
            .baseline
            .as_ref()
            .and_then(|b| judge(&b.name, &b.measures, &after, &self.thresholds));
        let notes = Annotations {
            anomaly: anomaly.as_ref().map(Anomaly::mark),
            ..notes.clone()
        };
        let committed = self.inner.commit(report, &notes).await?;
        Ok((anomaly, committed))
    }

    async fn abort(self) {
        self.inner.abort().await
    }
}
