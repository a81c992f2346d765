//! Lossless file names: any byte string, carried in a Rust `String`, written to JSON the way
//! Python writes `os.fsdecode` names.
//!
//! Linux names are bytes, not text. The Python reference decodes them with `surrogateescape`
//! (PEP 383): a byte 0x80–0xFF that is not part of valid UTF-8 becomes the lone surrogate
//! U+DC80–U+DCFF, which `json.dumps` writes as `\udcXX`. A Rust `String` cannot hold a lone
//! surrogate, and replacing the byte with U+FFFD merged `caf\xe9.txt` and `caf\xe8.txt` into one
//! node. So in memory such a byte is the private-use character U+10FF00 + byte (U+10FF80–U+10FFFF,
//! the last 128 code points of plane 16, which no script or icon font uses). Every `String` API —
//! rules, tree keys, prefix checks, the name arena — then keeps working unchanged and exactly,
//! and a name costs no more memory than before unless it has such bytes.
//!
//! To stay injective, a name that genuinely contains one of those 128 characters has that
//! character's UTF-8 bytes escaped one by one too; [`unescape`] therefore always gives back the
//! original bytes, and [`escape`] of them gives back the same string.
//!
//! At the JSON boundary the escapes become `\udcXX` ([`LosslessFormatter`], used for every body
//! that carries paths), and `\udcXX` from Python or from us becomes the escape again
//! ([`de`], through `deserialize_bytes`, which in serde_json accepts lone surrogates as WTF-8).

use std::borrow::Cow;
use std::io;

use serde::Serialize;
use serde::de::{Deserializer, Error as DeError, Visitor};

/// `U+10FF00 + byte` stands for a raw byte 0x80–0xFF.
const BASE: u32 = 0x10_FF00;

/// UTF-8 of U+10FF80–U+10FFFF is `F4 8F BE|BF xx`.
fn escape_at(b: &[u8], i: usize) -> bool {
    b.len() >= i + 4 && b[i] == 0xF4 && b[i + 1] == 0x8F && (b[i + 2] == 0xBE || b[i + 2] == 0xBF)
}

/// Whether `s` holds any escaped byte (cheap: one `memchr` over names that are plain text).
pub fn has_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    // A branch-free maximum (vectorised) settles the common case: every JSON key and most
    // names are far below 0xF4; `memchr` has a fixed cost per call that dominated short strings.
    if b.iter().copied().max().unwrap_or(0) < 0xF4 {
        return false;
    }
    memchr::memchr_iter(0xF4, b).any(|i| escape_at(b, i))
}

fn push_escaped(out: &mut String, byte: u8) {
    // 0x80..=0xFF + BASE is always a valid scalar value.
    out.push(char::from_u32(BASE + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER));
}

/// The in-memory form of a raw name or path. Borrowed (no copy) for valid UTF-8 without escape
/// characters, which is every name on a typical share.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes)
        && !has_escapes(s)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let vb = valid.as_bytes();
        let mut start = 0;
        for i in memchr::memchr_iter(0xF4, vb) {
            if i >= start && escape_at(vb, i) {
                out.push_str(&valid[start..i]);
                vb[i..i + 4].iter().for_each(|&b| push_escaped(&mut out, b));
                start = i + 4;
            }
        }
        out.push_str(&valid[start..]);
        chunk
            .invalid()
            .iter()
            .for_each(|&b| push_escaped(&mut out, b));
    }
    Cow::Owned(out)
}

