//! Streaming parser for scrape bodies in the Prometheus text format 0.0.4 and the OpenMetrics
//! 1.0 text format: the core of the `prom-scrape` plugin.
//!
//! The crate is `no_std` (with `alloc`) so that it compiles small for `wasm32-unknown-unknown`,
//! and is tested natively.
//!
//! # Main types
//! - [`Parser`]: reusable; [`Parser::parse_reader`] reads a body from an
//!   [`embedded_io::Read`] in chunks, [`Parser::parse_slice`] parses one held in memory.
//! - [`ParseOptions`]: the [`Format`] and the limits (line length, body size, sample count).
//! - [`Sink`]: receives samples (name, unescaped labels, value, timestamp in ms) and, if it
//!   wants, `HELP`/`TYPE`/`UNIT` metadata. [`VecSink`] collects owned copies.
//! - [`ParseError`] and [`Reason`]: why a body was rejected, with the line number.
//! - [`ACCEPT_HEADER`] and [`format_for_content_type`]: content negotiation as Prometheus does it.
//! - [`meta::MetaCache`]: a target's metadata as last reported, so that only changes go to the
//!   host.
//! - [`ScrapeConfig`]: the plugin's `[scrape.config]` table (`max_line_len`), checked at init.
//!
//! # The plugin
//! Built for `wasm32-unknown-unknown`, the crate is the `prom-scrape` scraper: each scrape
//! fetches `req.target()` with [`ACCEPT_HEADER`], fails on a non-2xx status, chooses the
//! format by the response's content type, and streams the body through a [`Parser`] (with the
//! scrape's `body_size_limit` and `sample_limit`) into the host. A failed scrape's error names
//! the target and carries the parser's error with its line number.
//!
//! # Invariants
//! - A body is accepted or rejected as a whole. Samples reach the sink as they are read, so a
//!   later invalid line can reject a body after some of its samples were delivered; the caller
//!   buffers them and discards them when the parse returns an error.
//! - Memory is bounded by the configured line length, not the body size: a line longer than
//!   [`ParseOptions::max_line_len`] is an error. OpenMetrics validation additionally keeps an
//!   8-byte fingerprint per family name and per series of the current family.
//! - The same body gives the same samples and the same result however a reader chunks it.
//! - No input makes the parser panic.
//! - Once its buffers have grown, parsing a sample does not allocate (when label values have
//!   no escapes, labels are borrowed straight from the line buffer).
//!
//! # Formats
//! Text 0.0.4 is read as leniently as Prometheus reads it (no `# EOF`, free grouping, blanks
//! between tokens, integer millisecond timestamps). OpenMetrics is checked against all the rules
//! of its conformance suite: `# EOF` is required and must be last, families are contiguous and
//! do not clash, histograms have ordered buckets and a `+Inf` bucket, counter-like values are
//! not negative or NaN, exemplars are well formed (and then passed to [`Sink::exemplar`]), and timestamps in
//! seconds are converted to milliseconds (exactly for plain decimals, truncated toward zero
//! and saturated at the `i64` range). `_created` samples are passed on like any other sample,
//! as Prometheus 2.x ingests them.
//!
//! # Example
//! ```
//! use prom_scrape::{Format, ParseOptions, Parser, VecSink};
//!
//! let body = concat!(
//!     "# TYPE http_requests counter\n",
//!     "http_requests_total{code=\"200\",path=\"/a\\\"b\"} 1027 1395066363.5\n",
//!     "# EOF\n",
//! );
//! let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
//! let mut sink = VecSink::default();
//! // `&[u8]` is an `embedded_io::Read`; a plugin passes its host-backed reader instead.
//! let summary = parser.parse_reader(body.as_bytes(), &mut sink)?;
//! assert_eq!(summary.samples, 1);
//! let sample = &sink.samples[0];
//! assert_eq!(sample.name, "http_requests_total");
//! assert_eq!(sample.labels[1], ("path".into(), "/a\"b".into()));
//! assert_eq!(sample.timestamp_ms, Some(1_395_066_363_500));
//! # Ok::<(), prom_scrape::ParseError>(())
//! ```

#![no_std]
// `deny` rather than `forbid`: the SDK's export macro allows unsafe code for the `extern "C"`
// functions it generates, and nothing else in this crate uses any.
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
// Native builds (tests, and the `cdylib` a native `cargo build` produces) take their allocator
// and panic handler from `std`; on wasm32 they come from the SDK's guest runtime.
#[cfg(any(test, not(target_arch = "wasm32")))]
extern crate std;

mod config;
mod ctx;
mod decimal;
mod error;
mod hash;
mod histogram;
mod lex;
mod lines;
pub mod meta;
mod openmetrics;
mod parser;
#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
mod plugin;
mod replay;
mod scan;
mod sink;
mod text;

pub use config::{ConfigError, MAX_LINE_LEN_CEILING, ScrapeConfig};
pub use error::{ParseError, Reason, SinkError};
pub use parser::{ParseOptions, ParseSummary, Parser, parse_slice};
pub use sink::{ExemplarRef, MetricType, OwnedMetadata, OwnedSample, Sink, VecSink};

/// The `Accept` header Prometheus 2.42 sends with a scrape: OpenMetrics 1.0.0 first, then
/// OpenMetrics 0.0.1, then the text format 0.0.4, then anything.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), and the fallback for any
    /// other or missing content type.
    PrometheusText,
    /// The OpenMetrics text format 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

/// Chooses the parser for a response's `Content-Type`, as Prometheus does: OpenMetrics for the
/// media type `application/openmetrics-text` (any case, any parameters), the text format
/// otherwise, including when the header is missing (`""`) or malformed.
pub fn format_for_content_type(content_type: &str) -> Format {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches([' ', '\t']);
    if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::PrometheusText
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_selects_the_format() {
        for ct in [
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "application/openmetrics-text;version=0.0.1",
            "Application/OpenMetrics-Text",
            " application/openmetrics-text ",
        ] {
            assert_eq!(format_for_content_type(ct), Format::OpenMetrics, "{ct}");
        }
        for ct in [
            "",
            "text/plain; version=0.0.4; charset=utf-8",
            "text/plain",
            "application/json",
            "application/openmetrics-textual",
            "application/vnd.google.protobuf",
        ] {
            assert_eq!(format_for_content_type(ct), Format::PrometheusText, "{ct}");
        }
    }

    #[test]
    fn accept_header_prefers_openmetrics() {
        let parts: std::vec::Vec<&str> = ACCEPT_HEADER.split(',').collect();
        assert_eq!(parts.len(), 4);
        assert!(parts[0].starts_with("application/openmetrics-text;version=1.0.0"));
        assert!(parts[2].starts_with("text/plain;version=0.0.4"));
        assert_eq!(parts[3], "*/*;q=0.1");
    }
}
