//! The driver: options, the reusable [`Parser`], and what both formats share per sample
//! (counting against the limit, handing labels to the sink).

use alloc::string::String;
use alloc::vec::Vec;
use core::num::{NonZeroU64, NonZeroUsize};

use embedded_io::Read;

use crate::lex::LabelSpan;
use crate::lines::{LineSource, ReaderLines, SliceLines};
use crate::openmetrics::OmState;
use crate::{Format, ParseError, Sink, text};

/// Limits and format of one parse. Build with [`ParseOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// The exposition format, usually from [`format_for_content_type`](crate::format_for_content_type).
    pub format: Format,
    /// Longest line accepted, in bytes without the `\n`. Also bounds the read buffer.
    /// Default: [`ParseOptions::DEFAULT_MAX_LINE_LEN`].
    pub max_line_len: NonZeroUsize,
    /// Largest body accepted, in bytes. `None`: no limit (Prometheus' `body_size_limit: 0`).
    pub body_size_limit: Option<NonZeroU64>,
    /// Most samples accepted. `None`: no limit (Prometheus' `sample_limit: 0`).
    pub sample_limit: Option<NonZeroU64>,
}

impl ParseOptions {
    /// 64 KiB: far above real lines (label values are rarely over a few hundred bytes), small
    /// enough for a plugin's memory budget.
    pub const DEFAULT_MAX_LINE_LEN: NonZeroUsize = NonZeroUsize::new(64 * 1024).unwrap();

    /// Options for `format` with the default line limit and no body or sample limit.
    pub const fn new(format: Format) -> Self {
        ParseOptions {
            format,
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            body_size_limit: None,
            sample_limit: None,
        }
    }

    /// Sets [`ParseOptions::max_line_len`].
    #[must_use]
    pub const fn with_max_line_len(mut self, max: NonZeroUsize) -> Self {
        self.max_line_len = max;
        self
    }

    /// Sets [`ParseOptions::body_size_limit`].
    #[must_use]
    pub const fn with_body_size_limit(mut self, limit: Option<NonZeroU64>) -> Self {
        self.body_size_limit = limit;
        self
    }

    /// Sets [`ParseOptions::sample_limit`].
    #[must_use]
    pub const fn with_sample_limit(mut self, limit: Option<NonZeroU64>) -> Self {
        self.sample_limit = limit;
        self
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self::new(Format::PrometheusText)
    }
}

/// What a successful parse read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseSummary {
    /// Samples handed to the sink.
    pub samples: u64,
    /// Lines read, including comments and metadata.
    pub lines: u64,
    /// Body bytes read.
    pub bytes: u64,
}

/// A sample line, parsed; its labels are the first `labels` entries of [`Ctx::spans`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleLine {
    pub(crate) name: (usize, usize),
    pub(crate) labels: usize,
    pub(crate) value: f64,
    pub(crate) timestamp_ms: Option<i64>,
}

impl SampleLine {
    pub(crate) fn name<'a>(&self, line: &'a str) -> &'a str {
        &line[self.name.0..self.name.1]
    }
}

/// Per-sample state shared by both formats.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// Labels of the current line (sample first, then any exemplar).
    pub(crate) spans: Vec<LabelSpan>,
    /// Unescaped label values of the current line.
    pub(crate) unescaped: String,
    /// Unescaped HELP text.
    pub(crate) help: String,
    /// Kept between samples only for its allocation; always empty at rest.
    pairs: Vec<(&'static str, &'static str)>,
    pub(crate) samples: u64,
    pub(crate) sample_limit: Option<u64>,
}

/// Reuses a vector's allocation for references of another lifetime. The in-place `collect` of an
/// empty vector into an element type of the same layout keeps the buffer, so steady-state
/// parsing does not allocate for label lists.
fn recycle<'a, 'b>(mut v: Vec<(&'a str, &'a str)>) -> Vec<(&'b str, &'b str)> {
    v.clear();
    v.into_iter().map(|_| ("", "")).collect()
}

impl Ctx {
    pub(crate) fn start_line(&mut self) {
        self.spans.clear();
        self.unescaped.clear();
    }

    /// The value of the label `name` among the sample's first `n` labels.
    pub(crate) fn label<'a>(&'a self, line: &'a str, n: usize, name: &str) -> Option<&'a str> {
        self.spans[..n]
            .iter()
            .find(|s| s.name(line) == name)
            .map(|s| s.value(line, &self.unescaped))
    }

