//! `magpie-metrics`: how magpie's crates declare their self-metrics families.
//!
//! Each crate that counts something declares the families of what it counts next to its
//! counters (the scrape pipeline its targets', the WAL its ring's, the exporters theirs), as a
//! `prometheus-client` [`Collector`](prometheus_client::collector::Collector) that encodes a
//! snapshot at scrape time. The binary only registers them and serves the one encoder. These
//! helpers write one family from rows of (labels, value), so that every crate encodes the
//! same way and none needs a registered metric per series.
//!
//! # Example
//! ```
//! use magpie_metrics::{counters, gauges};
//! use prometheus_client::collector::Collector;
//! use prometheus_client::encoding::DescriptorEncoder;
//! use prometheus_client::registry::Registry;
//!
//! #[derive(Debug)]
//! struct Doors(Vec<(String, u64, bool)>);
//!
//! impl Collector for Doors {
//!     fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
//!         let rows = || self.0.iter().map(|(n, o, c)| ([("door", n.as_str())], (o, c)));
//!         counters(&mut e, "doors_opened", "Times a door opened.", rows().map(|(l, (o, _))| (l, *o)))?;
//!         gauges(&mut e, "doors_closed", "Whether a door is closed.", rows().map(|(l, (_, c))| (l, i64::from(*c))))
//!     }
//! }
//!
//! let mut registry = Registry::default();
//! registry.register_collector(Box::new(Doors(vec![("front".into(), 3, true)])));
//! let mut text = String::new();
//! prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
//! assert!(text.contains("doors_opened_total{door=\"front\"} 3"));
//! assert!(text.contains("doors_closed{door=\"front\"} 1"));
//! ```
#![forbid(unsafe_code)]

pub mod memory;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
pub use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;

/// One family of counters; `name` without `_total`, which the encoder appends.
///
/// # Errors
/// Only the writer's: encoding into a `String` cannot fail.
pub fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One family of gauges.
///
/// # Errors
/// Only the writer's.
pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A single unlabelled sample.
///
/// # Errors
/// Only the writer's.
pub fn single<V: EncodeCounterValue + EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    v: V,
) -> fmt::Result {
    let m = e.encode_descriptor(name, help, None, kind)?;
    if kind == MetricType::Counter {
        ConstCounter::new(v).encode(m)
    } else {
        ConstGauge::new(v).encode(m)
    }
}

/// Milliseconds since the epoch as the seconds Prometheus timestamps families use.
#[allow(clippy::cast_precision_loss)]
#[must_use]
pub fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
