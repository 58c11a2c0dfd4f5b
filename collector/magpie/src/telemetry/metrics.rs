//! The self-metrics families read at scrape time from state other parts own: the targets'
//! last scrapes, the WAL and exporter counters the WAL sync loop publishes, the plugins'
//! counters (`magpie_host::PluginStats`), and this process. Each is a `prometheus-client`
//! [`Collector`] that declares its families once and encodes a snapshot; the per-job scrape
//! counters are ordinary registered counters (see `Telemetry`).

use crate::export::ExportStats;
use crate::observed::{Delivery, ExporterCounters, PluginCounters, TargetState};
use magpie_host::PluginStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One family of counters; `name` without `_total`, which the encoder appends.
fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
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
fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
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
fn single<V: EncodeCounterValue + EncodeGaugeValue>(
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

#[allow(clippy::cast_precision_loss)]
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// What several loops report and several readers show: targets, plugins and exporters.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    targets: Mutex<BTreeMap<(String, String), TargetState>>,
    plugins: Mutex<Vec<(String, Arc<PluginStats>)>>,
    exporters: Mutex<Vec<(String, Arc<ExportStats>)>>,
}

impl Sources {
    pub fn set_target(&self, job: &str, instance: &str, state: TargetState) {
        lock(&self.targets).insert((job.to_string(), instance.to_string()), state);
    }

    pub fn targets(&self) -> Vec<((String, String), TargetState)> {
        lock(&self.targets)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn add_plugin(&self, name: String, stats: Arc<PluginStats>) {
        lock(&self.plugins).push((name, stats));
    }

    pub fn add_exporter(&self, name: String, stats: Arc<ExportStats>) {
        lock(&self.exporters).push((name, stats));
    }

    /// Forgets the plugins and exporters of a configuration being replaced.
    pub fn clear_plugins(&self) {
        lock(&self.plugins).clear();
        lock(&self.exporters).clear();
    }

    pub fn plugins(&self) -> Vec<(String, PluginCounters)> {
        lock(&self.plugins)
            .iter()
            .map(|(n, s)| {
                let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
                let counters = PluginCounters {
                    calls: get(&s.calls),
                    traps: get(&s.traps),
                    timeouts: get(&s.timeouts),
                    memory_limits: get(&s.memory_limits),
                    abi_errors: get(&s.abi_errors),
                    failures: get(&s.failures),
                    restarts: get(&s.restarts),
                    quarantined: s.quarantined.load(Ordering::Relaxed),
                };
                (n.clone(), counters)
            })
            .collect()
    }

    pub fn exporters(&self) -> Vec<(String, ExporterCounters)> {
        lock(&self.exporters)
            .iter()
            .map(|(n, s)| {
                let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
                let counters = ExporterCounters {
                    sent: get(&s.sent),
                    retries: get(&s.retries),
                    rejected: get(&s.rejected),
                    too_old: get(&s.too_old),
                    failed_sends: get(&s.failed_sends),
                    poisoned: get(&s.poisoned_samples),
                    last_success_ms: get(&s.last_success_ms),
                    last_error: lock(&s.last_error).clone(),
                    cursor_error: s.cursor_error(),
                };
                (n.clone(), counters)
            })
            .collect()
    }
}

/// `magpie_target_*`: the last scrape of each target.
#[derive(Debug)]
pub(crate) struct Targets(pub Arc<Sources>);

impl Collector for Targets {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let targets = lock(&self.0.targets);
        let rows = || {
            targets
                .iter()
                .map(|((j, i), s)| ([("job", j.as_str()), ("instance", i.as_str())], s))
        };
        gauges(
            &mut e,
            "magpie_target_up",
            "Whether the last scrape of a target succeeded.",
            rows().map(|(l, s)| (l, i64::from(s.up))),
        )?;
        gauges(
            &mut e,
            "magpie_target_last_scrape_timestamp_seconds",
            "When a target was last scraped.",
            rows().map(|(l, s)| (l, seconds(s.last_scrape_ms))),
        )?;
        gauges(
            &mut e,
            "magpie_target_scrape_duration_seconds",
            "Duration of the last scrape of a target.",
            rows().map(|(l, s)| (l, s.duration.as_secs_f64())),
        )
    }
}

