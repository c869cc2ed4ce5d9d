//! Writer-then-reader round trips over random record sets, checked by our reader and by
//! independent decoders (rmpv for msgpack, GNU tar + sha256sum for the archive).

use std::process::Command;

use consul_snapshot_agent::archive::msgpack::Value;
use consul_snapshot_agent::archive::{
    archive_bytes, read_archive, ReadOptions, RecordInfo, RecordVisitor, SnapshotMeta, StateParser,
    StateWriter, SumsOrder, TypePolicy, WriteOptions,
};
use proptest::prelude::*;

/// Record types a CE server restores, so the strict reader accepts them.
const TYPES: [u8; 8] = [0, 2, 3, 5, 13, 16, 29, 31];

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::Uint),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Raw),
        // Values over 64 KiB need the 32-bit length form.
        (65_536usize..70_000, any::<u8>()).prop_map(|(n, b)| Value::Raw(vec![b; n])),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..12), inner), 0..6)
                .prop_map(Value::Map),
        ]
    })
}

/// A KVS record with an arbitrary (non-UTF-8 allowed) key and a nil or large value.
fn kvs() -> impl Strategy<Value = (u8, Value)> {
    (
        proptest::collection::vec(any::<u8>(), 0..60),
        prop_oneof![
            Just(Value::Nil),
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Value::Raw)
        ],
    )
        .prop_map(|(key, v)| {
            (
                2u8,
                Value::record([
                    ("Key", Value::Raw(key)),
                    ("Value", v),
                    ("Flags", Value::Uint(0)),
                ]),
            )
        })
}

fn record() -> impl Strategy<Value = (u8, Value)> {
    prop_oneof![(proptest::sample::select(TYPES.to_vec()), value()), kvs()]
}

/// (type byte, offset, inspect size, KV key) per record.
type Row = (u8, u64, u64, Option<Vec<u8>>);

#[derive(Default, Debug, PartialEq)]
struct Seen(Vec<Row>);

impl RecordVisitor for Seen {
    fn record(&mut self, r: &RecordInfo<'_>) {
        self.0
            .push((r.type_byte, r.offset, r.size, r.kv_key.map(<[u8]>::to_vec)));
    }
}

fn state_bytes(last_index: u64, records: &[(u8, Value)]) -> (Vec<u8>, Vec<Row>) {
    let mut w = StateWriter::new(Vec::new(), last_index).expect("header");
    let mut expected = Vec::new();
    let mut counted = 0;
    for (t, v) in records {
        let offset = w.written();
        w.record(*t, v).expect("record");
        let key = match (t, v) {
            (2, Value::Map(fields)) => {
                fields
                    .iter()
                    .find(|(k, _)| k == b"Key")
                    .and_then(|(_, v)| match v {
                        Value::Raw(b) => Some(b.clone()),
                        _ => None,
                    })
            }
            _ => None,
        };
        expected.push((*t, offset, w.written() - counted, key));
        counted = w.written();
    }
    (w.finish().expect("finish").0, expected)
}

