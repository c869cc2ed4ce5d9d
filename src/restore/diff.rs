//! `diff`: what differs between two snapshots (or a snapshot and the live cluster) — KV keys
//! added, removed and changed, catalog nodes and service instances added and removed, and
//! the count of every record type.
//!
//! Each side is read once through the archive reader with a [`SnapshotIndex`]: KV entries go
//! to a private spool file as (key, flags, SHA-256 of the value) in sorted runs of at most
//! [`RUN_BYTES`] (Consul persists the KV table in key order, by iterating its radix tree, so a
//! run is usually sorted already), read back as one key-ordered stream by a k-way merge, and
//! the two sides are then merged ([`merge_kv`]). Memory is bounded by a run and the catalog
//! (nodes and services), not by the KV store.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::archive::records::{kv_entry, registration};
use crate::archive::state::{RecordInfo, RecordVisitor};
use crate::archive::types::{msg, type_name};

/// One KV entry as compared: key, flags, SHA-256 of the value.
pub type KvDigest = (Vec<u8>, u64, [u8; 32]);

/// A service instance of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Instance {
    pub node: String,
    /// The service ID (unique on its node).
    pub id: String,
    /// The service name.
    pub name: String,
}

/// Bytes of KV entries sorted in memory at a time before they go to the spool as one run.
pub const RUN_BYTES: usize = 16 << 20;

/// A [`RecordVisitor`] indexing one side of a diff.
pub struct SnapshotIndex {
    spool: BufWriter<std::fs::File>,
    /// Bytes written to the spool so far.
    spool_len: u64,
    /// Where each sorted run starts in the spool, in bytes.
    runs: Vec<u64>,
    /// Bytes of entries per run ([`RUN_BYTES`]).
    run_limit: usize,
    /// The run being gathered, and its size in bytes.
    run: Vec<KvDigest>,
    run_bytes: usize,
    pub nodes: BTreeSet<String>,
    pub services: BTreeSet<Instance>,
    /// Records per type byte.
    pub counts: BTreeMap<u8, u64>,
    /// The first record that could not be decoded or spooled.
    pub error: Option<String>,
}

impl SnapshotIndex {
    /// An index spooling to a private (unnamed) temporary file.
    pub fn new() -> io::Result<Self> {
        Self::with_run_bytes(RUN_BYTES)
    }

    /// [`SnapshotIndex::new`] with runs of `limit` bytes.
    fn with_run_bytes(limit: usize) -> io::Result<Self> {
        Ok(SnapshotIndex {
            spool: BufWriter::new(tempfile::tempfile()?),
            spool_len: 0,
            runs: Vec::new(),
            run_limit: limit,
            run: Vec::new(),
            run_bytes: 0,
            nodes: BTreeSet::new(),
            services: BTreeSet::new(),
            counts: BTreeMap::new(),
            error: None,
        })
    }

    fn kv(&mut self, rec: &RecordInfo<'_>) -> Result<(), String> {
        let bytes = rec.value.ok_or_else(|| too_large(rec))?;
        let e = kv_entry(bytes).map_err(|e| format!("{e} at offset {}", rec.offset))?;
        let digest: [u8; 32] = Sha256::digest(&e.value).into();
        self.run_bytes += e.key.len() + 64;
        self.run.push((e.key, e.flags, digest));
        if self.run_bytes >= self.run_limit {
            self.flush_run()
                .map_err(|e| format!("writing the spool file: {e}"))?;
        }
        Ok(())
    }