/// The raw bytes behind an in-memory name (what the file system calls it).
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !has_escapes(s) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let cp = u32::from(c);
        if (BASE + 0x80..=BASE + 0xFF).contains(&cp) {
            out.push((cp - BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

/// Length of the raw name in bytes (the unit of `NAME_MAX`/`PATH_MAX`).
pub fn raw_len(s: &str) -> usize {
    if has_escapes(s) {
        unescape(s).len()
    } else {
        s.len()
    }
}

/// A name for people (logs, messages): undecodable bytes as `\xE9`, like the console shows them.
pub fn display(s: &str) -> Cow<'_, str> {
    if !has_escapes(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for chunk in unescape(s).utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    Cow::Owned(out)
}

const NOT_UTF8: &str = "a JSON string must be UTF-8; write an undecodable byte as \\udcXX";

/// Maps WTF-8 from serde_json (lone surrogates allowed) to raw bytes: U+DC80–U+DCFF becomes the
/// byte it stands for (PEP 383); any other lone surrogate cannot come from a file name. The rest
/// must be valid UTF-8: serde_json does not check raw bytes read as bytes, and a JSON text with
/// raw undecodable bytes is refused, as the Python Fusion refuses it.
fn from_wtf8(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    // A surrogate is `ED A0..BF xx`; valid UTF-8 never has `ED` followed by A0..BF.
    let is_surrogate = |i: usize| b.get(i + 1).is_some_and(|&n| n >= 0xA0);
    let mut out = Vec::with_capacity(b.len());
    let mut seg = 0;
    for i in memchr::memchr_iter(0xED, b) {
        if i < seg || !is_surrogate(i) {
            continue;
        }
        let (Some(&b1), Some(&b2)) = (b.get(i + 1), b.get(i + 2)) else {
            return Err("truncated surrogate");
        };
        let cp = 0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
        if !(0xDC80..=0xDCFF).contains(&cp) {
            return Err("a lone surrogate outside U+DC80..U+DCFF is not a file name byte");
        }
        std::str::from_utf8(&b[seg..i]).map_err(|_| NOT_UTF8)?;
        out.extend_from_slice(&b[seg..i]);
        out.push((cp & 0xFF) as u8);
        seg = i + 3;
    }
    std::str::from_utf8(&b[seg..]).map_err(|_| NOT_UTF8)?;
    out.extend_from_slice(&b[seg..]);
    Ok(out)
}

/// Decodes a JSON string (with `\udcXX` escapes) into the in-memory form.
pub fn from_json_bytes(b: &[u8]) -> Result<String, &'static str> {
    if memchr::memchr(0xED, b).is_none() {
        // The common case: plain text, validated once.
        let s = std::str::from_utf8(b).map_err(|_| NOT_UTF8)?;
        return Ok(escape(s.as_bytes()).into_owned());
    }
    Ok(escape(&from_wtf8(b)?).into_owned())
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string (file name)")
    }

    fn visit_str<E: DeError>(self, v: &str) -> Result<String, E> {
        Ok(escape(v.as_bytes()).into_owned())
    }

    fn visit_bytes<E: DeError>(self, v: &[u8]) -> Result<String, E> {
        from_json_bytes(v).map_err(E::custom)
    }
}

/// `deserialize_with` helpers for name and path fields.
pub mod de {
    use super::*;

    /// A path or name; `\udcXX` escapes become raw bytes.
    pub fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_bytes(NameVisitor)
    }

    struct Wrap(String);
    impl<'de> serde::Deserialize<'de> for Wrap {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            name(d).map(Wrap)
        }
    }

    pub fn opt_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(<Option<Wrap> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
    }

    pub fn vec_name<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = <Vec<Wrap> as serde::Deserialize>::deserialize(d)?;
        Ok(v.into_iter().map(|w| w.0).collect())
    }

    /// A free-form object whose top-level string values may be names (`scan_path` of a
    /// `job_complete` batch): a `serde_json::Value` refuses `\udcXX`, so such a value is read
    /// raw and decoded as a name. Nested values must be plain JSON.
    pub fn opt_meta<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, D::Error> {
        use serde_json::value::RawValue;
        let Some(raw) =
            <Option<std::collections::BTreeMap<String, Box<RawValue>>> as serde::Deserialize>::deserialize(d)?
        else {
            return Ok(None);
        };
        let mut out = serde_json::Map::new();
        for (k, v) in raw {
            let value = match serde_json::from_str::<serde_json::Value>(v.get()) {
                Ok(value) => value,
                Err(e) => {
                    let mut de = serde_json::Deserializer::from_str(v.get());
                    let s = name(&mut de).map_err(|_| D::Error::custom(e))?;
                    serde_json::Value::String(s)
                }
            };
            out.insert(k, value);
        }
        Ok(Some(out))
    }
}

