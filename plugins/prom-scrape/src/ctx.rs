//! Per-line state both formats share ([`Ctx`]) and the parsed shape of a sample line
//! ([`SampleLine`]): counting samples against the limit and handing labels to the sink.
//!
//! A module of its own so that `parser` (the driver) and the format modules (`text`,
//! `openmetrics`) depend on it, not on each other.

use alloc::string::String;
use alloc::vec::Vec;

use crate::lex::LabelSpan;
use crate::openmetrics::ParsedExemplar;
use crate::replay::Replay;
use crate::sink::ExemplarRef;
use crate::{ParseError, Sink};

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
    /// The last parse's series texts by position, for repeat records.
    pub(crate) replay: Replay,
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

    /// Counts one sample against the limit.
    fn count(&mut self, line_no: u64) -> Result<(), ParseError> {
        self.samples += 1;
        if let Some(limit) = self.sample_limit
            && self.samples > limit
        {
            return Err(ParseError::SampleLimit {
                line: line_no,
                limit,
            });
        }
        Ok(())
    }

    /// Counts one sample against the limit, then hands it to the sink as a repeat of the
    /// series at its position in the last parse.
    pub(crate) fn emit_repeat<S: Sink + ?Sized>(
        &mut self,
        line_no: u64,
        value: f64,
        timestamp_ms: Option<i64>,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        self.count(line_no)?;
        sink.repeat(value, timestamp_ms)
            .map_err(|source| ParseError::Sink {
                line: line_no,
                source,
            })
    }

    /// Counts one sample against the limit, then hands it to the sink.
    pub(crate) fn emit<S: Sink + ?Sized>(
        &mut self,
        line_no: u64,
        line: &str,
        sample: &SampleLine,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        self.count(line_no)?;
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

impl Ctx {
    /// Hands the exemplar of the sample just emitted to the sink.
    pub(crate) fn emit_exemplar<S: Sink + ?Sized>(
        &mut self,
        line_no: u64,
        line: &str,
        sample: &SampleLine,
        exemplar: &ParsedExemplar,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        // Exemplars are rare (a few per histogram): plain vectors are cheap enough.
        let pick = |from: usize, to: usize| -> Vec<(&str, &str)> {
            self.spans[from..to]
                .iter()
                .map(|s| (s.name(line), s.value(line, &self.unescaped)))
                .collect()
        };
        let sample_labels = pick(0, sample.labels);
        let labels = pick(exemplar.first, self.spans.len());
        let e = ExemplarRef {
            sample_labels: &sample_labels,
            labels: &labels,
            value: exemplar.value,
            timestamp_ms: exemplar.timestamp_ms,
        };
        sink.exemplar(sample.name(line), &e)
            .map_err(|source| ParseError::Sink {
                line: line_no,
                source,
            })
    }
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
