//! One archive to several destinations. Destinations are independent: one that fails while
//! writing is aborted and dropped, the others go on; the pipeline fails only when all have
//! failed. On commit each destination reports its own result, under the key it was given.

use std::io;

use bytes::Bytes;

use super::ArchiveSink;
use crate::archive::ArchiveReport;

enum Slot<S> {
    Active(S),
    Failed(io::Error),
}

/// See the module docs. `K` names a sink (a destination) in the results.
pub struct FanOut<K, S> {
    slots: Vec<(K, Slot<S>)>,
}

impl<K: Send, S: ArchiveSink> FanOut<K, S> {
    /// Writes to all of `sinks`, each under its key.
    pub fn new(sinks: Vec<(K, S)>) -> Self {
        FanOut {
            slots: sinks
                .into_iter()
                .map(|(k, s)| (k, Slot::Active(s)))
                .collect(),
        }
    }
}

impl<K: Send, S: ArchiveSink> ArchiveSink for FanOut<K, S> {
    /// Each sink's key with its commit's result.
    type Committed = Vec<(K, Result<S::Committed, io::Error>)>;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        for (_, slot) in &mut self.slots {
            if let Slot::Active(sink) = slot {
                if let Err(e) = sink.write(chunk).await {
                    if let Slot::Active(failed) = std::mem::replace(slot, Slot::Failed(e)) {
                        failed.abort().await;
                    }
                }
            }
        }
        if self.slots.iter().all(|(_, s)| matches!(s, Slot::Failed(_))) {
            let first = self.slots.iter().find_map(|(_, s)| match s {
                Slot::Failed(e) => Some(e.to_string()),
                Slot::Active(_) => None,
            });
            return Err(io::Error::other(
                first.unwrap_or_else(|| "no destination".into()),
            ));
        }
        Ok(())
    }

    async fn commit(
        self,
        report: &ArchiveReport,
        notes: &super::Annotations,
    ) -> io::Result<Self::Committed> {
        let mut out = Vec::with_capacity(self.slots.len());
        for (key, slot) in self.slots {
            let result = match slot {
                Slot::Active(s) => s.commit(report, notes).await,
                Slot::Failed(e) => Err(e),
            };
            out.push((key, result));
        }
        Ok(out)
    }

    async fn abort(self) {
        for (_, slot) in self.slots {
            if let Slot::Active(s) = slot {
                s.abort().await;
            }
        }
    }
}
