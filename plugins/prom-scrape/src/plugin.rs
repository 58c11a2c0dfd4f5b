//! The wasm32 plugin: fetches the target with Prometheus' `Accept` header, picks the parser by
//! the response's content type, and streams the body through the parser into the host.
//!
//! The body is never held whole: the parser reads it from the host's stream in chunks, and
//! each sample goes to the SDK's [`Emitter`], which hands the host bounded batches. Samples
//! emitted before a parse error are discarded by the host, since a failed scrape is rejected
//! as a whole.

use alloc::format;
use alloc::string::String;
use core::num::NonZeroU64;

use alloc::vec::Vec;
use magpie_sdk::abi::{
    ExemplarReport, HostError, Label, MAX_EXEMPLARS_PER_SCRAPE, ScrapeRequest, ScrapedExemplar,
    Value,
};
use magpie_sdk::guest::{self, Emitter, Error, Scraper, Stream};

use crate::meta::MetaCache;
use crate::{
    ACCEPT_HEADER, ExemplarRef, MetricType, ParseError, ParseOptions, Parser, ScrapeConfig, Sink,
    SinkError, format_for_content_type,
};

struct PromScrape {
    config: ScrapeConfig,
    /// Kept across scrapes so its buffers are allocated once.
    parser: Parser,
    /// The target's metadata as last reported to the host.
    meta: MetaCache,
}

impl Scraper for PromScrape {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        let config = ScrapeConfig::from_table(config).map_err(Error::new)?;
        Ok(Self {
            config,
            parser: Parser::new(ParseOptions::default()),
            meta: MetaCache::default(),
        })
    }

    fn scrape(&mut self, req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
        let target = req.target();
        let fail = |what: &dyn core::fmt::Display| Error::new(format!("scrape {target}: {what}"));
        let response = guest::fetch(target, &[("Accept", ACCEPT_HEADER)]).map_err(|e| fail(&e))?;
        if !(200..300).contains(&response.status) {
            return Err(fail(&format!(
                "server answered HTTP status {}",
                response.status
            )));
        }
        let options = ParseOptions::new(format_for_content_type(&response.content_type))
            .with_max_line_len(self.config.max_line_len)
            .with_body_size_limit(NonZeroU64::new(req.body_size_limit()))
            .with_sample_limit(NonZeroU64::new(u64::from(req.sample_limit())));
        self.parser.set_options(options);
        let replay = req.replay();
        self.parser.set_replay(replay.token, replay.order);
        let mut body = Body {
            stream: response.body,
            error: None,
        };
        self.meta.begin();
        let mut sink = ToEmitter {
            out: &mut *out,
            meta: &mut self.meta,
            exemplars: Vec::new(),
            dropped: 0,
        };
        let parsed = self.parser.parse_reader(&mut body, &mut sink);
        let (exemplars, dropped) = (core::mem::take(&mut sink.exemplars), sink.dropped);
        // Reported whatever the parse's fate, as Prometheus' scrape cache keeps the metadata
        // lines a failed scrape read; the host and this cache stay in step.
        if let Some(update) = self.meta.finish() {
            out.metadata(&update).map_err(|e| fail(&e))?;
        }
        // A failed scrape is discarded whole by the host: its exemplars too.
        if parsed.is_ok() && (!exemplars.is_empty() || dropped > 0) {
            let report = ExemplarReport::V1 {
                exemplars: exemplars.iter().map(OwnedExemplar::as_abi).collect(),
                dropped,
            };
            out.exemplars(&report).map_err(|e| fail(&e))?;
        }
        match parsed {
            Ok(_) => Ok(()),
            Err(ParseError::Io { bytes, .. }) => {
                Err(fail(&body_error(body.error, bytes, req.body_size_limit())))
            }
            Err(e) => Err(fail(&e)),
        }
    }
}

magpie_sdk::export_scraper!(PromScrape);

