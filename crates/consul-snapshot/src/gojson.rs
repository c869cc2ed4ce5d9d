//! JSON written the way Go's `encoding/json` writes it, for byte parity with Consul's
//! `meta.json` and `consul snapshot inspect -format json`: `<`, `>`, `&`, U+2028 and U+2029
//! escaped as `\u003c` etc., `\b` and `\f` as `\u0008`/`\u000c`, and `MarshalIndent` layout.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// Compact JSON as Go's `json.Marshal` writes it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter(CompactFormatter));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Indented JSON as Go's `json.MarshalIndent(v, "", indent)` writes it (no trailing newline).
pub fn to_vec_indent<T: Serialize + ?Sized>(
    value: &T,
    indent: &[u8],
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        GoFormatter(PrettyFormatter::with_indent(indent)),
    );
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Wraps a serde_json formatter, changing only how strings are escaped.
struct GoFormatter<F>(F);

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        })*
    };
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    delegate! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: Option<&[u8]> = match c {
                '<' => Some(b"\\u003c"),
                '>' => Some(b"\\u003e"),
                '&' => Some(b"\\u0026"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                _ => None,
            };
            if let Some(esc) = esc {
                w.write_all(&fragment.as_bytes()[start..i])?;
                w.write_all(esc)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// Go's `[]byte` → `string` conversion followed by JSON encoding replaces each byte that is not
/// part of valid UTF-8 with U+FFFD, one per byte (Go's `utf8.DecodeRune` width-1 errors).
pub fn lossy_like_go(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &after[1..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"a": "<x>&\u{2028}\u{8}\u{c}\n"});
        assert_eq!(
            String::from_utf8(to_vec(&v).expect("json")).expect("utf8"),
            r#"{"a":"\u003cx\u003e\u0026\u2028\u0008\u000c\n"}"#
        );
    }

    #[test]
    fn indent_layout() {
        let v = serde_json::json!({"A": [1], "B": null, "C": []});
        let s = String::from_utf8(to_vec_indent(&v, b"   ").expect("json")).expect("utf8");
        assert_eq!(
            s,
            "{\n   \"A\": [\n      1\n   ],\n   \"B\": null,\n   \"C\": []\n}"
        );
    }

    #[test]
    fn invalid_bytes_become_one_replacement_each() {
        assert_eq!(
            lossy_like_go(b"a\xe2\x82b\xff"),
            "a\u{FFFD}\u{FFFD}b\u{FFFD}"
        );
        assert_eq!(lossy_like_go("é/ü".as_bytes()), "é/ü");
    }
}
