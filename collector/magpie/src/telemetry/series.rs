//! `magpie_series_active` and `magpie_series_bytes`: what the collector holds in memory for
//! live series. Target loops, push sources and the metadata store keep their figures in one
//! [`SeriesAccount`] (set once per scrape or message, from counters they keep anyway); the
//! WAL's series table is in the sync loop's snapshot. A request reads both in a few loads,
//! after push sources dropped series past their staleness window.

use crate::observed::{Delivery, SeriesMemory};
use magpie_metrics::memory::SeriesAccount;
use magpie_metrics::{MetricType, single};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;
use std::sync::Arc;
use tokio::sync::watch;

/// The figures now: every share of `account` and the WAL's series table.
pub(crate) fn memory(
    account: &SeriesAccount,
    delivery: Option<&Delivery>,
    now_ms: i64,
) -> SeriesMemory {
    account.refresh(now_ms);
    SeriesMemory {
        active: account.active(),
        bytes: account.bytes() + delivery.map_or(0, |d| d.wal.series_bytes),
    }
}

/// Encodes the two families.
#[derive(Debug)]
pub(crate) struct SeriesFamilies {
    pub account: Arc<SeriesAccount>,
    pub delivery: watch::Receiver<Option<Arc<Delivery>>>,
}

impl Collector for SeriesFamilies {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let delivery = self.delivery.borrow().clone();
        let m = memory(
            &self.account,
            delivery.as_deref(),
            magpie_transport::clock::now_ms(),
        );
        single(
            &mut e,
            "magpie_series_active",
            "Series the collector holds in memory: those written by the last scrape of every target, plus pushed series seen within the staleness window (5 minutes).",
            MetricType::Gauge,
            m.active,
        )?;
        single(
            &mut e,
            "magpie_series_bytes",
            "Heap bytes the collector holds for its series: scrape series caches, pushed series, metric metadata and the WAL's series table.",
            MetricType::Gauge,
            m.bytes,
        )
    }
}