/// The response body, remembering the host's error: the parser sees only its
/// `embedded_io::ErrorKind`, which cannot tell a size limit from other failures.
struct Body {
    stream: Stream,
    error: Option<HostError>,
}

impl embedded_io::ErrorType for Body {
    type Error = HostError;
}

impl embedded_io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        embedded_io::Read::read(&mut self.stream, buf).inspect_err(|e| self.error = Some(*e))
    }
}

/// Why reading the body failed, in the parser's words where they apply: the host ends a body
/// that passes `body_size_limit` with [`HostError::Limit`], which is the same failure as the
/// parser's own [`ParseError::BodySizeLimit`].
fn body_error(error: Option<HostError>, bytes: u64, body_size_limit: u64) -> String {
    match error {
        Some(HostError::Limit) if body_size_limit > 0 => format!(
            "{}",
            ParseError::BodySizeLimit {
                limit: body_size_limit
            }
        ),
        Some(e) => format!("reading the body failed after {bytes} bytes: {e}"),
        None => format!("reading the body failed after {bytes} bytes"),
    }
}

/// Passes parsed samples to the host, metadata lines to the target's [`MetaCache`], and keeps
/// the scrape's exemplars (up to [`MAX_EXEMPLARS_PER_SCRAPE`], counting the rest) for one
/// report at its end.
struct ToEmitter<'a> {
    out: &'a mut Emitter,
    meta: &'a mut MetaCache,
    exemplars: Vec<OwnedExemplar>,
    dropped: u32,
}

type Pairs = Vec<(String, String)>;

/// An exemplar and its sample's name and labels, owned until the scrape's report.
struct OwnedExemplar {
    sample: String,
    sample_labels: Pairs,
    labels: Pairs,
    value: f64,
    timestamp_ms: Option<i64>,
}

fn owned_pairs(pairs: &[(&str, &str)]) -> Pairs {
    pairs
        .iter()
        .map(|&(n, v)| (String::from(n), String::from(v)))
        .collect()
}

fn abi_labels(pairs: &Pairs) -> Vec<Label<'_>> {
    pairs.iter().map(|(n, v)| Label::new(n, v)).collect()
}

impl OwnedExemplar {
    fn as_abi(&self) -> ScrapedExemplar<'_> {
        ScrapedExemplar {
            series_name: self.sample.as_str().into(),
            series_labels: abi_labels(&self.sample_labels),
            labels: abi_labels(&self.labels),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

impl Sink for ToEmitter<'_> {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.out
            .sample(name, labels.iter().copied(), value, timestamp_ms)
            .map_err(|guest::Stopped| SinkError::Rejected("the host took no more samples".into()))
    }

    fn repeat(&mut self, value: f64, timestamp_ms: Option<i64>) -> Result<(), SinkError> {
        self.out
            .repeat(value, timestamp_ms)
            .map_err(|guest::Stopped| SinkError::Rejected("the host took no more samples".into()))
    }

    fn help(&mut self, family: &str, help: &str) -> Result<(), SinkError> {
        self.meta.help(family, help);
        Ok(())
    }

    fn metric_type(&mut self, family: &str, metric_type: MetricType) -> Result<(), SinkError> {
        self.meta.kind(family, metric_type);
        Ok(())
    }

    fn unit(&mut self, family: &str, unit: &str) -> Result<(), SinkError> {
        self.meta.unit(family, unit);
        Ok(())
    }

    fn exemplar(&mut self, sample: &str, e: &ExemplarRef<'_>) -> Result<(), SinkError> {
        if self.exemplars.len() >= MAX_EXEMPLARS_PER_SCRAPE {
            self.dropped = self.dropped.saturating_add(1);
            return Ok(());
        }
        self.exemplars.push(OwnedExemplar {
            sample: sample.into(),
            sample_labels: owned_pairs(e.sample_labels),
            labels: owned_pairs(e.labels),
            value: e.value,
            timestamp_ms: e.timestamp_ms,
        });
        Ok(())
    }
}
