//! The Prometheus text format 0.0.4, limits, streaming, and sink behaviour.

use std::num::{NonZeroU64, NonZeroUsize};

use prom_scrape::{
    Format, MetricType, OwnedMetadata, OwnedSample, ParseError, ParseOptions, Parser, Reason, Sink,
    SinkError, VecSink, parse_slice,
};

fn text(body: &str) -> Result<VecSink, ParseError> {
    let mut sink = VecSink::default();
    parse_slice(
        body.as_bytes(),
        ParseOptions::new(Format::PrometheusText),
        &mut sink,
    )?;
    Ok(sink)
}

fn om(body: &str) -> Result<VecSink, ParseError> {
    let mut sink = VecSink::default();
    parse_slice(
        body.as_bytes(),
        ParseOptions::new(Format::OpenMetrics),
        &mut sink,
    )?;
    Ok(sink)
}

fn sample(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> OwnedSample {
    OwnedSample {
        name: name.into(),
        labels: labels.iter().map(|&(n, v)| (n.into(), v.into())).collect(),
        value,
        timestamp_ms: ts,
    }
}

fn reason(result: Result<VecSink, ParseError>) -> Reason {
    match result {
        Err(e) => e
            .reason()
            .unwrap_or_else(|| panic!("not a line error: {e}")),
        Ok(sink) => panic!("accepted: {sink:?}"),
    }
}

#[test]
fn text_reads_a_node_exporter_style_body() {
    let body = "\
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 2.5e+06
node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1234.5
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.21
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le=\"0.1\"} 3
http_request_duration_seconds_bucket{le=\"+Inf\"} 5
http_request_duration_seconds_sum 0.7
http_request_duration_seconds_count 5
";
    let sink = text(body).expect("valid body");
    assert_eq!(sink.samples.len(), 7);
    assert_eq!(
        sink.samples[0],
        sample(
            "node_cpu_seconds_total",
            &[("cpu", "0"), ("mode", "idle")],
            2.5e6,
            None
        )
    );
    assert_eq!(sink.samples[2], sample("node_load1", &[], 0.21, None));
    assert_eq!(
        sink.metadata[0],
        OwnedMetadata::Help {
            family: "node_cpu_seconds_total".into(),
            help: "Seconds the CPUs spent in each mode.".into()
        }
    );
    assert_eq!(
        sink.metadata[1],
        OwnedMetadata::Type {
            family: "node_cpu_seconds_total".into(),
            metric_type: MetricType::Counter
        }
    );
}

#[test]
fn text_needs_no_eof_and_no_type() {
    let sink = text("a 1\nb{x=\"y\"} 2\n").expect("valid");
    assert_eq!(sink.samples.len(), 2);
    // The same body is not valid OpenMetrics.
    assert!(matches!(
        om("a 1\nb{x=\"y\"} 2\n"),
        Err(ParseError::MissingEof { .. })
    ));
    // A body without a final newline is fine too, and so is an empty one.
    assert_eq!(text("a 1").expect("valid").samples.len(), 1);
    assert!(text("").expect("valid").samples.is_empty());
}

#[test]
fn text_timestamps_are_integer_milliseconds() {
    let sink = text("a 1 1395066363000\nb 2 -5\n").expect("valid");
    assert_eq!(sink.samples[0].timestamp_ms, Some(1_395_066_363_000));
    assert_eq!(sink.samples[1].timestamp_ms, Some(-5));
    assert_eq!(reason(text("a 1 1.5\n")), Reason::InvalidTimestamp);
    assert_eq!(reason(text("a 1 NaN\n")), Reason::InvalidTimestamp);
    assert_eq!(
        reason(text("a 1 99999999999999999999\n")),
        Reason::InvalidTimestamp
    );
    // OpenMetrics reads the same field as seconds.
    assert_eq!(
        om("a 1 1.5\n# EOF\n").expect("valid").samples[0].timestamp_ms,
        Some(1500)
    );
}

#[test]
fn text_special_values() {
    let sink = text("a NaN\nb +Inf\nc -Inf\nd 1e-3\ne -0\n").expect("valid");
    let v: Vec<f64> = sink.samples.iter().map(|s| s.value).collect();
    assert!(v[0].is_nan());
    assert_eq!(v[1..4], [f64::INFINITY, f64::NEG_INFINITY, 0.001]);
    assert_eq!(reason(text("a 0x10\n")), Reason::InvalidValue);
    assert_eq!(reason(text("a one\n")), Reason::InvalidValue);
    assert_eq!(reason(text("a\n")), Reason::InvalidValue);
}

#[test]
fn text_unescapes_label_values_and_help() {
    let body = "# HELP a Line one\\nback\\\\slash \\\"kept\\\"\n\
                a{p=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",r=\"two\\nlines\",s=\"\\t\"} 1\n";
    let sink = text(body).expect("valid");
    assert_eq!(
        sink.samples[0].labels,
        [
            ("p".into(), "C:\\dir".into()),
            ("q".into(), "say \"hi\"".into()),
            ("r".into(), "two\nlines".into()),
            ("s".into(), "\\t".into()),
        ]
    );
    // HELP in 0.0.4 unescapes only `\\` and `\n`.
    assert_eq!(
        sink.metadata[0],
        OwnedMetadata::Help {
            family: "a".into(),
            help: "Line one\nback\\slash \\\"kept\\\"".into()
        }
    );
}

#[test]
fn text_is_lenient_about_blanks_comments_and_grouping() {
    let body = "\n\
                # just a comment\n\
                #\n\
                # EOF is only a comment here\n\
                \t \n\
                a { x = \"1\" , y=\"2\", } \t 3 \t 1000 \t\n\
                b 1\n\
                a{x=\"2\"} 4\n\
                # UNIT a_seconds seconds\n\
                # TYPE c untyped\n\
                c 5\n";
    let sink = text(body).expect("valid");
    assert_eq!(
        sink.samples,
        [
            sample("a", &[("x", "1"), ("y", "2")], 3.0, Some(1000)),
            sample("b", &[], 1.0, None),
            sample("a", &[("x", "2")], 4.0, None),
            sample("c", &[], 5.0, None),
        ]
    );
    assert_eq!(
        sink.metadata,
        [OwnedMetadata::Type {
            family: "c".into(),
            metric_type: MetricType::Unknown
        }]
    );
}

#[test]
fn text_still_rejects_what_prometheus_rejects() {
    assert_eq!(
        reason(text("a{x=\"1\",x=\"2\"} 1\n")),
        Reason::DuplicateLabel
    );
    assert_eq!(reason(text("a-b 1\n")), Reason::InvalidMetricName);
    assert_eq!(reason(text("0a 1\n")), Reason::InvalidMetricName);
    assert_eq!(reason(text("a{0x=\"1\"} 1\n")), Reason::InvalidLabelName);
    assert_eq!(reason(text("a{x=1} 1\n")), Reason::MissingQuote);
    assert_eq!(reason(text("a{x=\"1} 1\n")), Reason::UnterminatedLabelValue);
    assert_eq!(
        reason(text("a{x=\"1\" y=\"2\"} 1\n")),
        Reason::InvalidLabelSeparator
    );
    assert_eq!(
        reason(text("# TYPE a gaugehistogram\n")),
        Reason::InvalidType
    );
    assert_eq!(reason(text("# TYPE a\n")), Reason::InvalidType);
    assert_eq!(reason(text("# HELP 0a x\n")), Reason::InvalidMetricName);
    assert_eq!(reason(text("a 1 2 3\n")), Reason::TrailingCharacters);
    assert_eq!(
        reason(text("a_total 1 # {t=\"1\"} 1\n")),
        Reason::ExemplarNotAllowed
    );
    assert!(matches!(
        text("ok 1\nbad\u{0}{ 1\n"),
        Err(ParseError::Invalid { line: 2, .. })
    ));
}

#[test]
fn invalid_utf8_is_rejected_with_its_line() {
    let mut sink = VecSink::default();
    let err = parse_slice(
        b"a 1\nb{x=\"\xff\"} 1\n",
        ParseOptions::new(Format::PrometheusText),
        &mut sink,
    )
    .unwrap_err();
    assert_eq!(err, ParseError::InvalidUtf8 { line: 2 });
}

#[test]
fn errors_name_the_line_and_quote_it() {
    let err = text("a 1\nb 2\nc{x=\"1\",x=\"2\"} 3\n").unwrap_err();
    assert_eq!(
        err,
        ParseError::Invalid {
            line: 3,
            reason: Reason::DuplicateLabel,
            excerpt: "c{x=\"1\",x=\"2\"} 3".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 3: duplicate label name: \"c{x=\\\"1\\\",x=\\\"2\\\"} 3\""
    );
}

#[test]
fn sample_limit_fails_the_parse() {
    let body = "a 1\nb 2\nc 3\n";
    let opts =
        |limit| ParseOptions::new(Format::PrometheusText).with_sample_limit(NonZeroU64::new(limit));
    let mut sink = VecSink::default();
    let summary = parse_slice(body.as_bytes(), opts(3), &mut sink).expect("at the limit");
    assert_eq!(summary.samples, 3);
    let mut sink = VecSink::default();
    let err = parse_slice(body.as_bytes(), opts(2), &mut sink).unwrap_err();
    assert_eq!(err, ParseError::SampleLimit { line: 3, limit: 2 });
    // The sink never sees a sample beyond the limit.
    assert_eq!(sink.samples.len(), 2);
}

#[test]
fn body_size_limit_fails_the_parse_in_both_modes() {
    let body = "a 1\nb 2\n"; // 8 bytes
    let opts = |limit| {
        ParseOptions::new(Format::PrometheusText).with_body_size_limit(NonZeroU64::new(limit))
    };
    let mut parser = Parser::new(opts(8));
    assert!(
        parser
            .parse_slice(body.as_bytes(), &mut VecSink::default())
            .is_ok()
    );
    assert!(
        parser
            .parse_reader(body.as_bytes(), &mut VecSink::default())
            .is_ok()
    );
    parser.set_options(opts(7));
    let expected = ParseError::BodySizeLimit { limit: 7 };
    // Lines wholly within the limit are read first, in both modes, so the outcome does not
    // depend on how the body arrives.
    let mut sink = VecSink::default();
    assert_eq!(
        parser.parse_slice(body.as_bytes(), &mut sink),
        Err(expected.clone())
    );
    assert_eq!(sink.samples.len(), 1);
    let mut sink = VecSink::default();
    assert_eq!(
        parser.parse_reader(body.as_bytes(), &mut sink),
        Err(expected)
    );
    assert_eq!(sink.samples.len(), 1);
    // The limit counts bytes, not lines: a limit ending right after a newline still fails
    // when more follows.
    parser.set_options(opts(4));
    assert_eq!(
        parser.parse_reader(body.as_bytes(), &mut VecSink::default()),
        Err(ParseError::BodySizeLimit { limit: 4 })
    );
}

#[test]
fn long_lines_fail_in_both_modes_and_memory_stays_bounded() {
    let max = NonZeroUsize::new(16).expect("nonzero");
    let opts = ParseOptions::new(Format::PrometheusText).with_max_line_len(max);
    let mut parser = Parser::new(opts);
    let ok = "a{x=\"1234567\"} 1\n"; // 16 bytes before the newline
    assert!(
        parser
            .parse_slice(ok.as_bytes(), &mut VecSink::default())
            .is_ok()
    );
    assert!(
        parser
            .parse_reader(ok.as_bytes(), &mut VecSink::default())
            .is_ok()
    );
    let long = "ok 1\na{x=\"12345678\"} 1\n";
    let expected = ParseError::LineTooLong { line: 2, max: 16 };
    assert_eq!(
        parser.parse_slice(long.as_bytes(), &mut VecSink::default()),
        Err(expected.clone())
    );
    assert_eq!(
        parser.parse_reader(long.as_bytes(), &mut VecSink::default()),
        Err(expected.clone())
    );
    // An endless line without a newline is cut off at the limit, not buffered.
    let endless = Endless { served: 0 };
    let mut parser = Parser::new(opts);
    let err = parser
        .parse_reader(endless, &mut VecSink::default())
        .unwrap_err();
    assert_eq!(err, ParseError::LineTooLong { line: 1, max: 16 });
}

#[test]
fn lines_longer_than_the_first_buffer_stream_correctly() {
    let value = "v".repeat(20_000);
    let body = format!("a 1\nbig{{x=\"{value}\"}} 2\r\nc 3\r\n");
    let opts = ParseOptions::new(Format::PrometheusText);
    let mut parser = Parser::new(opts);
    let mut from_slice = VecSink::default();
    parser
        .parse_slice(body.as_bytes(), &mut from_slice)
        .expect("valid");
    let mut streamed = VecSink::default();
    parser
        .parse_reader(body.as_bytes(), &mut streamed)
        .expect("valid");
    assert_eq!(streamed, from_slice);
    assert_eq!(streamed.samples[1].labels[0].1, value);
    assert_eq!(streamed.samples[2], sample("c", &[], 3.0, None));
    // The same line over a 10 000-byte limit fails in both modes.
    parser.set_options(opts.with_max_line_len(NonZeroUsize::new(10_000).expect("nonzero")));
    let expected = ParseError::LineTooLong {
        line: 2,
        max: 10_000,
    };
    assert_eq!(
        parser.parse_slice(body.as_bytes(), &mut VecSink::default()),
        Err(expected.clone())
    );
    assert_eq!(
        parser.parse_reader(body.as_bytes(), &mut VecSink::default()),
        Err(expected)
    );
}

/// A reader that never ends and never sends a newline.
struct Endless {
    served: u64,
}

impl embedded_io::ErrorType for Endless {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        // A body this large would mean the line limit was not enforced.
        assert!(
            self.served < 1 << 20,
            "reader was drained far past the line limit"
        );
        buf.fill(b'a');
        self.served += buf.len() as u64;
        Ok(buf.len())
    }
}

/// A reader that fails after some bytes.
struct Failing<'a>(&'a [u8]);

impl embedded_io::ErrorType for Failing<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.0.is_empty() {
            return Err(embedded_io::ErrorKind::ConnectionReset);
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn reader_errors_are_reported_with_the_bytes_read() {
    let err = Parser::new(ParseOptions::new(Format::PrometheusText))
        .parse_reader(Failing(b"a 1\nb 2"), &mut VecSink::default())
        .unwrap_err();
    assert_eq!(
        err,
        ParseError::Io {
            bytes: 7,
            kind: embedded_io::ErrorKind::ConnectionReset
        }
    );
}

/// Accepts a fixed number of samples, then reports itself full.
struct Budget(usize);

impl Sink for Budget {
    fn sample(
        &mut self,
        _: &str,
        _: &[(&str, &str)],
        _: f64,
        _: Option<i64>,
    ) -> Result<(), SinkError> {
        self.0 = self.0.checked_sub(1).ok_or(SinkError::Full)?;
        Ok(())
    }
}

#[test]
fn sink_errors_stop_the_parse() {
    let err = parse_slice(
        b"a 1\nb 2\nc 3\n",
        ParseOptions::new(Format::PrometheusText),
        &mut Budget(2),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ParseError::Sink {
            line: 3,
            source: SinkError::Full
        }
    );
}

#[test]
fn a_parser_is_reusable_across_bodies_and_formats() {
    let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
    let mut sink = VecSink::default();
    // A failed OpenMetrics body leaves no state behind for the next one.
    assert!(
        parser
            .parse_slice(b"# TYPE a counter\na_total 1\n", &mut sink)
            .is_err()
    );
    let mut sink = VecSink::default();
    let summary = parser
        .parse_slice(b"# TYPE a counter\na_total 1\n# EOF\n", &mut sink)
        .expect("same family name in a new body");
    assert_eq!(summary.samples, 1);
    assert_eq!(summary.lines, 3);
    assert_eq!(summary.bytes, 33);
    parser.set_options(ParseOptions::new(Format::PrometheusText));
    let summary = parser
        .parse_slice(b"a 1\n", &mut VecSink::default())
        .expect("text body");
    assert_eq!(summary.samples, 1);
}
