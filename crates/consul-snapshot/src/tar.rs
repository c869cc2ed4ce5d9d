//! The tar layer of a snapshot archive: a push parser with Go `archive/tar` reading semantics
//! (what Consul's reader accepts, spec §3.3) and the USTAR header encoder Consul's writer uses
//! (spec §3.2; layout per Go's `archive/tar` writer as called by Consul's `snapshot/archive.go`).
//!
//! The parser never buffers entry data: it hands out slices of the input as they arrive. Only
//! extended headers (PAX records, GNU long names) are buffered, bounded by [`MAX_EXT_HEADER`].

use super::error::ReadError;

/// Tar block size in bytes.
pub const BLOCK: usize = 512;

/// Largest PAX or GNU long-name extension accepted, in bytes.
pub const MAX_EXT_HEADER: u64 = 64 * 1024;

/// Largest size the 11-digit octal field holds; larger entries need a PAX `size` record.
pub const MAX_OCTAL_SIZE: u64 = 0o777_7777_7777;

/// Go's error text for a malformed header.
const INVALID_HEADER: &str = "archive/tar: invalid tar header";

/// What the parser reports, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum TarEvent<'a> {
    /// An entry starts; its data follows as `Data` events, then `EntryEnd`.
    Entry {
        name: &'a [u8],
        size: u64,
        typeflag: u8,
    },
    /// A slice of the current entry's data.
    Data(&'a [u8]),
    /// The current entry's data is complete.
    EntryEnd,
}

/// How the stream ended, from [`TarParser::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarEnd {
    /// End marker seen (or the stream ended at a header boundary, which Go also accepts);
    /// `trailing` bytes followed it.
    Clean { trailing: u64 },
    /// The stream ended inside a header or extended header.
    InHeader,
    /// The stream ended inside an entry's data or padding.
    InData,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Data { remaining: u64, pad: u64 },
    Pad { remaining: u64 },
    Ext { kind: u8, remaining: u64, pad: u64 },
    SecondZero,
    End,
}

/// Push parser; feed it the decompressed tar stream in chunks.
#[derive(Debug)]
pub struct TarParser {
    state: State,
    block: Box<[u8; BLOCK]>,
    have: usize,
    ext: Vec<u8>,
    long_name: Option<Vec<u8>>,
    pax_size: Option<u64>,
    trailing: u64,
}

impl Default for TarParser {
    fn default() -> Self {
        TarParser {
            state: State::Header,
            block: Box::new([0; BLOCK]),
            have: 0,
            ext: Vec::new(),
            long_name: None,
            pax_size: None,
            trailing: 0,
        }
    }
}

