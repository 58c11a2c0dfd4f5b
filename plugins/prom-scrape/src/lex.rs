//! Tokens shared by both formats: metric and label names, label sets (unescaped into a scratch
//! buffer only when a value holds a `\`), numbers and timestamps.
//!
//! Label sets are recorded as [`LabelSpan`]s, byte ranges into either the line or the scratch
//! string, so parsing a sample allocates nothing once the buffers have grown.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Reason;
use crate::{decimal, scan};

/// Where an (unescaped) label value lives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueRef {
    /// `line[start..end]`, written without escapes.
    Line(u32, u32),
    /// `scratch[start..end]`, unescaped.
    Scratch(u32, u32),
}

/// One label: its name is always `line[name.0..name.1]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelSpan {
    pub(crate) name: (u32, u32),
    pub(crate) value: ValueRef,
}

impl LabelSpan {
    pub(crate) fn name<'a>(&self, line: &'a str) -> &'a str {
        &line[self.name.0 as usize..self.name.1 as usize]
    }

    pub(crate) fn value<'a>(&self, line: &'a str, scratch: &'a str) -> &'a str {
        match self.value {
            ValueRef::Line(s, e) => &line[s as usize..e as usize],
            ValueRef::Scratch(s, e) => &scratch[s as usize..e as usize],
        }
    }
}

/// A position in a line. Lines are at most `u32::MAX` bytes (the line limit is checked first).
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor {
            s: s.as_bytes(),
            i: 0,
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs (text 0.0.4 allows runs of both between tokens).
    pub(crate) fn skip_blanks(&mut self) -> bool {
        let from = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > from
    }

    /// The bytes up to (not including) the next byte in `stops`, or to the end.
    pub(crate) fn token_until(&mut self, stops: &[u8]) -> (usize, usize) {
        let from = self.i;
        let rest = self.s.get(from..).unwrap_or_default();
        // Not `stops.contains`: for bytes that is a `memchr` call per byte; with the constant
        // one- or two-byte `stops` of the callers this inlines to plain compares.
        self.i += rest
            .iter()
            .position(|b| stops.iter().any(|s| s == b))
            .unwrap_or(rest.len());
        (from, self.i)
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Reads `[a-zA-Z_:][a-zA-Z0-9_:]*`; the range is empty if none is there.
pub(crate) fn metric_name(cur: &mut Cursor<'_>) -> (usize, usize) {
    let from = cur.i;
    if let Some(b) = cur.peek()
        && (is_name_start(b) || b == b':')
    {
        cur.i += 1 + scan::name_len(&cur.s[cur.i + 1..], true);
    }
    (from, cur.i)
}

/// Whether the whole string is a valid metric name.
pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut cur = Cursor::new(s);
    let (a, b) = metric_name(&mut cur);
    b > a && cur.at_end()
}

/// Reads `[a-zA-Z_][a-zA-Z0-9_]*`; the range is empty if none is there.
fn label_name(cur: &mut Cursor<'_>) -> (usize, usize) {
    let from = cur.i;
    if cur.peek().is_some_and(is_name_start) {
        cur.i += 1 + scan::name_len(&cur.s[cur.i + 1..], false);
    }
    (from, cur.i)
}

/// Reads a label value after its opening `"`, through the closing `"`.
///
/// `\\`, `\"` and `\n` are unescaped; any other escape is kept as written (both formats'
/// reference parsers do the same). Values without a `\` are not copied.
fn label_value(cur: &mut Cursor<'_>, scratch: &mut String) -> Result<ValueRef, Reason> {
    let from = cur.i;
    let Some(stop) = scan::find_quote_or_backslash(cur.s.get(from..).unwrap_or_default()) else {
        return Err(Reason::UnterminatedLabelValue);
    };
    cur.i = from + stop;
    if cur.s[cur.i] == b'"' {
        cur.i += 1;
        return Ok(ValueRef::Line(from as u32, (cur.i - 1) as u32));
    }
    // Slow path: the value has escapes.
    let s_from = scratch.len();
    let line = cur.s;
    let mut run = from;
    loop {
        match cur.peek() {
            None => return Err(Reason::UnterminatedLabelValue),
            Some(b'"') => {
                push_str_bytes(scratch, &line[run..cur.i]);
                cur.i += 1;
                return Ok(ValueRef::Scratch(s_from as u32, scratch.len() as u32));
            }
            Some(b'\\') => {
                push_str_bytes(scratch, &line[run..cur.i]);
                let replacement = match line.get(cur.i + 1) {
                    None => return Err(Reason::UnterminatedLabelValue),
                    Some(b'\\') => Some('\\'),
                    Some(b'"') => Some('"'),
                    Some(b'n') => Some('\n'),
                    Some(_) => None,
                };
                match replacement {
                    Some(c) => {
                        scratch.push(c);
                        cur.i += 2;
                        run = cur.i;
                    }
                    None => {
                        // Keep the backslash; the next character is copied with the run.
                        run = cur.i;
                        cur.i += 1;
                    }
                }
            }
            Some(_) => cur.i += 1,
        }
    }
}

/// Appends bytes that are known to be whole UTF-8 characters (they come from a `&str` and are
/// cut only at ASCII bytes).
fn push_str_bytes(scratch: &mut String, bytes: &[u8]) {
    if let Ok(s) = core::str::from_utf8(bytes) {
        scratch.push_str(s);
    }
}

/// Parses a label set after its `{`, through the `}`, appending to `spans`.
///
/// Strict (OpenMetrics): no blanks, no trailing comma. Lenient (text 0.0.4): blanks around
/// tokens and a trailing comma are accepted, as Prometheus does.
pub(crate) fn label_set(
    cur: &mut Cursor<'_>,
    strict: bool,
    spans: &mut Vec<LabelSpan>,
    scratch: &mut String,
) -> Result<(), Reason> {
    let first = spans.len();
    let mut after_comma = false;
    loop {
        if !strict {
            cur.skip_blanks();
        }
        if cur.eat(b'}') {
            if strict && after_comma {
                return Err(Reason::InvalidLabelSeparator);
            }
            break;
        }
        let name = label_name(cur);
        if name.0 == name.1 {
            return Err(match cur.peek() {
                Some(b',') => Reason::InvalidLabelSeparator,
                _ => Reason::InvalidLabelName,
            });
        }
        // Nearly always `="` follows the name; the general path below, which allows blanks in
        // text 0.0.4 and names the error, reaches the same state then.
        if cur.s.get(cur.i..cur.i + 2) == Some(b"=\"") {
            cur.i += 2;
        } else {
            opening_quote(cur, strict)?;
        }
        let value = label_value(cur, scratch)?;
        spans.push(LabelSpan {
            name: (name.0 as u32, name.1 as u32),
            value,
        });
        if !strict {
            cur.skip_blanks();
        }
        if cur.eat(b',') {
            after_comma = true;
        } else if cur.peek() == Some(b'}') {
            after_comma = false;
        } else {
            return Err(if cur.at_end() {
                Reason::UnterminatedLabelValue
            } else {
                Reason::InvalidLabelSeparator
            });
        }
    }
    check_unique(&spans[first..], cur.s)
}

/// The `=` and `"` between a label's name and value, with blanks around the `=` in text 0.0.4.
fn opening_quote(cur: &mut Cursor<'_>, strict: bool) -> Result<(), Reason> {
    if !strict {
        cur.skip_blanks();
    }
    if !cur.eat(b'=') {
        return Err(if cur.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            Reason::InvalidLabelName
        } else {
            Reason::MissingEquals
        });
    }
    if !strict {
        cur.skip_blanks();
    }
    if !cur.eat(b'"') {
        return Err(Reason::MissingQuote);
    }
    Ok(())
}

