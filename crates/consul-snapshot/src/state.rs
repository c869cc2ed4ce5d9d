//! `state.bin`: Consul's FSM snapshot record stream (spec §6.1):
//! `msgpack(SnapshotHeader{LastIndex}) ++ { type_byte ++ msgpack(value) }*` until EOF.
//!
//! [`StateParser`] is a push parser fed with chunks of any size; it checks every record's type
//! byte and msgpack structure and reports each record to a [`RecordVisitor`] with the size
//! `consul snapshot inspect` attributes to it. [`StateWriter`] writes the same stream.

use std::io::{self, Write};

use super::counts::{RecordCounts, RegisterKind};
use super::error::StateError;
use super::msgpack::{Captured, Scanner, Value};
use super::types::{self, msg, TypePolicy, TypeRejection};

/// One record as the parser saw it.
#[derive(Debug, Clone, Copy)]
pub struct RecordInfo<'a> {
    /// The message type byte.
    pub type_byte: u8,
    /// Offset of the type byte in state.bin, in bytes.
    pub offset: u64,
    /// Bytes `consul snapshot inspect` counts for it: type byte plus value, and for the first
    /// record also the header (spec §7.1).
    pub size: u64,
    /// For KVS records, the `Key` field's bytes (absent if the record has no string key).
    pub kv_key: Option<&'a [u8]>,
    /// The record's msgpack value (without the type byte), when the visitor asked for records
    /// of this type ([`RecordVisitor::wants_value`]) and it is at most [`MAX_VALUE`] bytes;
    /// decode it with [`crate::records`].
    pub value: Option<&'a [u8]>,
}

/// Largest record value handed to a visitor whole, in bytes. Consul's own bound on a KV value
/// is 512 KiB (`kv_max_value_size`); a larger record is still verified and counted, its value
/// given as `None`.
pub const MAX_VALUE: usize = 64 << 20;

/// Receives every record of a state.bin stream, in order.
pub trait RecordVisitor {
    /// Called once per complete record.
    fn record(&mut self, rec: &RecordInfo<'_>);

    /// Called with every chunk of state.bin's raw bytes, in order, before the records in it are
    /// parsed (for keeping a copy, as a Consul server does on restore). Default: nothing.
    fn state_bytes(&mut self, _chunk: &[u8]) {}

    /// Whether [`RecordInfo::value`] should carry the msgpack value of records of this type
    /// (the parser then keeps one record's bytes at a time). Default: no record.
    fn wants_value(&self, _type_byte: u8) -> bool {
        false
    }

    /// For a KVS record whose value was asked for: whether it is still wanted now that its
    /// key is known (the parser then stops keeping the bytes of a key it does not want; the
    /// record's [`RecordInfo::value`] may be `None`). Default: yes.
    fn wants_kv_value(&self, _key: &[u8]) -> bool {
        true
    }
}

/// Two visitors fed the same records (statistics and a fingerprint in one pass).
impl<A: RecordVisitor, B: RecordVisitor> RecordVisitor for (A, B) {
    fn record(&mut self, rec: &RecordInfo<'_>) {
        self.0.record(rec);
        self.1.record(rec);
    }

    fn state_bytes(&mut self, chunk: &[u8]) {
        self.0.state_bytes(chunk);
        self.1.state_bytes(chunk);
    }

    fn wants_value(&self, type_byte: u8) -> bool {
        self.0.wants_value(type_byte) || self.1.wants_value(type_byte)
    }

