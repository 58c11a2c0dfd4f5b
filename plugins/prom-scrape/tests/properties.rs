//! Properties over generated bodies: chunking never changes the outcome, and no input panics.

mod common;

use std::num::{NonZeroU64, NonZeroUsize};

use common::Chunked;
use prom_scrape::{Format, ParseError, ParseOptions, ParseSummary, Parser, VecSink};
use proptest::prelude::*;

/// Lines that exercise both formats: valid samples and metadata of every type, escapes,
/// exemplars, timestamps, and some broken lines.
const LINES: &[&str] = &[
    "# TYPE a counter",
    "# HELP a help \\\\ with \\n escapes",
    "a_total 1",
    "a_total{x=\"1\"} 2 1700000000.123",
    "a_total{x=\"2\"} 3 # {trace_id=\"abc\"} 1.5 1700000000",
    "a_created 1700000000",
    "# TYPE h histogram",
    "h_bucket{le=\"0.5\"} 1",
    "h_bucket{le=\"+Inf\"} 2",
    "h_count 2",
    "h_sum 0.75",
    "# TYPE s summary",
    "s{quantile=\"0.9\"} 0.1",
    "s_sum 1",
    "s_count 3",
    "# TYPE g gauge",
    "# UNIT g_seconds seconds",
    "g{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\",n=\"a\\nb\"} -1.5e-3",
    "g NaN",
    "g +Inf 123",
    "untyped_metric{a=\"b\",} 7 1000",
    "x { a = \"1\" } 2",
    "# just a comment",
    "",
    "# EOF",
    "bad{x=\"1\",x=\"2\"} 1",
    "bad{unterminated=\"1} 1",
    "bad 0x1",
    "v{k=\"\u{2603} snow\"} 1",
];

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::sample::select(LINES), 0..40),
        any::<bool>(),
    )
        .prop_map(|(lines, final_newline)| {
            let mut body = lines.join("\n");
            if final_newline {
                body.push('\n');
            }
            body.into_bytes()
        })
}

/// A body valid in both formats: families of counters, gauges, histograms and summaries with
/// escaped label values, ending with `# EOF` (a comment in the text format).
fn valid_body_strategy() -> impl Strategy<Value = (Vec<u8>, usize)> {
    prop::collection::vec((0u8..4, 1usize..5, 0u32..1000), 0..12).prop_map(|families| {
        let mut body = String::new();
        let mut samples = 0;
        for (i, (kind, series, seed)) in families.into_iter().enumerate() {
            let f = format!("fam_{i}");
            body.push_str(&format!("# HELP {f} Family {i}, \\ and \\n.\n"));
            for s in 0..series {
                let labels = format!("series=\"{s}\",path=\"/x\\\"y\\\\z\"");
                let v = u64::from(seed) + s as u64;
                match kind {
                    0 => {
                        if s == 0 {
                            body.push_str(&format!("# TYPE {f} counter\n"));
                        }
                        body.push_str(&format!("{f}_total{{{labels}}} {v}\n"));
                        samples += 1;
                    }
                    1 => {
                        if s == 0 {
                            body.push_str(&format!("# TYPE {f} gauge\n"));
                        }
                        body.push_str(&format!("{f}{{{labels}}} -{v}.25e-1\n"));
                        samples += 1;
                    }
                    2 => {
                        if s == 0 {
                            body.push_str(&format!("# TYPE {f} histogram\n"));
                        }
                        for (le, c) in [("0.1", v), ("1", v + 1), ("+Inf", v + 2)] {
                            body.push_str(&format!("{f}_bucket{{{labels},le=\"{le}\"}} {c}\n"));
                        }
                        body.push_str(&format!("{f}_count{{{labels}}} {}\n", v + 2));
                        body.push_str(&format!("{f}_sum{{{labels}}} {v}.5\n"));
                        samples += 5;
                    }
                    _ => {
                        if s == 0 {
                            body.push_str(&format!("# TYPE {f} summary\n"));
                        }
                        for q in ["0.5", "0.99"] {
                            body.push_str(&format!("{f}{{{labels},quantile=\"{q}\"}} {v}\n"));
                        }
                        body.push_str(&format!("{f}_sum{{{labels}}} {v}\n"));
                        body.push_str(&format!("{f}_count{{{labels}}} {v}\n"));
                        samples += 4;
                    }
                }
            }
        }
        body.push_str("# EOF\n");
        (body.into_bytes(), samples)
    })
}

