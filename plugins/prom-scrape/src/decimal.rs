//! The fast path of number parsing: short decimals such as `1027`, `-3.25`, `0.005` or
//! `1.5e+09`, which are nearly every value and timestamp in a scrape.
//!
//! Validating the token and then calling `str::parse::<f64>` reads every byte twice and runs
//! the general algorithm's set-up for each value; under an interpreter that is most of a
//! sample's number cost. Here one pass accumulates the digits into an integer mantissa `m` and
//! a power of ten `e`. When `m < 2^53` and `|e| ≤ 22`, both `m` and `10^|e|` are exact `f64`s,
//! so one IEEE multiplication or division gives the correctly rounded value (Clinger's fast
//! path, the same one `core` takes first): the result is bit for bit what `parse` returns.
//! Anything else — more digits, larger exponents, forms outside the grammar — returns `None`
//! and takes the general path, which also decides whether the token is valid at all.

/// Powers of ten that are exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Mantissa digits accepted: any 15 digits are below 2^53.
const MAX_DIGITS: u32 = 15;

/// Exponent digits accepted; longer exponents are out of the fast range anyway.
const MAX_EXP_DIGITS: u32 = 3;

/// Digits of an integer accepted by [`integer_prefix`]: any 18 digits fit in `i64`.
const MAX_INTEGER_DIGITS: u32 = 18;

/// Powers of ten as integers, for joining runs of digits.
const POW10_U64: [u64; 19] = {
    let mut t = [1u64; 19];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;

/// How many of the eight bytes of `w`, from its lowest, are ASCII digits before the first
/// byte that is not (8 when all are).
#[inline(always)]
fn leading_digits(w: u64) -> u32 {
    // Zero in a byte whose high nibble is 3, and zero in a byte whose low nibble is at most 9
    // (adding 6 keeps the high nibble at 3 then). The addition carries into the next byte only
    // from a byte ≥ 0xfa, which is not a digit, so the bytes below the first non-digit are
    // exact.
    let high = (w & (LO * 0xf0)) ^ (LO * 0x30);
    let low = (w.wrapping_add(LO * 0x06) & (LO * 0xf0)) ^ (LO * 0x30);
    let bad = high | low;
    // The top bit of every byte of `bad` that is not zero; nothing carries between bytes.
    let flags = (((bad & (LO * 0x7f)) + LO * 0x7f) | bad) & (LO * 0x80);
    flags.trailing_zeros() / 8
}

/// The value of eight ASCII digits in `w`, the first in the lowest byte; zero bytes read as
/// leading zeros.
#[inline(always)]
fn eight_digits(w: u64) -> u64 {
    let w = ((w & (LO * 0x0f)).wrapping_mul(10 << 8 | 1)) >> 8;
    let w = ((w & 0x00ff_00ff_00ff_00ff).wrapping_mul(100 << 16 | 1)) >> 16;
    ((w & 0x0000_ffff_0000_ffff).wrapping_mul(10_000 << 32 | 1)) >> 32
}

/// The run of ASCII digits of `b` from `i`: how many, and their value. Reads eight bytes at a
/// time while eight are there. `None` when the run is longer than `max` (at most 18) digits.
#[inline]
fn run(b: &[u8], mut i: usize, max: u32) -> Option<(u32, u64)> {
    let mut n = 0;
    let mut m = 0u64;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let k = leading_digits(w);
        if n + k > max {
            return None;
        }
        if k == 0 {
            return Some((n, m));
        }
        // The `k` digits moved to the top bytes; the zero bytes below them are leading zeros.
        m = m * POW10_U64[k as usize] + eight_digits(w << (8 * (8 - k)));
        n += k;
        i += k as usize;
        if k < 8 {
            return Some((n, m));
        }
    }
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        if n == max {
            return None;
        }
        m = m * 10 + u64::from(d);
        n += 1;
        i += 1;
    }
    Some((n, m))
}

/// The value of `b` if it is `[+-]` then `digits [. digits*] [e [+-] digits]` or
/// `. digits [e [+-] digits]` within the fast path's limits; `None` otherwise (which says
/// nothing about whether `b` is a number).
pub(crate) fn fast(b: &[u8]) -> Option<f64> {
    prefix(b).and_then(|(value, len)| (len == b.len()).then_some(value))
}

