//! Repeat records (`Parser::set_replay`): a parse that hands on a line as "the series at this
//! position last time" must come to exactly the samples a parse without replay reads, and must
//! fail exactly when it fails.

mod common;

use common::{Chunked, Resolving};
use prom_scrape::{Format, OwnedSample, ParseError, ParseOptions, ParseSummary, Parser, VecSink};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::num::NonZeroUsize;

/// How a body reaches the parser, and its line limit.
#[derive(Debug, Clone, Default)]
struct Way {
    /// Read in chunks of these sizes (cycling) instead of from a slice.
    chunks: Option<Vec<usize>>,
    max_line_len: Option<usize>,
}

impl Way {
    fn options(&self, format: Format) -> ParseOptions {
        let options = ParseOptions::new(format);
        match self.max_line_len.and_then(NonZeroUsize::new) {
            Some(max) => options.with_max_line_len(max),
            None => options,
        }
    }
}

fn way_strategy() -> impl Strategy<Value = Way> {
    (
        prop::option::of(prop::collection::vec(1usize..40, 1..4)),
        prop::option::of(prop::sample::select(&[12usize, 20, 30][..])),
    )
        .prop_map(|(chunks, max_line_len)| Way {
            chunks,
            max_line_len,
        })
}

/// A parser with replay on and the host's side of it: parse `k` is offered the order of parse
/// `k - 1` while that one succeeded.
struct Scrapes {
    parser: Parser,
    sink: Resolving,
    token: u64,
    order: u64,
    way: Way,
}

impl Scrapes {
    fn new(format: Format) -> Self {
        Self::with(format, Way::default())
    }

    fn with(format: Format, way: Way) -> Self {
        Self {
            parser: Parser::new(way.options(format)),
            sink: Resolving::default(),
            token: 0,
            order: 0,
            way,
        }
    }

    fn parse(&mut self, body: &[u8]) -> (Result<ParseSummary, ParseError>, Vec<OwnedSample>) {
        self.token += 1;
        self.parser.set_replay(self.token, self.order);
        let result = match &self.way.chunks {
            None => self.parser.parse_slice(body, &mut self.sink),
            Some(sizes) => {
                let reader = Chunked {
                    body,
                    sizes,
                    call: 0,
                };
                self.parser.parse_reader(reader, &mut self.sink)
            }
        };
        let samples = std::mem::take(&mut self.sink.got.samples);
        if result.is_ok() {
            self.order = self.token;
            self.sink.last.clone_from(&samples);
        } else {
            self.order = 0;
            self.sink.last.clear();
        }
        (result, samples)
    }
}

fn plain(format: Format, body: &[u8]) -> (Result<ParseSummary, ParseError>, Vec<OwnedSample>) {
    plain_with(format, &Way::default(), body)
}

/// The oracle: a fresh parser, no replay, the body in one slice.
fn plain_with(
    format: Format,
    way: &Way,
    body: &[u8],
) -> (Result<ParseSummary, ParseError>, Vec<OwnedSample>) {
    let mut sink = VecSink::default();
    let result = Parser::new(way.options(format)).parse_slice(body, &mut sink);
    (result, sink.samples)
}

#[test]
fn a_body_parsed_again_is_all_repeats() {
    let body = b"# TYPE a counter\na_total{x=\"1\"} 1\nb{y=\"a \\\" } b\"} 2 1000\nc 3\n";
    let mut s = Scrapes::new(Format::PrometheusText);
    let (first, samples) = s.parse(body);
    assert_eq!(first.unwrap().samples, 3);
    assert_eq!(s.sink.repeats, 0);
    let changed = b"# TYPE a counter\na_total{x=\"1\"} 10\nb{y=\"a \\\" } b\"} 20 2000\nc 30\n";
    let (second, again) = s.parse(changed);
    assert_eq!(second.unwrap().samples, 3);
    assert_eq!(s.sink.repeats, 3);
    assert_eq!(again, plain(Format::PrometheusText, changed).1);
    assert_ne!(again, samples);
}

