//! `diff`: what differs between two snapshots (or a snapshot and the live cluster) — KV keys
//! added, removed and changed, catalog nodes and service instances added and removed, and
//! the count of every record type.
//!
//! Each side is read once through the archive reader with a [`SnapshotIndex`]: KV entries go
//! to a private spool file as (key, flags, SHA-256 of the value), in snapshot order, which is
//! key order (Consul persists the KV table by iterating its radix tree); the two spools are
//! then merged ([`merge_kv`]). Memory is bounded by the catalog (nodes and services), not by
//! the KV store.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

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

/// A [`RecordVisitor`] indexing one side of a diff.
pub struct SnapshotIndex {
    spool: BufWriter<std::fs::File>,
    last_key: Option<Vec<u8>>,
    /// Whether KV records came in key order (always, from Consul; if not, [`KvSpool`] sorts).
    sorted: bool,
    kv_entries: u64,
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
        Ok(SnapshotIndex {
            spool: BufWriter::new(tempfile::tempfile()?),
            last_key: None,
            sorted: true,
            kv_entries: 0,
            nodes: BTreeSet::new(),
            services: BTreeSet::new(),
            counts: BTreeMap::new(),
            error: None,
        })
    }

    fn kv(&mut self, rec: &RecordInfo<'_>) -> Result<(), String> {
        let bytes = rec.value.ok_or_else(|| too_large(rec))?;
        let e = kv_entry(bytes).map_err(|e| format!("{e} at offset {}", rec.offset))?;
        if self.last_key.as_ref().is_some_and(|k| *k > e.key) {
            self.sorted = false;
        }
        let digest: [u8; 32] = Sha256::digest(&e.value).into();
        let w = &mut self.spool;
        let key_len = u32::try_from(e.key.len()).map_err(|_| "a KV key over 4 GiB".to_string())?;
        (|| {
            w.write_all(&key_len.to_le_bytes())?;
            w.write_all(&e.key)?;
            w.write_all(&e.flags.to_le_bytes())?;
            w.write_all(&digest)
        })()
        .map_err(|e| format!("writing the spool file: {e}"))?;
        self.kv_entries += 1;
        self.last_key = Some(e.key);
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

    /// The KV entries, in key order. Errors: the spool cannot be read back.
    pub fn into_kv(self) -> io::Result<KvSpool> {
        let file = self.spool.into_inner().map_err(|e| e.into_error())?;
        KvSpool::open(file, self.kv_entries, self.sorted)
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

/// The spooled KV entries of one side, read back in key order.
pub enum KvSpool {
    /// Already in order: read from the file as it goes.
    File(BufReader<std::fs::File>, u64),
    /// Out of order (not a Consul-written snapshot): read into memory and sorted.
    Sorted(std::vec::IntoIter<KvDigest>),
}

impl KvSpool {
    fn open(mut file: std::fs::File, n: u64, sorted: bool) -> io::Result<Self> {
        file.rewind()?;
        let mut r = BufReader::new(file);
        if sorted {
            return Ok(KvSpool::File(r, n));
        }
        let mut all = Vec::new();
        for _ in 0..n {
            all.push(read_one(&mut r)?);
        }
        all.sort();
        Ok(KvSpool::Sorted(all.into_iter()))
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

impl Iterator for KvSpool {
    type Item = io::Result<KvDigest>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            KvSpool::File(r, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(read_one(r))
            }
            KvSpool::Sorted(it) => it.next().map(Ok),
        }
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

    #[test]
    fn an_out_of_order_side_is_sorted_before_the_merge() {
        let mut idx = SnapshotIndex::new().unwrap();
        for key in ["b", "a"] {
            let v = crate::archive::msgpack::Value::record([
                ("Key", crate::archive::msgpack::Value::raw(key)),
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
        let keys: Vec<Vec<u8>> = idx.into_kv().unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
    }
}
