//! The `prom-text` decoder: Prometheus text (0.0.4, or OpenMetrics by `Content-Type`) pushed
//! to Pushgateway paths, `PUT|POST /metrics/job/<job>{/<label>/<value>}`.
//!
//! The path's grouping labels (`job` and the pairs after it) are set on every sample and win
//! over labels of the same name in the body, so a push lands in the series its path names.
//! Path segments are percent-decoded; a label name ending in `@base64` takes a base64url
//! value, as the Pushgateway's clients write values containing `/`.
//!
//! [`decode`] is the whole logic and compiles natively for tests; on wasm32 the crate is the
//! plugin. A body is accepted or refused whole: the host discards every sample of a message
//! whose decode fails.
//!
//! # Example
//!
//! The default decoder of the Pushgateway paths of an HTTP source, so
//! `curl --data-binary @- http://127.0.0.1:9091/metrics/job/backup/host/db1` works as against
//! a Pushgateway:
//!
//! ```toml
//! [[ingest]]
//! name = "batch"
//! source = "http"
//! listen = "127.0.0.1:9091"
//! ```
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::borrow::ToOwned as _;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::num::NonZeroU64;
use prom_scrape::{ParseOptions, Parser, Sink, SinkError, format_for_content_type};

/// Grouping labels of a Pushgateway path: `/metrics/job/<job>{/<label>/<value>}`, sorted by
/// name.
///
/// # Errors
/// A path of another shape, an empty job, a bad label name, bad percent or base64 encoding.
pub fn grouping_labels(path: &str) -> Result<Vec<(String, String)>, String> {
    let path = path.split('?').next().unwrap_or_default();
    let mut segments: Vec<&str> = Vec::new();
    if let Some(rest) = path.strip_prefix("/metrics/job@base64/") {
        segments.push("job@base64");
        segments.extend(rest.split('/'));
    } else if let Some(rest) = path.strip_prefix("/metrics/job/") {
        segments.push("job");
        segments.extend(rest.split('/'));
    } else {
        return Err(format!(
            "path `{path}` is not /metrics/job/<job>{{/<label>/<value>}}"
        ));
    }
    if !segments.len().is_multiple_of(2) {
        return Err(format!(
            "path `{path}`: label `{}` has no value",
            segments[segments.len() - 1]
        ));
    }
    let mut labels: Vec<(String, String)> = Vec::new();
    for pair in segments.chunks(2) {
        let (raw_name, raw_value) = (pair[0], pair[1]);
        let (name, value) = match raw_name.strip_suffix("@base64") {
            Some(n) => (n.to_owned(), base64url(raw_value)?),
            None => (percent_decode(raw_name)?, percent_decode(raw_value)?),
        };
        if !is_label_name(&name) {
            return Err(format!("path `{path}`: `{name}` is not a label name"));
        }
        if name == "job" && value.is_empty() {
            return Err(format!("path `{path}`: the job is empty"));
        }
        if labels.iter().any(|(n, _)| *n == name) {
            return Err(format!("path `{path}`: label `{name}` appears twice"));
        }
        labels.push((name, value));
    }
    labels.sort();
    Ok(labels)
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{s}`: bad percent encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}`: not UTF-8 once decoded"))
}