fn run_slice(opts: ParseOptions, body: &[u8]) -> (Result<ParseSummary, ParseError>, VecSink) {
    let mut sink = VecSink::default();
    let result = Parser::new(opts).parse_slice(body, &mut sink);
    (result, sink)
}

fn run_chunked(
    parser: &mut Parser,
    body: &[u8],
    sizes: &[usize],
) -> (Result<ParseSummary, ParseError>, VecSink) {
    let mut sink = VecSink::default();
    let reader = Chunked {
        body,
        sizes,
        call: 0,
    };
    let result = parser.parse_reader(reader, &mut sink);
    (result, sink)
}

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::PrometheusText), Just(Format::OpenMetrics)]
}

proptest! {
    #[test]
    fn chunking_never_changes_the_outcome(
        body in body_strategy(),
        sizes in prop::collection::vec(1usize..64, 1..8),
        format in format_strategy(),
        max_line in 8usize..120,
        body_limit in prop::option::of(1u64..600),
    ) {
        let opts = ParseOptions::new(format)
            .with_max_line_len(NonZeroUsize::new(max_line).expect("nonzero"))
            .with_body_size_limit(body_limit.and_then(NonZeroU64::new));
        let expected = run_slice(opts, &body);
        // The same parser is reused to show that no state leaks from one body to the next.
        let mut parser = Parser::new(opts);
        let chunked = run_chunked(&mut parser, &body, &sizes);
        prop_assert_eq!(&chunked, &expected);
        let again = run_chunked(&mut parser, &body, &[usize::MAX]);
        prop_assert_eq!(&again, &expected);
    }

    #[test]
    fn valid_bodies_parse_alike_in_both_formats_and_any_chunking(
        (body, samples) in valid_body_strategy(),
        sizes in prop::collection::vec(1usize..300, 1..8),
    ) {
        let (om, om_sink) = run_slice(ParseOptions::new(Format::OpenMetrics), &body);
        let (text, text_sink) = run_slice(ParseOptions::new(Format::PrometheusText), &body);
        prop_assert_eq!(om.expect("valid OpenMetrics").samples, samples as u64);
        prop_assert_eq!(text.expect("valid text").samples, samples as u64);
        prop_assert_eq!(&om_sink.samples, &text_sink.samples);
        let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
        let (chunked, chunked_sink) = run_chunked(&mut parser, &body, &sizes);
        prop_assert!(chunked.is_ok());
        prop_assert_eq!(chunked_sink, om_sink);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        format in format_strategy(),
    ) {
        let opts = ParseOptions::new(format);
        let (result, sink) = run_slice(opts, &body);
        // Whatever the outcome, a success delivered exactly the samples it counted.
        if let Ok(summary) = result {
            prop_assert_eq!(summary.samples, sink.samples.len() as u64);
        }
        let _ = run_chunked(&mut Parser::new(opts), &body, &[3]);
    }

    #[test]
    fn metric_shaped_noise_never_panics(
        body in prop::collection::vec(
            prop::sample::select(&b"a_b:{}=\",# \\\n\t01.eE+-InfNa\xe2\x98\x83"[..]),
            0..256,
        ),
        format in format_strategy(),
    ) {
        let opts = ParseOptions::new(format)
            .with_max_line_len(NonZeroUsize::new(64).expect("nonzero"));
        let slice = run_slice(opts, &body);
        let chunked = run_chunked(&mut Parser::new(opts), &body, &[1, 7]);
        prop_assert_eq!(slice, chunked);
    }
}
