//! The statistics of `consul snapshot inspect` (spec §7.1; Consul's
//! `command/snapshot/inspect/snapshot_inspect.go`): bytes and counts per record type and,
//! with `-kvdetails`, per KV key prefix.

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use super::gojson::lossy_like_go;
use super::meta::SnapshotMeta;
use super::state::{RecordInfo, RecordVisitor};
use super::types::{self, msg};

/// The `-kvdetails` breakdown settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvOptions {
    /// Number of `/`-separated key segments per bucket (`-kvdepth`, default 2).
    pub depth: usize,
    /// Only keys starting with these bytes are counted (`-kvfilter`, default empty).
    pub filter: Vec<u8>,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            depth: 2,
            filter: Vec::new(),
        }
    }
}

/// KV prefix → (bytes, records).
type Buckets = HashMap<Vec<u8>, (u64, u64)>;

/// A [`RecordVisitor`] that gathers inspect statistics.
#[derive(Debug)]
pub struct InspectStats {
    by_type: Vec<(u64, u64)>,
    kv: Option<(KvOptions, Buckets)>,
    total: u64,
    total_kv: u64,
}

impl InspectStats {
    /// Statistics per type, and per KV prefix when `kv` is set.
    pub fn new(kv: Option<KvOptions>) -> Self {
        InspectStats {
            by_type: vec![(0, 0); 256],
            kv: kv.map(|o| (o, HashMap::new())),
            total: 0,
            total_kv: 0,
        }
    }

    /// The report in Consul's output structure, sorted by size descending then name.
    pub fn into_report(self, meta: &SnapshotMeta) -> InspectReport {
        let mut stats: Vec<TypeStat> = self
            .by_type
            .iter()
            .enumerate()
            .filter(|(_, (_, count))| *count > 0)
            .map(|(t, &(sum, count))| TypeStat {
                name: types::type_name(t as u8).into_owned().into_bytes(),
                sum,
                count,
            })
            .collect();
        sort(&mut stats);
        let stats_kv = self.kv.and_then(|(_, buckets)| {
            if buckets.is_empty() {
                return None;
            }
            let mut v: Vec<TypeStat> = buckets
                .into_iter()
                .map(|(name, (sum, count))| TypeStat { name, sum, count })
                .collect();
            sort(&mut v);
            Some(v)
        });
        InspectReport {
            meta: MetaInfo {
                id: meta.id.clone(),
                size: meta.size,
                index: meta.index,
                term: meta.term,
                version: meta.version,
            },
            stats,
            stats_kv,
            total_size: self.total,
            total_size_kv: self.total_kv,
        }
    }
}

fn sort(v: &mut [TypeStat]) {
    v.sort_by(|a, b| b.sum.cmp(&a.sum).then_with(|| a.name.cmp(&b.name)));
}

impl RecordVisitor for InspectStats {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        let slot = &mut self.by_type[usize::from(rec.type_byte)];
        slot.0 += rec.size;
        slot.1 += 1;
        self.total += rec.size;
        if rec.type_byte != msg::KVS {
            return;
        }
        let (Some((opts, buckets)), Some(key)) = (self.kv.as_mut(), rec.kv_key) else {
            return;
        };
        if !key.starts_with(&opts.filter) {
            return;
        }
        let bucket = key_prefix(key, opts.depth);
        match buckets.get_mut(bucket) {
            Some(b) => {
                b.0 += rec.size;
                b.1 += 1;
            }
            None => {
                buckets.insert(bucket.to_vec(), (rec.size, 1));
            }
        }
        self.total_kv += rec.size;
    }
}

/// The first `depth` `/`-separated segments of `key`, joined by `/` (Go: `strings.Join(
/// strings.Split(key, "/")[:min(depth, parts)], "/")`).
pub fn key_prefix(key: &[u8], depth: usize) -> &[u8] {
    if depth == 0 {
        return &key[..0];
    }
    match key
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'/')
        .nth(depth - 1)
    {
        Some((i, _)) => &key[..i],
        None => key,
    }
}

/// `consul snapshot inspect`'s `OutputFormat`, serialised in its field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectReport {
    /// From meta.json.
    pub meta: MetaInfo,
    /// Per record type.
    pub stats: Vec<TypeStat>,
    /// Per KV prefix; `null` without `-kvdetails` or without matching KVS records.
    #[serde(rename = "StatsKV")]
    pub stats_kv: Option<Vec<TypeStat>>,
    /// Sum of all record sizes, in bytes (= state.bin length when it has records).
    pub total_size: u64,
    /// Sum of the bucketed KVS record sizes, in bytes.
    #[serde(rename = "TotalSizeKV")]
    pub total_size_kv: u64,
}

/// Consul's `MetadataInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetaInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub size: i64,
    pub index: u64,
    pub term: u64,
    pub version: i64,
}

/// One row: a type name or a KV prefix (raw bytes; JSON shows invalid UTF-8 as U+FFFD), the
/// bytes it takes, and how many records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypeStat {
    #[serde(serialize_with = "ser_name")]
    pub name: Vec<u8>,
    pub sum: u64,
    pub count: u64,
}

fn ser_name<S: Serializer>(name: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&lossy_like_go(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_like_go_split_join() {
        let cases: &[(&str, usize, &str)] = &[
            ("vault/core/a", 2, "vault/core"),
            ("vault/", 2, "vault/"),
            ("vault", 2, "vault"),
            ("a/b/c/d", 3, "a/b/c"),
            ("a/b", 0, ""),
            ("/lead", 1, ""),
            ("", 2, ""),
        ];
        for (key, depth, want) in cases {
            assert_eq!(
                key_prefix(key.as_bytes(), *depth),
                want.as_bytes(),
                "{key} at {depth}"
            );
        }
    }
}
