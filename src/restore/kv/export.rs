//! The KV entries of a snapshot, selected by prefix while the archive streams through the
//! reader: `kv-export` writes them in the JSON of `consul kv export`; a selective restore
//! keeps them to plan. Memory is bounded by what is selected (and not even that when
//! spooling to a file), never by the snapshot.

use std::collections::BTreeSet;
use std::io::{self, Write};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::archive::records::{kv_entry, KvRecord};
use crate::archive::state::{RecordInfo, RecordVisitor};
use crate::archive::types::msg;

/// One entry of `consul kv export`'s JSON (`command/kv/exp/kv_export.go`: `key`, `flags`,
/// `value` as base64), which `consul kv import` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEntry {
    pub key: String,
    pub flags: u64,
    /// Base64 (standard alphabet, padded) of the value.
    pub value: String,
}

impl ExportEntry {
    /// The entry of `key` (lossily UTF-8, as Go's JSON encoder writes a non-UTF-8 string).
    pub fn new(key: &[u8], flags: u64, value: &[u8]) -> Self {
        ExportEntry {
            key: String::from_utf8_lossy(key).into_owned(),
            flags,
            value: base64::engine::general_purpose::STANDARD.encode(value),
        }
    }
}

/// Writes a JSON array laid out as `consul kv export` lays it out (Go's `MarshalIndent`
/// with a tab), one entry at a time.
pub struct ExportWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> ExportWriter<W> {
    pub fn new(out: W) -> Self {
        ExportWriter { out, count: 0 }
    }

    /// Appends one entry.
    pub fn entry(&mut self, e: &ExportEntry) -> io::Result<()> {
        let sep = if self.count == 0 { "[\n" } else { ",\n" };
        let key = serde_json::to_string(&e.key).map_err(io::Error::other)?;
        write!(
            self.out,
            "{sep}\t{{\n\t\t\"key\": {key},\n\t\t\"flags\": {},\n\t\t\"value\": \"{}\"\n\t}}",
            e.flags, e.value
        )?;
        self.count += 1;
        Ok(())
    }