#[test]
fn only_the_lines_that_kept_their_series_text_repeat() {
    let mut s = Scrapes::new(Format::PrometheusText);
    s.parse(b"a_total{x=\"1\"} 1\nb_total 2\nc{y=\"q\"} 3\nd 4\n")
        .0
        .unwrap();
    // Same series text; a bare name that now has labels; a value of the same length; a
    // series text followed by no blank.
    let body = b"a_total{x=\"1\"} 5\nb_total{z=\"9\"} 6\nc{y=\"r\"} 7\nd8 1\n";
    let (result, samples) = s.parse(body);
    result.unwrap();
    assert_eq!(s.sink.repeats, 1);
    assert_eq!(samples, plain(Format::PrometheusText, body).1);
}

#[test]
fn no_order_or_another_order_means_no_repeats() {
    let body = b"a 1\nb 2\n";
    let mut parser = Parser::new(ParseOptions::new(Format::PrometheusText));
    let mut sink = Resolving::default();
    parser.set_replay(1, 0);
    parser.parse_slice(body, &mut sink).unwrap();
    sink.last = std::mem::take(&mut sink.got.samples);
    // The host holds no order, or the order of a scrape this parser did not make.
    for (token, order) in [(2, 0), (3, 7), (4, 2)] {
        parser.set_replay(token, order);
        parser.parse_slice(body, &mut sink).unwrap();
        assert_eq!(sink.repeats, 0, "token {token}, order {order}");
        sink.last = std::mem::take(&mut sink.got.samples);
    }
    // A parse without `set_replay` forgets the positions.
    parser.parse_slice(body, &mut VecSink::default()).unwrap();
    parser.set_replay(5, 4);
    parser.parse_slice(body, &mut sink).unwrap();
    assert_eq!(sink.repeats, 0);
}

#[test]
fn openmetrics_repeats_in_the_same_family_and_never_with_an_exemplar() {
    let body = b"# TYPE a counter\na_total 1\na_total{x=\"1\"} 2 # {t=\"1\"} 1\n# EOF\n";
    let mut s = Scrapes::new(Format::OpenMetrics);
    s.parse(body).0.unwrap();
    let again = b"# TYPE a counter\na_total 5\na_total{x=\"1\"} 6 # {t=\"2\"} 1\n# EOF\n";
    let (result, samples) = s.parse(again);
    result.unwrap();
    assert_eq!(s.sink.repeats, 1);
    assert_eq!(samples, plain(Format::OpenMetrics, again).1);
    // Without its `TYPE` line `a_total` opens a family of its own: read in full, and then a
    // negative value is no longer a counter's.
    let untyped = b"a_total -1\na_total{x=\"1\"} 6\n# EOF\n";
    let before = s.sink.repeats;
    let (result, samples) = s.parse(untyped);
    result.unwrap();
    assert_eq!(s.sink.repeats, before);
    assert_eq!(samples, plain(Format::OpenMetrics, untyped).1);
}

#[test]
fn positions_of_one_format_are_not_repeated_in_the_other() {
    let mut parser = Parser::new(ParseOptions::new(Format::PrometheusText));
    let mut sink = Resolving::default();
    parser.set_replay(1, 0);
    parser.parse_slice(b"a_total 1\n", &mut sink).unwrap();
    sink.last = std::mem::take(&mut sink.got.samples);
    parser.set_options(ParseOptions::new(Format::OpenMetrics));
    parser.set_replay(2, 1);
    parser
        .parse_slice(b"a_total 1\n# EOF\n", &mut sink)
        .unwrap();
    assert_eq!(sink.repeats, 0);
    sink.last = std::mem::take(&mut sink.got.samples);
    parser.set_options(ParseOptions::new(Format::PrometheusText));
    parser.set_replay(3, 2);
    parser.parse_slice(b"a_total 1\n", &mut sink).unwrap();
    assert_eq!(sink.repeats, 0);
}

#[test]
fn a_failed_parse_is_not_repeated() {
    let mut s = Scrapes::new(Format::PrometheusText);
    s.parse(b"a 1\nb 2\n").0.unwrap();
    assert!(s.parse(b"a 1\nb x\n").0.is_err());
    let before = s.sink.repeats;
    s.parse(b"a 1\nb 2\n").0.unwrap();
    assert_eq!(s.sink.repeats, before);
    s.parse(b"a 1\nb 2\n").0.unwrap();
    assert_eq!(s.sink.repeats, before + 2);
}