impl TarParser {
    /// Parses `chunk`, passing events to `on_event`. Errors from `on_event` stop parsing and are
    /// returned as they are.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        on_event: &mut dyn FnMut(TarEvent<'_>) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut i = 0;
        while i < chunk.len() {
            let rest = &chunk[i..];
            i += match self.state {
                State::Header | State::SecondZero => self.fill_block(rest, on_event)?,
                State::Data { remaining, pad } => self.data(rest, remaining, pad, on_event)?,
                State::Pad { remaining } => self.skip_pad(rest, remaining),
                State::Ext {
                    kind,
                    remaining,
                    pad,
                } => self.ext_data(rest, kind, remaining, pad)?,
                State::End => {
                    self.trailing += rest.len() as u64;
                    rest.len()
                }
            };
        }
        Ok(())
    }

    /// Gathers a 512-byte block: a header (parsed once whole), or the second block of zeros
    /// that ends the archive. Returns the bytes consumed.
    fn fill_block(
        &mut self,
        rest: &[u8],
        on_event: &mut dyn FnMut(TarEvent<'_>) -> Result<(), ReadError>,
    ) -> Result<usize, ReadError> {
        let n = (BLOCK - self.have).min(rest.len());
        self.block[self.have..self.have + n].copy_from_slice(&rest[..n]);
        self.have += n;
        if self.have == BLOCK {
            self.have = 0;
            if matches!(self.state, State::SecondZero) {
                if !is_zero(&self.block[..]) {
                    // Go: a zero block followed by a non-zero block.
                    return Err(ReadError::TarHeader(INVALID_HEADER.into()));
                }
                self.state = State::End;
            } else {
                self.header(on_event)?;
            }
        }
        Ok(n)
    }

    /// An entry's data, passed on as it comes; the entry ends after `remaining` more bytes,
    /// then `pad` bytes of padding. Returns the bytes consumed.
    fn data(
        &mut self,
        rest: &[u8],
        remaining: u64,
        pad: u64,
        on_event: &mut dyn FnMut(TarEvent<'_>) -> Result<(), ReadError>,
    ) -> Result<usize, ReadError> {
        let n = remaining.min(rest.len() as u64) as usize;
        on_event(TarEvent::Data(&rest[..n]))?;
        let remaining = remaining - n as u64;
        if remaining == 0 {
            on_event(TarEvent::EntryEnd)?;
            self.state = after_entry(pad);
        } else {
            self.state = State::Data { remaining, pad };
        }
        Ok(n)
    }

    /// Padding to the next block boundary, skipped. Returns the bytes consumed.
    fn skip_pad(&mut self, rest: &[u8], remaining: u64) -> usize {
        let n = remaining.min(rest.len() as u64);
        self.state = if remaining == n {
            State::Header
        } else {
            State::Pad {
                remaining: remaining - n,
            }
        };
        n as usize
    }

    /// The data of a PAX or GNU long-name entry, gathered and applied to the next header
    /// once whole. Returns the bytes consumed.
    fn ext_data(
        &mut self,
        rest: &[u8],
        kind: u8,
        remaining: u64,
        pad: u64,
    ) -> Result<usize, ReadError> {
        let n = remaining.min(rest.len() as u64) as usize;
        self.ext.extend_from_slice(&rest[..n]);
        let remaining = remaining - n as u64;
        if remaining == 0 {
            self.apply_ext(kind)?;
            self.state = after_entry(pad);
        } else {
            self.state = State::Ext {
                kind,
                remaining,
                pad,
            };
        }
        Ok(n)
    }

    /// Says how the stream ended; call once the input is exhausted.
    pub fn finish(&self) -> TarEnd {
        match self.state {
            State::End => TarEnd::Clean {
                trailing: self.trailing,
            },
            // Go's reader treats EOF at a block boundary as the end of the archive.
            State::Header | State::SecondZero
                if self.have == 0 && self.long_name.is_none() && self.pax_size.is_none() =>
            {
                TarEnd::Clean { trailing: 0 }
            }
            State::Header | State::SecondZero | State::Ext { .. } => TarEnd::InHeader,
            State::Data { .. } | State::Pad { .. } => TarEnd::InData,
        }
    }

    fn header(
        &mut self,
        on_event: &mut dyn FnMut(TarEvent<'_>) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let b = &self.block[..];
        if is_zero(b) {
            self.state = State::SecondZero;
            return Ok(());
        }
        if !checksum_ok(b) {
            return Err(ReadError::TarHeader(INVALID_HEADER.into()));
        }
        let typeflag = b[156];
        let size = parse_numeric(&b[124..136])?;
        let pad = padding(size);
        match typeflag {
            b'x' | b'L' | b'K' => {
                if size > MAX_EXT_HEADER {
                    return Err(ReadError::TarHeader(format!(
                        "extended header of {size} bytes, over the {MAX_EXT_HEADER}-byte limit"
                    )));
                }
                self.ext.clear();
                self.state = if size == 0 {
                    self.apply_ext(typeflag)?;
                    State::Header
                } else {
                    State::Ext {
                        kind: typeflag,
                        remaining: size,
                        pad,
                    }
                };
                return Ok(());
            }
            _ => {}
        }
        let size = self.pax_size.take().unwrap_or(size);
        let pad = padding(size);
        let name = match self.long_name.take() {
            Some(n) => n,
            None => ustar_name(b),
        };
        on_event(TarEvent::Entry {
            name: &name,
            size,
            typeflag,
        })?;
        if size == 0 {
            on_event(TarEvent::EntryEnd)?;
            self.state = State::Header;
        } else {
            self.state = State::Data {
                remaining: size,
                pad,
            };
        }
        Ok(())
    }

    fn apply_ext(&mut self, kind: u8) -> Result<(), ReadError> {
        match kind {
            b'L' => {
                let end = self
                    .ext
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(self.ext.len());
                self.long_name = Some(self.ext[..end].to_vec());
            }
            b'x' => {
                for (key, value) in parse_pax(&self.ext)? {
                    match key {
                        b"size" => {
                            let s = std::str::from_utf8(value)
                                .ok()
                                .and_then(|s| s.parse::<u64>().ok())
                                .ok_or_else(|| ReadError::TarHeader(INVALID_HEADER.into()))?;
                            self.pax_size = Some(s);
                        }
                        b"path" => self.long_name = Some(value.to_vec()),
                        _ => {}
                    }
                }
            }
            // GNU long link name: irrelevant to regular files.
            _ => {}
        }
        self.ext.clear();
        Ok(())
    }
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Go accepts a header whose checksum matches either the unsigned or the signed byte sum.
fn checksum_ok(b: &[u8]) -> bool {
    let Ok(stored) = parse_octal(&b[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &x) in b.iter().enumerate() {
        let x = if (148..156).contains(&i) { b' ' } else { x };
        unsigned += i64::from(x);
        signed += i64::from(x as i8);
    }
    stored as i64 == unsigned || stored as i64 == signed
}

/// A numeric field: octal text, or GNU base-256 when the high bit of the first byte is set.
fn parse_numeric(field: &[u8]) -> Result<u64, ReadError> {
    if field.first().is_some_and(|&c| c & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err(ReadError::TarHeader(INVALID_HEADER.into())); // negative
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &c in &field[1..] {
            v = v
                .checked_mul(256)
                .map(|v| v | u64::from(c))
                .ok_or_else(|| ReadError::TarHeader(INVALID_HEADER.into()))?;
        }
        return Ok(v);
    }
    parse_octal(field)
}

fn parse_octal(field: &[u8]) -> Result<u64, ReadError> {
    let trimmed: &[u8] = {
        let start = field
            .iter()
            .position(|&c| c != b' ' && c != 0)
            .unwrap_or(field.len());
        let end = field
            .iter()
            .rposition(|&c| c != b' ' && c != 0)
            .map_or(start, |e| e + 1);
        &field[start..end]
    };
    let mut v: u64 = 0;
    for &c in trimmed {
        if !(b'0'..=b'7').contains(&c) {
            return Err(ReadError::TarHeader(INVALID_HEADER.into()));
        }
        v = v
            .checked_mul(8)
            .map(|v| v + u64::from(c - b'0'))
            .ok_or_else(|| ReadError::TarHeader(INVALID_HEADER.into()))?;
    }
    Ok(v)
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Name of a USTAR/GNU header, joining the USTAR prefix field when present.
fn ustar_name(b: &[u8]) -> Vec<u8> {
    let name = cstr(&b[0..100]);
    if &b[257..263] == b"ustar\0" {
        let prefix = cstr(&b[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            return full;
        }
    }
    name.to_vec()
}

/// Parses PAX records `"<len> <key>=<value>\n"`.
/// One PAX record as (key, value).
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

fn parse_pax(mut data: &[u8]) -> Result<Vec<PaxRecord<'_>>, ReadError> {
    let bad = || ReadError::TarHeader(INVALID_HEADER.into());
    let mut out = Vec::new();
    while !data.is_empty() {
        let sp = data.iter().position(|&c| c == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=').ok_or_else(bad)?;
        out.push((&rec[..eq], &rec[eq + 1..]));
        data = &data[len..];
    }
    Ok(out)
}

/// Encodes the USTAR header Go's tar writer produces for Consul's `tar.Header{Name, Mode: 0600,
/// Size, ModTime}` (spec §3.2): octal fields NUL-terminated, checksum as 6 digits, NUL, space.
/// `size` must be at most [`MAX_OCTAL_SIZE`]; larger sizes go through [`pax_size_header`] and
/// are written here as 0, as Go does.
pub fn ustar_header(name: &[u8], size: u64, mtime: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    put_octal(&mut h[100..108], 0o600);
    put_octal(&mut h[108..116], 0);
    put_octal(&mut h[116..124], 0);
    put_octal(
        &mut h[124..136],
        if size > MAX_OCTAL_SIZE { 0 } else { size },
    );
    put_octal(&mut h[136..148], mtime);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0);
    put_octal(&mut h[337..345], 0);
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let digits = format!("{sum:06o}");
    h[148..154].copy_from_slice(&digits.as_bytes()[digits.len() - 6..]);
    h[154] = 0;
    h[155] = b' ';
    h
}

/// The PAX extended header (header block plus padded records) that carries a `size` too large
/// for the octal field, named `PaxHeaders.0/<name>` as Go names it.
pub fn pax_size_header(name: &[u8], size: u64, mtime: u64) -> Vec<u8> {
    let body = pax_record("size", &size.to_string());
    let mut pax_name = b"PaxHeaders.0/".to_vec();
    pax_name.extend_from_slice(name);
    let mut out = ustar_header(&pax_name, body.len() as u64, mtime, b'x').to_vec();
    out.extend_from_slice(&body);
    out.resize(out.len() + padding(body.len() as u64) as usize, 0);
    out
}

/// One PAX record; its length prefix counts itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let base = key.len() + value.len() + 3; // space, '=', newline
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// Zero bytes that pad `size` bytes of entry data to a whole block.
pub fn data_padding(size: u64) -> usize {
    padding(size) as usize
}

fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// What follows an entry's last data byte: its padding, if any, then the next header.
fn after_entry(pad: u64) -> State {
    if pad > 0 {
        State::Pad { remaining: pad }
    } else {
        State::Header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entries = Vec<(Vec<u8>, Vec<u8>)>;

    fn collect(stream: &[u8], chunk: usize) -> (Entries, TarEnd) {
        let mut p = TarParser::default();
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for c in stream.chunks(chunk) {
            p.feed(c, &mut |ev| {
                match ev {
                    TarEvent::Entry { name, .. } => out.push((name.to_vec(), Vec::new())),
                    TarEvent::Data(d) => out.last_mut().expect("entry").1.extend_from_slice(d),
                    TarEvent::EntryEnd => {}
                }
                Ok(())
            })
            .expect("feed");
        }
        (out, p.finish())
    }

    fn entry(name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = ustar_header(name, data.len() as u64, 1_700_000_000, b'0').to_vec();
        v.extend_from_slice(data);
        v.resize(v.len() + data_padding(data.len() as u64), 0);
        v
    }

    #[test]
    fn header_layout_matches_go() {
        let h = ustar_header(b"meta.json", 249, 0o15300367533, b'0');
        assert_eq!(&h[100..108], b"0000600\0");
        assert_eq!(&h[124..136], b"00000000371\0");
        assert_eq!(&h[136..148], b"15300367533\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        assert_eq!(&h[154..156], b"\0 ");
        assert!(checksum_ok(&h));
    }

    #[test]
    fn parses_in_any_chunking_and_counts_trailing() {
        let mut s = entry(b"a", b"hello");
        s.extend(entry(b"b", &[7u8; 1000]));
        s.extend([0u8; 1024 + 300]);
        for chunk in [1, 7, 512, 4096] {
            let (entries, end) = collect(&s, chunk);
            assert_eq!(
                entries,
                vec![
                    (b"a".to_vec(), b"hello".to_vec()),
                    (b"b".to_vec(), vec![7u8; 1000])
                ]
            );
            assert_eq!(end, TarEnd::Clean { trailing: 300 });
        }
    }

    #[test]
    fn pax_size_and_gnu_base256_are_read() {
        let mut s = pax_size_header(b"state.bin", 12, 0);
        s.extend(entry(b"state.bin", b"0123456789ab"));
        let (entries, _) = collect(&s, 100);
        assert_eq!(
            entries,
            vec![(b"state.bin".to_vec(), b"0123456789ab".to_vec())]
        );
        assert_eq!(
            pax_record("size", "9000000000"),
            b"19 size=9000000000\n".to_vec()
        );
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 5;
        assert_eq!(parse_numeric(&field).expect("base-256"), 5);
    }

    #[test]
    fn huge_size_header_goes_through_pax() {
        let size = 9 * (1u64 << 30);
        let pax = pax_size_header(b"state.bin", size, 0);
        let mut p = TarParser::default();
        let mut seen = None;
        let mut s = pax.clone();
        s.extend_from_slice(&ustar_header(b"state.bin", size, 0, b'0'));
        p.feed(&s, &mut |ev| {
            if let TarEvent::Entry { size, .. } = ev {
                seen = Some(size);
            }
            Ok(())
        })
        .expect("feed");
        assert_eq!(seen, Some(size));
        // The tar crate, an independent reader, agrees.
        let mut with_data = s.clone();
        with_data.extend_from_slice(&[0u8; 1024]);
        let mut ar = tar::Archive::new(&with_data[..]);
        let e = ar
            .entries()
            .expect("entries")
            .next()
            .expect("one")
            .expect("entry");
        assert_eq!(e.header().entry_size().ok(), Some(0));
        assert_eq!(e.size(), size);
    }

    #[test]
    fn bad_checksum_and_bad_second_block_are_errors() {
        let mut s = entry(b"a", b"x");
        s[0] = b'b';
        let mut p = TarParser::default();
        assert!(matches!(
            p.feed(&s, &mut |_| Ok(())),
            Err(ReadError::TarHeader(_))
        ));
        let mut s = vec![0u8; 512];
        s.extend(entry(b"a", b"x"));
        let mut p = TarParser::default();
        assert!(matches!(
            p.feed(&s, &mut |_| Ok(())),
            Err(ReadError::TarHeader(_))
        ));
    }

    #[test]
    fn oversized_extension_is_refused_before_buffering() {
        let h = ustar_header(b"PaxHeaders.0/x", MAX_EXT_HEADER + 1, 0, b'x');
        let mut p = TarParser::default();
        assert!(
            matches!(p.feed(&h, &mut |_| Ok(())), Err(ReadError::TarHeader(m)) if m.contains("limit"))
        );
    }

    #[test]
    fn truncation_is_reported_by_place() {
        let s = entry(b"a", &[1u8; 600]);
        assert_eq!(collect(&s[..700], 64).1, TarEnd::InData);
        assert_eq!(collect(&s[..100], 64).1, TarEnd::InHeader);
        assert_eq!(collect(&s, 64).1, TarEnd::Clean { trailing: 0 });
    }
}