    fn wants_kv_value(&self, key: &[u8]) -> bool {
        (self.0.wants_value(types::msg::KVS) && self.0.wants_kv_value(key))
            || (self.1.wants_value(types::msg::KVS) && self.1.wants_kv_value(key))
    }
}

/// A visitor that ignores records (verification only).
impl RecordVisitor for () {
    fn record(&mut self, _rec: &RecordInfo<'_>) {}
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Header,
    TypeByte,
    Value { type_byte: u8, start: u64 },
}

/// What a complete, valid state.bin stream held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSummary {
    /// Length of state.bin, in bytes.
    pub len: u64,
    /// `LastIndex` of the snapshot header, if present and an unsigned integer.
    pub last_index: Option<u64>,
    /// Number of records after the header.
    pub records: u64,
    /// Records per kind an operator reads (KV entries, nodes, services...).
    pub counts: RecordCounts,
}

/// Push parser for state.bin; see the module docs.
#[derive(Debug)]
pub struct StateParser {
    scanner: Scanner,
    phase: Phase,
    pos: u64,
    counted: u64,
    policy: TypePolicy,
    last_index: Option<u64>,
    records: u64,
    counts: RecordCounts,
    /// The value of the record being read, when the visitor wants it.
    value: Vec<u8>,
    keep_value: bool,
    value_overflow: bool,
}

impl StateParser {
    /// A parser that judges type bytes by `policy`.
    pub fn new(policy: TypePolicy) -> Self {
        let mut scanner = Scanner::default();
        scanner.begin(&[b"LastIndex"]);
        StateParser {
            scanner,
            phase: Phase::Header,
            pos: 0,
            counted: 0,
            policy,
            last_index: None,
            records: 0,
            counts: RecordCounts::default(),
            value: Vec::new(),
            keep_value: false,
            value_overflow: false,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Parses the next chunk of state.bin, calling `visitor` for each record completed in it.
    /// After an error the parser must not be fed again.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        visitor: &mut dyn RecordVisitor,
    ) -> Result<(), StateError> {
        let mut i = 0usize;
        while i < chunk.len() {
            i += match self.phase {
                Phase::Header => self.feed_header(&chunk[i..])?,
                Phase::TypeByte => self.begin_record(chunk[i], visitor)?,
                Phase::Value { type_byte, start } => {
                    self.feed_value(&chunk[i..], type_byte, start, visitor)?
                }
            };
        }
        Ok(())
    }

    /// The snapshot header (a msgpack map, per Consul's `snapshotHeader`): its `LastIndex`
    /// is kept. Returns the bytes consumed.
    fn feed_header(&mut self, rest: &[u8]) -> Result<usize, StateError> {
        if self.scanner.at_start() && !is_map_marker(rest[0]) {
            return Err(StateError::HeaderNotMap { marker: rest[0] });
        }
        let p = self.scanner.feed(rest, self.pos)?;
        self.pos += p.consumed as u64;
        if p.complete {
            if let Some(Captured::Uint(n)) = self.scanner.captured(0) {
                self.last_index = Some(*n);
            }
            self.phase = Phase::TypeByte;
        }
        Ok(p.consumed)
    }

    /// A record's type byte, checked against the type policy; sets up the scan of its value
    /// (the fields captured: a KV entry's `Key`, a registration's `Service` and `Check`).
    /// Returns the bytes consumed (1).
    fn begin_record(
        &mut self,
        t: u8,
        visitor: &mut dyn RecordVisitor,
    ) -> Result<usize, StateError> {
        types::check_type(t, self.policy).map_err(|why| match why {
            TypeRejection::Flagged => StateError::FlaggedType {
                type_byte: t,
                offset: self.pos,
            },
            TypeRejection::NotRestorable => StateError::UnknownType {
                type_byte: t,
                offset: self.pos,
            },
        })?;
        self.phase = Phase::Value {
            type_byte: t,
            start: self.pos,
        };
        self.keep_value = visitor.wants_value(t);
        self.value_overflow = false;
        self.value.clear();
        self.scanner.begin(match t {
            msg::KVS => &[b"Key"],
            msg::REGISTER => &[b"Service", b"Check"],
            _ => &[],
        });
        self.pos += 1;
        Ok(1)
    }

    /// The msgpack value of the record begun at `start`: kept for the visitor if it wants it
    /// (up to [`MAX_VALUE`] bytes), counted and visited once complete. Returns the bytes
    /// consumed.
    fn feed_value(
        &mut self,
        rest: &[u8],
        type_byte: u8,
        start: u64,
        visitor: &mut dyn RecordVisitor,
    ) -> Result<usize, StateError> {
        let p = self.scanner.feed(rest, self.pos)?;
        if self.keep_value && type_byte == msg::KVS {
            // The key comes before the value in a DirEntry: once known, an unwanted record's
            // bytes are not kept.
            if let Some(Captured::Raw(k)) = self.scanner.captured(0) {
                if !visitor.wants_kv_value(k) {
                    self.keep_value = false;
                }
            }
        }
        if self.keep_value && !self.value_overflow {
            if self.value.len() + p.consumed <= MAX_VALUE {
                self.value.extend_from_slice(&rest[..p.consumed]);
            } else {
                self.value_overflow = true;
                self.value = Vec::new();
            }
        }
        self.pos += p.consumed as u64;
        if p.complete {
            self.end_record(type_byte, start, visitor);
        }
        Ok(p.consumed)
    }

    /// A record complete: counted (a registration by what it registers) and visited.
    fn end_record(&mut self, type_byte: u8, start: u64, visitor: &mut dyn RecordVisitor) {
        let kv_key = match (type_byte, self.scanner.captured(0)) {
            (msg::KVS, Some(Captured::Raw(k))) => Some(k.as_slice()),
            _ => None,
        };
        let set = |c: Option<&Captured>| c.is_some_and(|c| *c != Captured::Nil);
        let register = (type_byte == msg::REGISTER).then(|| {
            RegisterKind::of(set(self.scanner.captured(0)), set(self.scanner.captured(1)))
        });
        self.counts.add(type_byte, register);
        visitor.record(&RecordInfo {
            type_byte,
            offset: start,
            size: self.pos - self.counted,
            kv_key,
            value: (self.keep_value && !self.value_overflow).then_some(self.value.as_slice()),
        });
        self.counted = self.pos;
        self.records += 1;
        self.phase = Phase::TypeByte;
    }

    /// Ends the stream: it must stop at a record boundary, after a header.
    pub fn finish(&self) -> Result<StateSummary, StateError> {
        match self.phase {
            Phase::Header if self.pos == 0 => Err(StateError::Empty),
            Phase::Header => Err(StateError::Truncated {
                what: "snapshot header".into(),
                offset: 0,
            }),
            Phase::Value { type_byte, start } => Err(StateError::Truncated {
                what: format!("{} record", types::type_name(type_byte)),
                offset: start,
            }),
            Phase::TypeByte => Ok(StateSummary {
                len: self.pos,
                last_index: self.last_index,
                records: self.records,
                counts: self.counts,
            }),
        }
    }
}

fn is_map_marker(b: u8) -> bool {
    matches!(b, 0x80..=0x8f | 0xde | 0xdf)
}

/// Writes a state.bin stream in Consul's dialect: the header, then records.
#[derive(Debug)]
pub struct StateWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> StateWriter<W> {
    /// Starts a stream whose header says `LastIndex = last_index`.
    pub fn new(out: W, last_index: u64) -> io::Result<Self> {
        let mut w = StateWriter {
            out,
            written: 0,
            buf: Vec::with_capacity(4096),
        };
        Value::record([("LastIndex", Value::Uint(last_index))]).encode(&mut w.buf);
        w.flush_buf()?;
        Ok(w)
    }