/// Lines chosen so that positions often keep, lose or nearly keep their series text: same
/// lengths with other bytes, blanks where the parser allows them, a bare name followed by a
/// label set, values and timestamps that do not parse, escapes and `}` inside values, bytes
/// that are not UTF-8 in the series text and after it.
const LINES: &[&[u8]] = &[
    b"a_total 1",
    b"a_total 2 1000",
    b"a_total{x=\"1\"} 2",
    b"a_total{x=\"2\"} 2",
    b"b_total{x=\"1\"} 3",
    b"a_total {x=\"1\"} 4",
    b"a_total{x=\"1\"}5",
    b"a_total{x=\"1\"}\t6 7",
    b"  a_total 1",
    b"a_total\t1",
    b"a_total{x=\"1\"} 1\r",
    b"a_total{x=\"1\"} bad",
    b"a_total{x=\"1\"} 1 2 3",
    b"a_total{x=\"1\"} 1 # {t=\"1\"} 1",
    b"a_total{x=\"a}b\"} 1",
    b"a_total{x=\"a\\\"}\"} 1",
    b"a_total{x=\"1\",} 1",
    b"a_total{x=\"1\",x=\"2\"} 1",
    b"a_total{x=\"1\"",
    b"a_total",
    b"a_total ",
    b"a_totalx 1",
    b"# TYPE a_total counter",
    b"",
    b"g +Inf 123",
    b"g NaN",
    b"g{a=\"1\",b=\"2\"} 7",
    b"g{b=\"2\",a=\"1\"} 7",
    b"a_total{x=\"1\"} 1\xff",
    b"a_total{x=\"1\"} \xff1",
    b"a_total 1 2\xff",
    b"a_total{x=\"\xe2\x98\x83\"} 1",
    b"a_total{x=\"\xe2\x98\x84\"} 1",
    b"a_total{x=\"\xff\xfe\x98\"} 1",
    // Values and timestamps around what a repeated line is read with straight from the
    // buffer: long digit runs, every end of a number, blanks and `\r` before the line's end.
    b"a_total{x=\"1\"} 1234567890.125 1700000000000",
    b"a_total{x=\"1\"} 12345678901234567",
    b"a_total{x=\"1\"} 123456789.123456789",
    b"a_total{x=\"1\"} 1.5e+09 \t",
    b"a_total{x=\"1\"} 1e400",
    b"a_total{x=\"1\"} -.5",
    b"a_total{x=\"1\"} 1\r\r",
    b"a_total{x=\"1\"} 1 \r",
    b"a_total{x=\"1\"} 1 +1700000000000",
    b"a_total{x=\"1\"} 1 -5 ",
    b"a_total{x=\"1\"} 1 2\r",
    b"a_total{x=\"1\"} 1 12345678901234567890",
    b"a_total{x=\"1\"} 1 1.5",
    b"a_total{x=\"1\"} 1 2x",
    b"a_total{x=\"1\"} 1#",
    b"a_total{x=\"1\"} 0x10",
    b"a_total{x=\"1\"} 1e5.5",
    b"a_total 12345678.125",
    b"a_total\t-0 0",
    b"a_total{x=\"1\"} 1-5",
    b"a_total{x=\"1\"} 5+3 1",
];

#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, usize),
    Insert(usize, usize),
    Remove(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let line = 0..LINES.len();
    prop_oneof![
        (0usize..16, line.clone()).prop_map(|(p, l)| Edit::Replace(p, l)),
        (0usize..16, line).prop_map(|(p, l)| Edit::Insert(p, l)),
        (0usize..16).prop_map(Edit::Remove),
    ]
}

fn body(pool: &[&[u8]], lines: &[usize]) -> Vec<u8> {
    let mut b = Vec::new();
    for &i in lines {
        b.extend_from_slice(pool[i]);
        b.push(b'\n');
    }
    b
}