    /// Sorts the gathered run (already in order for a snapshot Consul wrote, so cheap) and
    /// appends it to the spool.
    fn flush_run(&mut self) -> io::Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        self.run.sort_by(|a, b| a.0.cmp(&b.0));
        let start = self.spool_len;
        for (key, flags, digest) in self.run.drain(..) {
            let key_len =
                u32::try_from(key.len()).map_err(|_| io::Error::other("a KV key over 4 GiB"))?;
            self.spool.write_all(&key_len.to_le_bytes())?;
            self.spool.write_all(&key)?;
            self.spool.write_all(&flags.to_le_bytes())?;
            self.spool.write_all(&digest)?;
            self.spool_len += 4 + key.len() as u64 + 8 + 32;
        }
        self.runs.push(start);
        self.run_bytes = 0;
        Ok(())
    }

    fn register(&mut self, rec: &RecordInfo<'_>) -> Result<(), String> {
        let bytes = rec.value.ok_or_else(|| too_large(rec))?;
        let r = registration(bytes).map_err(|e| format!("{e} at offset {}", rec.offset))?;
        if let Some(s) = r.service {
            self.services.insert(Instance {
                node: r.node.clone(),
                id: s.id,
                name: s.name,
            });
        }
        self.nodes.insert(r.node);
        Ok(())
    }

    /// The KV entries, in key order: the spooled runs merged. Errors: the spool cannot be
    /// written or read back.
    pub fn into_kv(mut self) -> io::Result<KvSpool> {
        self.flush_run()?;
        let file = Arc::new(self.spool.into_inner().map_err(|e| e.into_error())?);
        let mut ends: Vec<u64> = self.runs.iter().skip(1).copied().collect();
        ends.push(self.spool_len);
        let readers = self
            .runs
            .iter()
            .zip(ends)
            .map(|(&start, end)| RunReader {
                inner: BufReader::with_capacity(
                    64 * 1024,
                    At {
                        file: file.clone(),
                        pos: start,
                    },
                ),
                left: end - start,
            })
            .collect();
        Ok(KvSpool {
            readers,
            heap: BinaryHeap::new(),
            primed: false,
        })
    }
}

fn too_large(rec: &RecordInfo<'_>) -> String {
    format!(
        "the record at offset {} of state.bin is larger than {} MiB",
        rec.offset,
        crate::archive::state::MAX_VALUE >> 20
    )
}

impl RecordVisitor for SnapshotIndex {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        *self.counts.entry(rec.type_byte).or_default() += 1;
        if self.error.is_some() {
            return;
        }
        let r = match rec.type_byte {
            msg::KVS => self.kv(rec),
            msg::REGISTER => self.register(rec),
            _ => Ok(()),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn wants_value(&self, type_byte: u8) -> bool {
        matches!(type_byte, msg::KVS | msg::REGISTER)
    }
}

/// Reads a file from an offset of its own (`pread`), so that runs share one file.
struct At {
    file: Arc<std::fs::File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One sorted run of the spool.
struct RunReader {
    inner: BufReader<At>,
    /// Bytes of the run not read yet.
    left: u64,
}

impl RunReader {
    fn next(&mut self) -> io::Result<Option<KvDigest>> {
        if self.left == 0 {
            return Ok(None);
        }
        let e = read_one(&mut self.inner)?;
        self.left = self.left.saturating_sub(4 + e.0.len() as u64 + 8 + 32);
        Ok(Some(e))
    }
}

fn read_one(r: &mut impl Read) -> io::Result<KvDigest> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut key = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut key)?;
    let mut flags = [0u8; 8];
    r.read_exact(&mut flags)?;
    let mut digest = [0u8; 32];
    r.read_exact(&mut digest)?;
    Ok((key, u64::from_le_bytes(flags), digest))
}

/// The smallest unread entry of a run: (key, run, flags, digest), smallest key first.
type Head = Reverse<(Vec<u8>, usize, u64, [u8; 32])>;

/// The spooled KV entries of one side, in key order: a k-way merge of the sorted runs
/// (memory: one buffered reader and one entry per run).
pub struct KvSpool {
    readers: Vec<RunReader>,
    heap: BinaryHeap<Head>,
    primed: bool,
}

impl KvSpool {
    fn refill(&mut self, run: usize) -> io::Result<()> {
        if let Some((key, flags, digest)) = self.readers[run].next()? {
            self.heap.push(Reverse((key, run, flags, digest)));
        }
        Ok(())
    }
}

impl Iterator for KvSpool {
    type Item = io::Result<KvDigest>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.primed {
            self.primed = true;
            for run in 0..self.readers.len() {
                if let Err(e) = self.refill(run) {
                    return Some(Err(e));
                }
            }
        }
        let Reverse((key, run, flags, digest)) = self.heap.pop()?;
        if let Err(e) = self.refill(run) {
            return Some(Err(e));
        }
        Some(Ok((key, flags, digest)))
    }
}

/// A KV key whose value or flags differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub key: String,
    /// Whether the value differs.
    pub value: bool,
    /// The flags on each side, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<(u64, u64)>,
}

/// KV differences from one side to the other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KvDiff {
    /// In TO only.
    pub added: Vec<String>,
    /// In FROM only.
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
    /// Keys identical on both sides (a count).
    pub unchanged: u64,
}

