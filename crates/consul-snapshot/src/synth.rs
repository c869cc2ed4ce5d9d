//! Synthetic Consul state for demos, tests, benchmarks and the Consul API test server: a
//! deterministic (seeded) record stream with the record types and shapes a Consul CE server
//! writes (spec §6.4–6.5), sized by the number of KV entries and their value size.

use std::io::{self, Write};

use super::meta::{Configuration, Server, SnapshotMeta};
use super::msgpack::Value;
use super::state::StateWriter;
use super::types::msg;
use super::writer::{write_archive, WriteError, WriteOptions};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSpec {
    /// Seed of the generator; the same spec gives the same bytes.
    pub seed: u64,
    /// Catalog nodes (each with one service and one check).
    pub nodes: u32,
    /// KV entries.
    pub kv_entries: u64,
    /// Bytes of each KV value; about half of them random, so archives compress about 2:1.
    pub value_bytes: usize,
    /// Raft index of the snapshot (`meta.json` Index, header LastIndex).
    pub index: u64,
    /// Raft term.
    pub term: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            seed: 1,
            nodes: 3,
            kv_entries: 100,
            value_bytes: 256,
            index: 1000,
            term: 2,
        }
    }
}

impl SynthSpec {
    /// A spec whose state.bin is about `bytes` long (within a few per cent).
    pub fn with_state_size(bytes: u64) -> Self {
        let base = SynthSpec::default();
        // Per KVS record: value + key (~40) + field names and numbers (~75).
        let per_record = base.value_bytes as u64 + 115;
        SynthSpec {
            kv_entries: (bytes / per_record).max(1),
            ..base
        }
    }

    /// The `meta.json` for this state (its `Size` is filled in by the writer).
    pub fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            version: 1,
            id: format!(
                "{}-{}-{}",
                self.term,
                self.index,
                1_795_288_923_000u64 + self.seed
            ),
            index: self.index,
            term: self.term,
            peers: Some(b"\x91\xae127.0.0.1:8300".to_vec()),
            configuration: Configuration {
                servers: Some(vec![Server {
                    suffrage: 0,
                    id: "a577b288-b354-770e-e909-da0972eb20e8".into(),
                    address: "127.0.0.1:8300".into(),
                }]),
            },
            configuration_index: 1,
            size: 0,
        }
    }

    /// Writes the state.bin stream to `out`; returns its length in bytes.
    pub fn write_state<W: Write>(&self, out: W) -> io::Result<u64> {
        let mut rng = SplitMix64(self.seed);
        let mut w = StateWriter::new(out, self.index)?;
        for n in 0..self.nodes {
            let node = format!("node-{n:03}");
            let addr = format!("10.0.{}.{}", n / 250, n % 250 + 1);
            w.record(msg::REGISTER, &register_node(&node, &addr, &mut rng))?;
            w.record(msg::REGISTER, &register_service(&node, &addr, n))?;
            w.record(msg::REGISTER, &register_check(&node, n))?;
        }
        w.record(
            msg::SESSION,
            &Value::record([
                ("ID", Value::raw(uuid(&mut rng))),
                ("Name", Value::raw("consul-snapshot")),
                ("Node", Value::raw("node-000")),
                ("LockDelay", Value::Uint(15_000_000_000)),
                ("Behavior", Value::raw("release")),
                ("TTL", Value::raw("30s")),
                ("NodeChecks", Value::Array(vec![])),
                ("ServiceChecks", Value::Nil),
                ("CreateIndex", Value::Uint(5)),
                ("ModifyIndex", Value::Uint(5)),
            ]),
        )?;
        let mut value = vec![0u8; self.value_bytes];
        for i in 0..self.kv_entries {
            let key = kv_key(i, &mut rng);
            fill_value(&mut value, &mut rng);
            let v = if i % 97 == 3 {
                Value::Nil
            } else {
                Value::Raw(value.clone())
            };
            w.record(
                msg::KVS,
                &Value::record([
                    ("Key", Value::raw(key)),
                    ("Value", v),
                    ("Flags", Value::Uint(0)),
                    ("Session", Value::raw("")),
                    ("LockIndex", Value::Uint(0)),
                    ("CreateIndex", Value::Uint(10 + i)),
                    ("ModifyIndex", Value::Uint(10 + i)),
                ]),
            )?;
        }
        w.record(
            msg::TOMBSTONE,
            &Value::record([
                ("Key", Value::raw("old/removed")),
                ("ModifyIndex", Value::Uint(9)),
            ]),
        )?;
        for (k, v) in [
            ("nodes", 7u64),
            ("services", 8),
            ("checks", 9),
            ("kvs", self.index),
            ("sessions", 5),
        ] {
            w.record(
                msg::INDEX,
                &Value::record([("Key", Value::raw(k)), ("Value", Value::Uint(v))]),
            )?;
        }
        w.record(msg::AUTOPILOT, &autopilot())?;
        w.record(
            msg::CHUNKING_STATE,
            &Value::record([("ChunkMap", Value::Map(vec![]))]),
        )?;
        let (_, len) = w.finish()?;
        Ok(len)
    }

    /// Writes a complete archive of this state to `out`, streaming: the state is generated
    /// twice (once to learn its length, once into the archive), so memory stays small at any
    /// size.
    pub fn write_archive<W: Write + Send>(
        &self,
        out: W,
        opts: &WriteOptions,
    ) -> Result<W, WriteError> {
        let len = self.write_state(io::sink())?;
        let (mut reader, writer) = io::pipe()?;
        std::thread::scope(|s| {
            let producer =
                s.spawn(move || self.write_state(io::BufWriter::with_capacity(1 << 16, writer)));
            let result = write_archive(out, &self.meta(), &mut reader, len, opts);
            drop(reader);
            let produced = producer
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("state generator panicked")));
            let (out, _) = result?;
            produced?;
            Ok(out)
        })
    }
}