/// The number at the start of `b` as [`fast`] reads it, and its length: `b` may go on after it
/// with any byte, which the caller checks. `None` when what starts `b` is outside the fast
/// path (more digits, a longer exponent, or no number at all); [`fast`] of the bytes up to
/// where the number ends is then `None` too.
pub(crate) fn prefix(b: &[u8]) -> Option<(f64, usize)> {
    let (negative, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let (mut digits, mut m) = run(b, i, MAX_DIGITS)?;
    i += digits as usize;
    let mut frac = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let (n, f) = run(b, i, MAX_DIGITS - digits)?;
        m = m * POW10_U64[n as usize] + f;
        digits += n;
        frac = n;
        i += n as usize;
    }
    if digits == 0 {
        return None;
    }
    let mut exp: i32 = 0;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let exp_negative = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let (n, e) = run(b, i, MAX_EXP_DIGITS)?;
        if n == 0 {
            return None;
        }
        i += n as usize;
        #[allow(clippy::cast_possible_truncation)] // at most 999
        let e = e as i32;
        exp = e;
        if exp_negative {
            exp = -exp;
        }
    }
    #[allow(clippy::cast_possible_wrap)] // at most 15
    let e = exp - frac as i32;
    #[allow(clippy::cast_precision_loss)] // m < 10^15 < 2^53: exact
    let m = m as f64;
    let value = if e >= 0 {
        m * *POW10.get(e.unsigned_abs() as usize)?
    } else {
        m / *POW10.get(e.unsigned_abs() as usize)?
    };
    Some((if negative { -value } else { value }, i))
}

