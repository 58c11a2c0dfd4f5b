//! The `influx` decoder: InfluxDB line protocol as Telegraf and InfluxDB 1.x/2.x clients send
//! it (`POST /write`, `POST /api/v2/write`, or an MQTT payload from Telegraf's mqtt output
//! with `data_format = "influx"`).
//!
//! - Every numeric field is a sample: floats, integers (`1i`), unsigned (`1u`) and booleans
//!   (`t`, `T`, `true`, `True`, `TRUE` and the same for false, as 1 and 0). String fields
//!   carry no number; they are skipped and counted (logged per message at debug level).
//! - Names follow Telegraf's Prometheus output by default (`naming = "telegraf"`): field
//!   `value` is named after the measurement alone, any other field `<measurement>_<field>`.
//!   `naming = "vmagent"` names every field `<measurement>_<field>` (vmagent's default
//!   `-influxMeasurementFieldSeparator=_`, so `value` too) and adds a `db` label from the
//!   `?db=` query parameter unless the line has a `db` tag, as vmagent's `-influxDBLabel`.
//!   In both, a character a Prometheus name may not hold becomes `_` and a leading digit gets a
//!   `_` in front (`-usePromCompatibleNaming`); tags become labels the same way, and a tag
//!   named like a reserved label (`__…`) refuses the line.
//! - Timestamps are read in the request's `precision` (`?precision=` on the path: `ns`/`n`
//!   default, `us`/`u`, `ms`, `s`, and InfluxDB 1.x's `m`, `h`), else the `precision` of
//!   `[ingest.config]` (for MQTT, default `ns`), and kept as milliseconds. A line without one
//!   gets the receive time.
//! - A malformed line refuses the whole body; the error names the line number, the column
//!   (in characters, from 1) and quotes the line. Nothing of a refused body is kept.
//!
//! [`Influx::decode`] is the whole logic and compiles natively for tests; on wasm32 the crate
//! is the plugin.
//!
//! # Example
//!
//! The default decoder of `POST /write` and `POST /api/v2/write` on an HTTP source; on MQTT,
//! as Telegraf's MQTT output publishes it:
//!
//! ```toml
//! [[ingest]]
//! name = "telegraf"
//! source = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topics = ["telegraf/#"]
//! qos = 1
//! plugin = "influx"
//! [ingest.config]
//! precision = "s"                   # ns (default), us, ms, s
//! naming = "telegraf"               # or "vmagent": always <measurement>_<field>
//! ```
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod parse;

#[cfg(test)]
mod tests;

use alloc::format;
use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use magpie_sdk::abi::{ConfigError, Value};
use parse::Field;

/// Where decoded samples go: (metric name, labels sorted by name, value, timestamp in ms).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64, Option<i64>) -> Result<(), String> + 'o;

/// How fields become metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Telegraf's Prometheus output: field `value` → `<measurement>`.
    Telegraf,
    /// vmagent: always `<measurement>_<field>`, plus `db` from `?db=`.
    Vmagent,
}

/// The unit of timestamps in a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Nanoseconds (the protocol's default).
    Nanos,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
    /// Minutes (InfluxDB 1.x).
    Minutes,
    /// Hours (InfluxDB 1.x).
    Hours,
}

impl Precision {
    /// Reads a `precision` value.
    ///
    /// # Errors
    /// A unit InfluxDB does not know.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "ns" | "n" => Self::Nanos,
            "us" | "u" | "µ" | "µs" => Self::Micros,
            "ms" => Self::Millis,
            "s" => Self::Seconds,
            "m" => Self::Minutes,
            "h" => Self::Hours,
            _ => {
                return Err(format!(
                    "precision `{s}` is not one of ns, us, ms, s (or n, u, m, h)"
                ));
            }
        })
    }

    /// `t` in this unit as unix milliseconds (sub-millisecond parts round down).
    #[must_use]
    pub fn to_ms(self, t: i64) -> Option<i64> {
        match self {
            Self::Nanos => Some(t.div_euclid(1_000_000)),
            Self::Micros => Some(t.div_euclid(1_000)),
            Self::Millis => Some(t),
            Self::Seconds => t.checked_mul(1_000),
            Self::Minutes => t.checked_mul(60_000),
            Self::Hours => t.checked_mul(3_600_000),
        }
    }
}

/// What one message held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Samples sent to `out`.
    pub samples: usize,
    /// String fields skipped.
    pub strings: usize,
}

/// The decoder with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Influx {
    naming: Naming,
    precision: Precision,
}

impl Default for Influx {
    fn default() -> Self {
        Self {
            naming: Naming::Telegraf,
            precision: Precision::Nanos,
        }
    }
}

/// The longest part of a line quoted in an error.
const QUOTE_CHARS: usize = 160;

impl Influx {
    /// Reads `[ingest.config]`: `naming` (`"telegraf"`, default, or `"vmagent"`) and
    /// `precision` (default `"ns"`; a request's `?precision=` wins).
    ///
    /// # Errors
    /// Unknown keys, wrong types, unknown values.
    pub fn from_table(config: &Value) -> Result<Self, ConfigError> {
        config.expect_table(&["naming", "precision"])?;
        let naming = match config.opt_str("naming")? {
            None | Some("telegraf") => Naming::Telegraf,
            Some("vmagent") => Naming::Vmagent,
            Some(other) => {
                return Err(ConfigError::new(
                    "naming",
                    format!("`{other}` is not \"telegraf\" or \"vmagent\""),
                ));
            }
        };
        let precision = match config.opt_str("precision")? {
            None => Precision::Nanos,
            Some(p) => Precision::parse(p).map_err(|e| ConfigError::new("precision", e))?,
        };
        Ok(Self { naming, precision })
    }