    /// Appends one record of type `type_byte`.
    pub fn record(&mut self, type_byte: u8, value: &Value) -> io::Result<()> {
        self.buf.push(type_byte);
        value.encode(&mut self.buf);
        self.flush_buf()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the writer and the stream length in bytes.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.out.flush()?;
        Ok((self.out, self.written))
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(Vec<(u8, u64, u64, Option<Vec<u8>>)>);
    impl RecordVisitor for Seen {
        fn record(&mut self, r: &RecordInfo<'_>) {
            self.0
                .push((r.type_byte, r.offset, r.size, r.kv_key.map(<[u8]>::to_vec)));
        }
    }

    fn spec_example() -> Vec<u8> {
        let mut w = StateWriter::new(Vec::new(), 13).expect("header");
        w.record(
            msg::KVS,
            &Value::record([
                ("Key", Value::raw("foo/bar")),
                ("Value", Value::raw("1")),
                ("Flags", Value::Uint(0)),
                ("Session", Value::raw("")),
                ("LockIndex", Value::Uint(0)),
                ("CreateIndex", Value::Uint(27)),
                ("ModifyIndex", Value::Uint(27)),
            ]),
        )
        .expect("kv");
        w.record(
            msg::INDEX,
            &Value::record([("Key", Value::raw("kvs")), ("Value", Value::Uint(27))]),
        )
        .expect("index");
        w.record(
            msg::CHUNKING_STATE,
            &Value::record([("ChunkMap", Value::Map(vec![]))]),
        )
        .expect("chunking");
        w.finish().expect("finish").0
    }

    #[test]
    fn spec_worked_example_round_trips() {
        use sha2::Digest;
        let bytes = spec_example();
        assert_eq!(bytes.len(), 116);
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            "ea418ee1fd9c1f9856a43e20c4cbfdb3b91fdcaebd459aae60b7bdafea00a460"
        );
        let mut p = StateParser::new(TypePolicy::Restorable);
        let mut seen = Seen::default();
        p.feed(&bytes, &mut seen).expect("parse");
        let sum = p.finish().expect("finish");
        assert_eq!(
            sum,
            StateSummary {
                len: 116,
                last_index: Some(13),
                records: 3,
                counts: RecordCounts {
                    kv_entries: 1,
                    ..RecordCounts::default()
                },
            }
        );
        // First record carries the 12-byte header: 12 + 75.
        assert_eq!(seen.0[0], (2, 12, 87, Some(b"foo/bar".to_vec())));
        assert_eq!(seen.0[1], (16, 87, 17, None));
        assert_eq!(seen.0[2], (29, 104, 12, None));
    }

