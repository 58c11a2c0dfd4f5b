//! Runs every case of the OpenMetrics parser conformance suite
//! (`shared/conformance/openmetrics/parsers`, beside the repository) and fails listing every case
//! where the parser disagrees with `shouldParse`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

mod common;

use common::{Chunked, Resolving};
use prom_scrape::{Format, ParseOptions, Parser, Sink, SinkError, VecSink};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/openmetrics/parsers")
}

/// The string value of `"key": "..."` in a small, flat JSON object.
fn json_string(json: &str, key: &str) -> Option<String> {
    let rest = json_after_key(json, key)?;
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The boolean value of `"key": true|false` in a small, flat JSON object.
fn json_bool(json: &str, key: &str) -> Option<bool> {
    let rest = json_after_key(json, key)?;
    if rest.starts_with("true") {
        Some(true)
    } else if rest.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

fn json_after_key<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let at = json.find(&quoted)? + quoted.len();
    let rest = json[at..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

struct Case {
    name: String,
    input: Vec<u8>,
    should_parse: bool,
}

fn load_cases() -> Vec<Case> {
    let dir = suite_dir();
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the OpenMetrics conformance suite is missing at {} ({e}); the repository must be \
             checked out beside `shared/`",
            dir.display()
        )
    });
    let mut cases = Vec::new();
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let json = fs::read_to_string(path.join("test.json"))
            .unwrap_or_else(|e| panic!("{name}: cannot read test.json: {e}"));
        let file = json_string(&json, "file").unwrap_or_else(|| panic!("{name}: no \"file\""));
        let should_parse = json_bool(&json, "shouldParse")
            .unwrap_or_else(|| panic!("{name}: no boolean \"shouldParse\""));
        let input = fs::read(path.join(&file))
            .unwrap_or_else(|e| panic!("{name}: cannot read {file}: {e}"));
        cases.push(Case {
            name,
            input,
            should_parse,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

#[test]
fn every_conformance_case_agrees() {
    let cases = load_cases();
    assert_eq!(cases.len(), 211, "the suite should hold 211 cases");
    let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
    let mut disagreements = String::new();
    let mut failed = 0;
    for case in &cases {
        let mut sink = VecSink::default();
        let result = parser.parse_slice(&case.input, &mut sink);
        if result.is_ok() != case.should_parse {
            failed += 1;
            let _ = writeln!(
                disagreements,
                "  {}: shouldParse={} but got {:?}",
                case.name, case.should_parse, result
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} conformance cases disagree:\n{disagreements}",
        cases.len()
    );
}

/// A sink that rejects everything, to prove that rejection is not why bad cases fail.
struct Refuse;

impl Sink for Refuse {
    fn sample(
        &mut self,
        _: &str,
        _: &[(&str, &str)],
        _: f64,
        _: Option<i64>,
    ) -> Result<(), SinkError> {
        Err(SinkError::Full)
    }
}

#[test]
fn streaming_agrees_with_slices_on_every_case() {
    let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
    for case in load_cases() {
        let mut from_slice = VecSink::default();
        let slice_result = parser.parse_slice(&case.input, &mut from_slice);
        let mut streamed = VecSink::default();
        let stream_result = parser.parse_reader(OneByte(&case.input), &mut streamed);
        assert_eq!(slice_result, stream_result, "{}", case.name);
        assert_eq!(from_slice, streamed, "{}", case.name);
        // A refusing sink turns every body with samples into a sink error, never a panic.
        let refused = parser.parse_slice(&case.input, &mut Refuse);
        if slice_result.as_ref().is_ok_and(|s| s.samples > 0) {
            assert!(refused.is_err(), "{}", case.name);
        }
    }
}

#[test]
fn accepted_cases_give_the_expected_samples() {
    let parse = |name: &str| {
        let dir = suite_dir().join(name);
        let input = fs::read(dir.join("metrics")).expect("case input");
        let mut sink = VecSink::default();
        Parser::new(ParseOptions::new(Format::OpenMetrics))
            .parse_slice(&input, &mut sink)
            .expect("accepted case");
        sink
    };
    let escaping = parse("escaping");
    let values: Vec<&str> = escaping
        .samples
        .iter()
        .map(|s| s.labels[0].1.as_str())
        .collect();
    assert_eq!(values, ["b\"a\nr", "b\\a\\z", "b\"a\nr # ", "b\\a\\z # "]);

    let timestamps = parse("timestamps");
    let ms: Vec<Option<i64>> = timestamps.samples.iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(
        ms,
        [
            Some(0),
            Some(0),
            Some(1100),
            Some(i64::MAX),
            Some(1_500_000),
            Some(1_234_567_890_000)
        ]
    );

    let hist = parse("simple_histogram");
    let names: Vec<&str> = hist.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a_bucket", "a_bucket", "a_count", "a_sum"]);

    // Exemplars are validated, then dropped.
    let exemplars = parse("histogram_exemplars");
    assert_eq!(exemplars.samples.len(), 3);
    assert!(exemplars.samples.iter().all(|s| s.labels.len() == 1));
}

/// Every case parsed right after every accepted case, offered that parse's order: the same
/// result and samples as a parse without repeat records.
#[test]
fn every_case_after_every_accepted_case_reads_the_same_with_repeats() {
    let cases = load_cases();
    let plain = |input: &[u8]| {
        let mut sink = VecSink::default();
        let r = Parser::new(ParseOptions::new(Format::OpenMetrics)).parse_slice(input, &mut sink);
        (r, sink.samples)
    };
    // From a slice, and through a reader whose chunks end anywhere in a line (so that lines
    // are read both from the buffer and after a split), the second parse the same either way.
    for chunks in [None, Some(&[7usize, 13][..]), Some(&[64][..])] {
        let parse = |parser: &mut Parser, input: &[u8], sink: &mut Resolving| match chunks {
            None => parser.parse_slice(input, sink),
            Some(sizes) => parser.parse_reader(
                Chunked {
                    body: input,
                    sizes,
                    call: 0,
                },
                sink,
            ),
        };
        let mut parser = Parser::new(ParseOptions::new(Format::OpenMetrics));
        let mut sink = Resolving::default();
        let mut token = 0;
        let mut repeated_after_itself = Vec::new();
        for first in cases.iter().filter(|c| c.should_parse) {
            for case in &cases {
                token += 2;
                parser.set_replay(token, 0);
                parse(&mut parser, &first.input, &mut sink).expect(&first.name);
                sink.last = std::mem::take(&mut sink.got.samples);
                let before = sink.repeats;
                parser.set_replay(token + 1, token);
                let result = parse(&mut parser, &case.input, &mut sink);
                let samples = std::mem::take(&mut sink.got.samples);
                assert_eq!(
                    (result, samples),
                    plain(&case.input),
                    "{} after {}, chunks {chunks:?}",
                    case.name,
                    first.name
                );
                if std::ptr::eq(first, case) && sink.repeats > before {
                    repeated_after_itself.push(case.name.as_str());
                }
            }
        }
        check_repeated_after_itself(&cases, &repeated_after_itself);
    }
}

/// Every accepted case with a sample line without an exemplar repeats after itself.
fn check_repeated_after_itself(cases: &[Case], repeated_after_itself: &[&str]) {
    let expected: Vec<&str> = cases
        .iter()
        .filter(|c| {
            c.should_parse
                && c.input.split(|&b| b == b'\n').any(|l| {
                    l.first().is_some_and(|&b| b != b'#') && !l.windows(4).any(|w| w == b" # {")
                })
        })
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(repeated_after_itself, expected);
}

/// A reader that returns one byte per call, the worst case for line reassembly.
struct OneByte<'a>(&'a [u8]);

impl embedded_io::ErrorType for OneByte<'_> {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(slot)) => {
                *slot = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
