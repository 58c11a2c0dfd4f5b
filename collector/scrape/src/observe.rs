//! What the scrape pipeline reports, and to whom: the collector's self-metrics and status page
//! implement [`Observer`]; the pipeline never reads them back.

use magpie_host::PluginStats;
use magpie_metrics::memory::Share;
use std::sync::Arc;
use std::time::Duration;

/// The last scrape of a target.
#[derive(Debug, Clone, Default)]
pub struct TargetState {
    /// Whether it succeeded.
    pub up: bool,
    /// When it started, in ms since the epoch.
    pub last_scrape_ms: i64,
    /// How long it took.
    pub duration: Duration,
    /// Samples it returned.
    pub samples: usize,
    /// Why it failed.
    pub error: Option<String>,
}

/// Receives the pipeline's reports.
pub trait Observer: Send + Sync {
    /// A plugin instance was started for a target (`name` is the runner's).
    fn plugin_started(&self, name: String, stats: Arc<PluginStats>);
    /// A target was scraped; `appended` is false when the WAL refused the samples.
    fn scraped(&self, job: &str, instance: &str, state: TargetState, appended: bool);
    /// The outcome of a WAL append: `None` when it succeeded, else the WAL's own error (a
    /// full or failing disk; not a label set the WAL refused), for the collector's health.
    fn wal_append(&self, error: Option<&str>) {
        let _ = error;
    }
    /// Scrapes wait for the wall clock (`Some(why)`), or no longer do (`None`).
    fn clock_waiting(&self, why: Option<&str>) {
        let _ = why;
    }
    /// Where a new target loop counts the series it holds in memory (`magpie_series_*`);
    /// the loop drops its share when it stops.
    fn series_share(&self) -> Share {
        Share::detached()
    }
}
