//! The text encodings, JSON and Influx line protocol, and the splitting of a topic's series
//! into messages of at most `max_message_bytes`.
//!
//! Splitting is per sample: when the next sample would take the message past the limit, the
//! message is closed and the next one starts with the series' labels again, so no message is
//! larger than the limit unless a single sample with its labels is.

use std::fmt::Write as _;

use magpie_sdk::abi::{Label, Point, SeriesRef};

use crate::Error;

/// Prometheus' staleness marker, a NaN with this bit pattern.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// A JSON string literal.
pub(crate) fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as JSON: a number when finite (shortest form that reads back bit for bit), else
/// one of the strings `"NaN"`, `"StaleNaN"`, `"+Inf"`, `"-Inf"`.
pub(crate) fn json_value(v: f64, out: &mut String) {
    if v.is_finite() {
        // `Debug` is the shortest round-trip form and always valid JSON (`1.0`, `1e300`).
        let _ = write!(out, "{v:?}");
    } else if v.is_nan() {
        out.push_str(if v.to_bits() == STALE_NAN {
            "\"StaleNaN\""
        } else {
            "\"NaN\""
        });
    } else if v > 0.0 {
        out.push_str("\"+Inf\"");
    } else {
        out.push_str("\"-Inf\"");
    }
}

/// Escapes an Influx measurement (commas, spaces) or tag key/value (also `=`).
fn influx_escape(s: &str, tag: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            ',' | ' ' => out.push('\\'),
            '=' if tag => out.push('\\'),
            '\n' => {
                // A newline would end the line; line protocol has no escape for it.
                out.push_str("\\n");
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
}

/// Which text encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    Json,
    Influx,
}

impl Text {
    const fn open(self) -> &'static str {
        match self {
            Self::Json => "{\"series\":[",
            Self::Influx => "",
        }
    }

    /// Bytes that close a series and the message.
    const fn close_len(self) -> usize {
        match self {
            Self::Json => 4,
            Self::Influx => 0,
        }
    }

    /// The per-series head: JSON `{"labels":{..},"samples":[`, Influx `measurement,tags`.
    fn head(self, labels: &[Label<'_>], out: &mut String) {
        out.clear();
        match self {
            Self::Json => {
                out.push_str("{\"labels\":{");
                for (i, l) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(&l.name, out);
                    out.push(':');
                    json_string(&l.value, out);
                }
                out.push_str("},\"samples\":[");
            }
            Self::Influx => {
                let name = labels
                    .iter()
                    .find(|l| l.name == "__name__")
                    .map_or("", |l| &*l.value);
                influx_escape(if name.is_empty() { "metric" } else { name }, false, out);
                for l in labels {
                    if l.name == "__name__" || l.value.is_empty() {
                        continue;
                    }
                    out.push(',');
                    influx_escape(&l.name, true, out);
                    out.push('=');
                    influx_escape(&l.value, true, out);
                }
            }
        }
    }

    /// One sample; `false` when the encoding cannot carry it (Influx has no NaN or infinity).
    fn point(self, head: &str, p: Point, out: &mut String) -> bool {
        out.clear();
        match self {
            Self::Json => {
                let _ = write!(out, "[{},", p.t);
                json_value(p.v, out);
                out.push(']');
                true
            }
            Self::Influx => {
                if !p.v.is_finite() {
                    return false;
                }
                let ns = i128::from(p.t) * 1_000_000;
                let _ = writeln!(out, "{head} value={:?} {ns}", p.v);
                true
            }
        }
    }
}

/// Messages being written for one topic.
pub(crate) struct Writer {
    text: Text,
    max: usize,
    cur: String,
    cur_samples: u32,
    /// Whether `cur` holds a series (JSON: one is open).
    has_series: bool,
    series_open: bool,
    head: String,
    piece: String,
    done: Vec<(Vec<u8>, u32)>,
}

impl Writer {
    pub(crate) fn new(text: Text, max: usize) -> Self {
        Self {
            text,
            max,
            cur: String::from(text.open()),
            cur_samples: 0,
            has_series: false,
            series_open: false,
            head: String::new(),
            piece: String::new(),
            done: Vec::new(),
        }
    }

    fn finish_message(&mut self) {
        if self.series_open && self.text == Text::Json {
            self.cur.push_str("]}");
        }
        self.series_open = false;
        if self.text == Text::Json {
            self.cur.push_str("]}");
        }
        let body = std::mem::replace(&mut self.cur, String::from(self.text.open()));
        self.done
            .push((body.into_bytes(), std::mem::take(&mut self.cur_samples)));
        self.has_series = false;
    }

    pub(crate) fn series(&mut self, s: SeriesRef<'_, '_>) -> Result<(), Error> {
        self.text.head(s.labels, &mut self.head);
        for p in s.points {
            let carried = self.text.point(&self.head, *p, &mut self.piece);
            self.cur_samples = self.cur_samples.checked_add(1).ok_or(Error::TooLarge)?;
            if !carried {
                continue;
            }
            let need = match self.text {
                Text::Influx => self.piece.len(),
                Text::Json if self.series_open => 1 + self.piece.len(),
                Text::Json => usize::from(self.has_series) + self.head.len() + self.piece.len(),
            } + self.text.close_len();
            if self.has_series && self.cur.len() + need > self.max {
                // The sample just counted moves to the next message.
                self.cur_samples -= 1;
                self.finish_message();
                self.cur_samples = 1;
            }
            match self.text {
                Text::Influx => {}
                Text::Json if self.series_open => self.cur.push(','),
                Text::Json => {
                    if self.has_series {
                        self.cur.push(',');
                    }
                    self.cur.push_str(&self.head);
                    self.series_open = true;
                }
            }
            self.has_series = true;
            self.cur.push_str(&self.piece);
        }
        if self.series_open {
            self.cur.push_str("]}");
            self.series_open = false;
        }
        Ok(())
    }

    /// The messages with the samples each carries. Samples the encoding could not carry count
    /// towards the message they fell in; a topic whose samples all were such gives one message
    /// with no series (JSON `{"series":[]}`, Influx empty).
    pub(crate) fn finish(mut self) -> Vec<(Vec<u8>, u32)> {
        if self.has_series || self.cur_samples > 0 {
            self.finish_message();
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: f64) -> String {
        let mut out = String::new();
        json_value(v, &mut out);
        out
    }

    #[test]
    fn json_values() {
        assert_eq!(s(1.0), "1.0");
        assert_eq!(s(-0.0), "-0.0");
        assert_eq!(s(0.1), "0.1");
        assert_eq!(s(1e300), "1e300");
        assert_eq!(s(f64::NAN), "\"NaN\"");
        assert_eq!(s(f64::from_bits(STALE_NAN)), "\"StaleNaN\"");
        assert_eq!(s(f64::INFINITY), "\"+Inf\"");
        assert_eq!(s(f64::NEG_INFINITY), "\"-Inf\"");
    }

    #[test]
    fn json_strings_escape() {
        let mut out = String::new();
        json_string("a\"b\\c\nd\u{1}é", &mut out);
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn influx_escapes() {
        let mut out = String::new();
        influx_escape("a b,c=d", true, &mut out);
        assert_eq!(out, "a\\ b\\,c\\=d");
        out.clear();
        influx_escape("a b,c=d", false, &mut out);
        assert_eq!(out, "a\\ b\\,c=d");
    }
}