fn meta(index: u64) -> SnapshotMeta {
    SnapshotMeta {
        version: 1,
        id: format!("2-{index}-1700000000000"),
        index,
        term: 2,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn archive_round_trip(records in proptest::collection::vec(record(), 0..12), index in 1u64..u64::MAX, state_first in any::<bool>()) {
        let (state, expected) = state_bytes(index, &records);
        let opts = WriteOptions {
            mtime: 1_700_000_000,
            sums_order: if state_first { SumsOrder::StateFirst } else { SumsOrder::MetaFirst },
            ..WriteOptions::default()
        };
        let archive = archive_bytes(&meta(index), &state, &opts);
        let mut seen = Seen::default();
        let report = read_archive(&archive[..], ReadOptions::default(), &mut seen).expect("verify");
        prop_assert_eq!(report.state.len, state.len() as u64);
        prop_assert_eq!(report.state.last_index, Some(index));
        prop_assert_eq!(report.state.records, records.len() as u64);
        prop_assert_eq!(report.meta.size, state.len() as i64);
        prop_assert_eq!(seen.0, expected);
    }

    #[test]
    fn values_decode_equal_with_rmpv(records in proptest::collection::vec(record(), 1..8)) {
        let (state, _) = state_bytes(7, &records);
        let mut cur = &state[..];
        let header = rmpv::decode::read_value(&mut cur).expect("header");
        prop_assert_eq!(header["LastIndex"].as_u64(), Some(7));
        for (t, v) in &records {
            let (ty, rest) = cur.split_first().expect("type byte");
            prop_assert_eq!(*ty, *t);
            cur = rest;
            let got = rmpv::decode::read_value(&mut cur).expect("value");
            prop_assert!(same(v, &got), "{:?} != {:?}", v, got);
        }
        prop_assert!(cur.is_empty());
    }

    #[test]
    fn any_chunking_gives_the_same_records(records in proptest::collection::vec(record(), 0..10), cuts in proptest::collection::vec(1usize..5000, 1..20)) {
        let (state, expected) = state_bytes(3, &records);
        let mut p = StateParser::new(TypePolicy::Restorable);
        let mut seen = Seen::default();
        let mut rest = &state[..];
        for c in cuts.iter().cycle() {
            if rest.is_empty() { break; }
            let (a, b) = rest.split_at((*c).min(rest.len()));
            p.feed(a, &mut seen).expect("feed");
            rest = b;
        }
        p.finish().expect("finish");
        prop_assert_eq!(seen.0, expected);
    }
}

/// Structural equality between our model and rmpv's decoding (raw strings come back as str).
fn same(ours: &Value, theirs: &rmpv::Value) -> bool {
    use rmpv::Value as R;
    match (ours, theirs) {
        (Value::Nil, R::Nil) => true,
        (Value::Bool(a), R::Boolean(b)) => a == b,
        (Value::Uint(a), R::Integer(b)) => b.as_u64() == Some(*a),
        (Value::Int(a), R::Integer(b)) => {
            b.as_i64() == Some(*a) || (*a >= 0 && b.as_u64() == Some(*a as u64))
        }
        (Value::Float(a), R::F64(b)) => a.to_bits() == b.to_bits(),
        (Value::Raw(a), R::String(s)) => s.as_bytes() == a.as_slice(),
        (Value::Array(a), R::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Map(a), R::Map(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|((k, v), (rk, rv))| {
                    matches!(rk, R::String(s) if s.as_bytes() == k.as_slice()) && same(v, rv)
                })
        }
        _ => false,
    }
}

/// GNU tar and sha256sum, independent of this project, accept the writer's output.
#[test]
fn gnu_tar_and_sha256sum_accept_written_archives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = vec![(
        2u8,
        Value::record([
            ("Key", Value::raw("a/b")),
            ("Value", Value::Raw(vec![1; 100_000])),
        ]),
    )];
    let (state, _) = state_bytes(42, &records);
    let archive = archive_bytes(
        &meta(42),
        &state,
        &WriteOptions {
            mtime: 1_700_000_000,
            ..WriteOptions::default()
        },
    );
    let path = dir.path().join("x.snap");
    std::fs::write(&path, &archive).expect("write");

    let list = Command::new("tar")
        .arg("-tvzf")
        .arg(&path)
        .output()
        .expect("run tar");
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing = String::from_utf8_lossy(&list.stdout);
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, ["meta.json", "state.bin", "SHA256SUMS"]);
    assert!(
        listing.lines().all(|l| l.starts_with("-rw------- 0/0")),
        "{listing}"
    );

    let x = Command::new("tar")
        .arg("-xzf")
        .arg(&path)
        .current_dir(dir.path())
        .status()
        .expect("tar -x");
    assert!(x.success());
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(
        std::fs::read(dir.path().join("state.bin")).expect("state"),
        state
    );

    // No record padding: the tar stream is exactly the entries plus two zero blocks.
    let tar_len = std::io::copy(
        &mut flate2::read::GzDecoder::new(&archive[..]),
        &mut std::io::sink(),
    )
    .expect("gunzip");
    let meta_len = std::fs::metadata(dir.path().join("meta.json"))
        .expect("meta")
        .len();
    let blocks = |n: u64| 512 * (1 + n.div_ceil(512));
    assert_eq!(
        tar_len,
        blocks(meta_len) + blocks(state.len() as u64) + blocks(152) + 1024
    );
    // gzip header as Go writes it: no name, mtime 0, OS unknown.
    assert_eq!(&archive[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
}
