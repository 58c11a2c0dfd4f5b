//! The OpenMetrics 1.0 text format, with the validity rules of its conformance suite.
//!
//! # Design
//! The body is checked as it streams, one line at a time, keeping only what the rules need:
//! - the current metric family (name, type, which metadata it had, whether samples started);
//! - the current *group* (a series, or a histogram/summary instance: labels without `le`,
//!   `quantile` or the stateset label), its last timestamp, and the fingerprints of the groups
//!   already closed in this family, to detect interleaving;
//! - for histograms, the running state of the current group (last bucket bound and value,
//!   count, sum flags), checked when the group ends;
//! - the fingerprints of every family name (with its type's suffixes) seen in the body, to
//!   detect clashes and families split into several runs.
//!
//! A sample belongs to the current family if its name is the family name plus a suffix that the
//! family's type allows; otherwise it starts a new family of type `unknown`. Family-level rules
//! (histogram completeness, name clashes) are checked when the family ends: at the next family,
//! or at the end of the body.

use alloc::string::String;

use crate::ctx::{Ctx, SampleLine};
use crate::hash::{Fingerprint, FingerprintSet, SetFingerprint};
use crate::histogram::HistogramGroup;
use crate::lex::{self, Cursor, Timestamp};
use crate::replay::{Buffered, OmEntry};
use crate::{MetricType, ParseError, Reason, Sink};

/// Sample name suffixes each type allows after the family name.
fn allowed_suffixes(ty: MetricType) -> &'static [&'static str] {
    match ty {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Summary => &["_sum", "_count", "_created", ""],
        MetricType::Histogram => &["_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
    }
}

/// Names a family reserves: no later family may use any of them (each listed once).
fn reserved_suffixes(ty: MetricType) -> &'static [&'static str] {
    match ty {
        MetricType::Counter => &["", "_total", "_created"],
        MetricType::Summary => &["", "_sum", "_count", "_created"],
        MetricType::Histogram => &["", "_count", "_sum", "_bucket", "_created"],
        MetricType::GaugeHistogram => &["", "_gcount", "_gsum", "_bucket"],
        MetricType::Info => &["", "_info"],
        MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
    }
}

fn parse_type(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "gaugehistogram" => MetricType::GaugeHistogram,
        "summary" => MetricType::Summary,
        "stateset" => MetricType::StateSet,
        "info" => MetricType::Info,
        "unknown" => MetricType::Unknown,
        _ => return None,
    })
}

fn is_integer(v: f64) -> bool {
    // `f64::fract` needs `std`. At 2^52 and above every finite f64 is an integer; below it the
    // round trip through i64 is exact.
    const EXACT: f64 = 4_503_599_627_370_496.0;
    v.is_finite() && (v.abs() >= EXACT || v == (v as i64) as f64)
}

/// A label value that must be a number (`le`, `quantile`): not NaN, and infinities spelled
/// `+Inf`/`-Inf` exactly.
fn canonical_number(s: &str) -> Option<f64> {
    let v = lex::number(s)?;
    if v.is_nan() || (v.is_infinite() && s != "+Inf" && s != "-Inf") {
        return None;
    }
    Some(v)
}

/// The low bits of a recorded family (`OmEntry::family`): the length of the line's name.
const NAME_LEN: u64 = 0xffff;

