//! msgpack in the dialect Consul writes into `state.bin` (spec §6.2: the consul-net-rpc fork of
//! the old ugorji go-codec), in two halves:
//!
//! * [`Value`] and [`Value::encode`]: an encoder that writes exactly what Consul writes (old-spec
//!   raw strings only, never `str8`/`bin`; smallest integer forms; struct fields sorted by key).
//! * [`Scanner`]: a push decoder that walks one value at a time over arbitrary chunk boundaries,
//!   allocating nothing by a length read from the input (strings are skipped, not buffered), and
//!   can capture up to two fields of a top-level map (`Key` of a KVS record, `Service` and
//!   `Check` of a Register record, `LastIndex` of the header).

use super::error::StateError;

/// A msgpack value as Consul's encoder sees Go values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go nil pointer, slice, map or interface: `c0`.
    Nil,
    /// `c2` / `c3`.
    Bool(bool),
    /// Any non-negative integer, in its smallest form.
    Uint(u64),
    /// A signed integer; non-negative values are written as unsigned, as go-codec does.
    Int(i64),
    /// float64, `cb`.
    Float(f64),
    /// A Go `string` or `[]byte`: the old-spec raw family (`a0`–`bf`, `da`, `db`). Bytes need not
    /// be UTF-8 (KV keys are arbitrary bytes).
    Raw(Vec<u8>),
    /// A slice or array.
    Array(Vec<Value>),
    /// A map, with its entries in the order given (Go maps: random; structs: see [`Value::record`]).
    Map(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// A raw string from text or bytes.
    pub fn raw(s: impl Into<Vec<u8>>) -> Value {
        Value::Raw(s.into())
    }

    /// A Go struct: go-codec writes struct fields as a map sorted by key bytes.
    pub fn record<K: Into<Vec<u8>>>(fields: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut fields: Vec<(Vec<u8>, Value)> =
            fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Map(fields)
    }

    /// A Go `time.Time` in UTC, written through its `MarshalBinary` form (15 bytes: version 1,
    /// seconds since year 1 big-endian, nanoseconds, zone offset `-1` minutes = UTC) as a raw
    /// string, per Go's `time/time.go`.
    pub fn time_utc(unix_secs: i64, nanos: u32) -> Value {
        const UNIX_TO_YEAR_ONE: i64 = 62_135_596_800;
        let mut b = Vec::with_capacity(15);
        b.push(1);
        b.extend_from_slice(&(unix_secs + UNIX_TO_YEAR_ONE).to_be_bytes());
        b.extend_from_slice(&nanos.to_be_bytes());
        b.extend_from_slice(&[0xff, 0xff]);
        Value::Raw(b)
    }

    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writes into a Vec cannot fail; rmp's error type only carries the writer's error.
        match self {
            Value::Nil => rmp::encode::write_nil(out).unwrap_or(()),
            Value::Bool(b) => rmp::encode::write_bool(out, *b).unwrap_or(()),
            Value::Uint(u) => drop(rmp::encode::write_uint(out, *u)),
            Value::Int(i) if *i >= 0 => drop(rmp::encode::write_uint(out, i.unsigned_abs())),
            Value::Int(i) => drop(rmp::encode::write_sint(out, *i)),
            Value::Float(f) => drop(rmp::encode::write_f64(out, *f)),
            Value::Raw(bytes) => {
                write_raw_len(out, bytes.len());
                out.extend_from_slice(bytes);
            }
            Value::Array(items) => {
                drop(rmp::encode::write_array_len(out, len_u32(items.len())));
                for item in items {
                    item.encode(out);
                }
            }
            Value::Map(entries) => {
                drop(rmp::encode::write_map_len(out, len_u32(entries.len())));
                for (k, v) in entries {
                    write_raw_len(out, k.len());
                    out.extend_from_slice(k);
                    v.encode(out);
                }
            }
        }
    }

    /// The encoding of `self` as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn len_u32(n: usize) -> u32 {
    // msgpack cannot express more; Consul's own values are far below this.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The old-spec raw header: rmp's `write_str_len` would pick `str8` (`d9`) for 32–255 bytes,
/// which Consul's encoder never writes.
fn write_raw_len(out: &mut Vec<u8>, len: usize) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(0xda);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&len_u32(len).to_be_bytes());
    }
}

/// Deepest container nesting the scanner follows. Consul's records nest about ten levels; the
/// bound keeps a hostile input from growing the stack without limit.
pub const MAX_DEPTH: usize = 512;

/// Longest captured string kept in full (a KV key); longer ones are cut to this many bytes,
/// which only affects KV bucket names past the first mebibyte of a key.
pub const CAPTURE_LIMIT: usize = 1 << 20;

