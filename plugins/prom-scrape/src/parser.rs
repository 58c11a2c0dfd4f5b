//! The driver: options and the reusable [`Parser`], which reads lines and hands each to the
//! format's module (`text` or `openmetrics`) with the per-line state in [`Ctx`].

use alloc::vec::Vec;
use core::num::{NonZeroU64, NonZeroUsize};

use embedded_io::Read;

use crate::ctx::Ctx;
use crate::lines::{LineSource, ReaderLines, SliceLines};
use crate::openmetrics::OmState;
use crate::replay::Buffered;
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

    /// Turns repeat records on for the next parse, which `token` (not 0) names: a sample line
    /// that starts with the same series text as the line at the same position of parse
    /// `order` reaches the sink as [`Sink::repeat`]. `order` is the token of the parse the
    /// sink can still resolve positions of (0: none); it is honoured only when it names this
    /// parser's last parse, that parse succeeded with replay on, and it read the same format.
    /// In OpenMetrics a line repeats only in the family it was read in last time, and never
    /// with an exemplar. A parse without this call has replay off, and forgets the positions.
    pub fn set_replay(&mut self, token: u64, order: u64) {
        self.ctx.replay.begin(token, order);
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
        self.ctx
            .replay
            .set_openmetrics(self.options.format == Format::OpenMetrics);
        let result = self.lines(lines, sink);
        self.ctx.replay.end(result.is_ok(), self.ctx.samples);
        result
    }

    fn lines<L: LineSource, S: Sink + ?Sized>(
        &mut self,
        lines: &mut L,
        sink: &mut S,
    ) -> Result<ParseSummary, ParseError> {
        let format = self.options.format;
        let buffered = self.ctx.replay.usable();
        let max_line_len = self.options.max_line_len.get();
        loop {
            // Whether the split line may still repeat.
            let mut split = true;
            if buffered {
                let line_no = lines.lines() + 1;
                let rest = lines.buffered();
                let read = match format {
                    Format::PrometheusText => {
                        text::repeat_buffered(&mut self.ctx, rest, line_no, max_line_len, sink)?
                    }
                    Format::OpenMetrics => {
                        self.om
                            .repeat_buffered(&mut self.ctx, rest, line_no, max_line_len, sink)?
                    }
                };
                match read {
                    Buffered::Repeated(n) => {
                        lines.skip_line(n);
                        continue;
                    }
                    Buffered::Full => split = false,
                    Buffered::Split => {}
                }
            }
            let Some(line) = lines.next_line()? else {
                break;
            };
            let repeated = match format {
                Format::PrometheusText => {
                    split && text::repeat(&mut self.ctx, line.bytes, line.number, sink)?
                }
                Format::OpenMetrics => {
                    split
                        && self
                            .om
                            .repeat(&mut self.ctx, line.bytes, line.number, sink)?
                }
            };
            if repeated {
                continue;
            }
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