/// Label sets are usually small: compare pairwise below this size, sort above it so a hostile
/// line with thousands of labels costs n·log n, not n².
const PAIRWISE_MAX: usize = 16;

fn check_unique(spans: &[LabelSpan], line: &[u8]) -> Result<(), Reason> {
    let name = |s: &LabelSpan| &line[s.name.0 as usize..s.name.1 as usize];
    if spans.len() <= PAIRWISE_MAX {
        for (i, a) in spans.iter().enumerate() {
            if spans[i + 1..].iter().any(|b| name(a) == name(b)) {
                return Err(Reason::DuplicateLabel);
            }
        }
        return Ok(());
    }
    let mut names: Vec<&[u8]> = spans.iter().map(name).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Reason::DuplicateLabel);
    }
    Ok(())
}

/// Parses a number: `[+-]` then digits with an optional fraction and exponent, or `Inf`,
/// `Infinity` (any case, optional sign), or `NaN` (any case). No hex, no `_`, no blanks.
pub(crate) fn number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if let Some(v) = decimal::fast(b) {
        return Some(v);
    }
    number_slow(s)
}

/// [`number`] of bytes that may not be UTF-8 (then not a number): the common decimal is read
/// without a UTF-8 check.
pub(crate) fn number_bytes(b: &[u8]) -> Option<f64> {
    if let Some(v) = decimal::fast(b) {
        return Some(v);
    }
    number_slow(core::str::from_utf8(b).ok()?)
}