/// A family's name (its fingerprint) and type in one word, never 0.
fn family_key(name_fp: u64, ty: MetricType) -> u64 {
    (name_fp ^ (ty as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
}

/// A sample line parsed in OpenMetrics syntax.
struct OmSample {
    base: SampleLine,
    /// Where the series text (the name, or the name through the label set's `}`) ends.
    series_end: usize,
    timestamp: Option<Timestamp>,
    exemplar: Option<ParsedExemplar>,
}

/// An exemplar on a sample line: its labels are [`Ctx::spans`] from `first`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParsedExemplar {
    pub(crate) first: usize,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: Option<i64>,
}

/// Validation state across the lines of one body; reused between bodies.
#[derive(Debug, Default)]
pub(crate) struct OmState {
    family: String,
    /// A fingerprint of `family`, for [`OmState::family_key`].
    family_fp: u64,
    open: bool,
    /// `None` until a `TYPE` line; a family started by a sample is `Unknown`.
    ty: Option<MetricType>,
    has_help: bool,
    has_unit: bool,
    unit_nonempty: bool,
    has_samples: bool,
    group: Option<u64>,
    group_timestamp: Option<f64>,
    seen_groups: FingerprintSet,
    histogram: HistogramGroup,
    seen_names: FingerprintSet,
    name_buf: String,
    eof: bool,
}

impl OmState {
    pub(crate) fn reset(&mut self) {
        self.open = false;
        self.family.clear();
        self.seen_groups.clear();
        self.seen_names.clear();
        self.histogram = HistogramGroup::default();
        self.eof = false;
    }

    pub(crate) fn line<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        text: &str,
        line_no: u64,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        if self.eof {
            return Err(ParseError::TextAfterEof { line: line_no });
        }
        if text.is_empty() {
            return Err(ParseError::invalid(line_no, Reason::BlankLine, text));
        }
        if text.starts_with('#') {
            if text == "# EOF" {
                self.eof = true;
                return Ok(());
            }
            return self.metadata(ctx, text, line_no, sink);
        }
        self.sample(ctx, text, line_no, sink)
    }

    /// Called after the last line.
    pub(crate) fn end(&mut self, lines: u64) -> Result<(), ParseError> {
        self.finish_family(lines)?;
        if !self.eof {
            return Err(ParseError::MissingEof { lines });
        }
        Ok(())
    }

    fn start_family(&mut self, name: &str, ty: Option<MetricType>) {
        self.family.clear();
        self.family.push_str(name);
        let mut fp = Fingerprint::new(2);
        fp.write(name.as_bytes());
        self.family_fp = fp.finish();
        self.open = true;
        self.ty = ty;
        self.has_help = false;
        self.has_unit = false;
        self.unit_nonempty = false;
        self.has_samples = false;
        self.group = None;
        self.group_timestamp = None;
        self.seen_groups.clear();
        self.histogram = HistogramGroup::default();
    }

    /// Family-level checks when a family ends; `line_no` is where the end was noticed.
    fn finish_family(&mut self, line_no: u64) -> Result<(), ParseError> {
        if !core::mem::take(&mut self.open) {
            return Ok(());
        }
        let family_error = |this: &Self, reason| ParseError::invalid(line_no, reason, &this.family);
        if let Err(reason) = self.histogram.close() {
            return Err(family_error(self, reason));
        }
        let ty = self.ty.unwrap_or(MetricType::Unknown);
        for suffix in reserved_suffixes(ty) {
            self.name_buf.clear();
            self.name_buf.push_str(&self.family);
            self.name_buf.push_str(suffix);
            let mut fp = Fingerprint::new(1);
            fp.write(self.name_buf.as_bytes());
            if !self.seen_names.insert(fp.finish()) {
                return Err(family_error(self, Reason::ClashingName));
            }
        }
        Ok(())
    }

    fn metadata<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        text: &str,
        line_no: u64,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        let invalid = |reason| ParseError::invalid(line_no, reason, text);
        // `# KEYWORD name rest`: single spaces; `rest` may be empty but its space may not.
        let (keyword, rest) = text
            .strip_prefix("# ")
            .and_then(|t| t.split_once(' '))
            .ok_or_else(|| invalid(Reason::InvalidMetadata))?;
        if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
            return Err(invalid(Reason::InvalidMetadata));
        }
        let Some((name, value)) = rest.split_once(' ') else {
            return Err(invalid(if lex::is_metric_name(rest) {
                Reason::InvalidMetadata
            } else {
                Reason::InvalidMetricName
            }));
        };
        if !lex::is_metric_name(name) {
            return Err(invalid(Reason::InvalidMetricName));
        }
        if self.open && name == self.family {
            if self.has_samples {
                return Err(invalid(Reason::MetadataAfterSamples));
            }
        } else {
            self.finish_family(line_no)?;
            self.start_family(name, None);
        }
        let sink_err = |source| ParseError::Sink {
            line: line_no,
            source,
        };
        match keyword {
            "HELP" => {
                if core::mem::replace(&mut self.has_help, true) {
                    return Err(invalid(Reason::DuplicateHelp));
                }
                lex::unescape_help(value, true, &mut ctx.help);
                sink.help(name, &ctx.help).map_err(sink_err)
            }
            "TYPE" => {
                if self.ty.is_some() {
                    return Err(invalid(Reason::DuplicateType));
                }
                let ty = parse_type(value).ok_or_else(|| invalid(Reason::InvalidType))?;
                if self.unit_nonempty && matches!(ty, MetricType::Info | MetricType::StateSet) {
                    return Err(invalid(Reason::UnitNotAllowed));
                }
                self.ty = Some(ty);
                sink.metric_type(name, ty).map_err(sink_err)
            }
            _ => {
                if core::mem::replace(&mut self.has_unit, true) {
                    return Err(invalid(Reason::DuplicateUnit));
                }
                if !value.is_empty() {
                    let matches_unit = name
                        .strip_suffix(value)
                        .is_some_and(|stem| stem.ends_with('_'));
                    if !matches_unit {
                        return Err(invalid(Reason::UnitMismatch));
                    }
                    if matches!(self.ty, Some(MetricType::Info | MetricType::StateSet)) {
                        return Err(invalid(Reason::UnitNotAllowed));
                    }
                    self.unit_nonempty = true;
                }
                sink.unit(name, value).map_err(sink_err)
            }
        }
    }

    /// The suffix of `name` if it belongs to the current family.
    fn member_suffix(&self, name: &[u8]) -> Option<&'static str> {
        if !self.open {
            return None;
        }
        let rest = name.strip_prefix(self.family.as_bytes())?;
        allowed_suffixes(self.ty.unwrap_or(MetricType::Unknown))
            .iter()
            .copied()
            .find(|s| s.as_bytes() == rest)
    }

    /// The family a sample line is read in, as far as its checks go: its name and type (a
    /// family without a `TYPE` is read as `unknown`); 0 when none is open.
    fn family_key(&self) -> u64 {
        if !self.open {
            return 0;
        }
        family_key(self.family_fp, self.ty.unwrap_or(MetricType::Unknown))
    }

    /// The family a sample line named `name` belongs to: its suffix in the current family, or
    /// `""` in a new family of type `unknown` (the current one ends here, and may fail its
    /// family-level checks).
    fn enter(&mut self, name: &str, line_no: u64) -> Result<&'static str, ParseError> {
        if let Some(suffix) = self.member_suffix(name.as_bytes()) {
            return Ok(suffix);
        }
        self.open_unknown(name, line_no)?;
        Ok("")
    }

    /// Ends the current family and opens one of type `unknown` named `name`, for a sample line
    /// that is not of the current family.
    fn open_unknown(&mut self, name: &str, line_no: u64) -> Result<(), ParseError> {
        self.finish_family(line_no)?;
        self.start_family(name, Some(MetricType::Unknown));
        Ok(())
    }

    fn sample<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        text: &str,
        line_no: u64,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        let invalid = |reason| ParseError::invalid(line_no, reason, text);
        ctx.start_line();
        let position = ctx.samples;
        let sample = parse_sample(ctx, text).map_err(invalid)?;
        let name = sample.base.name(text);
        let suffix = self.enter(name, line_no)?;
        let family = (self.family_key() & !NAME_LEN) | (name.len() as u64 & NAME_LEN);
        self.has_samples = true;
        let (group, le) = self
            .check_labels(ctx, text, &sample, suffix)
            .map_err(invalid)?;
        let timestamp = sample.timestamp.map(|t| t.seconds);
        self.check_values(
            suffix,
            group,
            le,
            sample.base.value,
            timestamp,
            sample.exemplar.is_some(),
        )
        .map_err(invalid)?;
        if ctx.replay.on() {
            let entry = OmEntry {
                family,
                group,
                le: le.map_or(0, f64::to_bits),
            };
            ctx.replay
                .record_om(position, &text.as_bytes()[..sample.series_end], entry);
        }
        ctx.emit(line_no, text, &sample.base, sink)?;
        match &sample.exemplar {
            Some(e) => ctx.emit_exemplar(line_no, text, &sample.base, e, sink),
            None => Ok(()),
        }
    }

    /// Hands on a sample line whose series text repeats the last parse's at this position, in
    /// the same family as then, before the line's UTF-8 is checked (as `text::repeat`): the
    /// line's own checks ran on that text then, and the checks that involve other lines run
    /// here on the group and bound recorded with it. `false`: the line is for [`OmState::line`]
    /// (and so is any line with an exemplar).
    pub(crate) fn repeat<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        bytes: &[u8],
        line_no: u64,
        sink: &mut S,
    ) -> Result<bool, ParseError> {
        if self.eof {
            return Ok(false);
        }
        let Some(len) = ctx.replay.matches(ctx.samples, bytes) else {
            return Ok(false);
        };
        let Ok((value, timestamp, false)) = value_and_timestamp(Cursor { s: bytes, i: len }) else {
            return Ok(false);
        };
        self.repeat_read(ctx, bytes, value, timestamp, line_no, sink)
    }

    /// [`OmState::repeat`] of the next line, read straight from the bytes buffered from its
    /// start on (as `text::repeat_buffered`): only a line that ends (`\n`) within `rest` and
    /// within `max_line_len`, with one blank and a value in the decimal fast path after its
    /// series text and perhaps a blank and a timestamp, is read here; anything else (an
    /// exemplar, other bytes) is left to the line's split.
    pub(crate) fn repeat_buffered<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        rest: &[u8],
        line_no: u64,
        max_line_len: usize,
        sink: &mut S,
    ) -> Result<Buffered, ParseError> {
        if self.eof {
            return Ok(Buffered::Split);
        }
        let ((value, timestamp), line_len) = match ctx.replay.read_buffered(
            ctx.samples,
            rest,
            max_line_len,
            value_and_timestamp_buffered,
        ) {
            Ok(read) => read,
            Err(other) => return Ok(other),
        };
        let line = &rest[..line_len];
        Ok(
            if self.repeat_read(ctx, line, value, timestamp, line_no, sink)? {
                Buffered::Repeated(line_len + 1)
            } else {
                Buffered::Full
            },
        )
    }

    /// The rest of [`OmState::repeat`] once the line's series text matched and its value and
    /// timestamp were read (without an exemplar): the family and the checks of its value.
    fn repeat_read<S: Sink + ?Sized>(
        &mut self,
        ctx: &mut Ctx,
        bytes: &[u8],
        value: f64,
        timestamp: Option<Timestamp>,
        line_no: u64,
        sink: &mut S,
    ) -> Result<bool, ParseError> {
        let Some(entry) = ctx.replay.om(ctx.samples) else {
            return Ok(false);
        };
        // The series text's name, as long as when the full parser read it (a series text of
        // up to 64 KiB, so its name's length fits).
        #[allow(clippy::cast_possible_truncation)]
        let name = &bytes[..(entry.family & NAME_LEN) as usize];
        // The family the line would be read in: the current one, or a new one of type
        // `unknown` that the line opens. Only in the same family as last time are its suffix,
        // type and group as then.
        let member = self.member_suffix(name);
        let family = match member {
            Some(_) => self.family_key(),
            None => {
                let mut fp = Fingerprint::new(2);
                fp.write(name);
                family_key(fp.finish(), MetricType::Unknown)
            }
        };
        if (family ^ entry.family) & !NAME_LEN != 0 {
            return Ok(false);
        }
        let suffix = match member {
            Some(suffix) => suffix,
            None => {
                // A metric name is ASCII.
                let Ok(name) = core::str::from_utf8(name) else {
                    return Ok(false);
                };
                self.open_unknown(name, line_no)?;
                ""
            }
        };
        self.has_samples = true;
        let le = (suffix == "_bucket").then(|| f64::from_bits(entry.le));
        // The line is UTF-8: its series text was, and so are the tokens read after it.
        let invalid = |reason| {
            ParseError::invalid(line_no, reason, core::str::from_utf8(bytes).unwrap_or(""))
        };
        self.check_values(
            suffix,
            entry.group,
            le,
            value,
            timestamp.map(|t| t.seconds),
            false,
        )
        .map_err(invalid)?;
        ctx.emit_repeat(line_no, value, timestamp.map(|t| t.ms), sink)?;
        Ok(true)
    }

    /// The checks that depend on the line's labels, its family and its suffix alone: labels
    /// the type requires, and the line's group (with a bucket's bound).
    fn check_labels(
        &self,
        ctx: &Ctx,
        text: &str,
        sample: &OmSample,
        suffix: &str,
    ) -> Result<(u64, Option<f64>), Reason> {
        let ty = self.ty.unwrap_or(MetricType::Unknown);
        let n = sample.base.labels;
        let is_bucket = suffix == "_bucket";
        let is_quantile = ty == MetricType::Summary && suffix.is_empty();

        // Labels the type requires.
        if ty == MetricType::StateSet && ctx.label(text, n, &self.family).is_none() {
            return Err(Reason::MissingStatesetLabel);
        }
        let mut le = None;
        if is_bucket {
            le = ctx.label(text, n, "le").and_then(canonical_number);
            if le.is_none() {
                return Err(Reason::InvalidLe);
            }
        }
        if is_quantile {
            let q = ctx.label(text, n, "quantile").and_then(canonical_number);
            if !q.is_some_and(|q| (0.0..=1.0).contains(&q)) {
                return Err(Reason::InvalidQuantile);
            }
        }

        let group = if ty == MetricType::Info {
            // All samples of an info family form one group.
            0
        } else {
            let excluded = if is_bucket {
                Some("le")
            } else if is_quantile {
                Some("quantile")
            } else if ty == MetricType::StateSet {
                Some(self.family.as_str())
            } else {
                None
            };
            let mut fp = SetFingerprint::default();
            for span in &ctx.spans[..n] {
                let label = span.name(text);
                if Some(label) != excluded {
                    fp.add(label, span.value(text, &ctx.unescaped));
                }
            }
            fp.finish()
        };
        Ok((group, le))
    }

    /// The checks that involve the value, the timestamp and the lines before: integers where
    /// counts are, grouping and timestamp order, values the type allows, exemplars, and the
    /// histogram's buckets.
    fn check_values(
        &mut self,
        suffix: &str,
        group: u64,
        le: Option<f64>,
        value: f64,
        timestamp: Option<f64>,
        has_exemplar: bool,
    ) -> Result<(), Reason> {
        let ty = self.ty.unwrap_or(MetricType::Unknown);
        let is_bucket = suffix == "_bucket";
        let is_quantile = ty == MetricType::Summary && suffix.is_empty();
        if (is_bucket || suffix == "_count" || suffix == "_gcount") && !is_integer(value) {
            return Err(Reason::NotAnInteger);
        }

        // Grouping and timestamps.
        if self.group == Some(group) {
            if timestamp.is_some() != self.group_timestamp.is_some() {
                return Err(Reason::MixedTimestamps);
            }
            if let (Some(prev), Some(now)) = (self.group_timestamp, timestamp)
                && now < prev
                && ty != MetricType::Info
            {
                return Err(Reason::TimestampWentBackwards);
            }
        } else if !self.seen_groups.insert(group) {
            return Err(Reason::InvalidGrouping);
        }
        self.group = Some(group);
        self.group_timestamp = timestamp;

        // Values the type allows.
        if ty == MetricType::StateSet && value != 0.0 && value != 1.0 {
            return Err(Reason::InvalidStatesetValue);
        }
        if ty == MetricType::Info && value != 1.0 {
            return Err(Reason::InvalidInfoValue);
        }
        if is_quantile && value < 0.0 {
            return Err(Reason::NegativeQuantile);
        }
        let counter_like = matches!(
            suffix,
            "_total" | "_sum" | "_count" | "_bucket" | "_gcount" | "_gsum"
        );
        if counter_like && value.is_nan() {
            return Err(Reason::NanCounter);
        }
        // A gauge histogram's sum may be negative; other counter-like values may not.
        if counter_like && suffix != "_gsum" && value < 0.0 {
            return Err(Reason::NegativeCounter);
        }
        if has_exemplar {
            let allowed = match ty {
                MetricType::Histogram | MetricType::GaugeHistogram => is_bucket,
                MetricType::Counter => suffix == "_total",
                _ => false,
            };
            if !allowed {
                return Err(Reason::ExemplarNotAllowed);
            }
        }
        if matches!(ty, MetricType::Histogram | MetricType::GaugeHistogram) {
            self.histogram
                .observe(group, timestamp, suffix, value, le)?;
        }
        Ok(())
    }
}

