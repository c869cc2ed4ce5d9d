//! Typed errors of the archive layer.
//!
//! The `Display` texts follow Consul's own wording and wrapping (`snapshot/archive.go`,
//! `snapshot/snapshot.go`; spec §5.3), so that an operator who searches for a message finds
//! Consul's documentation and issues. Errors that Consul has no text for (our stricter checks)
//! name the entry, the offset or the limit involved.

use std::io;

/// Everything that can go wrong while reading a snapshot archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The byte source itself failed (file read error, dropped HTTP body). Nothing is known
    /// about the archive's validity.
    #[error("reading the snapshot source failed: {0}")]
    Source(io::Error),
    /// The gzip layer rejected the stream before the tar layer saw a byte.
    #[error("failed to decompress snapshot: {0}")]
    Decompress(GzipError),
    /// An error inside the archive; the text gets Consul's `failed to read snapshot file:` prefix.
    #[error("failed to read snapshot file: {0}")]
    Read(ReadError),
    /// Bytes after the tar end marker (e.g. a GNU tar padded to a 10 KiB record); Consul refuses
    /// these archives.
    #[error("{0} unread uncompressed bytes remain")]
    TrailingBytes(u64),
    /// The gzip stream was damaged after the tar end marker (bad CRC, truncated trailer).
    #[error("{0}")]
    GzipTrailer(GzipError),
    /// `meta.json` is well-formed but describes a snapshot Raft would refuse to restore.
    #[error("Raft error when restoring snapshot: {0}")]
    Raft(RaftError),
    /// `state.bin` is not a valid FSM record stream (spec §6).
    #[error("state.bin is not a valid Consul record stream: {0}")]
    State(StateError),
}

impl ArchiveError {
    /// True when the error says the archive bytes are bad, false when the source failed to
    /// deliver them (the archive may be fine; retrying may help).
    pub fn is_corrupt(&self) -> bool {
        !matches!(self, ArchiveError::Source(_))
    }
}

// The Display texts above already carry the inner error (Consul's wrapping), so the inner
// errors are deliberately not exposed as `source()`: a `{:#}` chain would print them twice.
impl From<ReadError> for ArchiveError {
    fn from(e: ReadError) -> Self {
        ArchiveError::Read(e)
    }
}

impl From<StateError> for ArchiveError {
    fn from(e: StateError) -> Self {
        ArchiveError::State(e)
    }
}

impl From<IntegrityError> for ReadError {
    fn from(e: IntegrityError) -> Self {
        ReadError::Integrity(e)
    }
}

/// A gzip-layer failure, worded as Go's `compress/gzip` and `compress/flate` word it.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// Not gzip at all, or a damaged member header.
    #[error("gzip: invalid header")]
    InvalidHeader,
    /// CRC-32 or ISIZE in a member trailer does not match the data.
    #[error("gzip: invalid checksum")]
    InvalidChecksum,
    /// The deflate data is corrupt.
    #[error("flate: corrupt input ({0})")]
    Corrupt(String),
    /// The compressed stream ended early (a truncated download).
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// The source held no bytes at all.
    #[error("EOF")]
    Empty,
}

impl GzipError {
    /// Classifies an error that flate2 returned while decoding. flate2 reports everything as
    /// `io::Error`; its messages are stable (flate2 `gz/mod.rs`, `zio.rs`).
    pub fn from_flate2(err: &io::Error) -> Self {
        let msg = err.to_string();
        if err.kind() == io::ErrorKind::UnexpectedEof {
            GzipError::UnexpectedEof
        } else if msg.contains("invalid gzip header") {
            GzipError::InvalidHeader
        } else if msg.contains("checksum") {
            GzipError::InvalidChecksum
        } else {
            GzipError::Corrupt(msg)
        }
    }
}

