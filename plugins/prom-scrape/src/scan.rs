//! Word-at-a-time scans over a line: the first byte of a set (`\n`, `"` or `\`), and the length
//! of a run of name characters.
//!
//! Most of a body is runs of plain bytes between a few structural ones. A byte loop pays a
//! bounds check, a compare and a branch per byte; under an interpreter (Pulley, which runs every
//! plugin on 32-bit devices) each of those is a dispatched instruction, and each loop iteration
//! also checks the epoch deadline. Testing eight bytes with a handful of `u64` operations
//! (SWAR: SIMD within a register) cuts the iterations eightfold and the work per byte by about
//! half, natively too. The tails shorter than a word use the plain loops these functions are
//! tested against.
//!
//! Two tests are used, both exact for the lowest matching byte, which is all a scan needs:
//! - [`has_zero`]: the classic "some byte is zero" test. It can flag a byte *above* a true zero
//!   (the borrow of the subtraction), never below one, so the lowest flag is exact.
//! - [`ge`]: "byte ≥ c" on bytes with their top bit cleared. The addition cannot carry from one
//!   byte into the next, so every byte's flag is exact; name classes are built from it.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Little-endian load of the eight bytes of `chunk` (a `chunks_exact(8)` item).
#[inline(always)]
fn load(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Every byte set to `b`.
const fn splat(b: u8) -> u64 {
    LO * b as u64
}

/// The top bit of each byte of `x` that is zero; see the module docs for its one inexactness.
#[inline(always)]
const fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// The top bit of each byte of `x7` (bytes ≤ 0x7f) that is ≥ `c` (1 ≤ `c` ≤ 0x80): adding
/// `0x80 - c` sets the top bit exactly then, and sums stay ≤ 0xff, so nothing carries.
#[inline(always)]
const fn ge(x7: u64, c: u8) -> u64 {
    x7.wrapping_add(splat(0x80 - c)) & HI
}

/// The byte offset of the lowest flagged top bit.
#[inline(always)]
fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

/// The first byte of `hay` that `flags` (eight at a time: the top bit of each matching byte,
/// the lowest one exact) or `is` (the tail shorter than a word) matches.
#[inline(always)]
fn find(hay: &[u8], flags: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let found = flags(load(chunk));
        if found != 0 {
            return Some(offset + first(found));
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| is(b))
        .map(|i| offset + i)
}

/// The first `\n` in `hay`.
pub(crate) fn find_newline(hay: &[u8]) -> Option<usize> {
    find(hay, |x| has_zero(x ^ splat(b'\n')), |b| b == b'\n')
}

/// The first `"` or `\` in `hay`: the end of a label value, or the escape that makes it need
/// unescaping.
pub(crate) fn find_quote_or_backslash(hay: &[u8]) -> Option<usize> {
    // The lowest flag of each test is exact and false flags lie above a true one, so the
    // lowest flag of the union is exact too.
    find(
        hay,
        |x| has_zero(x ^ splat(b'"')) | has_zero(x ^ splat(b'\\')),
        |b| b == b'"' || b == b'\\',
    )
}

/// `[a-zA-Z0-9_]`, and `:` if `colon`.
#[inline(always)]
pub(crate) fn is_name_char(b: u8, colon: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':')
}

/// The top bit of each byte of `x` that is a name character (see [`is_name_char`]), exactly.
#[inline(always)]
fn name_chars(x: u64, colon: bool) -> u64 {
    let x7 = x & !HI;
    // Digits, and `:` right after them when allowed.
    let digits_end = if colon { b':' + 1 } else { b'9' + 1 };
    let digits = ge(x7, b'0') & !ge(x7, digits_end);
    // Setting bit 5 maps `A-Z` onto `a-z` and nothing else into that range.
    let folded = x7 | splat(0x20);
    let letters = ge(folded, b'a') & !ge(folded, b'z' + 1);
    let underscore = ge(x7, b'_') & !ge(x7, b'_' + 1);
    // Bytes ≥ 0x80 matched above as their low seven bits; they are never name characters.
    (digits | letters | underscore) & !x & HI
}

