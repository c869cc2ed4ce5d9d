//! The one-pass archive reader: gzip → tar → entries, with every check Consul makes (spec §5.3)
//! plus the state.bin record checks (spec §6), in a single read of the source.
//!
//! Three threads share the work so that decompression, the slowest stage, overlaps everything
//! else: the *inflater* reads the source and inflates; a hashing thread beside it takes the
//! SHA-256 of the compressed bytes; the caller's thread parses tar, hashes entries and walks
//! state.bin records. They exchange a bounded number of fixed-size buffers, so memory is about
//! `(IN_FLIGHT + HASH_QUEUE + 3) × CHUNK` whatever the snapshot size; `state.bin` is never held
//! in memory.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::error::{ArchiveError, GzipError, RaftError, ReadError};
use super::meta::SnapshotMeta;
use super::state::{RecordVisitor, StateParser, StateSummary};
use super::sums;
use super::tar::{TarEnd, TarEvent, TarParser};
use super::types::TypePolicy;

/// Size of one decompressed buffer handed between the threads, in bytes.
pub const CHUNK: usize = 256 * 1024;
/// Buffers queued between the threads.
pub const IN_FLIGHT: usize = 4;
/// Largest `meta.json` accepted, in bytes (Consul's is about 250 bytes plus ~100 per server).
pub const MAX_META_JSON: u64 = 1 << 20;
/// Largest `SHA256SUMS` accepted, in bytes (Consul's is always 152).
pub const MAX_SHA256SUMS: u64 = 64 * 1024;

/// What a fully verified archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// SHA-256 of the archive bytes as read (the `.snap` file), the digest stored with backups.
    pub archive_sha256: [u8; 32],
    /// Length of the archive as read, in bytes.
    pub archive_len: u64,
    /// The decoded `meta.json`.
    pub meta: SnapshotMeta,
    /// SHA-256 of the `meta.json` entry.
    pub meta_sha256: [u8; 32],
    /// SHA-256 of the `state.bin` entry.
    pub state_sha256: [u8; 32],
    /// What state.bin held: length in bytes, header `LastIndex`, record count.
    pub state: StateSummary,
}

/// Options for [`read_archive`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// How record type bytes are judged.
    pub types: TypePolicy,
}

/// Reads and verifies a whole archive from `source`, calling `visitor` for every state.bin
/// record. Succeeds only if Consul would accept the archive for restore: gzip intact, exactly
/// the three entries, SHA256SUMS matching, no bytes after the tar end, `meta.json` version and
/// size right, and state.bin a complete record stream of acceptable types.
///
/// Errors: [`ArchiveError::Source`] when `source` fails, any other variant when the bytes are bad.
///
/// ```
/// # #[cfg(feature = "synth")] {
/// use consul_snapshot::synth::SynthSpec;
/// use consul_snapshot::{read_archive, ReadOptions, WriteOptions};
///
/// let archive = SynthSpec::default().write_archive(Vec::new(), &WriteOptions::default()).unwrap();
/// let report = read_archive(&archive[..], ReadOptions::default(), &mut ()).unwrap();
/// assert_eq!(report.meta.index, 1000);
/// assert_eq!(report.state.len as i64, report.meta.size);
///
/// let mut damaged = archive.clone();
/// let last = damaged.len() - 8;
/// damaged[last] ^= 1; // the gzip CRC
/// assert!(read_archive(&damaged[..], ReadOptions::default(), &mut ()).is_err());
/// # }
/// ```
/// Records are visited as they stream, before the integrity check at the end: discard what the
/// visitor gathered when this returns an error.
pub fn read_archive<R: Read + Send>(
    source: R,
    opts: ReadOptions,
    visitor: &mut dyn RecordVisitor,
) -> Result<ArchiveReport, ArchiveError> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Msg>(IN_FLIGHT);
        let (free_tx, free_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let inflater = std::thread::Builder::new()
            .name("archive-inflate".into())
            .spawn_scoped(scope, move || inflate(source, &tx, &free_rx));
        if let Err(e) = inflater {
            return Err(ArchiveError::Source(io::Error::other(format!(
                "cannot start the decompression thread: {e}"
            ))));
        }
        consume(rx, free_tx, opts, visitor)
    })
}

enum Msg {
    Data(Vec<u8>, usize),
    End { sha256: [u8; 32], len: u64 },
    SourceErr(io::Error),
    GzipErr(GzipError),
}

/// Blocks of compressed bytes queued for the hashing thread.
const HASH_QUEUE: usize = 2;