fn base64url(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(format!("`{s}`: not base64url")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}`: not UTF-8 once decoded"))
}

/// Where decoded samples go: (metric name, labels sorted by name, value, timestamp ms).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64, Option<i64>) -> Result<(), String> + 'o;

/// Decodes one push: `body` parsed by `content_type`, every sample given the grouping labels
/// of `path`, then handed to `out` (name, labels sorted by name, value, timestamp).
///
/// # Errors
/// A message naming what is wrong with the path or the body (with the line number).
pub fn decode(
    parser: &mut Parser,
    path: &str,
    content_type: &str,
    body: &[u8],
    sample_limit: u32,
    out: &mut Out<'_>,
) -> Result<usize, String> {
    let grouping = grouping_labels(path)?;
    parser.set_options(
        ParseOptions::new(format_for_content_type(content_type))
            .with_sample_limit(NonZeroU64::new(u64::from(sample_limit))),
    );
    let mut sink = Grouped {
        grouping: &grouping,
        labels: Vec::new(),
        out,
    };
    let summary = parser
        .parse_slice(body, &mut sink)
        .map_err(|e| format!("{e}"))?;
    Ok(usize::try_from(summary.samples).unwrap_or(usize::MAX))
}

struct Grouped<'g, 'o> {
    grouping: &'g [(String, String)],
    labels: Vec<(String, String)>,
    out: &'o mut Out<'o>,
}

impl Sink for Grouped<'_, '_> {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.labels.clear();
        for (n, v) in labels {
            if !self.grouping.iter().any(|(g, _)| g == n) {
                self.labels.push(((*n).to_owned(), (*v).to_owned()));
            }
        }
        self.labels.extend(self.grouping.iter().cloned());
        self.labels.sort();
        let borrowed: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        (self.out)(name, &borrowed, value, timestamp_ms).map_err(SinkError::Rejected)
    }
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{DecodeRequest, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error};
    use prom_scrape::{ParseOptions, Parser};

    struct PromText {
        /// Kept across messages so its buffers are allocated once.
        parser: Parser,
    }

    impl Decoder for PromText {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            config.expect_table(&[]).map_err(Error::new)?;
            Ok(Self {
                parser: Parser::new(ParseOptions::default()),
            })
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            super::decode(
                &mut self.parser,
                req.context(),
                req.content_type(),
                req.body(),
                req.sample_limit(),
                &mut |name, labels, value, ts| {
                    out.sample(name, labels.iter().copied(), value, ts)
                        .map_err(|_| "the host took no more samples".into())
                },
            )
            .map(drop)
            .map_err(Error::new)
        }
    }

    magpie_sdk::export_decoder!(PromText);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    type Got = Vec<(String, Vec<(String, String)>, f64, Option<i64>)>;

    fn run(path: &str, body: &str) -> Result<Got, String> {
        let mut got = Got::new();
        let mut parser = Parser::new(ParseOptions::default());
        decode(
            &mut parser,
            path,
            "text/plain",
            body.as_bytes(),
            0,
            &mut |n, l, v, t| {
                got.push((
                    n.into(),
                    l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
                    v,
                    t,
                ));
                Ok(())
            },
        )?;
        Ok(got)
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    #[test]
    fn the_path_labels_every_sample_and_wins_over_the_body() {
        let got = run(
            "/metrics/job/backup/host/db%2F1",
            "# TYPE done gauge\ndone{job=\"other\",kind=\"full\"} 1.5\nsize 42 1700000000000\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "done".into(),
                    owned(&[("host", "db/1"), ("job", "backup"), ("kind", "full")]),
                    1.5,
                    None
                ),
                (
                    "size".into(),
                    owned(&[("host", "db/1"), ("job", "backup")]),
                    42.0,
                    Some(1_700_000_000_000)
                ),
            ]
        );
    }

    #[test]
    fn base64_values_decode() {
        assert_eq!(
            grouping_labels("/metrics/job/j/path@base64/L3Zhci90bXA").unwrap(),
            owned(&[("job", "j"), ("path", "/var/tmp")])
        );
        assert_eq!(
            grouping_labels("/metrics/job@base64/YS9i").unwrap(),
            owned(&[("job", "a/b")])
        );
    }

    #[test]
    fn bad_paths_and_bodies_are_refused_with_the_reason() {
        for (path, want) in [
            ("/metrics", "is not /metrics/job/"),
            ("/metrics/job/", "the job is empty"),
            ("/metrics/job/j/instance", "has no value"),
            ("/metrics/job/j/1x/v", "is not a label name"),
            ("/metrics/job/j/job/k", "appears twice"),
            ("/metrics/job/j%zz", "bad percent encoding"),
        ] {
            let e = run(path, "a 1\n").unwrap_err();
            assert!(e.contains(want), "{path}: {e}");
        }
        let e = run("/metrics/job/j", "a 1\nb{ 2\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
