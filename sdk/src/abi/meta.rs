//! Metric metadata: what a family's `TYPE`, `HELP` and `UNIT` lines say.
//!
//! A scraper reports a family's metadata only when it changed since its last report (and the
//! names of families it no longer sees), so a scrape of 100k series with unchanged metadata
//! costs nothing here. The host keeps the latest per target in memory, as Prometheus' scrape
//! cache does; an exporter gets the whole set on its own schedule through
//! [`EXPORT_METADATA`](super::EXPORT_METADATA).

use alloc::borrow::Cow;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The type of a metric family, as its `TYPE` line names it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum MetricType {
    /// `unknown` (OpenMetrics), `untyped` (text 0.0.4), or no `TYPE` line.
    #[default]
    Unknown,
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
}

impl MetricType {
    /// The type as written on an OpenMetrics `TYPE` line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
        }
    }
}

/// The metadata of one metric family.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FamilyMeta<'a> {
    /// The family name as the `TYPE`/`HELP`/`UNIT` line writes it (`foo` for a counter whose
    /// samples are `foo_total`).
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Its type; [`MetricType::Unknown`] until a `TYPE` line says otherwise.
    pub kind: MetricType,
    /// The `HELP` text, unescaped; empty when absent.
    #[serde(borrow)]
    pub help: Cow<'a, str>,
    /// The `UNIT` (OpenMetrics); empty when absent.
    #[serde(borrow)]
    pub unit: Cow<'a, str>,
}

/// Argument of the `emit_metadata` import: how a target's metadata changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataUpdate<'a> {
    /// First version.
    V1 {
        /// Families new or changed since the last update, whole.
        #[serde(borrow)]
        changed: Vec<FamilyMeta<'a>>,
        /// Families the target no longer exposes.
        #[serde(borrow)]
        gone: Vec<Cow<'a, str>>,
    },
}

/// Input of [`EXPORT_METADATA`](super::EXPORT_METADATA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRequest<'a> {
    /// First version.
    V1 {
        /// The families to send, each once.
        #[serde(borrow)]
        families: Vec<FamilyMeta<'a>>,
    },
}