/// The compressed bytes as the gzip decoder's buffered input, each block also handed to a
/// hashing thread, so that the SHA-256 of the archive (one pass over every compressed byte)
/// runs beside decompression instead of on the inflater's thread, which is the slowest stage
/// of every path. Counts the bytes and remembers whether the source (not the gzip decoder)
/// failed. Memory: `HASH_QUEUE + 1` blocks of at most [`CHUNK`] bytes.
struct HashedSource<R> {
    inner: R,
    block: Arc<Vec<u8>>,
    pos: usize,
    hasher: Option<SyncSender<Arc<Vec<u8>>>>,
    len: u64,
    failed: bool,
}

impl<R: Read> HashedSource<R> {
    /// Reads the next block: up to [`CHUNK`] bytes, fewer only at the end of the source.
    fn refill(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        buf.truncate(filled);
        self.len += filled as u64;
        self.block = Arc::new(buf);
        self.pos = 0;
        if filled > 0 {
            if let Some(h) = &self.hasher {
                // Fails only if the hashing thread died; its missing digest is reported at
                // the end of the stream.
                let _ = h.send(Arc::clone(&self.block));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for HashedSource<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for HashedSource<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.block.len() {
            self.refill()?;
        }
        Ok(&self.block[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.block.len());
    }
}

/// Hashes every block it receives until the sender is dropped.
fn hash_blocks(blocks: &Receiver<Arc<Vec<u8>>>) -> [u8; 32] {
    let mut hash = Sha256::new();
    while let Ok(b) = blocks.recv() {
        hash.update(&b[..]);
    }
    hash.finalize().into()
}

fn inflate<R: Read>(source: R, tx: &SyncSender<Msg>, free: &Receiver<Vec<u8>>) {
    let (blocks_tx, blocks_rx) = sync_channel::<Arc<Vec<u8>>>(HASH_QUEUE);
    std::thread::scope(|scope| {
        let hasher = std::thread::Builder::new()
            .name("archive-sha256".into())
            .spawn_scoped(scope, move || hash_blocks(&blocks_rx));
        let hashed = HashedSource {
            inner: source,
            block: Arc::new(Vec::new()),
            pos: 0,
            hasher: Some(blocks_tx),
            len: 0,
            failed: false,
        };
        match hasher {
            Ok(hasher) => inflate_hashed(hashed, tx, free, || hasher.join().ok()),
            Err(e) => {
                let _ = tx.send(Msg::SourceErr(io::Error::other(format!(
                    "cannot start the hashing thread: {e}"
                ))));
            }
        }
    });
}

/// Inflates `hashed` into buffers sent on `tx`; at the end, `digest` (the hashing thread's
/// result, once the source is dropped) completes the `End` message.
fn inflate_hashed<R: Read>(
    hashed: HashedSource<R>,
    tx: &SyncSender<Msg>,
    free: &Receiver<Vec<u8>>,
    digest: impl FnOnce() -> Option<[u8; 32]>,
) {
    let mut gz = flate2::bufread::MultiGzDecoder::new(hashed);
    loop {
        let mut buf = free.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut filled = 0;
        let mut eof = false;
        while filled < buf.len() {
            match gz.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let src = gz.get_ref();
                    let msg = if src.failed {
                        Msg::SourceErr(e)
                    } else if src.len == 0 {
                        Msg::GzipErr(GzipError::Empty)
                    } else {
                        Msg::GzipErr(GzipError::from_flate2(&e))
                    };
                    if filled > 0 && tx.send(Msg::Data(buf, filled)).is_err() {
                        return;
                    }
                    let _ = tx.send(msg);
                    return;
                }
            }
        }
        if filled > 0 && tx.send(Msg::Data(buf, filled)).is_err() {
            return; // the consumer stopped early
        }
        if eof {
            let mut src = gz.into_inner();
            let len = src.len;
            src.hasher = None; // ends the hashing thread's input
            drop(src);
            let msg = if len == 0 {
                Msg::GzipErr(GzipError::Empty)
            } else if let Some(sha256) = digest() {
                Msg::End { sha256, len }
            } else {
                Msg::SourceErr(io::Error::other("the archive hashing thread failed"))
            };
            let _ = tx.send(msg);
            return;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Meta = 0,
    State = 1,
    Sums = 2,
}

/// Receives tar events and does everything per entry.
struct Entries<'v> {
    current: Option<Kind>,
    seen: [bool; 3],
    meta_buf: Vec<u8>,
    meta: Option<SnapshotMeta>,
    sums_buf: Vec<u8>,
    meta_hash: Sha256,
    state_hash: Sha256,
    /// Bytes of state.bin seen; the parser stops counting at its first error.
    state_len: u64,
    state: StateParser,
    state_err: Option<super::error::StateError>,
    visitor: &'v mut dyn RecordVisitor,
}

impl Entries<'_> {
    fn on_event(&mut self, ev: TarEvent<'_>) -> Result<(), ReadError> {
        match ev {
            TarEvent::Entry {
                name,
                size,
                typeflag,
            } => {
                let (kind, limit) = match name {
                    b"meta.json" => (Kind::Meta, Some(MAX_META_JSON)),
                    // Bounded by meta.json's Size (it comes first in Consul's layout): a
                    // larger state.bin (a decompression bomb) is refused from its tar header,
                    // before one byte of it is inflated.
                    b"state.bin" => (
                        Kind::State,
                        self.meta.as_ref().and_then(|m| u64::try_from(m.size).ok()),
                    ),
                    b"SHA256SUMS" => (Kind::Sums, Some(MAX_SHA256SUMS)),
                    b"SHA256SUMS.sealed" => {
                        return Err(ReadError::VaultSnapshot(super::gojson::lossy_like_go(name)))
                    }
                    _ => {
                        return Err(ReadError::UnexpectedFile(super::gojson::lossy_like_go(
                            name,
                        )))
                    }
                };
                let label = || String::from_utf8_lossy(name).into_owned();
                if typeflag != b'0' && typeflag != 0 {
                    return Err(ReadError::NotRegular {
                        name: label(),
                        typeflag: char::from(typeflag),
                    });
                }
                if std::mem::replace(&mut self.seen[kind as usize], true) {
                    return Err(ReadError::DuplicateEntry(label()));
                }
                if let Some(limit) = limit.filter(|&l| size > l) {
                    return Err(ReadError::EntryTooLarge {
                        name: label(),
                        size,
                        limit,
                    });
                }
                self.current = Some(kind);
            }
            TarEvent::Data(d) => match self.current {
                Some(Kind::Meta) => {
                    self.meta_hash.update(d);
                    self.meta_buf.extend_from_slice(d);
                }
                Some(Kind::State) => {
                    self.state_hash.update(d);
                    self.state_len += d.len() as u64;
                    self.visitor.state_bytes(d);
                    if self.state_err.is_none() {
                        // Deferred: Consul reports integrity failures before content errors.
                        if let Err(e) = self.state.feed(d, self.visitor) {
                            self.state_err = Some(e);
                        }
                    }
                }
                Some(Kind::Sums) => self.sums_buf.extend_from_slice(d),
                None => {}
            },
            TarEvent::EntryEnd => {
                if self.current == Some(Kind::Meta) {
                    let meta = SnapshotMeta::from_json(&self.meta_buf)
                        .map_err(|e| ReadError::Metadata(e.to_string()))?;
                    self.meta = Some(meta);
                }
                self.current = None;
            }
        }
        Ok(())
    }

    /// Wraps an error met while reading the data of the current entry, as Consul wraps it.
    fn wrap_in_entry(&self, what: String) -> ReadError {
        match self.current {
            Some(Kind::Meta) => ReadError::Metadata(what),
            Some(Kind::State) => ReadError::StateData(what),
            Some(Kind::Sums) => ReadError::Hashes(what),
            None => ReadError::TarHeader(what),
        }
    }
}

fn consume(
    rx: Receiver<Msg>,
    free: SyncSender<Vec<u8>>,
    opts: ReadOptions,
    visitor: &mut dyn RecordVisitor,
) -> Result<ArchiveReport, ArchiveError> {
    let mut tar = TarParser::default();
    let mut entries = Entries {
        current: None,
        seen: [false; 3],
        meta_buf: Vec::new(),
        meta: None,
        sums_buf: Vec::new(),
        meta_hash: Sha256::new(),
        state_hash: Sha256::new(),
        state_len: 0,
        state: StateParser::new(opts.types),
        state_err: None,
        visitor,
    };
    let (archive_sha256, archive_len) = receive(&rx, &free, &mut tar, &mut entries)?;
    let trailing = match tar.finish() {
        TarEnd::Clean { trailing } => trailing,
        TarEnd::InHeader => return Err(ReadError::TarHeader("unexpected EOF".into()).into()),
        TarEnd::InData => return Err(entries.wrap_in_entry("unexpected EOF".into()).into()),
    };

    entries.conclude(trailing, archive_sha256, archive_len)
}

/// Feeds the tar parser every block the inflater sends, handing its buffers back, until the
/// end of the compressed stream: its SHA-256 and length, or the first failure.
fn receive(
    rx: &Receiver<Msg>,
    free: &SyncSender<Vec<u8>>,
    tar: &mut TarParser,
    entries: &mut Entries<'_>,
) -> Result<([u8; 32], u64), ArchiveError> {
    let mut tar_bytes = 0u64;
    loop {
        // A closed channel means the inflater died without a word: treat as a source failure.
        let msg = rx.recv().map_err(|_| {
            ArchiveError::Source(io::Error::other(
                "decompression thread stopped unexpectedly",
            ))
        })?;
        match msg {
            Msg::Data(buf, n) => {
                tar_bytes += n as u64;
                tar.feed(&buf[..n], &mut |ev| entries.on_event(ev))?;
                let _ = free.try_send(buf);
            }
            Msg::End { sha256, len } => return Ok((sha256, len)),
            Msg::SourceErr(e) => return Err(ArchiveError::Source(e)),
            Msg::GzipErr(e) if tar_bytes == 0 => return Err(ArchiveError::Decompress(e)),
            Msg::GzipErr(e) => {
                return Err(match tar.finish() {
                    TarEnd::Clean { .. } => ArchiveError::GzipTrailer(e),
                    _ => ArchiveError::Read(entries.wrap_in_entry(e.to_string())),
                })
            }
        }
    }
}

impl Entries<'_> {
    /// The checks once every entry was read, in Consul's order (SHA256SUMS, then trailing
    /// bytes, then meta.json's version and size against state.bin, then state.bin's own
    /// errors and end), and the report.
    fn conclude(
        self,
        trailing: u64,
        archive_sha256: [u8; 32],
        archive_len: u64,
    ) -> Result<ArchiveReport, ArchiveError> {
        let meta_sha256: [u8; 32] = self.meta_hash.finalize().into();
        let state_sha256: [u8; 32] = self.state_hash.finalize().into();
        sums::verify(&self.sums_buf, |name| {
            if name == "meta.json" {
                meta_sha256
            } else {
                state_sha256
            }
        })
        .map_err(ReadError::Integrity)?;
        if trailing > 0 {
            return Err(ArchiveError::TrailingBytes(trailing));
        }
        let meta = self
            .meta
            .ok_or_else(|| ReadError::Metadata("unexpected end of JSON input".into()))?;
        if !(0..=1).contains(&meta.version) {
            return Err(ArchiveError::Raft(RaftError::UnsupportedVersion(
                meta.version,
            )));
        }
        let state_len = self.state_len;
        if i64::try_from(state_len).ok() != Some(meta.size) {
            return Err(ArchiveError::Raft(RaftError::SizeMismatch {
                actual: state_len,
                declared: meta.size,
            }));
        }
        if let Some(e) = self.state_err {
            return Err(e.into());
        }
        let state = self.state.finish()?;
        Ok(ArchiveReport {
            archive_sha256,
            archive_len,
            meta,
            meta_sha256,
            state_sha256,
            state,
        })
    }
}