/// Parses `base`, then each step's edits of it in turn, with repeats and without: the
/// samples and errors must be the same. A body read again after a successful parse must
/// repeat every sample but those with an exemplar.
fn check_steps(
    format: Format,
    pool: &[&[u8]],
    base: Vec<usize>,
    steps: Vec<Vec<Edit>>,
) -> Result<(), TestCaseError> {
    check_steps_with(format, &Way::default(), false, pool, base, steps)
}

/// [`check_steps`] with the body read `way`, and without the last line's `\n` if
/// `unterminated`.
fn check_steps_with(
    format: Format,
    way: &Way,
    unterminated: bool,
    pool: &[&[u8]],
    base: Vec<usize>,
    steps: Vec<Vec<Edit>>,
) -> Result<(), TestCaseError> {
    let mut s = Scrapes::with(format, way.clone());
    let mut lines = base;
    let mut last_ok = false;
    for (k, edits) in std::iter::once(Vec::new()).chain(steps).enumerate() {
        let unchanged = k > 0 && edits.is_empty();
        for e in edits {
            match e {
                Edit::Replace(p, l) if !lines.is_empty() => {
                    let n = lines.len();
                    lines[p % n] = l % pool.len();
                }
                Edit::Insert(p, l) => lines.insert(p % (lines.len() + 1), l % pool.len()),
                Edit::Remove(p) if !lines.is_empty() => {
                    let n = lines.len();
                    lines.remove(p % n);
                }
                _ => {}
            }
        }
        let mut b = body(pool, &lines);
        if unterminated {
            b.pop();
        }
        let before = s.sink.repeats;
        let got = s.parse(&b);
        let want = plain_with(format, way, &b);
        prop_assert_eq!(&got, &want, "parse {}", k);
        if let (true, true, Ok(summary)) = (unchanged, last_ok, &got.0) {
            let exemplars = lines
                .iter()
                .filter(|&&l| pool[l].windows(4).any(|w| w == b" # {"))
                .count();
            let expected = match format {
                Format::PrometheusText => summary.samples,
                Format::OpenMetrics => summary.samples - exemplars as u64,
            };
            prop_assert_eq!((s.sink.repeats - before) as u64, expected);
        }
        last_ok = got.0.is_ok();
    }
    Ok(())
}

/// A valid OpenMetrics body of every type (indices into [`OM_LINES`]), which the edits below
/// start from.
const OM_BASE: &[usize] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28,
];

