//! `magpie_wal_*`: the ring's size, fill, series, appends and losses, from one [`Stats`]
//! snapshot (feature `metrics`). The collector publishes a snapshot from its WAL sync loop and
//! encodes it at scrape time, so a request never locks the WAL.

use crate::Stats;
use magpie_metrics::{MetricType, seconds, single};
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;

/// Encodes the WAL's families.
///
/// # Errors
/// Only the writer's.
pub fn encode(e: &mut DescriptorEncoder, st: &Stats) -> fmt::Result {
    if let Some(ms) = st.oldest_sample_ms {
        single(
            e,
            "magpie_wal_oldest_sample_timestamp_seconds",
            "Lower bound of the timestamp of the oldest sample the WAL ring holds.",
            MetricType::Gauge,
            seconds(ms),
        )?;
    }
    for (name, kind, help, v) in [
        (
            "magpie_wal_max_bytes",
            MetricType::Gauge,
            "The size budget of the WAL ring.",
            st.max_bytes,
        ),
        (
            "magpie_wal_bytes",
            MetricType::Gauge,
            "Bytes the WAL segments take on disk.",
            st.bytes_on_disk,
        ),
        (
            "magpie_wal_data_bytes",
            MetricType::Gauge,
            "Bytes of the WAL ring that hold data: segments up to their last record, and the series log (magpie_wal_bytes counts the open segment at its preallocated size).",
            st.data_bytes,
        ),
        (
            "magpie_wal_segments",
            MetricType::Gauge,
            "Segments in the WAL ring.",
            st.segments as u64,
        ),
        (
            "magpie_wal_series",
            MetricType::Gauge,
            "Series the WAL ring holds, each defined once in its series log.",
            st.series,
        ),
        (
            "magpie_wal_series_bytes",
            MetricType::Gauge,
            "Bytes of memory the WAL's series table takes (labels and per-series state).",
            st.series_bytes,
        ),
        (
            "magpie_wal_series_log_bytes",
            MetricType::Gauge,
            "Bytes the WAL's series log takes on disk, inside the ring's budget.",
            st.series_log_bytes,
        ),
        (
            "magpie_wal_samples_appended",
            MetricType::Counter,
            "Samples appended to the WAL since start.",
            st.samples_appended,
        ),
        (
            "magpie_wal_samples",
            MetricType::Gauge,
            "Samples held by the WAL ring.",
            st.samples_in_ring,
        ),
        (
            "magpie_wal_samples_rejected",
            MetricType::Counter,
            "Samples refused because the disk was full.",
            st.samples_rejected,
        ),
        (
            "magpie_wal_segments_dropped",
            MetricType::Counter,
            "Segments deleted to respect the size budget or free disk space.",
            st.segments_dropped,
        ),
        (
            "magpie_wal_label_heavy_segments",
            MetricType::Counter,
            "WAL segments that filled up with fewer than 4 samples per series (raise segment_bytes).",
            st.label_heavy_segments,
        ),
        (
            "magpie_wal_exemplars_appended",
            MetricType::Counter,
            "Exemplars appended to the WAL since start.",
            st.exemplars_appended,
        ),
        (
            "magpie_wal_exemplars_dropped",
            MetricType::Counter,
            "Exemplars dropped before the WAL: over a scrape's cap of 1000, or of a series the WAL did not take.",
            st.exemplars_dropped,
        ),
        (
            "magpie_wal_damaged_regions",
            MetricType::Counter,
            "Damaged WAL areas met while opening or reading.",
            st.damaged_regions,
        ),
    ] {
        single(e, name, help, kind, v)?;
    }
    Ok(())
}
