//! Where parsed data goes: the [`Sink`] trait, the [`MetricType`] of a family, and
//! [`VecSink`], a sink that keeps owned copies (for tests and small bodies).

use alloc::string::String;
use alloc::vec::Vec;

use crate::SinkError;

/// The type of a metric family, from its `TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`: samples `_total` and `_created` (OpenMetrics) or the bare name (text 0.0.4).
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`: `_bucket{le}`, `_count`, `_sum`, `_created`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics only): `_bucket{le}`, `_gcount`, `_gsum`.
    GaugeHistogram,
    /// `summary`: the bare name with `quantile`, `_count`, `_sum`, `_created`.
    Summary,
    /// `stateset` (OpenMetrics only): one sample per state, labelled with the family name.
    StateSet,
    /// `info` (OpenMetrics only): `_info` samples whose value is 1.
    Info,
    /// `unknown` (OpenMetrics), `untyped` (text 0.0.4), or no `TYPE` line.
    Unknown,
}

impl MetricType {
    /// The type as written on a `TYPE` line (OpenMetrics spelling).
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::StateSet => "stateset",
            MetricType::Info => "info",
            MetricType::Unknown => "unknown",
        }
    }
}

/// Receives what the parser reads, in body order.
///
/// Strings are borrowed from the parser's line buffer or scratch space and are valid only for
/// the call. Label values arrive unescaped, label order is as written. A sample may be delivered
/// before a later line turns out to be invalid; the parse then returns an error and the caller
/// must discard everything this sink received for the body.
pub trait Sink {
    /// One sample. `timestamp_ms` is in milliseconds since the Unix epoch.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse with [`ParseError::Sink`](crate::ParseError::Sink).
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError>;

    /// A sample whose series is that of the sample at the same position (counted from 0) in
    /// the last parse, which [`Parser::set_replay`](crate::Parser::set_replay) named. Only a
    /// parse with replay on calls it; the default refuses.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse.
    fn repeat(&mut self, value: f64, timestamp_ms: Option<i64>) -> Result<(), SinkError> {
        let _ = (value, timestamp_ms);
        Err(SinkError::Rejected(
            "this sink takes no repeat records".into(),
        ))
    }

    /// A `HELP` line, unescaped. Ignored unless overridden.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse.
    fn help(&mut self, family: &str, help: &str) -> Result<(), SinkError> {
        let _ = (family, help);
        Ok(())
    }

    /// A `TYPE` line. Ignored unless overridden.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse.
    fn metric_type(&mut self, family: &str, metric_type: MetricType) -> Result<(), SinkError> {
        let _ = (family, metric_type);
        Ok(())
    }

    /// A `UNIT` line (OpenMetrics only). Ignored unless overridden.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse.
    fn unit(&mut self, family: &str, unit: &str) -> Result<(), SinkError> {
        let _ = (family, unit);
        Ok(())
    }

    /// The exemplar of the sample just passed to [`Sink::sample`] (OpenMetrics, on a
    /// counter's `_total` or a histogram's `_bucket`), whose name and labels are repeated.
    /// Ignored unless overridden.
    ///
    /// # Errors
    /// A [`SinkError`] stops the parse.
    fn exemplar(&mut self, sample: &str, exemplar: &ExemplarRef<'_>) -> Result<(), SinkError> {
        let _ = (sample, exemplar);
        Ok(())
    }
}

/// An exemplar as parsed, borrowed from the line.
#[derive(Debug, Clone, Copy)]
pub struct ExemplarRef<'a> {
    /// The sample's labels, in body order.
    pub sample_labels: &'a [(&'a str, &'a str)],
    /// The exemplar's labels, in body order, values unescaped.
    pub labels: &'a [(&'a str, &'a str)],
    /// Its value.
    pub value: f64,
    /// Its timestamp in ms, if the line gave one.
    pub timestamp_ms: Option<i64>,
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        (**self).sample(name, labels, value, timestamp_ms)
    }
    fn help(&mut self, family: &str, help: &str) -> Result<(), SinkError> {
        (**self).help(family, help)
    }
    fn metric_type(&mut self, family: &str, metric_type: MetricType) -> Result<(), SinkError> {
        (**self).metric_type(family, metric_type)
    }
    fn exemplar(&mut self, sample: &str, exemplar: &ExemplarRef<'_>) -> Result<(), SinkError> {
        (**self).exemplar(sample, exemplar)
    }
    fn unit(&mut self, family: &str, unit: &str) -> Result<(), SinkError> {
        (**self).unit(family, unit)
    }
}

/// An owned copy of one sample.
///
/// Equality compares values bit for bit, so a NaN sample equals its copy (and `0.0` differs
/// from `-0.0`): two parses of the same body compare equal.
#[derive(Debug, Clone)]
pub struct OwnedSample {
    /// Sample name, e.g. `http_requests_total`.
    pub name: String,
    /// Labels in body order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Milliseconds since the Unix epoch, if the body gave one.
    pub timestamp_ms: Option<i64>,
}

impl PartialEq for OwnedSample {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.value.to_bits() == other.value.to_bits()
            && self.timestamp_ms == other.timestamp_ms
    }
}

impl Eq for OwnedSample {}

/// Metadata as received by [`VecSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedMetadata {
    /// A `HELP` line.
    Help {
        /// Family name.
        family: String,
        /// Unescaped help text.
        help: String,
    },
    /// A `TYPE` line.
    Type {
        /// Family name.
        family: String,
        /// The type.
        metric_type: MetricType,
    },
    /// A `UNIT` line.
    Unit {
        /// Family name.
        family: String,
        /// The unit.
        unit: String,
    },
}

