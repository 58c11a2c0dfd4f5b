//! Bit-level and varint helpers for the sample codec.

/// Appends bits, most significant first.
#[derive(Debug, Default, Clone)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    used: u32,
}

impl BitWriter {
    pub(crate) fn bit(&mut self, b: bool) {
        self.bits(u64::from(b), 1);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    pub(crate) fn bits(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.used == 0 {
                self.bytes.push(0);
                self.used = 8;
            }
            let take = n.min(self.used);
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (self.used - take);
            self.used -= take;
            n -= take;
        }
    }

    /// Variable-length unsigned integer in 7-bit groups, each preceded by a "more" bit.
    pub(crate) fn varint(&mut self, mut v: u64) {
        loop {
            let group = v & 0x7f;
            v >>= 7;
            self.bit(v != 0);
            self.bits(group, 7);
            if v == 0 {
                return;
            }
        }
    }

    pub(crate) fn len_bytes(&self) -> usize {
        self.bytes.len()
    }

    #[cfg(test)]
    pub(crate) fn len_bits(&self) -> usize {
        self.bytes.len() * 8 - self.used as usize
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.used = 0;
    }
}

/// Reads what [`BitWriter`] wrote; every read returns `None` past the end.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b == 1)
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u64> {
        if self.pos + n as usize > self.bytes.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        let mut n = n;
        while n > 0 {
            let byte = self.bytes[self.pos / 8];
            let avail = 8 - (self.pos % 8) as u32;
            let take = n.min(avail);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = if take == 64 {
                chunk
            } else {
                (v << take) | chunk
            };
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }

    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let more = self.bit()?;
            let group = self.bits(7)?;
            if shift == 63 && group > 1 {
                return None;
            }
            v |= group << shift;
            if !more {
                return Some(v);
            }
        }
        None
    }
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// LEB128 unsigned varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint from the front of `input`, advancing it.
#[inline]
pub(crate) fn get_uvarint(input: &mut &[u8]) -> Option<u64> {
    // Most varints here (lengths, counts, ids) are one byte.
    if let Some((&b, rest)) = input.split_first()
        && b < 0x80
    {
        *input = rest;
        return Some(u64::from(b));
    }
    get_uvarint_long(input)
}

fn get_uvarint_long(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in input.iter().enumerate().take(10) {
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::default();
        let vals = [(1, 1), (0b101, 3), (u64::MAX, 64), (0, 5), (12345, 17)];
        for &(v, n) in &vals {
            w.bits(v, n);
        }
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            w.varint(v);
        }
        let mut r = BitReader::new(w.as_bytes());
        for &(v, n) in &vals {
            assert_eq!(r.bits(n), Some(v));
        }
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint(), Some(v));
        }
    }

    #[test]
    fn varints_and_zigzag() {
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
            let mut out = Vec::new();
            put_uvarint(&mut out, zigzag(v));
            let mut s = out.as_slice();
            assert_eq!(get_uvarint(&mut s), Some(zigzag(v)));
            assert!(s.is_empty());
        }
        assert_eq!(get_uvarint(&mut &[0xff; 11][..]), None);
    }
}