/// [`OM_BASE`]'s lines, then lines of the same series with other values, timestamps and
/// exemplars (valid and not), lines that move a series to another family, and lines that
/// break a rule of the format.
const OM_LINES: &[&[u8]] = &[
    b"# TYPE a counter",
    b"# HELP a Help.",
    b"a_total{x=\"1\"} 1",
    b"a_created{x=\"1\"} 1",
    b"a_total{x=\"2\"} 2",
    b"# TYPE h histogram",
    b"h_bucket{le=\"1\"} 1",
    b"h_bucket{le=\"+Inf\"} 2",
    b"h_count 2",
    b"h_sum 3",
    b"h_bucket{le=\"1\",y=\"1\"} 0",
    b"h_bucket{le=\"+Inf\",y=\"1\"} 0",
    b"h_count{y=\"1\"} 0",
    b"h_sum{y=\"1\"} 0",
    b"# TYPE s summary",
    b"s{quantile=\"0.5\"} 1",
    b"s_count 1",
    b"s_sum 2",
    b"# TYPE st stateset",
    b"st{st=\"a\"} 1",
    b"st{st=\"b\"} 0",
    b"# TYPE i info",
    b"i_info{v=\"1\"} 1",
    b"# TYPE gh gaugehistogram",
    b"gh_bucket{le=\"+Inf\"} 1",
    b"gh_gcount 1",
    b"gh_gsum 1",
    b"g 1",
    b"# EOF",
    // The same series, other values and timestamps.
    b"a_total{x=\"1\"} 5",
    b"a_total{x=\"1\"} 5 100",
    b"a_total{x=\"1\"} 5 99",
    b"a_created{x=\"1\"} 1 100",
    b"a_total{x=\"1\"} -1",
    b"a_total{x=\"1\"} NaN",
    b"a_total{x=\"1\"} 5 # {t=\"1\"} 1",
    b"a_total{x=\"1\"} 5 100 # {t=\"1\"} 1 100",
    b"h_bucket{le=\"1\"} 3",
    b"h_bucket{le=\"1\"} 1.5",
    b"h_bucket{le=\"+Inf\"} 3",
    b"h_count 3",
    b"h_sum -1",
    b"h_bucket{le=\"1\"} 1 # {t=\"1\"} 0.5",
    b"s{quantile=\"0.5\"} -1",
    b"s_count 1.5",
    b"st{st=\"a\"} 2",
    b"i_info{v=\"1\"} 2",
    b"gh_gcount 2",
    b"gh_gsum -1",
    b"gh_bucket{le=\"+Inf\"} 2",
    b"g -1 1.5",
    b"g +Inf",
    // Lines the format refuses, or reads otherwise.
    b"g  1",
    b"g 1 ",
    b"g 1\xff",
    b"g 1 \xff",
    b"a_total{x=\"1\"}1",
    b"a_total{x=\"1\"} 1\r",
    b"",
    b"# TYPE g gauge",
    b"# TYPE a gauge",
    b"a_total{x=\"1\"} 1 # {t=\"1\"}",
    // Around what a repeated line is read with straight from the buffer.
    b"a_total{x=\"1\"} 1234567890.125",
    b"a_total{x=\"1\"} 12345678901234567",
    b"a_total{x=\"1\"} 5 1700000000.5",
    b"a_total{x=\"1\"} 5 1e400",
    b"a_total{x=\"1\"} 5  100",
    b"a_total{x=\"1\"} 5 100 ",
    b"a_total{x=\"1\"} 5\t100",
    b"a_total{x=\"1\"} 5 100\r",
    b"a_total{x=\"1\"} 5-1",
    b"a_total{x=\"1\"} 5 #",
    b"h_bucket{le=\"1\"} 12345678",
];

proptest! {
    #[test]
    fn repeats_come_to_what_a_full_parse_reads(
        base in prop::collection::vec(0..LINES.len(), 0..12),
        steps in prop::collection::vec(prop::collection::vec(edit_strategy(), 0..3), 1..5),
    ) {
        check_steps(Format::PrometheusText, LINES, base, steps)?;
    }

    /// The same through a reader whose chunks end anywhere in a line, under a line limit
    /// some lines pass, and with the last line's `\n` missing: a line read from the buffer
    /// as a repeat must come to what its split reads, or be left to it.
    #[test]
    fn repeats_come_to_what_a_full_parse_reads_however_the_body_arrives(
        way in way_strategy(),
        unterminated in any::<bool>(),
        base in prop::collection::vec(0..LINES.len(), 0..12),
        steps in prop::collection::vec(prop::collection::vec(edit_strategy(), 0..3), 1..5),
    ) {
        check_steps_with(Format::PrometheusText, &way, unterminated, LINES, base, steps)?;
    }

    #[test]
    fn openmetrics_repeats_come_to_what_a_full_parse_reads(
        steps in prop::collection::vec(prop::collection::vec(om_edit_strategy(), 0..3), 1..6),
    ) {
        check_steps(Format::OpenMetrics, OM_LINES, OM_BASE.to_vec(), steps)?;
    }

    #[test]
    fn openmetrics_repeats_come_to_what_a_full_parse_reads_however_the_body_arrives(
        way in way_strategy(),
        unterminated in any::<bool>(),
        steps in prop::collection::vec(prop::collection::vec(om_edit_strategy(), 0..3), 1..6),
    ) {
        check_steps_with(Format::OpenMetrics, &way, unterminated, OM_LINES, OM_BASE.to_vec(), steps)?;
    }
}

fn om_edit_strategy() -> impl Strategy<Value = Edit> {
    let line = 0..OM_LINES.len();
    prop_oneof![
        3 => (0usize..32, line.clone()).prop_map(|(p, l)| Edit::Replace(p, l)),
        1 => (0usize..32, line).prop_map(|(p, l)| Edit::Insert(p, l)),
        1 => (0usize..32).prop_map(Edit::Remove),
    ]
}