/// Errors inside the tar stream; displayed after Consul's `failed to read snapshot file:`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A tar header could not be read (bad checksum, bad number, stream ended inside it).
    #[error("failed reading snapshot: {0}")]
    TarHeader(String),
    /// The data of `meta.json` could not be read or JSON-decoded.
    #[error("failed to decode snapshot metadata: {0}")]
    Metadata(String),
    /// The data of `state.bin` could not be read (truncated stream, gzip damage).
    #[error("failed to read or write snapshot data: {0}")]
    StateData(String),
    /// The data of `SHA256SUMS` could not be read.
    #[error("failed to read snapshot hashes: {0}")]
    Hashes(String),
    /// An entry other than `meta.json`, `state.bin` and `SHA256SUMS`.
    #[error("unexpected file {0:?} in snapshot")]
    UnexpectedFile(String),
    /// Consul's own text for the file, plus what it means: Vault's raft snapshots seal their
    /// checksums (`SHA256SUMS.sealed`), Consul's never do.
    #[error("unexpected file {0:?} in snapshot (this looks like a Vault raft snapshot, not a Consul one: restore it with `vault operator raft snapshot restore`)")]
    VaultSnapshot(String),
    /// One of the three names appears twice. Consul would hash both copies into one digest;
    /// we refuse, because no writer of Consul's ever produces it.
    #[error("duplicate entry {0:?} in snapshot")]
    DuplicateEntry(String),
    /// One of the three names is a directory, link or device rather than a regular file.
    #[error("entry {name:?} is not a regular file (tar type {typeflag:?})")]
    NotRegular { name: String, typeflag: char },
    /// An entry declares a size over its bound (meta.json and SHA256SUMS: fixed bounds;
    /// state.bin: meta.json's Size); it is refused before a byte of it is buffered or inflated.
    #[error("entry {name:?} declares {size} bytes, over the {limit}-byte limit for it")]
    EntryTooLarge { name: String, size: u64, limit: u64 },
    /// The SHA256SUMS check failed (spec §5.3).
    #[error("failed checking integrity of snapshot: {0}")]
    Integrity(IntegrityError),
}

/// SHA256SUMS verification failures, in Consul's words (`snapshot/archive.go` hashList).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntegrityError {
    /// The list names a file that is not one of the two hashed entries.
    #[error("list missing hash for {0:?}")]
    ListMissingHash(String),
    /// The digest of the bytes read differs from the listed one.
    #[error("hash check failed for {0:?}")]
    HashCheckFailed(String),
    /// A hashed entry is not listed.
    #[error("file missing for {0:?}")]
    FileMissing(String),
    /// A line that is not `<hex digest> <name>`.
    #[error("malformed SHA256SUMS line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

/// Checks Raft applies to `meta.json` on restore (hashicorp/raft `raft.go`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RaftError {
    /// Only versions 0 and 1 are restorable.
    #[error("unsupported snapshot version {0}")]
    UnsupportedVersion(i64),
    /// `meta.json` `Size` differs from the length of `state.bin`.
    #[error("failed to write snapshot, size didn't match ({actual} != {declared})")]
    SizeMismatch { actual: u64, declared: i64 },
}

/// Problems in the `state.bin` record stream. `offset` is a byte offset into state.bin.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// state.bin has no bytes at all, so no header.
    #[error("empty stream: no snapshot header")]
    Empty,
    /// The header is not a msgpack map.
    #[error("snapshot header at offset 0 is not a map (msgpack marker 0x{marker:02x})")]
    HeaderNotMap { marker: u8 },
    /// A byte that no msgpack value starts with (0xc1).
    #[error("invalid msgpack marker 0x{marker:02x} at offset {offset}")]
    InvalidMarker { marker: u8, offset: u64 },
    /// Containers nested deeper than the decoder's bound.
    #[error("msgpack nesting deeper than {limit} levels at offset {offset}")]
    TooDeep { limit: usize, offset: u64 },
    /// The stream ended inside a value.
    #[error("stream ends inside the {what} that starts at offset {offset} (truncated record)")]
    Truncated { what: String, offset: u64 },
    /// A record type byte that Consul cannot restore (spec §6.6): restoring such a snapshot would
    /// crash the Consul server, so it is refused unless unknown types are allowed.
    #[error(
        "record type {type_byte} at offset {offset} is not one Consul can restore \
         (Consul would fail with \"Unrecognized msg type {type_byte}\")"
    )]
    UnknownType { type_byte: u8, offset: u64 },
    /// A type byte with the IgnoreUnknown flag (128) set; it never appears in snapshots.
    #[error("record type byte 0x{type_byte:02x} at offset {offset} has the log-only IgnoreUnknown flag set")]
    FlaggedType { type_byte: u8, offset: u64 },
}