/// Merges two key-ordered KV streams (FROM, TO). Errors: a stream fails.
pub fn merge_kv<A, B>(from: A, to: B) -> io::Result<KvDiff>
where
    A: Iterator<Item = io::Result<KvDigest>>,
    B: Iterator<Item = io::Result<KvDigest>>,
{
    let name = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    let mut out = KvDiff::default();
    let (mut a, mut b) = (from.peekable(), to.peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(Err(_)), _) => {
                return Err(a
                    .next()
                    .and_then(Result::err)
                    .unwrap_or_else(|| io::Error::other("spool")))
            }
            (_, Some(Err(_))) => {
                return Err(b
                    .next()
                    .and_then(Result::err)
                    .unwrap_or_else(|| io::Error::other("spool")))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(Ok(x)), Some(Ok(y))) => x.0.cmp(&y.0),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some(Ok((k, ..))) = a.next() {
                    out.removed.push(name(&k));
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some(Ok((k, ..))) = b.next() {
                    out.added.push(name(&k));
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some(Ok((k, fa, da))), Some(Ok((_, fb, db)))) = (a.next(), b.next()) {
                    if fa == fb && da == db {
                        out.unchanged += 1;
                    } else {
                        out.changed.push(Changed {
                            key: name(&k),
                            value: da != db,
                            flags: (fa != fb).then_some((fa, fb)),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The count of one record type on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountChange {
    /// Consul's name of the type (`ACLToken`, `Session`...).
    #[serde(rename = "type")]
    pub type_name: String,
    pub from: u64,
    pub to: u64,
}

/// Everything that differs between two sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub from: String,
    pub to: String,
    pub kv: KvDiff,
    pub nodes_added: Vec<String>,
    pub nodes_removed: Vec<String>,
    pub services_added: Vec<Instance>,
    pub services_removed: Vec<Instance>,
    /// Every record type present on either side, in type order.
    pub counts: Vec<CountChange>,
}

impl Diff {
    /// Whether the two sides hold the same KV entries, catalog and record counts.
    pub fn is_empty(&self) -> bool {
        self.kv.added.is_empty()
            && self.kv.removed.is_empty()
            && self.kv.changed.is_empty()
            && self.nodes_added.is_empty()
            && self.nodes_removed.is_empty()
            && self.services_added.is_empty()
            && self.services_removed.is_empty()
            && self.counts.iter().all(|c| c.from == c.to)
    }
}

/// Compares two indexed sides. Errors: a spool cannot be read back.
pub fn diff(
    from_name: String,
    from: SnapshotIndex,
    to_name: String,
    to: SnapshotIndex,
) -> io::Result<Diff> {
    let types: BTreeSet<u8> = from
        .counts
        .keys()
        .chain(to.counts.keys())
        .copied()
        .collect();
    let counts = types
        .into_iter()
        .map(|t| CountChange {
            type_name: type_name(t).into_owned(),
            from: from.counts.get(&t).copied().unwrap_or(0),
            to: to.counts.get(&t).copied().unwrap_or(0),
        })
        .collect();
    let nodes_added = to.nodes.difference(&from.nodes).cloned().collect();
    let nodes_removed = from.nodes.difference(&to.nodes).cloned().collect();
    let services_added = to.services.difference(&from.services).cloned().collect();
    let services_removed = from.services.difference(&to.services).cloned().collect();
    let kv = merge_kv(from.into_kv()?, to.into_kv()?)?;
    Ok(Diff {
        from: from_name,
        to: to_name,
        kv,
        nodes_added,
        nodes_removed,
        services_added,
        services_removed,
        counts,
    })
}

/// The diff as a table for a terminal: every KV key and catalog change, then the record
/// types whose count changed.
pub fn render(d: &Diff) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "From: {}\nTo:   {}", d.from, d.to);
    let k = &d.kv;
    let _ = writeln!(
        s,
        "KV: {} added, {} removed, {} changed, {} unchanged",
        k.added.len(),
        k.removed.len(),
        k.changed.len(),
        k.unchanged
    );
    for key in &k.added {
        let _ = writeln!(s, "  + {key}");
    }
    for key in &k.removed {
        let _ = writeln!(s, "  - {key}");
    }
    for c in &k.changed {
        let what = match (c.value, c.flags) {
            (true, None) => "value".to_string(),
            (false, Some((a, b))) => format!("flags {a} -> {b}"),
            (true, Some((a, b))) => format!("value, flags {a} -> {b}"),
            (false, None) => "value".to_string(),
        };
        let _ = writeln!(s, "  ~ {} ({what})", c.key);
    }
    let _ = writeln!(
        s,
        "Catalog: {} nodes added, {} removed; {} service instances added, {} removed",
        d.nodes_added.len(),
        d.nodes_removed.len(),
        d.services_added.len(),
        d.services_removed.len()
    );
    for n in &d.nodes_added {
        let _ = writeln!(s, "  + node {n}");
    }
    for n in &d.nodes_removed {
        let _ = writeln!(s, "  - node {n}");
    }
    for i in &d.services_added {
        let _ = writeln!(s, "  + service {} ({}) on {}", i.id, i.name, i.node);
    }
    for i in &d.services_removed {
        let _ = writeln!(s, "  - service {} ({}) on {}", i.id, i.name, i.node);
    }
    let moved: Vec<&CountChange> = d.counts.iter().filter(|c| c.from != c.to).collect();
    if moved.is_empty() {
        let _ = writeln!(s, "Record counts: the same for every type");
    } else {
        let _ = writeln!(s, "Record counts that changed:");
        let _ = writeln!(s, "  {:<28} {:>10} {:>10}", "Type", "From", "To");
        for c in moved {
            let _ = writeln!(s, "  {:<28} {:>10} {:>10}", c.type_name, c.from, c.to);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, flags: u64, value: &str) -> io::Result<KvDigest> {
        Ok((key.as_bytes().to_vec(), flags, Sha256::digest(value).into()))
    }

    #[test]
    fn merge_finds_added_removed_and_changed_keys() {
        let from = vec![
            e("a", 0, "1"),
            e("b", 0, "2"),
            e("c", 0, "3"),
            e("d", 1, "4"),
        ];
        let to = vec![
            e("b", 0, "2"),
            e("c", 0, "33"),
            e("d", 2, "4"),
            e("e", 0, "5"),
        ];
        let d = merge_kv(from.into_iter(), to.into_iter()).unwrap();
        assert_eq!(d.removed, ["a"]);
        assert_eq!(d.added, ["e"]);
        assert_eq!(d.unchanged, 1);
        assert_eq!(
            d.changed,
            [
                Changed {
                    key: "c".into(),
                    value: true,
                    flags: None
                },
                Changed {
                    key: "d".into(),
                    value: false,
                    flags: Some((1, 2))
                }
            ]
        );
    }

    #[test]
    fn a_failing_spool_is_an_error_not_a_shorter_diff() {
        let from = vec![e("a", 0, "1"), Err(io::Error::other("cut"))];
        let to = vec![e("a", 0, "1"), e("b", 0, "2")];
        assert!(merge_kv(from.into_iter(), to.into_iter()).is_err());
    }

    fn index_of(keys: &[&str], run_bytes: usize) -> SnapshotIndex {
        let mut idx = SnapshotIndex::with_run_bytes(run_bytes).unwrap();
        for key in keys {
            let v = crate::archive::msgpack::Value::record([
                ("Key", crate::archive::msgpack::Value::raw(*key)),
                ("Value", crate::archive::msgpack::Value::raw("v")),
            ])
            .to_bytes();
            idx.record(&RecordInfo {
                type_byte: msg::KVS,
                offset: 0,
                size: 1,
                kv_key: Some(key.as_bytes()),
                value: Some(&v),
            });
        }
        idx
    }

    #[test]
    fn entries_in_any_order_come_back_in_key_order_across_runs() {
        let keys = ["m", "b", "z", "a", "k", "c", "y", "d"];
        let mut sorted = keys.to_vec();
        sorted.sort();
        // One run, a run per entry, and runs of a few entries.
        for run_bytes in [1 << 20, 1, 150] {
            let got: Vec<String> = index_of(&keys, run_bytes)
                .into_kv()
                .unwrap()
                .map(|r| String::from_utf8(r.unwrap().0).unwrap())
                .collect();
            assert_eq!(got, sorted, "runs of {run_bytes} bytes");
        }
        assert_eq!(index_of(&[], 1).into_kv().unwrap().count(), 0);
    }
}