/// Every line of [`LINES`] parsed right after every line, so that each of them meets every
/// other at the same position: read from a slice, through small chunks, under a line limit
/// some lines pass, with and without the last `\n`. Each parse must come to what a full
/// parse reads.
#[test]
fn every_text_line_after_every_line() {
    let ways = [
        Way::default(),
        Way {
            chunks: Some(vec![1]),
            max_line_len: None,
        },
        Way {
            chunks: Some(vec![3, 17]),
            max_line_len: None,
        },
        Way {
            chunks: None,
            max_line_len: Some(20),
        },
        Way {
            chunks: Some(vec![8]),
            max_line_len: Some(20),
        },
    ];
    let mut repeats = 0;
    for way in &ways {
        for unterminated in [false, true] {
            for first in LINES {
                for second in LINES {
                    let mut s = Scrapes::with(Format::PrometheusText, way.clone());
                    for line in [first, second] {
                        let mut b = [*line, b"\n"].concat();
                        if unterminated {
                            b.pop();
                        }
                        let got = s.parse(&b);
                        assert_eq!(
                            got,
                            plain_with(Format::PrometheusText, way, &b),
                            "{:?} after {:?}, {way:?}, unterminated: {unterminated}",
                            String::from_utf8_lossy(second),
                            String::from_utf8_lossy(first),
                        );
                    }
                    repeats += s.sink.repeats;
                }
            }
        }
    }
    // Lines do repeat here: this is not a test of the split path alone.
    assert!(repeats > 1000, "{repeats}");
}

/// Every line of [`OM_LINES`] in place of each sample line of [`OM_BASE`] in turn, parsed
/// after the base itself, in each of the ways of [`every_text_line_after_every_line`] (the
/// limit one the base's longest line meets): the same as a full parse.
#[test]
fn every_openmetrics_line_in_place_of_every_sample() {
    let ways = [
        Way::default(),
        Way {
            chunks: Some(vec![5, 29]),
            max_line_len: None,
        },
        Way {
            chunks: None,
            max_line_len: Some(28),
        },
    ];
    let samples: Vec<usize> = OM_BASE
        .iter()
        .copied()
        .filter(|&l| !OM_LINES[l].starts_with(b"#"))
        .collect();
    let mut repeats = 0;
    for way in &ways {
        for &at in &samples {
            for (line, text) in OM_LINES.iter().enumerate() {
                let mut s = Scrapes::with(Format::OpenMetrics, way.clone());
                let mut lines = OM_BASE.to_vec();
                for body in [body(OM_LINES, &lines), {
                    lines[at] = line;
                    body(OM_LINES, &lines)
                }] {
                    let got = s.parse(&body);
                    assert_eq!(
                        got,
                        plain_with(Format::OpenMetrics, way, &body),
                        "{:?} in place of {:?}, {way:?}",
                        String::from_utf8_lossy(text),
                        String::from_utf8_lossy(OM_LINES[at]),
                    );
                }
                repeats += s.sink.repeats;
            }
        }
    }
    assert!(repeats > 1000, "{repeats}");
}

#[test]
fn the_openmetrics_base_is_valid() {
    let b = body(OM_LINES, OM_BASE);
    let (result, samples) = plain(Format::OpenMetrics, &b);
    assert_eq!(result.unwrap().samples, 21);
    assert_eq!(samples.len(), 21);
}

#[test]
fn a_repeated_series_text_does_not_excuse_bytes_that_are_not_utf8() {
    for after in [
        &b"a_total{x=\"1\"} 1\xff\n"[..],
        b"a_total{x=\"1\"} 1 2\xff\n",
        b"a_total{x=\"1\"} \xc3\n",
        b"b 1\xff\n",
    ] {
        let mut s = Scrapes::new(Format::PrometheusText);
        s.parse(b"a_total{x=\"1\"} 1\nb 2\n").0.unwrap();
        let body = [&b"a_total{x=\"1\"} 3\n"[..], after].concat();
        let (got, _) = s.parse(&body);
        assert_eq!(got, plain(Format::PrometheusText, &body).0);
        assert!(
            matches!(got, Err(ParseError::InvalidUtf8 { line: 2 })),
            "{got:?}"
        );
    }
}