/// `name[{labels}] value [timestamp] [# {labels} value [timestamp]]`, single spaces only.
fn parse_sample(ctx: &mut Ctx, text: &str) -> Result<OmSample, Reason> {
    let mut cur = Cursor::new(text);
    let name = lex::metric_name(&mut cur);
    if name.0 == name.1 {
        return Err(Reason::InvalidMetricName);
    }
    let has_labels = cur.eat(b'{');
    if has_labels {
        lex::label_set(&mut cur, true, &mut ctx.spans, &mut ctx.unescaped)?;
    }
    let labels = ctx.spans.len();
    let series_end = cur.i;
    if !cur.eat(b' ') {
        return Err(if cur.at_end() || has_labels {
            Reason::InvalidValue
        } else {
            Reason::InvalidMetricName
        });
    }
    cur.i -= 1;
    let (value, timestamp, has_exemplar) = value_and_timestamp_at(&mut cur)?;
    let exemplar = if has_exemplar {
        let e = parse_exemplar(ctx, text, &mut cur)?;
        if !cur.at_end() {
            return Err(Reason::TrailingCharacters);
        }
        Some(e)
    } else {
        None
    };
    Ok(OmSample {
        base: SampleLine {
            name,
            labels,
            value,
            timestamp_ms: timestamp.map(|t| t.ms),
        },
        series_end,
        timestamp,
        exemplar,
    })
}

