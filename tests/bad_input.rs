//! Bad input never panics, never allocates by a size read from the input, and always gets an
//! error that names the problem.

mod support;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use consul_snapshot_agent::archive::msgpack::Value;
use consul_snapshot_agent::archive::tar::{data_padding, ustar_header};
use consul_snapshot_agent::archive::{
    read_archive, sums, ArchiveError, GzipError, IntegrityError, RaftError, ReadError, ReadOptions,
    SnapshotMeta, StateError, StateWriter, TypePolicy,
};
use sha2::{Digest, Sha256};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A tar stream of the given entries (name, typeflag, data) and the end marker.
fn tar(entries: &[(&[u8], u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, flag, data) in entries {
        out.extend_from_slice(&ustar_header(name, data.len() as u64, 0, *flag));
        out.extend_from_slice(data);
        out.resize(out.len() + data_padding(data.len() as u64), 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn state(records: &[(u8, Value)]) -> Vec<u8> {
    let mut w = StateWriter::new(Vec::new(), 9).expect("w");
    for (t, v) in records {
        w.record(*t, v).expect("record");
    }
    w.finish().expect("finish").0
}

fn good_state() -> Vec<u8> {
    state(&[(
        2,
        Value::record([("Key", Value::raw("k")), ("Value", Value::Nil)]),
    )])
}

fn meta_json(size: usize, version: i64) -> Vec<u8> {
    SnapshotMeta {
        version,
        id: "2-9-1".into(),
        index: 9,
        term: 2,
        size: size as i64,
        ..Default::default()
    }
    .to_json()
}

/// A well-formed archive around `state_bin` and `meta`, with a correct SHA256SUMS.
fn archive_with(meta: &[u8], state_bin: &[u8]) -> Vec<u8> {
    let (m, s): ([u8; 32], [u8; 32]) = (
        Sha256::digest(meta).into(),
        Sha256::digest(state_bin).into(),
    );
    let list = sums::format(&[("meta.json", &m), ("state.bin", &s)]);
    gzip(&tar(&[
        (b"meta.json", b'0', meta),
        (b"state.bin", b'0', state_bin),
        (b"SHA256SUMS", b'0', &list),
    ]))
}

fn err(bytes: &[u8]) -> ArchiveError {
    match read_archive(bytes, ReadOptions::default(), &mut ()) {
        Ok(r) => panic!("accepted bad input: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn baseline_archive_is_accepted() {
    let s = good_state();
    read_archive(
        &archive_with(&meta_json(s.len(), 1), &s)[..],
        ReadOptions::default(),
        &mut (),
    )
    .expect("good");
}

#[test]
fn not_gzip() {
    let e = err(b"snapshot.snap");
    assert_eq!(
        e.to_string(),
        "failed to decompress snapshot: gzip: invalid header"
    );
    assert!(matches!(
        e,
        ArchiveError::Decompress(GzipError::InvalidHeader)
    ));
    assert_eq!(err(b"").to_string(), "failed to decompress snapshot: EOF");
}

#[test]
fn truncated_gzip_at_every_tenth() {
    let s = good_state();
    let a = archive_with(&meta_json(s.len(), 1), &s);
    for cut in (1..10).map(|k| a.len() * k / 10) {
        let e = err(&a[..cut]);
        assert!(e.is_corrupt(), "cut {cut}: {e}");
        assert!(
            e.to_string().contains("unexpected EOF") || e.to_string().contains("gzip"),
            "cut {cut}: {e}"
        );
    }
}

#[test]
fn bad_crc_and_trailing_garbage() {
    let s = good_state();
    let mut a = archive_with(&meta_json(s.len(), 1), &s);
    let n = a.len();
    a[n - 8] ^= 0x01; // CRC-32 in the gzip trailer
    assert_eq!(err(&a).to_string(), "gzip: invalid checksum");
    let mut b = archive_with(&meta_json(s.len(), 1), &s);
    b.extend_from_slice(b"garbage after the member");
    assert!(err(&b).to_string().contains("gzip: invalid header"));
}

#[test]
fn names_with_slash_or_dotdot_and_extra_entries() {
    for name in [
        &b"../state.bin"[..],
        b"x/state.bin",
        b"./meta.json",
        b"extra.txt",
        b"dir/",
    ] {
        let e = err(&gzip(&tar(&[(name, b'0', b"x")])));
        let want = format!(
            "failed to read snapshot file: unexpected file {:?} in snapshot",
            String::from_utf8_lossy(name)
        );
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn duplicate_and_non_regular_entries() {
    let e = err(&gzip(&tar(&[
        (b"state.bin", b'0', b"a"),
        (b"state.bin", b'0', b"b"),
    ])));
    assert!(
        matches!(e, ArchiveError::Read(ReadError::DuplicateEntry(ref n)) if n == "state.bin"),
        "{e}"
    );
    let e = err(&gzip(&tar(&[(b"state.bin", b'5', b"")])));
    assert!(
        e.to_string()
            .contains("\"state.bin\" is not a regular file"),
        "{e}"
    );
}

#[test]
fn bomb_bounds_refuse_before_buffering() {
    // A header declaring a 4 GiB meta.json: refused at the header, nothing allocated for it.
    let mut t = ustar_header(b"meta.json", 4 << 30, 0, b'0').to_vec();
    t.extend_from_slice(&[b'{'; 4096]);
    let e = err(&gzip(&t));
    assert!(
        matches!(
            e,
            ArchiveError::Read(ReadError::EntryTooLarge {
                limit: 1_048_576,
                ..
            })
        ),
        "{e}"
    );
    let mut t = ustar_header(b"SHA256SUMS", 1 << 30, 0, b'0').to_vec();
    t.extend_from_slice(&[b'a'; 4096]);
    assert!(err(&gzip(&t)).to_string().contains("SHA256SUMS"));
}

#[test]
fn highly_compressible_state_streams_in_bounded_memory() {
    // 64 MiB of zeros (a few KiB compressed) as state.bin: hashed as it streams, then refused
    // for its content, not buffered.
    let zeros = vec![0u8; 64 << 20];
    let a = archive_with(&meta_json(zeros.len(), 1), &zeros);
    drop(zeros);
    assert!(a.len() < 1 << 20);
    assert_eq!(err(&a).to_string(), "state.bin is not a valid Consul record stream: snapshot header at offset 0 is not a map (msgpack marker 0x00)");
}

#[test]
fn garbage_msgpack_and_unknown_types() {
    let mut s = good_state();
    s.extend_from_slice(&[2, 0x81, 0xc1]);
    let e = err(&archive_with(&meta_json(s.len(), 1), &s));
    assert!(
        matches!(
            e,
            ArchiveError::State(StateError::InvalidMarker { marker: 0xc1, .. })
        ),
        "{e}"
    );

    let mut s = good_state();
    let at = s.len() as u64;
    s.extend_from_slice(&[44, 0xc0]);
    let a = archive_with(&meta_json(s.len(), 1), &s);
    let e = err(&a);
    assert!(
        matches!(e, ArchiveError::State(StateError::UnknownType { type_byte: 44, offset }) if offset == at),
        "{e}"
    );
    assert!(e.to_string().contains("Unrecognized msg type 44"));
    read_archive(
        &a[..],
        ReadOptions {
            types: TypePolicy::AnyBelowFlag,
        },
        &mut (),
    )
    .expect("lenient accepts 44");

    let mut s = good_state();
    s.extend_from_slice(&[2, 0x83, 0xa3]); // a record cut inside its first key
    let e = err(&archive_with(&meta_json(s.len(), 1), &s));
    assert!(
        e.to_string().contains("stream ends inside the KVS record"),
        "{e}"
    );
}

#[test]
fn meta_json_problems() {
    let s = good_state();
    let e = err(&archive_with(b"{not json", &s));
    assert!(
        e.to_string()
            .starts_with("failed to read snapshot file: failed to decode snapshot metadata: "),
        "{e}"
    );
    assert!(matches!(
        err(&archive_with(&meta_json(s.len(), 7), &s)),
        ArchiveError::Raft(RaftError::UnsupportedVersion(7))
    ));
    let e = err(&archive_with(&meta_json(s.len() + 1, 1), &s));
    assert_eq!(
        e.to_string(),
        format!("Raft error when restoring snapshot: failed to write snapshot, size didn't match ({} != {})", s.len(), s.len() + 1)
    );
}

#[test]
fn sums_problems() {
    let s = good_state();
    let m = meta_json(s.len(), 1);
    let no_sums = gzip(&tar(&[(b"meta.json", b'0', &m), (b"state.bin", b'0', &s)]));
    assert!(
        matches!(err(&no_sums), ArchiveError::Read(ReadError::Integrity(IntegrityError::FileMissing(ref n))) if n == "meta.json")
    );
    let bad = gzip(&tar(&[
        (b"meta.json", b'0', &m),
        (b"state.bin", b'0', &s),
        (b"SHA256SUMS", b'0', b"00  meta.json\n"),
    ]));
    assert_eq!(
        err(&bad).to_string(),
        r#"failed to read snapshot file: failed checking integrity of snapshot: hash check failed for "meta.json""#
    );
}

/// A source that fails after `ok` bytes, like a dropped HTTP body.
struct FailingSource<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for FailingSource<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            ));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn source_failure_is_not_reported_as_corruption() {
    let s = good_state();
    let a = archive_with(&meta_json(s.len(), 1), &s);
    let e = read_archive(
        FailingSource {
            data: &a,
            ok: a.len() / 2,
        },
        ReadOptions::default(),
        &mut (),
    )
    .expect_err("must fail");
    assert!(!e.is_corrupt(), "{e}");
    assert!(e.to_string().contains("connection reset by peer"), "{e}");
}

/// A bounded mutation pass over the fixtures (the fuzz target's work in miniature): flips,
/// truncations and insertions must give an error, or, where the mutation left the content intact
/// (e.g. the gzip header's mtime), the very same state.bin digest. Never a panic.
#[test]
fn mutations_never_panic_or_pass_altered_content() {
    let original = std::fs::read(support::fixture("small.snap")).expect("fixture");
    let good =
        read_archive(&original[..], ReadOptions::default(), &mut ()).expect("fixture verifies");
    let mut rng = 0x5eed_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tried = 0;
    while tried < 1500 && Instant::now() < deadline {
        let mut m = original.clone();
        let pos = (next() % m.len() as u64) as usize;
        match next() % 4 {
            0 => m[pos] ^= 1 << (next() % 8),
            1 => m.truncate(pos),
            2 => m.insert(pos, next() as u8),
            _ => m[pos] = next() as u8,
        }
        if let Ok(r) = read_archive(&m[..], ReadOptions::default(), &mut ()) {
            assert_eq!(
                r.state_sha256, good.state_sha256,
                "mutation at {pos} passed with other content"
            );
            assert_eq!(r.meta, good.meta);
        }
        tried += 1;
    }
    assert!(tried >= 100, "only {tried} mutations in the time bound");
}
