//! From async chunks to the synchronous archive reader: a `std::io::Read` over a bounded
//! channel, read on a blocking thread (tokio-util's `SyncIoBridge` rationale: the archive
//! reader is sync by design so it can be fuzzed and reused without a runtime).

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc::Receiver;

/// Reads the chunks sent on a channel, in order; the sender closing is end of file, an `Err`
/// item is a read error. Must be read from a thread that is not a runtime worker.
#[derive(Debug)]
pub struct ChannelReader {
    rx: Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    /// Wraps the receiving end.
    pub fn new(rx: Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