/// `magpie_plugin_*`: calls and faults of each plugin instance.
#[derive(Debug)]
pub(crate) struct Plugins(pub Arc<Sources>);

impl Collector for Plugins {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let plugins = self.0.plugins();
        let rows = || plugins.iter().map(|(p, c)| ([("plugin", p.as_str())], c));
        counters(
            &mut e,
            "magpie_plugin_calls",
            "Calls into a plugin instance.",
            rows().map(|(l, c)| (l, c.calls)),
        )?;
        counters(
            &mut e,
            "magpie_plugin_faults",
            "Plugin calls that faulted, by kind.",
            plugins.iter().flat_map(|(p, c)| {
                [
                    ("trap", c.traps),
                    ("timeout", c.timeouts),
                    ("memory_limit", c.memory_limits),
                    ("abi", c.abi_errors),
                ]
                .map(|(kind, v)| ([("plugin", p.as_str()), ("kind", kind)], v))
            }),
        )?;
        counters(
            &mut e,
            "magpie_plugin_failures",
            "Failures a plugin reported itself.",
            rows().map(|(l, c)| (l, c.failures)),
        )?;
        counters(
            &mut e,
            "magpie_plugin_restarts",
            "Plugin instances recreated after a fault.",
            rows().map(|(l, c)| (l, c.restarts)),
        )?;
        gauges(
            &mut e,
            "magpie_plugin_quarantined",
            "Whether a plugin is quarantined after repeated faults.",
            rows().map(|(l, c)| (l, i64::from(c.quarantined))),
        )
    }
}

/// `magpie_wal_*` and `magpie_exporter_*`: the snapshot the WAL sync loop last published.
#[derive(Debug)]
pub(crate) struct DeliveryFamilies(pub watch::Receiver<Option<Arc<Delivery>>>);

impl Collector for DeliveryFamilies {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let Some(d) = self.0.borrow().clone() else {
            return Ok(());
        };
        wal_families(&mut e, &d.wal)?;
        exporter_families(&mut e, &d)
    }
}

fn wal_families(e: &mut DescriptorEncoder, st: &magpie_wal::Stats) -> fmt::Result {
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

#[allow(clippy::cast_precision_loss)]
fn exporter_families(e: &mut DescriptorEncoder, d: &Delivery) -> fmt::Result {
    let consumers = || {
        d.wal
            .consumers
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
        d.exporters
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
        "magpie_exporter_last_success_timestamp_seconds",
        "When an exporter last delivered a payload.",
        rows().map(|(l, c)| (l, c.last_success_ms as f64 / 1000.0)),
    )
}

/// `magpie_build_info` and the `process_*` families every Prometheus client exposes.
#[derive(Debug)]
pub(crate) struct Process;

impl Collector for Process {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        gauges(
            &mut e,
            "magpie_build_info",
            "Build of this magpie.",
            [([("version", env!("CARGO_PKG_VERSION"))], 1)],
        )?;
        if let Some((cpu, start)) = process_times() {
            single(
                &mut e,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                cpu,
            )?;
            single(
                &mut e,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricType::Gauge,
                start,
            )?;
        }
        if let Some(rss) = resident_bytes() {
            single(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                rss,
            )?;
        }
        Ok(())
    }
}

/// CPU seconds used and start time (seconds since the epoch), from `/proc/self/stat`.
#[allow(clippy::cast_precision_loss)]
fn process_times() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    // utime, stime and starttime are fields 14, 15 and 22 of the line (11, 12, 19 here).
    let cpu = (f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?) as f64 / ticks;
    let started_ticks = f.get(19)?.parse::<u64>().ok()? as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((cpu, (now - uptime + started_ticks / ticks).floor()))
}

/// This process's resident memory, from `/proc/self/statm`.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}