/// The value of the captured field, as far as the scanner keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Captured {
    /// A raw string (str or bin), cut at [`CAPTURE_LIMIT`].
    Raw(Vec<u8>),
    /// A non-negative integer.
    Uint(u64),
    /// `nil` (Go's nil pointer, slice or map).
    Nil,
    /// Anything else (map, array, negative number...).
    Other,
}

/// Most top-level keys one value can capture at once (a Register record: `Service`, `Check`).
pub const MAX_CAPTURES: usize = 2;

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Items still to come: elements of an array, or keys plus values of a map.
    remaining: u64,
    map: bool,
    /// In a map: whether the next item is a key.
    key_next: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    /// A key of the top-level map; compared to the capture key.
    Key,
    /// The value of the matched key.
    Capture,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    /// At an item boundary.
    None,
    /// Inside the fixed bytes that follow a marker (lengths, counts, numbers).
    Header {
        marker: u8,
        buf: [u8; 8],
        have: u8,
        need: u8,
    },
    /// Inside a string, bin or ext payload.
    Skip { remaining: u64 },
}

/// A push decoder for one msgpack value at a time, fed in chunks of any size.
#[derive(Debug)]
pub struct Scanner {
    stack: Vec<Frame>,
    pending: Pending,
    started: bool,
    role: Role,
    capture_keys: &'static [&'static [u8]],
    /// Longest of `capture_keys`, in bytes.
    key_limit: usize,
    key_buf: Vec<u8>,
    key_overflow: bool,
    /// Which capture key the last top-level key matched.
    key_matched: Option<usize>,
    /// Which capture key the value being read belongs to.
    capturing: usize,
    captured: [Option<Captured>; MAX_CAPTURES],
    capture_buf: Vec<u8>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            stack: Vec::with_capacity(16),
            pending: Pending::None,
            started: false,
            role: Role::Other,
            capture_keys: &[],
            key_limit: 0,
            key_buf: Vec::with_capacity(16),
            key_overflow: false,
            key_matched: None,
            capturing: 0,
            captured: [None, None],
            capture_buf: Vec::new(),
        }
    }
}

/// What [`Scanner::feed`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input consumed.
    pub consumed: usize,
    /// Whether the value is complete (then `consumed` stops right after it).
    pub complete: bool,
}