    /// Entries written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Closes the array; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        if self.count == 0 {
            self.out.write_all(b"[]\n")?;
        } else {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Whether `key` is under one of `prefixes` (raw string prefixes, as Consul's `?recurse`
/// reads them; `""` selects every key).
pub fn selected(key: &[u8], prefixes: &[Vec<u8>]) -> bool {
    prefixes.iter().any(|p| key.starts_with(p))
}

/// Where selected entries go.
pub enum Output {
    /// Kept in memory, in snapshot (key) order: for planning a restore.
    Memory(Vec<KvRecord>),
    /// Written to a private spool file as export JSON, as they stream.
    Spool(ExportWriter<io::BufWriter<std::fs::File>>),
}

/// Most distinct key "directories" remembered for suggesting a prefix.
const MAX_DIRS: usize = 100_000;
/// Directories of recent keys checked before the set.
const RECENT_DIRS: usize = 8;

/// A [`RecordVisitor`] keeping the KV entries under some prefixes.
pub struct KvSelect {
    prefixes: Vec<Vec<u8>>,
    /// Entries matched per prefix.
    matched: Vec<u64>,
    /// Key directories seen, two levels deep (`app/`, `app/web/`), for "did you mean".
    dirs: BTreeSet<Vec<u8>>,
    /// The directories of the last few keys (a ring of [`RECENT_DIRS`]).
    recent: Vec<Vec<u8>>,
    recent_next: usize,
    pub output: Output,
    /// Keys that are not UTF-8 (written lossily, as Consul's own export writes them).
    pub lossy_keys: u64,
    /// The first entry that could not be decoded or written (the visitor cannot return it).
    pub error: Option<String>,
}

impl KvSelect {
    pub fn new(prefixes: Vec<Vec<u8>>, output: Output) -> Self {
        KvSelect {
            matched: vec![0; prefixes.len()],
            prefixes,
            dirs: BTreeSet::new(),
            recent: Vec::with_capacity(RECENT_DIRS),
            recent_next: 0,
            output,
            lossy_keys: 0,
            error: None,
        }
    }

    /// The prefixes that matched no entry, each with up to five key directories of the
    /// snapshot that come nearest (edit distance).
    pub fn unmatched(&self) -> Vec<(String, Vec<String>)> {
        self.prefixes
            .iter()
            .zip(&self.matched)
            .filter(|(_, n)| **n == 0)
            .map(|(p, _)| {
                let p = String::from_utf8_lossy(p).into_owned();
                let mut near: Vec<(usize, String)> = self
                    .dirs
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .map(|d| (strsim::levenshtein(&p, &d), d))
                    .collect();
                near.sort();
                (p, near.into_iter().take(5).map(|(_, d)| d).collect())
            })
            .collect()
    }

    /// Entries selected so far.
    pub fn count(&self) -> u64 {
        match &self.output {
            Output::Memory(v) => v.len() as u64,
            Output::Spool(w) => w.count(),
        }
    }

    fn remember_dirs(&mut self, key: &[u8]) {
        // Consul writes keys in order, so a key's directories are mostly ones just seen: a
        // few recent ones are checked before the set (and nothing is allocated for them).
        let mut end = 0;
        for depth in 0..2 {
            let Some(slash) = key[end..].iter().position(|b| *b == b'/') else {
                return;
            };
            end += slash + 1;
            let dir = &key[..end];
            if self.recent.iter().any(|d| d.as_slice() == dir) {
                continue;
            }
            if self.dirs.len() < MAX_DIRS && !self.dirs.contains(dir) {
                self.dirs.insert(dir.to_vec());
            }
            let slot = (self.recent_next + depth) % RECENT_DIRS;
            match self.recent.get_mut(slot) {
                Some(d) => {
                    d.clear();
                    d.extend_from_slice(dir);
                }
                None => self.recent.push(dir.to_vec()),
            }
        }
        self.recent_next = (self.recent_next + 2) % RECENT_DIRS;
    }

    fn keep(&mut self, rec: &RecordInfo<'_>) -> Result<(), String> {
        let Some(bytes) = rec.value else {
            return Err(format!(
                "the KV record at offset {} of state.bin is larger than {} MiB",
                rec.offset,
                crate::archive::state::MAX_VALUE >> 20
            ));
        };
        let e = kv_entry(bytes).map_err(|e| format!("{e} at offset {}", rec.offset))?;
        if std::str::from_utf8(&e.key).is_err() {
            self.lossy_keys += 1;
        }
        match &mut self.output {
            Output::Memory(v) => v.push(e),
            Output::Spool(w) => w
                .entry(&ExportEntry::new(&e.key, e.flags, &e.value))
                .map_err(|e| format!("writing the spool file: {e}"))?,
        }
        Ok(())
    }
}

impl RecordVisitor for KvSelect {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        if rec.type_byte != msg::KVS || self.error.is_some() {
            return;
        }
        let Some(key) = rec.kv_key else { return };
        self.remember_dirs(key);
        let mut hit = false;
        for (p, n) in self.prefixes.iter().zip(self.matched.iter_mut()) {
            if key.starts_with(p) {
                *n += 1;
                hit = true;
            }
        }
        if hit {
            if let Err(e) = self.keep(rec) {
                self.error = Some(e);
            }
        }
    }

    fn wants_value(&self, type_byte: u8) -> bool {
        type_byte == msg::KVS
    }

    fn wants_kv_value(&self, key: &[u8]) -> bool {
        selected(key, &self.prefixes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::msgpack::Value;

    fn kv(key: &str, value: &str, flags: u64) -> Vec<u8> {
        Value::record([
            ("Key", Value::raw(key)),
            ("Flags", Value::Uint(flags)),
            ("Value", Value::raw(value)),
        ])
        .to_bytes()
    }

    fn feed(v: &mut KvSelect, key: &str, value: &str, flags: u64) {
        let bytes = kv(key, value, flags);
        v.record(&RecordInfo {
            type_byte: msg::KVS,
            offset: 0,
            size: 1,
            kv_key: Some(key.as_bytes()),
            value: Some(&bytes),
        });
    }

    #[test]
    fn prefixes_are_raw_string_prefixes_and_misses_get_suggestions() {
        let mut v = KvSelect::new(
            vec![b"app/".to_vec(), b"ap".to_vec(), b"apps/".to_vec()],
            Output::Memory(Vec::new()),
        );
        for k in ["app/a", "app/web/b", "apple", "other/x"] {
            feed(&mut v, k, "v", 0);
        }
        let Output::Memory(got) = &v.output else {
            unreachable!()
        };
        let keys: Vec<&[u8]> = got.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(keys, [&b"app/a"[..], b"app/web/b", b"apple"]);
        let missing = v.unmatched();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, "apps/");
        assert_eq!(missing[0].1[0], "app/");
    }

    #[test]
    fn the_export_json_is_laid_out_as_consul_writes_it() {
        let mut w = ExportWriter::new(Vec::new());
        w.entry(&ExportEntry::new(b"a/\"q\"", 3, b"one")).unwrap();
        w.entry(&ExportEntry::new(b"b", 0, b"")).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            text,
            "[\n\t{\n\t\t\"key\": \"a/\\\"q\\\"\",\n\t\t\"flags\": 3,\n\t\t\"value\": \"b25l\"\n\t},\n\t{\n\t\t\"key\": \"b\",\n\t\t\"flags\": 0,\n\t\t\"value\": \"\"\n\t}\n]\n"
        );
        let back: Vec<ExportEntry> = serde_json::from_str(&text).unwrap();
        assert_eq!(back[0].key, "a/\"q\"");
        let empty = ExportWriter::new(Vec::new()).finish().unwrap();
        assert_eq!(empty, b"[]\n");
    }

    #[test]
    fn an_undecodable_or_oversized_record_is_an_error_not_a_skip() {
        let mut v = KvSelect::new(vec![b"".to_vec()], Output::Memory(Vec::new()));
        v.record(&RecordInfo {
            type_byte: msg::KVS,
            offset: 40,
            size: 1,
            kv_key: Some(b"k"),
            value: None,
        });
        assert!(v.error.as_deref().unwrap().contains("offset 40"));
    }
}
