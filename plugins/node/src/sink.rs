//! Where samples go: the [`Sink`] trait, a collecting implementation, and the internal
//! emitter that sends each family's metadata once before its first sample.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic; resets only when the source restarts (e.g. a reboot).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Receives samples. Timestamps are assigned by the host.
pub trait Sink {
    /// One sample. `labels` are in the order node_exporter declares them, not sorted.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64);

    /// Type and help text of a family, sent once per [`collect`](crate::collect) call before the
    /// family's first sample. The default ignores it.
    fn metadata(&mut self, name: &str, kind: MetricType, help: &str) {
        let _ = (name, kind, help);
    }

    /// True once the consumer takes no more samples (a plugin's host stopped the scrape):
    /// [`collect`](crate::collect) then runs no further collector. The default never stops.
    fn stopped(&self) -> bool {
        false
    }
}

/// One sample as recorded by [`VecSink`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Label pairs in emission order.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A [`Sink`] that keeps everything in memory, for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct VecSink {
    /// Samples in emission order.
    pub samples: Vec<Sample>,
    /// `(name, type, help)` in emission order.
    pub metadata: Vec<(String, MetricType, String)>,
}

impl VecSink {
    /// The value of the one sample with this name and exactly these labels (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.label(k) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// All samples of one family.
    pub fn family<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The distinct metric names seen.
    pub fn names(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }
}

impl Sink for VecSink {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.samples.push(Sample {
            name: name.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        });
    }

    fn metadata(&mut self, name: &str, kind: MetricType, help: &str) {
        self.metadata
            .push((name.to_string(), kind, help.to_string()));
    }
}

/// Wraps the caller's sink for one collection: remembers which families were described so
/// metadata goes out once even when several collectors or chips share a family.
pub(crate) struct Out<'a> {
    sink: &'a mut dyn Sink,
    described: BTreeSet<String>,
}

impl<'a> Out<'a> {
    pub(crate) fn new(sink: &'a mut dyn Sink) -> Self {
        Self {
            sink,
            described: BTreeSet::new(),
        }
    }

    pub(crate) fn emit(
        &mut self,
        name: &str,
        kind: MetricType,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !self.described.contains(name) {
            self.described.insert(name.to_string());
            self.sink.metadata(name, kind, help);
        }
        self.sink.sample(name, labels, value);
    }

    pub(crate) fn stopped(&self) -> bool {
        self.sink.stopped()
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.emit(name, MetricType::Gauge, help, labels, value);
    }

    pub(crate) fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.emit(name, MetricType::Counter, help, labels, value);
    }
}