/// The next token up to a space, as text; one that is not UTF-8 reads as `"\0"`, which is
/// not a timestamp.
fn token<'a>(cur: &mut Cursor<'a>) -> &'a str {
    let (a, b) = cur.token_until(b" ");
    core::str::from_utf8(&cur.s[a..b]).unwrap_or("\0")
}

/// What follows a series text that ends at `cur`: ` value [timestamp]`, and whether an
/// exemplar (` # ...`) follows, with the cursor at its `#`; otherwise the line must end.
fn value_and_timestamp(mut cur: Cursor<'_>) -> Result<(f64, Option<Timestamp>, bool), Reason> {
    let r = value_and_timestamp_at(&mut cur)?;
    if !r.2 && !cur.at_end() {
        return Err(Reason::TrailingCharacters);
    }
    Ok(r)
}

/// What [`value_and_timestamp`] reads after a series text of `len` bytes at the start of
/// `rest`, when there is no exemplar and the line ends with `\n` within `rest`: the value
/// (in the decimal fast path), the timestamp and the line's length without its `\n`. `None`
/// for anything else, which [`value_and_timestamp`] then reads from the line.
fn value_and_timestamp_buffered(
    rest: &[u8],
    len: usize,
) -> Option<((f64, Option<Timestamp>), usize)> {
    if rest.get(len) != Some(&b' ') {
        return None;
    }
    let i = len + 1;
    let (value, n) = crate::decimal::prefix(&rest[i..])?;
    let i = i + n;
    match rest.get(i)? {
        b'\n' => Some(((value, None), i)),
        b' ' => {
            let from = i + 1;
            let to = from + rest[from..].iter().position(|&b| b == b' ' || b == b'\n')?;
            if rest[to] != b'\n' {
                // An exemplar or trailing bytes.
                return None;
            }
            let token = core::str::from_utf8(&rest[from..to]).ok()?;
            if token.starts_with('#') {
                return None;
            }
            Some(((value, Some(lex::om_timestamp(token)?)), to))
        }
        _ => None,
    }
}