/// How many bytes at the start of `s` are name characters (see [`is_name_char`]).
pub(crate) fn name_len(s: &[u8], colon: bool) -> usize {
    let mut chunks = s.chunks_exact(8);
    let mut n = 0;
    for chunk in &mut chunks {
        let other = !name_chars(load(chunk), colon) & HI;
        if other != 0 {
            return n + first(other);
        }
        n += 8;
    }
    n + chunks
        .remainder()
        .iter()
        .take_while(|&&b| is_name_char(b, colon))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn plain_name_len(s: &[u8], colon: bool) -> usize {
        s.iter().take_while(|&&b| is_name_char(b, colon)).count()
    }

    #[test]
    fn every_byte_value_is_classified_as_the_plain_test_does() {
        // Each byte value at each position of a word, with name characters around it, and
        // with the word followed by a tail so both paths run.
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut s = Vec::from(*b"abcdefgh_xyz");
                s[pos] = b;
                for colon in [false, true] {
                    assert_eq!(
                        name_len(&s, colon),
                        plain_name_len(&s, colon),
                        "byte {b:#04x} at {pos}, colon {colon}"
                    );
                }
                let mut q = [b'a'; 11];
                q[pos] = b;
                let want = q.iter().position(|&c| c == b'"' || c == b'\\');
                assert_eq!(find_quote_or_backslash(&q), want, "byte {b:#04x} at {pos}");
                let want = q.iter().position(|&c| c == b'\n');
                assert_eq!(find_newline(&q), want, "byte {b:#04x} at {pos}");
            }
        }
    }

    #[test]
    fn a_byte_just_above_a_match_is_not_taken_for_one() {
        // The borrow of `has_zero` flags bytes above a zero: 0x01 above the match would be.
        assert_eq!(find_newline(b"\x0a\x0b\x0a\x0b\x0b\x0b\x0b\x0b"), Some(0));
        assert_eq!(
            find_newline(b"\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0a"),
            Some(8)
        );
        assert_eq!(find_quote_or_backslash(b"abc\x23\x5d\"\\xyz"), Some(5));
        assert_eq!(
            find_quote_or_backslash(&[0xa2, 0xdc, 0x23, 0x5d, 0x21, 0x5b, 0x22, 0x5c, 0x00]),
            Some(6)
        );
    }

    /// Arbitrary bytes, with the bytes the scans look for made common.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => any::<u8>(),
            2 => prop::sample::select(b"\n\"\\:_{}= az09AZ/;@[^`".to_vec()),
            2 => prop::sample::select(b"abcdefghijklmnopqrstuvwxyz".to_vec()),
        ];
        prop::collection::vec(byte, 0..80)
    }

    proptest! {
        #[test]
        fn scans_agree_with_a_byte_loop(hay in bytes(), from in 0usize..16) {
            // Every start offset shifts the 8-byte boundaries and the tail.
            let from = from.min(hay.len());
            let s = &hay[from..];
            prop_assert_eq!(find_newline(s), s.iter().position(|&b| b == b'\n'));
            prop_assert_eq!(
                find_quote_or_backslash(s),
                s.iter().position(|&b| b == b'"' || b == b'\\')
            );
            prop_assert_eq!(name_len(s, true), plain_name_len(s, true));
            prop_assert_eq!(name_len(s, false), plain_name_len(s, false));
        }

        #[test]
        fn name_runs_of_any_length_are_measured(
            len in 0usize..40,
            stop in any::<u8>(),
            colon in any::<bool>(),
        ) {
            // A long valid run ending at `stop`, or at the end of the buffer.
            let mut s: Vec<u8> = (0..len).map(|i| b"aZ0_:q9"[i % 7]).collect();
            s.push(stop);
            prop_assert_eq!(name_len(&s, colon), plain_name_len(&s, colon));
            prop_assert_eq!(name_len(&s[..len], colon), plain_name_len(&s[..len], colon));
        }
    }
}