/// Rewrites every lone `\udc80`–`\udcff` escape of a JSON text into the in-memory escape
/// character, so that a body parsed as a `serde_json::Value` (free-form request bodies) accepts
/// names from a PEP 383 client. Escaped surrogate pairs and `\\udc..` (an escaped backslash)
/// are left alone.
pub fn json_text(b: &[u8]) -> Cow<'_, [u8]> {
    let is_low = |i: usize| {
        b.len() >= i + 6
            && b[i + 1] == b'u'
            && b[i + 2].eq_ignore_ascii_case(&b'd')
            && b[i + 3].eq_ignore_ascii_case(&b'c')
            && matches!(b[i + 4], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
            && b[i + 5].is_ascii_hexdigit()
    };
    let is_high = |j: usize| {
        b.len() >= j + 6
            && b[j] == b'\\'
            && b[j + 1] == b'u'
            && b[j + 2].eq_ignore_ascii_case(&b'd')
            && matches!(b[j + 3], b'8'..=b'9' | b'a'..=b'b' | b'A'..=b'B')
    };
    let escaped = |i: usize| b[..i].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
    let hits: Vec<usize> = memchr::memchr_iter(b'\\', b)
        .filter(|&i| is_low(i) && !escaped(i) && !(i >= 6 && is_high(i - 6) && !escaped(i - 6)))
        .collect();
    if hits.is_empty() {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut last = 0;
    let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    for i in hits {
        out.extend_from_slice(&b[last..i]);
        let byte = 0x80 | ((hex(b[i + 4]) & 0x7) << 4) | hex(b[i + 5]);
        let mut buf = [0u8; 4];
        let c = char::from_u32(BASE + u32::from(byte)).unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        last = i + 6;
    }
    out.extend_from_slice(&b[last..]);
    Cow::Owned(out)
}

/// Compact JSON in which escaped bytes are written as `\udcXX`, exactly as Python's `json.dumps`
/// writes a `surrogateescape`d name; everything else is serde_json's compact output.
#[derive(Debug, Clone, Copy, Default)]
pub struct LosslessFormatter;

/// Writes a JSON string fragment, each escaped byte through `byte`.
fn write_fragment<W: ?Sized + io::Write>(
    w: &mut W,
    fragment: &str,
    byte: impl Fn(&mut W, u8) -> io::Result<()>,
) -> io::Result<()> {
    if !has_escapes(fragment) {
        return w.write_all(fragment.as_bytes());
    }
    for chunk in unescape(fragment).utf8_chunks() {
        w.write_all(chunk.valid().as_bytes())?;
        for &b in chunk.invalid() {
            byte(w, b)?;
        }
    }
    Ok(())
}

impl serde_json::ser::Formatter for LosslessFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_fragment(w, fragment, |w, b| write!(w, "\\udc{b:02x}"))
    }
}

/// Compact JSON in which each escaped byte is written as `?`: what the Python agent 0.8.x sends
/// for an undecodable name byte (`sanitize_surrogate_characters`), for a Fusion that cannot take
/// `\udcXX` (see [`crate::wire::CreateSessionResponse::lossless_names`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplacingFormatter;

impl serde_json::ser::Formatter for ReplacingFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_fragment(w, fragment, |w, _| w.write_all(b"?"))
    }
}

/// `serde_json::to_vec` with [`ReplacingFormatter`].
pub fn to_vec_replacing<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, ReplacingFormatter);
    v.serialize(&mut ser)?;
    Ok(out)
}

/// `serde_json::to_vec` with [`LosslessFormatter`].
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, v)?;
    Ok(out)
}

/// `serde_json::to_writer` with [`LosslessFormatter`].
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(w: W, v: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, LosslessFormatter);
    v.serialize(&mut ser)
}

#[cfg(test)]
mod tests;
