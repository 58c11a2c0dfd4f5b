//! The subset of ASN.1 BER (X.690) that SNMP messages use: definite lengths, INTEGER, OCTET
//! STRING, NULL, OBJECT IDENTIFIER, SEQUENCE and the SNMP application and context tags. The
//! writer produces the minimal (DER-like) form agents expect; the reader accepts any
//! definite length form, and refuses everything else with a reason rather than panicking
//! (the property tests in this module feed it arbitrary bytes).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// `INTEGER`.
pub const INTEGER: u8 = 0x02;
/// `OCTET STRING`.
pub const OCTET_STRING: u8 = 0x04;
/// `NULL`.
pub const NULL: u8 = 0x05;
/// `OBJECT IDENTIFIER`.
pub const OID: u8 = 0x06;
/// `SEQUENCE`.
pub const SEQUENCE: u8 = 0x30;

/// Longest OID accepted (RFC 2578 allows 128 sub-identifiers).
const MAX_OID_LEN: usize = 128;

/// A malformed encoding: what was being read and why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(what: &str) -> Error {
    Error(String::from(what))
}

/// Appends a definite length.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Appends one TLV.
pub fn tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Appends a constructed TLV whose content `f` writes.
pub fn nested(out: &mut Vec<u8>, tag: u8, f: impl FnOnce(&mut Vec<u8>)) {
    let mut content = Vec::new();
    f(&mut content);
    tlv(out, tag, &content);
}

/// Appends a signed integer in the fewest bytes two's complement allows.
pub fn int(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(out, tag, &bytes[start..]);
}

/// Appends an OBJECT IDENTIFIER.
///
/// # Panics
/// Never for OIDs from [`parse_oid`] (two or more sub-identifiers, the first at most 2).
pub fn oid(out: &mut Vec<u8>, oid: &[u32]) {
    let mut content = Vec::new();
    let (a, b) = (
        oid.first().copied().unwrap_or(0),
        oid.get(1).copied().unwrap_or(0),
    );
    base128(&mut content, a * 40 + b);
    for &s in oid.iter().skip(2) {
        base128(&mut content, s);
    }
    tlv(out, OID, &content);
}

fn base128(out: &mut Vec<u8>, v: u32) {
    let mut groups = [0u8; 5];
    let mut n = 0;
    let mut v = v;
    loop {
        groups[n] = (v & 0x7f) as u8;
        n += 1;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(groups[i] | if i > 0 { 0x80 } else { 0 });
    }
}