impl Scanner {
    /// Prepares for the next value. If the value is a map, the values of the top-level keys
    /// in `capture_keys` (at most [`MAX_CAPTURES`]; more are ignored) are kept and returned by
    /// [`Scanner::captured`].
    pub fn begin(&mut self, capture_keys: &'static [&'static [u8]]) {
        self.stack.clear();
        self.pending = Pending::None;
        self.started = false;
        self.capture_keys = &capture_keys[..capture_keys.len().min(MAX_CAPTURES)];
        self.key_limit = self.capture_keys.iter().map(|k| k.len()).max().unwrap_or(0);
        self.key_matched = None;
        self.captured = [None, None];
        self.role = Role::Other;
    }

    /// True when no byte of the current value has been consumed yet.
    pub fn at_start(&self) -> bool {
        !self.started
    }

    /// The captured value of `capture_keys[i]` in the value just completed, if the key was
    /// present.
    pub fn captured(&self, i: usize) -> Option<&Captured> {
        self.captured.get(i).and_then(Option::as_ref)
    }

    /// Consumes bytes of `input` until the current value is complete or the input is used up.
    /// `offset` is the stream offset of `input[0]`, for error messages.
    pub fn feed(&mut self, input: &[u8], offset: u64) -> Result<Progress, StateError> {
        let mut i = 0usize;
        loop {
            match self.pending {
                Pending::Skip { remaining } => {
                    let avail = (input.len() - i) as u64;
                    let n = remaining.min(avail) as usize;
                    if self.role != Role::Other {
                        self.keep(&input[i..i + n]);
                    }
                    i += n;
                    if remaining > n as u64 {
                        self.pending = Pending::Skip {
                            remaining: remaining - n as u64,
                        };
                        return Ok(Progress {
                            consumed: i,
                            complete: false,
                        });
                    }
                    self.pending = Pending::None;
                    self.finish_raw();
                    if self.item_done() {
                        return Ok(Progress {
                            consumed: i,
                            complete: true,
                        });
                    }
                }
                Pending::Header {
                    marker,
                    mut buf,
                    have,
                    need,
                } => {
                    let take = usize::from(need - have).min(input.len() - i);
                    buf[usize::from(have)..usize::from(have) + take]
                        .copy_from_slice(&input[i..i + take]);
                    i += take;
                    let have = have + take as u8;
                    if have < need {
                        self.pending = Pending::Header {
                            marker,
                            buf,
                            have,
                            need,
                        };
                        return Ok(Progress {
                            consumed: i,
                            complete: false,
                        });
                    }
                    self.pending = Pending::None;
                    if self.after_header(marker, &buf[..usize::from(need)], offset + i as u64)? {
                        return Ok(Progress {
                            consumed: i,
                            complete: true,
                        });
                    }
                }
                Pending::None => {
                    if i == input.len() {
                        return Ok(Progress {
                            consumed: i,
                            complete: false,
                        });
                    }
                    let marker = input[i];
                    let at = offset + i as u64;
                    i += 1;
                    if self.start_item(marker, at)? {
                        return Ok(Progress {
                            consumed: i,
                            complete: true,
                        });
                    }
                }
            }
        }
    }

    /// Handles a marker byte; returns whether the whole value completed.
    fn start_item(&mut self, marker: u8, at: u64) -> Result<bool, StateError> {
        self.started = true;
        self.role = self.role_of_next();
        match marker {
            0x00..=0x7f => {
                self.set_capture(Captured::Uint(u64::from(marker)));
                Ok(self.item_done())
            }
            0x80..=0x8f => self.open(u64::from(marker & 0x0f), true, at),
            0x90..=0x9f => self.open(u64::from(marker & 0x0f), false, at),
            0xa0..=0xbf => self.raw(u64::from(marker & 0x1f)),
            0xc0 => {
                self.set_capture(Captured::Nil);
                Ok(self.item_done())
            }
            0xc2 | 0xc3 | 0xe0..=0xff => {
                self.set_capture(Captured::Other);
                Ok(self.item_done())
            }
            0xc1 => Err(StateError::InvalidMarker { marker, offset: at }),
            _ => {
                let need = header_len(marker);
                self.pending = Pending::Header {
                    marker,
                    buf: [0; 8],
                    have: 0,
                    need,
                };
                Ok(false)
            }
        }
    }

    /// Handles the fixed bytes after a multi-byte marker.
    fn after_header(&mut self, marker: u8, b: &[u8], at: u64) -> Result<bool, StateError> {
        let n = be(b);
        match marker {
            // uint 8/16/32/64
            0xcc..=0xcf => {
                self.set_capture(Captured::Uint(n));
                Ok(self.item_done())
            }
            // int 8..64, float 32/64: nothing to keep
            0xca | 0xcb | 0xd0..=0xd3 => {
                self.set_capture(Captured::Other);
                Ok(self.item_done())
            }
            // bin 8/16/32, str 8/16/32
            0xc4..=0xc6 | 0xd9..=0xdb => self.raw(n),
            // ext 8/16/32: length, then one type byte, then the data
            0xc7..=0xc9 => self.skip_other(n + 1),
            // fixext 1/2/4/8/16: type byte + data
            0xd4..=0xd8 => self.skip_other(1 + (1u64 << (marker - 0xd4))),
            0xdc | 0xdd => self.open(n, false, at),
            0xde | 0xdf => self.open(n, true, at),
            _ => Err(StateError::InvalidMarker { marker, offset: at }),
        }
    }

    fn raw(&mut self, len: u64) -> Result<bool, StateError> {
        self.key_buf.clear();
        self.key_overflow = false;
        self.capture_buf.clear();
        if len == 0 {
            self.finish_raw();
            return Ok(self.item_done());
        }
        self.pending = Pending::Skip { remaining: len };
        Ok(false)
    }

    fn skip_other(&mut self, len: u64) -> Result<bool, StateError> {
        self.set_capture(Captured::Other);
        self.role = Role::Other;
        self.pending = Pending::Skip { remaining: len };
        Ok(false)
    }

    fn keep(&mut self, bytes: &[u8]) {
        match self.role {
            Role::Key => {
                if self.key_buf.len() + bytes.len() <= self.key_limit {
                    self.key_buf.extend_from_slice(bytes);
                } else {
                    self.key_overflow = true;
                }
            }
            Role::Capture => {
                let room = CAPTURE_LIMIT.saturating_sub(self.capture_buf.len());
                self.capture_buf
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            Role::Other => {}
        }
    }

    /// A string or bin payload ended: settle the key comparison or the capture.
    fn finish_raw(&mut self) {
        match self.role {
            Role::Key => {
                self.key_matched = if self.key_overflow {
                    None
                } else {
                    let key = self.key_buf.as_slice();
                    self.capture_keys.iter().position(|k| *k == key)
                };
            }
            Role::Capture => {
                self.captured[self.capturing] =
                    Some(Captured::Raw(std::mem::take(&mut self.capture_buf)));
            }
            Role::Other => {}
        }
    }

    fn set_capture(&mut self, c: Captured) {
        if self.role == Role::Capture {
            self.captured[self.capturing] = Some(c);
        }
    }

    fn open(&mut self, count: u64, map: bool, at: u64) -> Result<bool, StateError> {
        if self.role == Role::Capture {
            self.captured[self.capturing] = Some(Captured::Other);
        }
        if count == 0 {
            return Ok(self.item_done());
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(StateError::TooDeep {
                limit: MAX_DEPTH,
                offset: at,
            });
        }
        let remaining = if map { count * 2 } else { count };
        self.stack.push(Frame {
            remaining,
            map,
            key_next: map,
        });
        Ok(false)
    }

    /// The role of the item about to start, for capturing.
    fn role_of_next(&mut self) -> Role {
        if self.capture_keys.is_empty() || self.stack.len() != 1 {
            return Role::Other;
        }
        let top = self.stack[0];
        if !top.map {
            return Role::Other;
        }
        if top.key_next {
            self.key_matched = None;
            Role::Key
        } else if let Some(i) = self.key_matched.take() {
            self.capturing = i;
            Role::Capture
        } else {
            Role::Other
        }
    }

    /// An item finished; pops finished containers. Returns whether the whole value is done.
    fn item_done(&mut self) -> bool {
        while let Some(top) = self.stack.last_mut() {
            top.remaining -= 1;
            if top.map {
                top.key_next = !top.key_next;
            }
            if top.remaining > 0 {
                return false;
            }
            self.stack.pop();
        }
        true
    }
}