#[cfg(all(test, feature = "synth"))]
mod tests {
    use super::*;
    use crate::synth::SynthSpec;
    use crate::WriteOptions;

    /// Hands out at most `step` bytes per read, and fails once `fail_at` bytes were read.
    struct Dribble<'a> {
        data: &'a [u8],
        step: usize,
        fail_at: Option<usize>,
        pos: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.pos >= f) {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut"));
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn archive(state_bytes: u64) -> Vec<u8> {
        SynthSpec::with_state_size(state_bytes)
            .write_archive(Vec::new(), &WriteOptions::default())
            .expect("write")
    }

    #[test]
    fn the_archive_digest_covers_every_block_whatever_the_read_sizes() {
        // Several hashing blocks (CHUNK each), read in odd small pieces.
        let bytes = archive(3 << 20);
        assert!(bytes.len() > 2 * CHUNK, "the archive spans several blocks");
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        for step in [1000, CHUNK - 1, CHUNK + 7] {
            let src = Dribble {
                data: &bytes,
                step,
                fail_at: None,
                pos: 0,
            };
            let report = read_archive(src, ReadOptions::default(), &mut ()).expect("valid");
            assert_eq!(report.archive_sha256, expected, "read step {step}");
            assert_eq!(report.archive_len, bytes.len() as u64);
        }
    }

    #[test]
    fn a_source_failing_mid_archive_is_a_source_error() {
        let bytes = archive(2 << 20);
        let src = Dribble {
            data: &bytes,
            step: 4096,
            fail_at: Some(bytes.len() / 2),
            pos: 0,
        };
        match read_archive(src, ReadOptions::default(), &mut ()) {
            Err(ArchiveError::Source(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_source_is_an_empty_gzip_error() {
        let src = Dribble {
            data: &[],
            step: 10,
            fail_at: None,
            pos: 0,
        };
        match read_archive(src, ReadOptions::default(), &mut ()) {
            Err(ArchiveError::Decompress(GzipError::Empty)) => {}
            other => panic!("expected an empty-gzip error, got {other:?}"),
        }
    }
}