fn value_and_timestamp_at(cur: &mut Cursor<'_>) -> Result<(f64, Option<Timestamp>, bool), Reason> {
    if !cur.eat(b' ') {
        return Err(Reason::InvalidValue);
    }
    let (a, b) = cur.token_until(b" ");
    let value = lex::number_bytes(&cur.s[a..b]).ok_or(Reason::InvalidValue)?;
    let mut timestamp = None;
    if cur.eat(b' ') {
        if cur.peek() != Some(b'#') {
            timestamp = Some(lex::om_timestamp(token(cur)).ok_or(Reason::InvalidTimestamp)?);
            if cur.eat(b' ') && cur.peek() != Some(b'#') {
                return Err(Reason::TrailingCharacters);
            }
        }
        if cur.peek() == Some(b'#') {
            return Ok((value, timestamp, true));
        }
    }
    if !cur.at_end() {
        return Err(Reason::TrailingCharacters);
    }
    Ok((value, timestamp, false))
}

/// Exemplar label names and values may hold at most this many characters in total.
const EXEMPLAR_MAX_CHARS: usize = 128;

/// Parses and validates `# {labels} value [timestamp]` at the cursor.
fn parse_exemplar(
    ctx: &mut Ctx,
    text: &str,
    cur: &mut Cursor<'_>,
) -> Result<ParsedExemplar, Reason> {
    cur.i += 1;
    if !(cur.eat(b' ') && cur.eat(b'{')) {
        return Err(Reason::InvalidExemplar);
    }
    let first = ctx.spans.len();
    lex::label_set(cur, true, &mut ctx.spans, &mut ctx.unescaped)
        .map_err(|_| Reason::InvalidExemplar)?;
    let chars: usize = ctx.spans[first..]
        .iter()
        .map(|s| s.name(text).len() + s.value(text, &ctx.unescaped).chars().count())
        .sum();
    if chars > EXEMPLAR_MAX_CHARS {
        return Err(Reason::ExemplarTooLong);
    }
    if !cur.eat(b' ') {
        return Err(Reason::InvalidExemplar);
    }
    let (va, vb) = cur.token_until(b" ");
    let value = lex::number(&text[va..vb]).ok_or(Reason::InvalidExemplar)?;
    let mut timestamp_ms = None;
    if cur.eat(b' ') {
        let (ta, tb) = cur.token_until(b" ");
        timestamp_ms = Some(
            lex::om_timestamp(&text[ta..tb])
                .ok_or(Reason::InvalidExemplar)?
                .ms,
        );
    }
    Ok(ParsedExemplar {
        first,
        value,
        timestamp_ms,
    })
}
