//! One line of line protocol into a [`Point`], with the byte offset of what is wrong.
//!
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`. Escapes follow
//! InfluxDB's reference: a backslash before a character that is special in its position
//! (`,` and space in a measurement; `,`, `=` and space in tag keys, tag values and field keys;
//! `"` in a string field value) or before another backslash stands for that character; a
//! backslash before anything else is a literal backslash. Delimiters are found before escapes
//! are resolved, so `\\,` is a backslash followed by a delimiting comma.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Characters a backslash escapes in a measurement.
const MEASUREMENT: &[u8] = b", ";
/// Characters a backslash escapes in tag keys, tag values and field keys.
const KEY: &[u8] = b",= ";

/// A field's value as magpie keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    /// Float, integer (`i`), unsigned (`u`) or boolean (1 or 0).
    Number(f64),
    /// A string: no sample, only counted.
    Text,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    /// The measurement, unescaped.
    pub measurement: Cow<'a, str>,
    /// Tags in line order, unescaped.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Fields in line order; keys unescaped.
    pub fields: Vec<(Cow<'a, str>, Field)>,
    /// The timestamp as written (its unit is the request's precision).
    pub timestamp: Option<i64>,
}

/// What is wrong with a line and where (byte offset in the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// Byte offset of the offending part.
    pub at: usize,
    /// What is wrong, in words.
    pub reason: String,
}

fn fail<T>(at: usize, reason: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        at,
        reason: reason.into(),
    })
}

struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    /// Text up to the first unescaped byte of `stops` (or the end). Stops are ASCII, so the
    /// cut is always on a character boundary even when a backslash precedes a multi-byte
    /// character.
    fn token(&mut self, stops: &[u8]) -> &'a str {
        let b = self.line.as_bytes();
        let start = self.pos;
        while self.pos < b.len() {
            let c = b[self.pos];
            if c == b'\\' && self.pos + 1 < b.len() {
                self.pos += 2;
                continue;
            }
            if stops.contains(&c) {
                break;
            }
            self.pos += 1;
        }
        &self.line[start..self.pos.min(b.len())]
    }

    /// A double-quoted string starting at the cursor; the cursor ends after the closing quote.
    fn quoted(&mut self) -> Result<(), LineError> {
        let b = self.line.as_bytes();
        let start = self.pos;
        self.pos += 1;
        while self.pos < b.len() {
            match b[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        fail(start, "string field value has no closing `\"`")
    }
}

/// Resolves the escapes of `s` for a position whose special characters are `specials`.
#[must_use]
pub fn unescape<'a>(s: &'a str, specials: &[u8]) -> Cow<'a, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && (n == '\\' || (n.is_ascii() && specials.contains(&(n as u8))))
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Splits `tag=value` at the first unescaped `=`.
fn split_pair(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'=' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// `s` cut to 40 characters for an error message (the whole line is quoted after it).
fn short(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(40) {
        None => Cow::Borrowed(s),
        Some((cut, _)) => Cow::Owned(format!("{}…", &s[..cut])),
    }
}

/// A field value that is not a string.
fn number(raw: &str) -> Result<f64, String> {
    let shown = short(raw);
    match raw {
        "" => return Err("field value is empty".into()),
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(i) = raw.strip_suffix('i') {
        let body = i.strip_prefix('-').unwrap_or(i);
        if !digits(body) {
            return Err(format!("`{shown}` is not an integer (digits then `i`)"));
        }
        #[allow(clippy::cast_precision_loss)]
        return i
            .parse::<i64>()
            .map(|v| v as f64)
            .map_err(|_| format!("`{shown}` is out of the 64-bit signed range"));
    }
    if let Some(u) = raw.strip_suffix('u') {
        if !digits(u) {
            return Err(format!(
                "`{shown}` is not an unsigned integer (digits then `u`)"
            ));
        }
        #[allow(clippy::cast_precision_loss)]
        return u
            .parse::<u64>()
            .map(|v| v as f64)
            .map_err(|_| format!("`{shown}` is out of the 64-bit unsigned range"));
    }
    // Rust would also read `inf` and `NaN`; line protocol has neither.
    if !raw
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return Err(format!(
            "`{shown}` is not a number, boolean or double-quoted string"
        ));
    }
    raw.parse::<f64>()
        .map_err(|_| format!("`{shown}` is not a number"))
}

/// Parses one line (without its `\n`; leading spaces, comments and blank lines are the
/// caller's business).
///
/// # Errors
/// The first thing wrong, with its byte offset.
pub fn line(line: &str) -> Result<Point<'_>, LineError> {
    let mut c = Cursor { line, pos: 0 };
    let m = c.token(MEASUREMENT);
    if m.is_empty() {
        return fail(0, "missing measurement");
    }
    let measurement = unescape(m, MEASUREMENT);
    let mut tags = Vec::new();
    while c.peek() == Some(b',') {
        c.pos += 1;
        let at = c.pos;
        let pair = c.token(b", ");
        let Some((k, v)) = split_pair(pair) else {
            return fail(at, format!("tag `{}` has no `=`", short(pair)));
        };
        if k.is_empty() {
            return fail(at, "tag key is empty");
        }
        if v.is_empty() {
            return fail(
                at + k.len() + 1,
                format!("tag `{}` has an empty value", short(k)),
            );
        }
        tags.push((unescape(k, KEY), unescape(v, KEY)));
    }
    c.skip_spaces();
    if c.at_end() {
        return fail(c.pos, "missing fields after the measurement and tags");
    }
    let mut fields = Vec::new();
    loop {
        let at = c.pos;
        let key = c.token(b"=, ");
        if key.is_empty() {
            return fail(at, "field key is empty");
        }
        if c.peek() != Some(b'=') {
            return fail(c.pos, format!("field `{}` has no `=value`", short(key)));
        }
        c.pos += 1;
        let vat = c.pos;
        let value = if c.peek() == Some(b'"') {
            c.quoted()?;
            if !matches!(c.peek(), None | Some(b',' | b' ')) {
                return fail(c.pos, "text after the closing `\"` of a string field");
            }
            Field::Text
        } else {
            let raw = c.token(b", ");
            Field::Number(number(raw).map_err(|reason| LineError { at: vat, reason })?)
        };
        fields.push((unescape(key, KEY), value));
        if c.peek() == Some(b',') {
            c.pos += 1;
        } else {
            break;
        }
    }
    c.skip_spaces();
    let mut timestamp = None;
    if !c.at_end() {
        let at = c.pos;
        let t = c.token(b" ");
        let ok = !t.is_empty()
            && t.strip_prefix('-')
                .unwrap_or(t)
                .bytes()
                .all(|b| b.is_ascii_digit());
        timestamp = Some(
            t.parse::<i64>()
                .ok()
                .filter(|_| ok)
                .ok_or_else(|| LineError {
                    at,
                    reason: format!("timestamp `{}` is not an integer", short(t)),
                })?,
        );
        c.skip_spaces();
        if !c.at_end() {
            return fail(c.pos, "text after the timestamp");
        }
    }
    Ok(Point {
        measurement,
        tags,
        fields,
        timestamp,
    })
}
