//! The archive writer: Consul's exact layout (spec §3.2, per Consul's `snapshot/archive.go` and
//! Go's `archive/tar`): gzip( USTAR `meta.json`, `state.bin`, `SHA256SUMS` ), mode 0600, one
//! mtime for all three, two zero blocks at the end and no record padding; a PAX `size` record
//! for a state.bin over 8 GiB − 1.

use std::io::{self, Read, Write};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use super::meta::SnapshotMeta;
use super::sums;
use super::tar::{data_padding, pax_size_header, ustar_header, BLOCK, MAX_OCTAL_SIZE};

/// Which entry the SHA256SUMS list names first. Consul iterates a Go map, so its order is random
/// per archive (spec §5.2); readers accept both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumsOrder {
    /// `meta.json` line first.
    #[default]
    MetaFirst,
    /// `state.bin` line first.
    StateFirst,
}

/// Options for [`write_archive`].
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Modification time of all three entries, in Unix seconds.
    pub mtime: u64,
    /// gzip level; Consul uses Go's default (6).
    pub level: Compression,
    /// Order of the SHA256SUMS lines.
    pub sums_order: SumsOrder,
}

impl Default for WriteOptions {
    fn default() -> Self {
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() + u64::from(d.subsec_millis() >= 500));
        WriteOptions {
            mtime,
            level: Compression::default(),
            sums_order: SumsOrder::default(),
        }
    }
}

/// Errors of [`write_archive`].
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing the output or reading the state source failed.
    #[error("writing the snapshot archive failed: {0}")]
    Io(io::Error),
    /// The state source did not hold the number of bytes declared.
    #[error("state.bin source held {actual} bytes, {declared} were declared")]
    StateLength { declared: u64, actual: u64 },
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// Digests of what [`write_archive`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// SHA-256 of `meta.json`.
    pub meta_sha256: [u8; 32],
    /// SHA-256 of `state.bin`.
    pub state_sha256: [u8; 32],
}

/// Writes a complete archive to `out`: `meta` (its `size` replaced by `state_len`) and exactly
/// `state_len` bytes streamed from `state`. Returns `out` and the entry digests.
pub fn write_archive<W: Write>(
    out: W,
    meta: &SnapshotMeta,
    state: &mut dyn Read,
    state_len: u64,
    opts: &WriteOptions,
) -> Result<(W, Written), WriteError> {
    let mut gz = GzBuilder::new().write(out, opts.level);
    let mut meta = meta.clone();
    meta.size = i64::try_from(state_len).unwrap_or(i64::MAX);
    let meta_json = meta.to_json();
    let meta_sha256: [u8; 32] = Sha256::digest(&meta_json).into();
    write_entry_header(&mut gz, b"meta.json", meta_json.len() as u64, opts.mtime)?;
    gz.write_all(&meta_json)?;
    gz.write_all(&[0u8; BLOCK][..data_padding(meta_json.len() as u64)])?;

    write_entry_header(&mut gz, b"state.bin", state_len, opts.mtime)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    loop {
        let n = match state.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        copied += n as u64;
        if copied > state_len {
            return Err(WriteError::StateLength {
                declared: state_len,
                actual: copied,
            });
        }
        hash.update(&buf[..n]);
        gz.write_all(&buf[..n])?;
    }
    if copied != state_len {
        return Err(WriteError::StateLength {
            declared: state_len,
            actual: copied,
        });
    }
    gz.write_all(&[0u8; BLOCK][..data_padding(state_len)])?;
    let state_sha256: [u8; 32] = hash.finalize().into();

    let lines = match opts.sums_order {
        SumsOrder::MetaFirst => [("meta.json", &meta_sha256), ("state.bin", &state_sha256)],
        SumsOrder::StateFirst => [("state.bin", &state_sha256), ("meta.json", &meta_sha256)],
    };
    let list = sums::format(&lines);
    write_entry_header(&mut gz, b"SHA256SUMS", list.len() as u64, opts.mtime)?;
    gz.write_all(&list)?;
    gz.write_all(&[0u8; BLOCK][..data_padding(list.len() as u64)])?;
    gz.write_all(&[0u8; 2 * BLOCK])?;
    let out = gz.finish()?;
    Ok((
        out,
        Written {
            meta_sha256,
            state_sha256,
        },
    ))
}

fn write_entry_header<W: Write>(w: &mut W, name: &[u8], size: u64, mtime: u64) -> io::Result<()> {
    if size > MAX_OCTAL_SIZE {
        w.write_all(&pax_size_header(name, size, mtime))?;
    }
    w.write_all(&ustar_header(name, size, mtime, b'0'))
}

/// Convenience for small states held in memory: the whole archive as bytes.
pub fn archive_bytes(meta: &SnapshotMeta, state: &[u8], opts: &WriteOptions) -> Vec<u8> {
    // Writing to a Vec from a slice of the declared length cannot fail.
    write_archive(Vec::new(), meta, &mut &state[..], state.len() as u64, opts)
        .map(|(v, _)| v)
        .unwrap_or_default()
}