/// Reads TLVs from a buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Whether everything was read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next TLV's tag, without reading it.
    #[must_use]
    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next TLV: its tag and content.
    ///
    /// # Errors
    /// A truncated TLV, an indefinite or oversized length, a multi-byte tag.
    pub fn read_tlv(&mut self) -> Result<(u8, &'a [u8]), Error> {
        let (&tag, rest) = self.buf.split_first().ok_or_else(|| err("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(err("multi-byte tags are not SNMP"));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(|| err("truncated length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(err("bad length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(err("truncated content"));
        }
        let (content, tail) = rest.split_at(len);
        self.buf = tail;
        Ok((tag, content))
    }

    /// The next TLV's content, which must carry `tag`.
    ///
    /// # Errors
    /// As [`Reader::next`]; another tag.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], Error> {
        let (t, c) = self.read_tlv().map_err(|e| Error(format!("{what}: {e}")))?;
        if t == tag {
            Ok(c)
        } else {
            Err(Error(format!(
                "{what}: tag 0x{t:02x} where 0x{tag:02x} was expected"
            )))
        }
    }

    /// The next TLV as a reader over its content.
    ///
    /// # Errors
    /// As [`Reader::expect`].
    pub fn enter(&mut self, tag: u8, what: &str) -> Result<Self, Error> {
        self.expect(tag, what).map(Reader::new)
    }

    /// The next INTEGER.
    ///
    /// # Errors
    /// As [`Reader::expect`]; an integer of more than 8 bytes.
    pub fn int(&mut self, what: &str) -> Result<i64, Error> {
        signed(self.expect(INTEGER, what)?).ok_or_else(|| Error(format!("{what}: bad integer")))
    }
}

/// A two's complement integer of at most 8 bytes.
#[must_use]
pub fn signed(content: &[u8]) -> Option<i64> {
    if content.is_empty() || content.len() > 8 {
        return None;
    }
    let init = if content[0] & 0x80 != 0 { -1i64 } else { 0 };
    Some(
        content
            .iter()
            .fold(init, |acc, b| (acc << 8) | i64::from(*b)),
    )
}

/// An unsigned integer of at most 8 bytes after a leading zero (Counter64 needs 9).
#[must_use]
pub fn unsigned(content: &[u8]) -> Option<u64> {
    let c = match content {
        [0, rest @ ..] => rest,
        c => c,
    };
    if content.is_empty() || c.len() > 8 {
        return None;
    }
    Some(c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Decodes an OBJECT IDENTIFIER's content.
///
/// # Errors
/// An empty or truncated encoding, a sub-identifier past 32 bits, more than 128 of them.
pub fn decode_oid(content: &[u8]) -> Result<Vec<u32>, Error> {
    let mut out = Vec::new();
    let mut v: u64 = 0;
    let mut pending = false;
    for &b in content {
        v = (v << 7) | u64::from(b & 0x7f);
        if v > u64::from(u32::MAX) {
            return Err(err("OID sub-identifier past 32 bits"));
        }
        pending = b & 0x80 != 0;
        if !pending {
            if out.is_empty() {
                let v = v as u32;
                let first = (v / 40).min(2);
                out.push(first);
                out.push(v - first * 40);
            } else {
                out.push(v as u32);
            }
            if out.len() > MAX_OID_LEN {
                return Err(err("OID longer than 128 sub-identifiers"));
            }
            v = 0;
        }
    }
    if pending || out.is_empty() {
        return Err(err("truncated OID"));
    }
    Ok(out)
}

/// Parses a dotted OID (`1.3.6.1.2.1.2`, a leading dot allowed).
///
/// # Errors
/// Not numbers, fewer than two sub-identifiers, a first one past 2.
pub fn parse_oid(s: &str) -> Result<Vec<u32>, String> {
    let t = s.strip_prefix('.').unwrap_or(s);
    let oid = t
        .split('.')
        .map(str::parse::<u32>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("`{s}` is not a dotted numeric OID"))?;
    if oid.len() < 2 || oid[0] > 2 || (oid[0] < 2 && oid[1] >= 40) || oid.len() > MAX_OID_LEN {
        return Err(format!("`{s}` is not a valid OID"));
    }
    Ok(oid)
}

/// A dotted OID.
#[must_use]
pub fn oid_string(oid: &[u32]) -> String {
    let mut s = String::new();
    for (i, n) in oid.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(&format!("{n}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_take_the_fewest_bytes() {
        let enc = |v| {
            let mut o = Vec::new();
            int(&mut o, INTEGER, v);
            o
        };
        assert_eq!(enc(0), [2, 1, 0]);
        assert_eq!(enc(127), [2, 1, 0x7f]);
        assert_eq!(enc(128), [2, 2, 0, 0x80]);
        assert_eq!(enc(-1), [2, 1, 0xff]);
        assert_eq!(enc(-129), [2, 2, 0xff, 0x7f]);
        assert_eq!(enc(i64::from(i32::MAX)), [2, 4, 0x7f, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn oids_and_lengths_as_x690_writes_them() {
        let mut o = Vec::new();
        oid(&mut o, &parse_oid("1.3.6.1.2.1.2.2.1.10.1").unwrap());
        assert_eq!(o, [6, 10, 0x2b, 6, 1, 2, 1, 2, 2, 1, 10, 1]);
        let mut o = Vec::new();
        oid(&mut o, &[1, 3, 6, 1, 4, 1, 2021, 4294967295]);
        assert_eq!(
            decode_oid(&o[2..]).unwrap(),
            [1, 3, 6, 1, 4, 1, 2021, 4294967295]
        );
        let mut o = Vec::new();
        push_len(&mut o, 300);
        assert_eq!(o, [0x82, 1, 0x2c]);
        assert!(parse_oid("1.3.x").is_err());
        assert!(parse_oid("3.1").is_err());
        assert_eq!(parse_oid(".1.3.6").unwrap(), [1, 3, 6]);
    }

    #[test]
    fn unsigned_values_may_carry_a_leading_zero() {
        assert_eq!(
            unsigned(&[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Some(u64::MAX)
        );
        assert_eq!(unsigned(&[0x80]), Some(128));
        assert_eq!(signed(&[0x80]), Some(-128));
    }

    proptest! {
        #[test]
        fn the_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut r = Reader::new(&bytes);
            while let Ok((_, c)) = r.read_tlv() {
                let _ = decode_oid(c);
                let _ = signed(c);
                let _ = unsigned(c);
                if r.is_empty() { break; }
            }
        }

        #[test]
        fn integers_and_oids_round_trip(v in any::<i64>(), tail in proptest::collection::vec(any::<u32>(), 0..20), second in 0u32..40) {
            let mut o = Vec::new();
            int(&mut o, INTEGER, v);
            prop_assert_eq!(Reader::new(&o).int("v").unwrap(), v);
            let mut id = alloc::vec![1, second];
            id.extend(tail);
            let mut o = Vec::new();
            oid(&mut o, &id);
            let c = Reader::new(&o).expect(OID, "oid").unwrap();
            prop_assert_eq!(decode_oid(c).unwrap(), id);
        }
    }
}