    #[test]
    fn truncation_and_bad_types_are_named() {
        let bytes = spec_example();
        let mut p = StateParser::new(TypePolicy::Restorable);
        p.feed(&bytes[..50], &mut ()).expect("partial");
        assert_eq!(
            p.finish(),
            Err(StateError::Truncated {
                what: "KVS record".into(),
                offset: 12
            })
        );
        assert_eq!(
            StateParser::new(TypePolicy::Restorable).finish(),
            Err(StateError::Empty)
        );

        let mut bad = bytes[..12].to_vec();
        bad.extend_from_slice(&[44, 0xc0]);
        let mut p = StateParser::new(TypePolicy::Restorable);
        assert_eq!(
            p.feed(&bad, &mut ()),
            Err(StateError::UnknownType {
                type_byte: 44,
                offset: 12
            })
        );
        let mut p = StateParser::new(TypePolicy::AnyBelowFlag);
        assert_eq!(p.feed(&bad, &mut ()), Ok(()));
        bad[12] = 0x86;
        let mut p = StateParser::new(TypePolicy::AnyBelowFlag);
        assert!(matches!(
            p.feed(&bad, &mut ()),
            Err(StateError::FlaggedType { .. })
        ));
    }

    /// Keeps the values of KVS records only, as [`crate::records::kv_entry`] decodes them.
    #[derive(Default)]
    struct Values(Vec<(u8, Option<Vec<u8>>)>);

    impl RecordVisitor for Values {
        fn record(&mut self, rec: &RecordInfo<'_>) {
            self.0.push((rec.type_byte, rec.value.map(<[u8]>::to_vec)));
        }
        fn wants_value(&self, type_byte: u8) -> bool {
            type_byte == msg::KVS
        }
    }

    #[test]
    fn values_are_given_whole_across_chunks_and_only_when_asked_for() {
        let bytes = spec_example();
        for step in [1, 7, 116] {
            let mut p = StateParser::new(TypePolicy::Restorable);
            let mut seen = Values::default();
            for chunk in bytes.chunks(step) {
                p.feed(chunk, &mut seen).expect("parse");
            }
            // The KVS record's value is bytes 13..87 (after its type byte), whatever the chunks.
            assert_eq!(
                seen.0[0],
                (msg::KVS, Some(bytes[13..87].to_vec())),
                "step {step}"
            );
            assert_eq!(seen.0[1], (msg::INDEX, None));
            let e = crate::records::kv_entry(seen.0[0].1.as_deref().unwrap()).unwrap();
            assert_eq!((e.key, e.value), (b"foo/bar".to_vec(), b"1".to_vec()));
        }
    }

    /// Wants KVS values, but not of the key `foo/bar`.
    struct NotFoo(Values);

    impl RecordVisitor for NotFoo {
        fn record(&mut self, rec: &RecordInfo<'_>) {
            self.0.record(rec);
        }
        fn wants_value(&self, type_byte: u8) -> bool {
            type_byte == msg::KVS
        }
        fn wants_kv_value(&self, key: &[u8]) -> bool {
            key != b"foo/bar"
        }
    }

    #[test]
    fn an_unwanted_key_gets_no_value_whatever_the_chunks() {
        let bytes = spec_example();
        for step in [1, 20, 116] {
            let mut p = StateParser::new(TypePolicy::Restorable);
            let mut seen = NotFoo(Values::default());
            for chunk in bytes.chunks(step) {
                p.feed(chunk, &mut seen).expect("parse");
            }
            assert_eq!(seen.0 .0[0], (msg::KVS, None), "step {step}");
        }
    }

    #[test]
    fn header_must_be_a_map() {
        let mut p = StateParser::new(TypePolicy::Restorable);
        assert_eq!(
            p.feed(&[0x93, 1, 2, 3], &mut ()),
            Err(StateError::HeaderNotMap { marker: 0x93 })
        );
    }
}