#[cold]
fn number_slow(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let unsigned = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    if unsigned.first().is_some_and(u8::is_ascii_alphabetic) {
        let special = if unsigned.eq_ignore_ascii_case(b"inf")
            || unsigned.eq_ignore_ascii_case(b"infinity")
        {
            f64::INFINITY
        } else if unsigned.eq_ignore_ascii_case(b"nan") && unsigned.len() == b.len() {
            f64::NAN
        } else {
            return None;
        };
        return Some(if b[0] == b'-' { -special } else { special });
    }
    if !is_decimal(unsigned) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// `digits [. digits*] [e [+-] digits]` or `. digits [e ...]`, with at least one mantissa digit.
fn is_decimal(b: &[u8]) -> bool {
    let mut i = 0;
    let int_digits = count_digits(&b[i..]);
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = count_digits(&b[i..]);
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = count_digits(&b[i..]);
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn count_digits(b: &[u8]) -> usize {
    b.iter().take_while(|d| d.is_ascii_digit()).count()
}

/// A timestamp as written in the body: seconds for ordering checks, milliseconds for output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Timestamp {
    pub(crate) seconds: f64,
    pub(crate) ms: i64,
}

/// An OpenMetrics timestamp: a finite number of seconds. Milliseconds are computed exactly for
/// plain decimals (truncated toward zero, like Prometheus) and saturate outside the `i64` range.
pub(crate) fn om_timestamp(s: &str) -> Option<Timestamp> {
    let seconds = number(s)?;
    if !seconds.is_finite() {
        return None;
    }
    let ms = exact_ms(s).unwrap_or((seconds * 1000.0) as i64);
    Some(Timestamp { seconds, ms })
}

/// Milliseconds from `[+-]digits[.digits]`, or `None` for other forms or on overflow.
fn exact_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) => (&digits[..p], &digits[p + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut ms: i64 = 0;
    for &d in int {
        ms = ms.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    let mut millis = 0;
    for k in 0..3 {
        millis = millis * 10 + frac.get(k).map_or(0, |&d| i64::from(d - b'0'));
    }
    ms = ms.checked_mul(1000)?.checked_add(millis)?;
    Some(if negative { -ms } else { ms })
}

/// A text 0.0.4 timestamp: an integer number of milliseconds.
pub(crate) fn text_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = match b.first() {
        Some(b'+' | b'-') => &b[1..],
        _ => b,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Unescapes a `HELP` text into `out`: `\\` and `\n` always, `\"` too in OpenMetrics. Other
/// escapes are kept as written.
pub(crate) fn unescape_help(text: &str, quote: bool, out: &mut String) {
    out.clear();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            Some('"') if quote => {
                out.push('"');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_grammar() {
        for (s, v) in [
            ("1", 1.0),
            ("-1", -1.0),
            ("+1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1.5E-3", 0.0015),
            ("0000000000000000000000000000000000000000001", 1.0),
            ("9223372036854775808", 9_223_372_036_854_775_808.0),
        ] {
            assert_eq!(number(s), Some(v), "{s}");
        }
        assert_eq!(number("+Inf"), Some(f64::INFINITY));
        assert_eq!(number("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(number("Infinity"), Some(f64::INFINITY));
        assert!(number("NaN").is_some_and(f64::is_nan));
        for bad in [
            "", "+", ".", "e3", "1e", "1_2", "0x1", "0x1p-3", "1 ", " 1", "-NaN", "Infin", "1.2.3",
            "1e3.5",
        ] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn om_timestamps_convert_to_milliseconds() {
        let ms = |s| om_timestamp(s).map(|t| t.ms);
        assert_eq!(ms("1"), Some(1000));
        assert_eq!(ms("1.1"), Some(1100));
        assert_eq!(ms("1.0019"), Some(1001));
        assert_eq!(ms("-1.1"), Some(-1100));
        assert_eq!(ms("1.5e3"), Some(1_500_000));
        assert_eq!(ms("000"), Some(0));
        assert_eq!(ms("12345678901234567890.1234567890"), Some(i64::MAX));
        assert_eq!(ms("NaN"), None);
        assert_eq!(ms("Inf"), None);
    }

    #[test]
    fn label_values_unescape_only_known_escapes() {
        let line = r#"a="x\\y\"z\n",b="plain",c="\q""#;
        let mut cur = Cursor::new(line);
        let mut spans = Vec::new();
        let mut scratch = String::new();
        let with_brace = alloc::format!("{line}}}");
        let mut cur2 = Cursor::new(&with_brace);
        label_set(&mut cur2, true, &mut spans, &mut scratch).expect("valid label set");
        let got: Vec<(&str, &str)> = spans
            .iter()
            .map(|s| (s.name(&with_brace), s.value(&with_brace, &scratch)))
            .collect();
        assert_eq!(got, [("a", "x\\y\"z\n"), ("b", "plain"), ("c", "\\q")]);
        // Without the closing brace the set is unterminated.
        spans.clear();
        assert!(label_set(&mut cur, true, &mut spans, &mut scratch).is_err());
    }

    #[test]
    fn help_unescaping() {
        let mut out = String::new();
        unescape_help(r#"a\\b\nc\"d\e\"#, true, &mut out);
        assert_eq!(out, "a\\b\nc\"d\\e\\");
        unescape_help(r#"\""#, false, &mut out);
        assert_eq!(out, "\\\"");
    }
}