/// A [`Sink`] that copies everything into vectors. It allocates per sample, so it suits tests
/// and small bodies rather than the scrape hot path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VecSink {
    /// Samples in body order.
    pub samples: Vec<OwnedSample>,
    /// Metadata lines in body order.
    pub metadata: Vec<OwnedMetadata>,
    /// Exemplars in body order: the sample's name, the exemplar's labels, value bits and
    /// timestamp.
    pub exemplars: Vec<OwnedExemplar>,
}

/// An exemplar as [`VecSink`] keeps it: the sample's name, the exemplar's labels, the bits of
/// its value and its timestamp.
pub type OwnedExemplar = (String, Vec<(String, String)>, u64, Option<i64>);

impl Sink for VecSink {
    fn exemplar(&mut self, sample: &str, exemplar: &ExemplarRef<'_>) -> Result<(), SinkError> {
        self.exemplars.push((
            sample.into(),
            exemplar
                .labels
                .iter()
                .map(|&(n, v)| (String::from(n), String::from(v)))
                .collect(),
            exemplar.value.to_bits(),
            exemplar.timestamp_ms,
        ));
        Ok(())
    }

    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.samples.push(OwnedSample {
            name: name.into(),
            labels: labels
                .iter()
                .map(|&(n, v)| (String::from(n), String::from(v)))
                .collect(),
            value,
            timestamp_ms,
        });
        Ok(())
    }

    fn help(&mut self, family: &str, help: &str) -> Result<(), SinkError> {
        self.metadata.push(OwnedMetadata::Help {
            family: family.into(),
            help: help.into(),
        });
        Ok(())
    }

    fn metric_type(&mut self, family: &str, metric_type: MetricType) -> Result<(), SinkError> {
        self.metadata.push(OwnedMetadata::Type {
            family: family.into(),
            metric_type,
        });
        Ok(())
    }

    fn unit(&mut self, family: &str, unit: &str) -> Result<(), SinkError> {
        self.metadata.push(OwnedMetadata::Unit {
            family: family.into(),
            unit: unit.into(),
        });
        Ok(())
    }
}
