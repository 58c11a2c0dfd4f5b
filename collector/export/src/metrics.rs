//! `magpie_exporter_*`: what each exporter delivered, retried and dropped, and the backlog its
//! WAL cursor leaves, from one snapshot of the WAL's statistics and the exporters' counters.

use crate::ExporterCounters;
use magpie_metrics::{counters, gauges, seconds};
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;

/// Encodes the exporter families of one snapshot.
///
/// # Errors
/// Only the writer's.
#[allow(clippy::cast_precision_loss)]
pub fn encode(
    e: &mut DescriptorEncoder,
    wal: &magpie_wal::Stats,
    exporters: &[(String, ExporterCounters)],
) -> fmt::Result {
    let consumers = || {
        wal.consumers
            .iter()
            .map(|c| ([("exporter", c.name.as_str())], c))
    };
    gauges(
        e,
        "magpie_exporter_backlog_samples",
        "Samples in the WAL not yet acknowledged by an exporter.",
        consumers().map(|(l, c)| (l, c.backlog_samples)),
    )?;
    gauges(
        e,
        "magpie_exporter_oldest_unacked_timestamp_seconds",
        "Lower bound of the timestamp of the oldest sample an exporter has not delivered.",
        consumers().filter_map(|(l, c)| Some((l, seconds(c.oldest_unacked_ms?)))),
    )?;
    counters(
        e,
        "magpie_exporter_dropped_samples",
        "Samples the ring dropped before an exporter delivered them.",
        consumers().map(|(l, c)| (l, c.dropped_samples)),
    )?;
    let rows = || {
        exporters
            .iter()
            .map(|(n, c)| ([("exporter", n.as_str())], c))
    };
    type Pick = fn(&ExporterCounters) -> u64;
    let picks: [(&str, &str, Pick); 6] = [
        (
            "magpie_exporter_sent_samples",
            "Samples an exporter delivered.",
            |c| c.sent,
        ),
        (
            "magpie_exporter_retries",
            "Sends an exporter retried.",
            |c| c.retries,
        ),
        (
            "magpie_exporter_rejected_samples",
            "Samples a receiver refused for good.",
            |c| c.rejected,
        ),
        (
            "magpie_exporter_too_old_samples",
            "Samples dropped for being older than sample_age_limit.",
            |c| c.too_old,
        ),
        (
            "magpie_exporter_failed_sends",
            "Sends that failed to reach the receiver.",
            |c| c.failed_sends,
        ),
        (
            "magpie_exporter_poisoned_samples",
            "Samples of batches dropped because the exporter plugin could not encode them.",
            |c| c.poisoned,
        ),
    ];
    for (name, help, pick) in picks {
        counters(e, name, help, rows().map(|(l, c)| (l, pick(c))))?;
    }
    gauges(
        e,
        "magpie_exporter_fallback_encoding",
        "1 when the receiver refused an exporter's encoding (remote write 2.0 answered 415) and it sends the plugin's fallback (1.0) instead.",
        rows().map(|(l, c)| (l, i64::from(c.fallback))),
    )?;
    gauges(
        e,
        "magpie_exporter_last_success_timestamp_seconds",
        "When an exporter last delivered a payload.",
        rows().map(|(l, c)| (l, c.last_success_ms as f64 / 1000.0)),
    )
}
