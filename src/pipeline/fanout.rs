//! One archive to several destinations. Destinations are independent: one that fails while
//! writing is aborted and dropped, the others go on; the pipeline fails only when all have
//! failed. On commit each destination reports its own result.

use std::io;

use bytes::Bytes;

use super::ArchiveSink;
use crate::archive::ArchiveReport;

enum Slot<S> {
    Active(S),
    Failed(io::Error),
}

/// See the module docs. Results keep the order of the sinks given.
pub struct FanOut<S> {
    slots: Vec<Slot<S>>,
}

impl<S: ArchiveSink> FanOut<S> {
    /// Writes to all of `sinks`.
    pub fn new(sinks: Vec<S>) -> Self {
        FanOut {
            slots: sinks.into_iter().map(Slot::Active).collect(),
        }
    }
}

impl<S: ArchiveSink> ArchiveSink for FanOut<S> {
    type Committed = Vec<Result<S::Committed, io::Error>>;

    async fn write(&mut self, chunk: &Bytes) -> io::Result<()> {
        for slot in &mut self.slots {
            if let Slot::Active(sink) = slot {
                if let Err(e) = sink.write(chunk).await {
                    if let Slot::Active(failed) = std::mem::replace(slot, Slot::Failed(e)) {
                        failed.abort().await;
                    }
                }
            }
        }
        if self.slots.iter().all(|s| matches!(s, Slot::Failed(_))) {
            let first = self.slots.iter().find_map(|s| match s {
                Slot::Failed(e) => Some(e.to_string()),
                Slot::Active(_) => None,
            });
            return Err(io::Error::other(
                first.unwrap_or_else(|| "no destination".into()),
            ));
        }
        Ok(())
    }

    async fn commit(self, report: &ArchiveReport) -> io::Result<Self::Committed> {
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in self.slots {
            out.push(match slot {
                Slot::Active(s) => s.commit(report).await,
                Slot::Failed(e) => Err(e),
            });
        }
        Ok(out)
    }

    async fn abort(self) {
        for slot in self.slots {
            if let Slot::Active(s) = slot {
                s.abort().await;
            }
        }
    }
}