fn register_node(node: &str, addr: &str, rng: &mut SplitMix64) -> Value {
    Value::record([
        ("ID", Value::raw(uuid(rng))),
        ("Node", Value::raw(node)),
        ("Address", Value::raw(addr)),
        ("Datacenter", Value::raw("dc1")),
        (
            "TaggedAddresses",
            Value::Map(vec![
                (b"lan".to_vec(), Value::raw(addr)),
                (b"wan".to_vec(), Value::raw(addr)),
            ]),
        ),
        (
            "NodeMeta",
            Value::Map(vec![(b"consul-network-segment".to_vec(), Value::raw(""))]),
        ),
        (
            "RaftIndex",
            Value::record([
                ("CreateIndex", Value::Uint(11)),
                ("ModifyIndex", Value::Uint(11)),
            ]),
        ),
    ])
}

fn register_service(node: &str, addr: &str, n: u32) -> Value {
    Value::record([
        ("Node", Value::raw(node)),
        ("Address", Value::raw(addr)),
        (
            "Service",
            Value::record([
                ("ID", Value::raw(format!("web-{n}"))),
                ("Service", Value::raw("web")),
                ("Tags", Value::Array(vec![Value::raw("v1")])),
                ("Address", Value::raw(addr)),
                ("Port", Value::Uint(8080)),
                ("EnableTagOverride", Value::Bool(false)),
                ("CreateIndex", Value::Uint(12)),
                ("ModifyIndex", Value::Uint(12)),
            ]),
        ),
    ])
}

fn register_check(node: &str, n: u32) -> Value {
    Value::record([
        ("Node", Value::raw(node)),
        (
            "Check",
            Value::record([
                ("Node", Value::raw(node)),
                ("CheckID", Value::raw(format!("service:web-{n}"))),
                ("Name", Value::raw("Service 'web' check")),
                ("Status", Value::raw("passing")),
                ("ServiceID", Value::raw(format!("web-{n}"))),
                ("CreateIndex", Value::Uint(13)),
                ("ModifyIndex", Value::Uint(13)),
            ]),
        ),
    ])
}

fn autopilot() -> Value {
    Value::record([
        ("CleanupDeadServers", Value::Bool(true)),
        ("LastContactThreshold", Value::Uint(200_000_000)),
        ("MaxTrailingLogs", Value::Uint(250)),
        ("MinQuorum", Value::Uint(0)),
        ("ServerStabilizationTime", Value::Uint(10_000_000_000)),
        ("RedundancyZoneTag", Value::raw("")),
        ("DisableUpgradeMigration", Value::Bool(false)),
        ("UpgradeVersionTag", Value::raw("")),
        ("CreateIndex", Value::Uint(4)),
        ("ModifyIndex", Value::Uint(4)),
    ])
}

fn kv_key(i: u64, rng: &mut SplitMix64) -> String {
    match i % 4 {
        0 => format!("vault/logical/{}/{}", uuid(rng), i),
        1 => format!("vault/sys/token/id/h{:016x}", rng.next()),
        2 => format!("config/service-{}/setting-{}", i % 50, i),
        _ => format!("app/data/{}", i),
    }
}

fn fill_value(buf: &mut [u8], rng: &mut SplitMix64) {
    const TEXT: &[u8] = b"{\"lease_id\":\"\",\"renewable\":false,\"data\":{\"value\":\"";
    let half = buf.len() / 2;
    for (i, b) in buf[..half].iter_mut().enumerate() {
        *b = TEXT[i % TEXT.len()];
    }
    for chunk in buf[half..].chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
}

fn uuid(rng: &mut SplitMix64) -> String {
    let (a, b) = (rng.next(), rng.next());
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// SplitMix64: small, fast and deterministic, enough for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