/// Number of bytes after a marker that has them (lengths, counts, numbers, ext sizes).
fn header_len(marker: u8) -> u8 {
    match marker {
        0xcc | 0xd0 | 0xc4 | 0xd9 | 0xc7 => 1,
        0xcd | 0xd1 | 0xc5 | 0xda | 0xc8 | 0xdc | 0xde => 2,
        0xce | 0xd2 | 0xca | 0xc6 | 0xdb | 0xc9 | 0xdd | 0xdf => 4,
        0xcf | 0xd3 | 0xcb => 8,
        // fixext: the type byte and data are skipped as payload
        0xd4..=0xd8 => 0,
        _ => 0,
    }
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8], capture: &'static [&'static [u8]]) -> (usize, Option<Captured>) {
        let mut s = Scanner::default();
        s.begin(capture);
        let p = s.feed(bytes, 0).expect("scan");
        assert!(p.complete, "value incomplete");
        (p.consumed, s.captured(0).cloned())
    }

    #[test]
    fn spec_worked_example_encodes_exactly() {
        // spec §6.3: header {"LastIndex":13}
        let header = Value::record([("LastIndex", Value::Uint(13))]);
        assert_eq!(
            header.to_bytes(),
            b"\x81\xa9LastIndex\x0d".to_vec(),
            "header bytes per spec §6.3"
        );
        let kv = Value::record([
            ("Key", Value::raw("foo/bar")),
            ("Value", Value::raw("1")),
            ("Flags", Value::Uint(0)),
            ("Session", Value::raw("")),
            ("LockIndex", Value::Uint(0)),
            ("CreateIndex", Value::Uint(27)),
            ("ModifyIndex", Value::Uint(27)),
        ]);
        let mut rec = vec![2u8];
        kv.encode(&mut rec);
        assert_eq!(rec.len(), 75, "KVS record is 75 bytes in the spec");
        assert_eq!(&rec[1..3], &[0x87, 0xab]);
    }

    #[test]
    fn raw_lengths_use_old_spec_markers() {
        assert_eq!(Value::raw(vec![b'x'; 31]).to_bytes()[0], 0xbf);
        assert_eq!(&Value::raw(vec![b'x'; 32]).to_bytes()[..3], &[0xda, 0, 32]);
        assert_eq!(
            &Value::raw(vec![b'x'; 255]).to_bytes()[..3],
            &[0xda, 0, 255]
        );
        assert_eq!(
            &Value::raw(vec![0u8; 70_000]).to_bytes()[..5],
            &[0xdb, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn integers_use_smallest_form() {
        assert_eq!(Value::Int(5).to_bytes(), vec![5]);
        assert_eq!(Value::Int(200).to_bytes(), vec![0xcc, 200]);
        assert_eq!(Value::Int(-1).to_bytes(), vec![0xff]);
        assert_eq!(Value::Int(-100).to_bytes(), vec![0xd0, 0x9c]);
        assert_eq!(Value::Uint(15_000_000_000).to_bytes()[0], 0xcf);
    }

    #[test]
    fn time_matches_go_marshal_binary_of_zero_offset() {
        let t = Value::time_utc(0, 0).to_bytes();
        assert_eq!(t.len(), 16);
        assert_eq!(t[0], 0xaf);
        assert_eq!(&t[14..], &[0xff, 0xff]);
    }

    #[test]
    fn captures_top_level_key_only() {
        let v = Value::record([
            ("Inner", Value::record([("Key", Value::raw("wrong"))])),
            ("Key", Value::raw(b"a/b\xff".to_vec())),
        ]);
        let bytes = v.to_bytes();
        let (n, cap) = scan_all(&bytes, &[b"Key"]);
        assert_eq!(n, bytes.len());
        assert_eq!(cap, Some(Captured::Raw(b"a/b\xff".to_vec())));
    }

    #[test]
    fn captures_uint() {
        let bytes = Value::record([("LastIndex", Value::Uint(70_000))]).to_bytes();
        assert_eq!(
            scan_all(&bytes, &[b"LastIndex"]).1,
            Some(Captured::Uint(70_000))
        );
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let v = Value::record([
            ("Key", Value::raw(vec![b'k'; 300])),
            ("Value", Value::raw(vec![7u8; 70_000])),
            (
                "Arr",
                Value::Array(vec![Value::Int(-5), Value::Float(1.5), Value::Nil]),
            ),
        ]);
        let bytes = v.to_bytes();
        let mut s = Scanner::default();
        s.begin(&[b"Key"]);
        for (i, b) in bytes.iter().enumerate() {
            let p = s.feed(std::slice::from_ref(b), i as u64).expect("scan");
            assert_eq!(p.consumed, 1);
            assert_eq!(p.complete, i + 1 == bytes.len());
        }
        assert_eq!(s.captured(0), Some(&Captured::Raw(vec![b'k'; 300])));
    }

    #[test]
    fn stops_exactly_after_value() {
        let mut bytes = Value::Array(vec![Value::Uint(1), Value::Uint(2)]).to_bytes();
        bytes.extend_from_slice(&[0x02, 0x03]);
        assert_eq!(scan_all(&bytes, &[]).0, 3);
    }

    #[test]
    fn rejects_c1_and_deep_nesting() {
        let mut s = Scanner::default();
        s.begin(&[]);
        assert!(matches!(
            s.feed(&[0x91, 0xc1], 10),
            Err(StateError::InvalidMarker {
                marker: 0xc1,
                offset: 11
            })
        ));
        let deep = vec![0x91u8; MAX_DEPTH + 1];
        s.begin(&[]);
        assert!(matches!(s.feed(&deep, 0), Err(StateError::TooDeep { .. })));
    }

    #[test]
    fn huge_declared_length_allocates_nothing() {
        // A str32 claiming 4 GiB: the scanner only records how much to skip.
        let mut s = Scanner::default();
        s.begin(&[b"Key"]);
        let p = s
            .feed(
                &[
                    0x81, 0xa3, b'K', b'e', b'y', 0xdb, 0xff, 0xff, 0xff, 0xff, 1, 2,
                ],
                0,
            )
            .expect("scan");
        assert!(!p.complete);
        assert!(s.capture_buf.capacity() < 1024);
    }

    #[test]
    fn captures_two_keys_and_tells_nil_from_a_map() {
        // {"Node": "n1", "Service": nil, "Check": {"CheckID": "c"}}
        let mut bytes = vec![0x83];
        for (k, v) in [
            (&b"Node"[..], &[0xa2, b'n', b'1'][..]),
            (b"Service", &[0xc0]),
            (
                b"Check",
                &[
                    0x81, 0xa7, b'C', b'h', b'e', b'c', b'k', b'I', b'D', 0xa1, b'c',
                ],
            ),
        ] {
            bytes.push(0xa0 | k.len() as u8);
            bytes.extend_from_slice(k);
            bytes.extend_from_slice(v);
        }
        let mut s = Scanner::default();
        s.begin(&[b"Service", b"Check"]);
        let p = s.feed(&bytes, 0).expect("scan");
        assert!(p.complete && p.consumed == bytes.len());
        assert_eq!(s.captured(0), Some(&Captured::Nil));
        assert_eq!(s.captured(1), Some(&Captured::Other));
        // A key absent from the value is not captured at all.
        s.begin(&[b"Missing", b"Node"]);
        s.feed(&bytes, 0).expect("scan");
        assert_eq!(s.captured(0), None);
        assert_eq!(s.captured(1), Some(&Captured::Raw(b"n1".to_vec())));
    }
}
