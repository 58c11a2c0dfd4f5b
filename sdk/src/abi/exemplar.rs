//! Exemplars: a traced observation attached to a counter or histogram bucket sample
//! (OpenMetrics `# {trace_id="…"} 0.5 1700000000.000`).
//!
//! A scraper reports a scrape's exemplars once, after its samples, naming the series each
//! belongs to by its scraped name and labels (the host maps them through target labels and
//! relabeling as it maps the samples). An exporter gets them with a batch only when its
//! configuration sends exemplars, in [`ExportRequest::V3`](super::ExportRequest::V3), each
//! naming its series by index in the batch.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use super::Label;

/// Most exemplars a scraper reports per scrape; the host refuses a larger report. A target
/// with more loses the rest, counted (Prometheus keeps one per series in its circular
/// exemplar storage of 100 000 by default; a scrape of a gateway's targets holds far fewer).
pub const MAX_EXEMPLARS_PER_SCRAPE: usize = 1000;

/// One scraped exemplar and the series it was written on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapedExemplar<'a> {
    /// The sample's metric name, as scraped (`foo_total`, `foo_bucket`).
    #[serde(borrow)]
    pub series_name: Cow<'a, str>,
    /// The sample's labels, as scraped.
    #[serde(borrow)]
    pub series_labels: Vec<Label<'a>>,
    /// The exemplar's own labels (at most 128 characters together).
    #[serde(borrow)]
    pub labels: Vec<Label<'a>>,
    /// The exemplar's value.
    pub value: f64,
    /// The exemplar's timestamp in ms; `None` for "the scrape time", as Prometheus stamps it.
    pub timestamp_ms: Option<i64>,
}

/// Argument of the `emit_exemplars` import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExemplarReport<'a> {
    /// First version.
    V1 {
        /// At most [`MAX_EXEMPLARS_PER_SCRAPE`].
        #[serde(borrow)]
        exemplars: Vec<ScrapedExemplar<'a>>,
        /// Exemplars the scraper parsed but left out over the cap.
        dropped: u32,
    },
}

/// An exemplar handed to an exporter with its batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportExemplar<'a> {
    /// Index of its series in the batch's [`series`](super::ExportBatch::series).
    pub series: u32,
    /// The exemplar's labels, sorted by name.
    #[serde(borrow)]
    pub labels: Vec<Label<'a>>,
    /// Its value.
    pub value: f64,
    /// Its timestamp in ms.
    pub timestamp_ms: i64,
}