    /// Counts one sample against the limit, then hands it to the sink.
    pub(crate) fn emit<S: Sink + ?Sized>(
        &mut self,
        line_no: u64,
        line: &str,
        sample: &SampleLine,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        self.samples += 1;
        if let Some(limit) = self.sample_limit
            && self.samples > limit
        {
            return Err(ParseError::SampleLimit {
                line: line_no,
                limit,
            });
        }
        let mut pairs = recycle(core::mem::take(&mut self.pairs));
        pairs.extend(
            self.spans[..sample.labels]
                .iter()
                .map(|s| (s.name(line), s.value(line, &self.unescaped))),
        );
        let result = sink.sample(sample.name(line), &pairs, sample.value, sample.timestamp_ms);
        self.pairs = recycle(pairs);
        result.map_err(|source| ParseError::Sink {
            line: line_no,
            source,
        })
    }
}

/// A parser that keeps its buffers between bodies, so scraping the same target again does not
/// allocate once the buffers have grown to fit.
#[derive(Debug)]
pub struct Parser {
    options: ParseOptions,
    buf: Vec<u8>,
    ctx: Ctx,
    om: OmState,
}

impl Parser {
    /// A parser with the given options.
    pub fn new(options: ParseOptions) -> Self {
        Parser {
            options,
            buf: Vec::new(),
            ctx: Ctx::default(),
            om: OmState::default(),
        }
    }

    /// The options in use.
    pub fn options(&self) -> &ParseOptions {
        &self.options
    }

    /// Changes the options for the next parse (for example the format, once the response's
    /// content type is known).
    pub fn set_options(&mut self, options: ParseOptions) {
        self.options = options;
    }

    /// Parses a body streamed from `reader`, chunk by chunk. Memory stays bounded by the line
    /// limit whatever the body size.
    ///
    /// # Errors
    /// Any [`ParseError`]; the whole body must then be discarded, including samples the sink
    /// already received.
    pub fn parse_reader<R: Read, S: Sink + ?Sized>(
        &mut self,
        reader: R,
        sink: &mut S,
    ) -> Result<ParseSummary, ParseError> {
        let mut buf = core::mem::take(&mut self.buf);
        let result = {
            let mut lines = ReaderLines::new(
                reader,
                &mut buf,
                self.options.max_line_len.get(),
                self.options.body_size_limit.map(NonZeroU64::get),
            );
            self.run(&mut lines, sink)
        };
        self.buf = buf;
        result
    }

    /// Parses a body held in memory, without copying it.
    ///
    /// # Errors
    /// As [`Parser::parse_reader`].
    pub fn parse_slice<S: Sink + ?Sized>(
        &mut self,
        body: &[u8],
        sink: &mut S,
    ) -> Result<ParseSummary, ParseError> {
        let mut lines = SliceLines::new(
            body,
            self.options.max_line_len.get(),
            self.options.body_size_limit.map(NonZeroU64::get),
        );
        self.run(&mut lines, sink)
    }

    fn run<L: LineSource, S: Sink + ?Sized>(
        &mut self,
        lines: &mut L,
        sink: &mut S,
    ) -> Result<ParseSummary, ParseError> {
        self.ctx.samples = 0;
        self.ctx.sample_limit = self.options.sample_limit.map(NonZeroU64::get);
        self.om.reset();
        let format = self.options.format;
        while let Some(line) = lines.next_line()? {
            let text = core::str::from_utf8(line.bytes)
                .map_err(|_| ParseError::InvalidUtf8 { line: line.number })?;
            match format {
                Format::PrometheusText => text::line(&mut self.ctx, text, line.number, sink)?,
                Format::OpenMetrics => self.om.line(&mut self.ctx, text, line.number, sink)?,
            }
        }
        if format == Format::OpenMetrics {
            self.om.end(lines.lines())?;
        }
        Ok(ParseSummary {
            samples: self.ctx.samples,
            lines: lines.lines(),
            bytes: lines.bytes(),
        })
    }
}

/// Parses a body held in memory with a fresh [`Parser`].
///
/// # Errors
/// As [`Parser::parse_reader`].
pub fn parse_slice<S: Sink + ?Sized>(
    body: &[u8],
    options: ParseOptions,
    sink: &mut S,
) -> Result<ParseSummary, ParseError> {
    Parser::new(options).parse_slice(body, sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycle_keeps_the_allocation() {
        let mut v: Vec<(&str, &str)> = Vec::with_capacity(32);
        v.push(("a", "b"));
        let cap = v.capacity();
        let w: Vec<(&'static str, &'static str)> = recycle(v);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), cap);
    }
}
