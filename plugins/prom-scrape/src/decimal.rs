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

/// The value of `b` if it is `[+-]` then `digits [. digits*] [e [+-] digits]` or
/// `. digits [e [+-] digits]` within the fast path's limits; `None` otherwise (which says
/// nothing about whether `b` is a number).
pub(crate) fn fast(b: &[u8]) -> Option<f64> {
    let (negative, rest) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let mut m: u64 = 0;
    let mut digits: u32 = 0;
    let mut frac: i32 = 0;
    let mut dot = false;
    let mut i = 0;
    while let Some(&c) = rest.get(i) {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            if digits == MAX_DIGITS {
                return None;
            }
            m = m * 10 + u64::from(d);
            digits += 1;
            frac += i32::from(dot);
        } else if c == b'.' && !dot {
            dot = true;
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut exp: i32 = 0;
    if let Some(&c) = rest.get(i) {
        if c != b'e' && c != b'E' {
            return None;
        }
        i += 1;
        let exp_negative = match rest.get(i) {
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
        let exp_digits = &rest[i..];
        if exp_digits.is_empty() || exp_digits.len() > MAX_EXP_DIGITS as usize {
            return None;
        }
        for &c in exp_digits {
            let d = c.wrapping_sub(b'0');
            if d >= 10 {
                return None;
            }
            exp = exp * 10 + i32::from(d);
        }
        if exp_negative {
            exp = -exp;
        }
    }
    let e = exp - frac;
    #[allow(clippy::cast_precision_loss)] // m < 10^15 < 2^53: exact
    let m = m as f64;
    let value = if e >= 0 {
        m * *POW10.get(e.unsigned_abs() as usize)?
    } else {
        m / *POW10.get(e.unsigned_abs() as usize)?
    };
    Some(if negative { -value } else { value })
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

    proptest! {
        #[test]
        fn agrees_with_the_standard_parser(
            sign in prop::sample::select(&["", "-", "+"][..]),
            int in "[0-9]{0,12}",
            frac in prop::option::of("[0-9]{0,10}"),
            exp in prop::option::of((prop::sample::select(&["e", "E"][..]),
                                     prop::sample::select(&["", "-", "+"][..]),
                                     "[0-9]{1,3}")),
        ) {
            let mut s = String::from(sign);
            s.push_str(&int);
            if let Some(f) = &frac {
                s.push('.');
                s.push_str(f);
            }
            if let Some((e, es, ed)) = &exp {
                s.push_str(&format!("{e}{es}{ed}"));
            }
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
