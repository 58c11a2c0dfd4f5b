//! Where the self-metrics families get their snapshots: the plugins' and exporters' counters
//! handed over when they start, and the WAL and exporter snapshot the WAL sync loop publishes.
//! The families themselves are declared next to what they count (`magpie_host::metrics`,
//! `magpie_wal::metrics`, `magpie_export::metrics`, `magpie_scrape::metrics`); only this
//! process's own (`magpie_build_info`, `process_*`) are declared here.

use crate::observed::{Delivery, ExporterCounters, PluginCounters};
use magpie_export::ExportStats;
use magpie_host::PluginStats;
use magpie_metrics::{MetricType, gauges, single};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;
use std::sync::Arc;
use tokio::sync::watch;

/// What several loops report and several readers show: targets, plugins and exporters.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    plugins: Mutex<Vec<(String, Arc<PluginStats>)>>,
    exporters: Mutex<Vec<(String, Arc<ExportStats>)>>,
}

impl Sources {
    pub fn add_plugin(&self, name: String, stats: Arc<PluginStats>) {
        self.plugins.lock().push((name, stats));
    }

    pub fn add_exporter(&self, name: String, stats: Arc<ExportStats>) {
        self.exporters.lock().push((name, stats));
    }

    /// Forgets the plugins and exporters of a configuration being replaced.
    pub fn clear_plugins(&self) {
        self.plugins.lock().clear();
        self.exporters.lock().clear();
    }

    pub fn plugins(&self) -> Vec<(String, PluginCounters)> {
        self.plugins
            .lock()
            .iter()
            .map(|(n, s)| (n.clone(), s.counters()))
            .collect()
    }

    pub fn exporters(&self) -> Vec<(String, ExporterCounters)> {
        self.exporters
            .lock()
            .iter()
            .map(|(n, s)| (n.clone(), s.counters()))
            .collect()
    }
}

/// `magpie_plugin_*`: calls and faults of each plugin instance.
#[derive(Debug)]
pub(crate) struct Plugins(pub Arc<Sources>);

impl Collector for Plugins {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        magpie_host::metrics::encode(&mut e, &self.0.plugins())
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
        magpie_wal::metrics::encode(&mut e, &d.wal)?;
        magpie_export::metrics::encode(&mut e, &d.wal, &d.exporters)
    }
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