    /// Decodes one body. `context` is the HTTP path with its query string (read for
    /// `precision` and `db`) or the MQTT topic.
    ///
    /// # Errors
    /// The first malformed line (number, column, reason, the line quoted), a bad
    /// `precision`, or `out`'s own refusal. `out` may have been called before an error; the
    /// caller drops the whole message then.
    pub fn decode(&self, context: &str, body: &[u8], out: &mut Out<'_>) -> Result<Summary, String> {
        let query = context.split_once('?').map_or("", |(_, q)| q);
        let mut precision = self.precision;
        let mut db = None;
        for (k, v) in query.split('&').filter_map(|p| p.split_once('=')) {
            match k {
                "precision" => precision = Precision::parse(&percent_decode(v))?,
                "db" if self.naming == Naming::Vmagent && !v.is_empty() => {
                    db = Some(percent_decode(v));
                }
                _ => {}
            }
        }
        let text = core::str::from_utf8(body).map_err(|e| {
            let valid = &body[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let col = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
            format!("line {line}, column {col}: not UTF-8")
        })?;
        let mut summary = Summary::default();
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut name = String::new();
        for (i, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let indent = raw.len() - raw.trim_start_matches([' ', '\t']).len();
            let line = &raw[indent..];
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fault = |at: usize, reason: &str| {
                let col = raw[..indent + at].chars().count() + 1;
                format!("line {}, column {col}: {reason}: {}", i + 1, quote(raw))
            };
            let point = parse::line(line).map_err(|e| fault(e.at, &e.reason))?;
            labels.clear();
            for (k, v) in &point.tags {
                let key = label_name(k);
                if key.starts_with("__") {
                    return Err(fault(
                        0,
                        &format!("tag `{k}` is a reserved label name (`__…`)"),
                    ));
                }
                labels.push((key, v.to_string()));
            }
            if let Some(db) = &db
                && !labels.iter().any(|(k, _)| k == "db")
            {
                labels.push(("db".into(), db.clone()));
            }
            labels.sort();
            if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(fault(0, &format!("two tags become label `{}`", w[0].0)));
            }
            let t_ms = match point.timestamp {
                None => None,
                Some(t) => Some(precision.to_ms(t).ok_or_else(|| {
                    fault(
                        0,
                        &format!("timestamp {t} overflows in precision {precision:?}"),
                    )
                })?),
            };
            let borrowed: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            for (field, value) in &point.fields {
                let Field::Number(v) = value else {
                    summary.strings += 1;
                    continue;
                };
                self.metric_name(&point.measurement, field, &mut name);
                out(&name, &borrowed, *v, t_ms)?;
                summary.samples += 1;
            }
        }
        Ok(summary)
    }

    /// The metric name of `field` of `measurement`, into `name`.
    fn metric_name(&self, measurement: &str, field: &str, name: &mut String) {
        name.clear();
        if self.naming == Naming::Telegraf && field == "value" {
            push_sanitized(measurement, name, true);
        } else {
            push_sanitized(measurement, name, true);
            name.push('_');
            push_sanitized(field, name, true);
        }
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            name.insert(0, '_');
        }
    }
}

/// Appends `s` with characters outside `[a-zA-Z0-9_]` (and `:` when `colon`) as `_`.
fn push_sanitized(s: &str, out: &mut String, colon: bool) {
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
            c
        } else {
            '_'
        }
    }));
}

/// A tag key as a Prometheus label name.
fn label_name(key: &str) -> String {
    let mut s = String::with_capacity(key.len() + 1);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        s.push('_');
    }
    push_sanitized(key, &mut s, false);
    s
}

/// `%XX` sequences of a query value (and `+` as space); anything malformed stays as written.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' => {
                match (
                    b.get(i + 1).and_then(|c| hex(*c)),
                    b.get(i + 2).and_then(|c| hex(*c)),
                ) {
                    #[allow(clippy::cast_possible_truncation)]
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `line`, shortened to [`QUOTE_CHARS`] characters, in backquotes.
fn quote(line: &str) -> String {
    match line.char_indices().nth(QUOTE_CHARS) {
        None => format!("`{line}`"),
        Some((cut, _)) => format!("`{}…`", &line[..cut]),
    }
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use super::Influx;
    use alloc::format;
    use magpie_sdk::abi::{DecodeRequest, Level, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error, log};

    impl Decoder for Influx {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            Influx::from_table(config).map_err(Error::new)
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            let summary = Influx::decode(self, req.context(), req.body(), &mut |n, l, v, t| {
                out.sample(n, l.iter().copied(), v, t)
                    .map_err(|_| "the host took no more samples".into())
            })
            .map_err(Error::new)?;
            if summary.strings > 0 {
                log(
                    Level::Debug,
                    &format!(
                        "skipped {} string fields; context={} samples={}",
                        summary.strings,
                        req.context(),
                        summary.samples
                    ),
                );
            }
            Ok(())
        }
    }

    magpie_sdk::export_decoder!(Influx);
}