/// The integer `[+-] digits` at the start of `b` (at most 18 digits, so it fits), and its
/// length; `b` may go on after it. `None` when there are no digits or more than 18.
pub(crate) fn integer_prefix(b: &[u8]) -> Option<(i64, usize)> {
    let (negative, i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let (n, m) = run(b, i, MAX_INTEGER_DIGITS)?;
    if n == 0 {
        return None;
    }
    // Below 10^18 < 2^63.
    #[allow(clippy::cast_possible_wrap)]
    let m = m as i64;
    Some((if negative { -m } else { m }, i + n as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use proptest::prelude::*;

    fn same(s: &str) {
        let want: f64 = s.parse().expect("test input is a valid float");
        let got = fast(s.as_bytes());
        if let Some(got) = got {
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
        }
    }

    #[test]
    fn common_values_take_the_fast_path_exactly() {
        for s in [
            "0",
            "-0",
            "+0",
            "1027",
            "-3.25",
            "0.005",
            ".5",
            "5.",
            "1.5e+09",
            "2.5E-3",
            "1e22",
            "-0.0",
            "123456789012345",
            "0.1",
            "0.3",
            "1700000000.123",
            "900719925474.991",
        ] {
            assert!(fast(s.as_bytes()).is_some(), "{s} should be fast");
            same(s);
        }
        assert_eq!(fast(b"-0").map(f64::to_bits), Some((-0.0f64).to_bits()));
    }

    #[test]
    fn other_forms_are_left_to_the_general_path() {
        for s in [
            "",
            "+",
            "-",
            ".",
            "e3",
            "1e",
            "1e+",
            "1.2.3",
            "1_2",
            "0x1",
            "Inf",
            "NaN",
            "1 ",
            " 1",
            "1e3.5",
            "1234567890123456",
            "1e23",
            "1e-23",
            "1e1000",
            "1.5e+0009",
            "--1",
        ] {
            assert_eq!(fast(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn leading_digits_stop_at_the_first_other_byte() {
        for at in 0..8 {
            for other in (0..=255u8).filter(|b| !b.is_ascii_digit()) {
                let mut w = *b"12345678";
                w[at] = other;
                // Bytes after the first non-digit do not matter, even ones that carry.
                for later in &mut w[at + 1..] {
                    *later = 0xff;
                }
                assert_eq!(leading_digits(u64::from_le_bytes(w)), at as u32, "{w:?}");
            }
        }
        assert_eq!(leading_digits(u64::from_le_bytes(*b"09876543")), 8);
    }

    #[test]
    fn eight_digits_read_leading_zero_bytes_as_zeros() {
        assert_eq!(eight_digits(u64::from_le_bytes(*b"12345678")), 12_345_678);
        assert_eq!(eight_digits(u64::from_le_bytes(*b"99999999")), 99_999_999);
        assert_eq!(eight_digits(u64::from_le_bytes(*b"\0\0\0\x000042")), 42);
    }

    #[test]
    fn a_prefix_ends_where_the_number_does() {
        for (s, want) in [
            ("1027 1000\n", Some((1027.0, 4))),
            ("1234567.25\n", Some((1_234_567.25, 10))),
            ("123456789012345 ", Some((123_456_789_012_345.0, 15))),
            ("-0.005\r\n", Some((-0.005, 6))),
            ("1.5e+09\tx", Some((1.5e9, 7))),
            ("1e3.5", Some((1000.0, 3))),
            ("5.}", Some((5.0, 2))),
            ("1.2.3", Some((1.2, 3))),
            ("1234567890123456 ", None),
            ("12345678.12345678 ", None),
            ("1e1000 ", None),
            ("1e ", None),
            (". ", None),
            ("- ", None),
            ("Inf ", None),
        ] {
            assert_eq!(prefix(s.as_bytes()), want, "{s:?}");
        }
        for (s, want) in [
            ("1700000000000\n", Some((1_700_000_000_000, 13))),
            ("-5 ", Some((-5, 2))),
            ("+0\r", Some((0, 2))),
            ("999999999999999999 ", Some((999_999_999_999_999_999, 18))),
            ("1234567890123456789 ", None),
            ("+ ", None),
            ("#1", None),
        ] {
            assert_eq!(integer_prefix(s.as_bytes()), want, "{s:?}");
        }
    }

    /// `sign int [. frac] [e exp]` as text.
    fn number(
        sign: &str,
        int: &str,
        frac: Option<&str>,
        exp: Option<(&str, &str, String)>,
    ) -> String {
        let mut s = format!("{sign}{int}");
        if let Some(f) = frac {
            s.push('.');
            s.push_str(f);
        }
        if let Some((e, es, ed)) = exp {
            s.push_str(&format!("{e}{es}{ed}"));
        }
        s
    }

    proptest! {
        /// A number followed by any byte that cannot continue it reads as [`fast`] reads the
        /// number alone, with its length; digits long enough to be read a word at a time are
        /// included.
        #[test]
        fn a_prefix_is_the_number_alone(
            sign in prop::sample::select(&["", "-", "+"][..]),
            int in "[0-9]{0,16}",
            frac in prop::option::of("[0-9]{0,16}"),
            exp in prop::option::of((prop::sample::select(&["e", "E"][..]),
                                     prop::sample::select(&["", "-", "+"][..]),
                                     "[0-9]{1,4}")),
            after in prop::sample::select(&[" ", "\t", "\n", "\r\n", "}", "x 1", " 12345678"][..]),
        ) {
            let mut s = number(sign, &int, frac.as_deref(), exp);
            let alone = fast(s.as_bytes()).map(|v| (v.to_bits(), s.len()));
            s.push_str(after);
            let got = prefix(s.as_bytes()).map(|(v, n)| (v.to_bits(), n));
            prop_assert_eq!(got, alone, "{:?}", s);
        }

        #[test]
        fn an_integer_prefix_is_the_integer(
            sign in prop::sample::select(&["", "-", "+"][..]),
            digits in "[0-9]{0,20}",
            after in prop::sample::select(&["", " ", "\n", "x", ".5", " 12345678"][..]),
        ) {
            let s = format!("{sign}{digits}{after}");
            let want = (!digits.is_empty() && digits.len() <= 18)
                .then(|| (format!("{sign}{digits}").parse::<i64>().unwrap(), sign.len() + digits.len()));
            prop_assert_eq!(integer_prefix(s.as_bytes()), want, "{:?}", s);
        }

        #[test]
        fn agrees_with_the_standard_parser(
            sign in prop::sample::select(&["", "-", "+"][..]),
            int in "[0-9]{0,17}",
            frac in prop::option::of("[0-9]{0,17}"),
            exp in prop::option::of((prop::sample::select(&["e", "E"][..]),
                                     prop::sample::select(&["", "-", "+"][..]),
                                     "[0-9]{1,3}")),
        ) {
            let s = number(sign, &int, frac.as_deref(), exp.clone());
            let mantissa_digits = int.len() + frac.as_ref().map_or(0, String::len);
            match s.parse::<f64>() {
                Ok(want) if mantissa_digits > 0 => {
                    if let Some(got) = fast(s.as_bytes()) {
                        prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", s);
                    }
                }
                _ => prop_assert_eq!(fast(s.as_bytes()), None, "{}", s),
            }
        }
    }
}
