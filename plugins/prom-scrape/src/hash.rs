//! 64-bit fingerprints of names and label sets, and a set of fingerprints.
//!
//! OpenMetrics validation must remember which family names and which label groups it has seen.
//! Remembering 8-byte fingerprints instead of the strings keeps that memory small and the hot
//! path free of allocation. Two different keys share a fingerprint with probability about 2^-64
//! per pair, which would reject a valid scrape as "clashing" or "badly grouped"; that risk is
//! accepted as negligible.

use alloc::vec;
use alloc::vec::Vec;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// Final avalanche (from MurmurHash3) so that every input bit affects every output bit; the
/// word mixing alone is fast but weak.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The little-endian word of an 8-byte slice.
#[inline]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// A streaming hasher over whole byte strings; each `write` is length-delimited, so
/// `("ab", "c")` and `("a", "bc")` differ.
#[derive(Clone, Copy)]
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    pub(crate) fn new(seed: u64) -> Self {
        Fingerprint(seed ^ K)
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if n >= 8 {
            let mut chunks = bytes.chunks_exact(8);
            for chunk in &mut chunks {
                self.mix(word(chunk));
            }
            // The last 8 bytes, overlapping words already mixed: every byte is in a word, and
            // the length (mixed below) tells the overlaps apart. No partial word is copied:
            // a copy of variable length is a `memcpy` call natively and a `memory.copy`
            // (a call into the runtime) in wasm.
            if !chunks.remainder().is_empty() {
                self.mix(word(&bytes[n - 8..]));
            }
        } else if n > 0 {
            let mut w = 0u64;
            for (i, &b) in bytes.iter().enumerate() {
                w |= u64::from(b) << (8 * i);
            }
            self.mix(w);
        }
        self.mix(n as u64);
    }

    pub(crate) fn finish(self) -> u64 {
        fmix64(self.0)
    }
}

/// Fingerprint of a label set that ignores label order (a group is a set of pairs).
#[derive(Clone, Copy, Default)]
pub(crate) struct SetFingerprint {
    sum: u64,
    len: u64,
}

impl SetFingerprint {
    pub(crate) fn add(&mut self, name: &str, value: &str) {
        let mut h = Fingerprint::new(0);
        h.write(name.as_bytes());
        h.write(value.as_bytes());
        // Addition commutes, so order does not matter; names are unique within a set, so no
        // pair can cancel another.
        self.sum = self.sum.wrapping_add(h.finish());
        self.len += 1;
    }

    pub(crate) fn finish(self) -> u64 {
        fmix64(self.sum ^ fmix64(self.len.wrapping_add(K)))
    }
}

/// An open-addressing set of fingerprints. Zero marks an empty slot, so key 0 is stored as 1.
#[derive(Debug, Default)]
pub(crate) struct FingerprintSet {
    slots: Vec<u64>,
    len: usize,
}

/// Tables at most this large are cleared in place; larger, mostly empty ones are replaced so
/// that clearing after every small metric family does not cost the size of the largest one.
const CLEAR_IN_PLACE_MAX: usize = 256;

impl FingerprintSet {
    /// Inserts a key; returns false if it was already present.
    pub(crate) fn insert(&mut self, key: u64) -> bool {
        let key = key.max(1);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = key;
                    self.len += 1;
                    return true;
                }
                k if k == key => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    #[cfg(test)]
    fn contains(&self, key: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let key = key.max(1);
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        loop {
            match self.slots[i] {
                0 => return false,
                k if k == key => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        if self.slots.len() <= CLEAR_IN_PLACE_MAX || self.len * 8 >= self.slots.len() {
            self.slots.fill(0);
        } else {
            self.slots = vec![0; (self.len * 4).next_power_of_two().max(16)];
        }
        self.len = 0;
    }

    fn grow(&mut self) {
        let new_len = (self.slots.len() * 2).max(16);
        let old = core::mem::replace(&mut self.slots, vec![0; new_len]);
        self.len = 0;
        for key in old.into_iter().filter(|&k| k != 0) {
            self.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(bytes: &[u8]) -> u64 {
        let mut f = Fingerprint::new(0);
        f.write(bytes);
        f.finish()
    }

    #[test]
    fn every_byte_and_the_length_count() {
        // Every length up to three words and a bit, every position: a byte changed, and a zero
        // byte appended (which a word padded with zeros would not tell apart).
        for len in 0..28 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let h = fp(&base);
            for i in 0..len {
                let mut other = base.clone();
                other[i] ^= 0x20;
                assert_ne!(fp(&other), h, "len {len}, byte {i}");
            }
            let mut longer = base.clone();
            longer.push(0);
            assert_ne!(fp(&longer), h, "len {len}");
        }
    }

    #[test]
    fn set_membership_survives_growth_and_clear() {
        let mut set = FingerprintSet::default();
        for k in 0..1000u64 {
            assert!(set.insert(k.wrapping_mul(K)), "{k}");
        }
        for k in 0..1000u64 {
            assert!(set.contains(k.wrapping_mul(K)));
            assert!(!set.insert(k.wrapping_mul(K)));
        }
        assert!(!set.contains(12345));
        set.clear();
        assert!(!set.contains(K));
        assert!(set.insert(K));
        // Zero is a valid key.
        assert!(set.insert(0));
        assert!(set.contains(0));
    }

    #[test]
    fn set_fingerprint_ignores_order_but_not_content() {
        let fp = |pairs: &[(&str, &str)]| {
            let mut f = SetFingerprint::default();
            for (n, v) in pairs {
                f.add(n, v);
            }
            f.finish()
        };
        assert_eq!(fp(&[("a", "1"), ("b", "2")]), fp(&[("b", "2"), ("a", "1")]));
        assert_ne!(fp(&[("a", "1"), ("b", "2")]), fp(&[("a", "2"), ("b", "1")]));
        assert_ne!(fp(&[("a", "1b")]), fp(&[("a1", "b")]));
        assert_ne!(fp(&[]), fp(&[("", "")]));
    }
}
