//! What the collector observes about itself, as plain values: the last scrape of each target,
//! the WAL and exporter counters the WAL sync loop publishes, plugin counters, and the recent
//! history. `telemetry` gathers these and serves them; `status` only renders them. Both
//! depend on this module and neither on the other, so the page and `/metrics` cannot drift
//! apart through private fields.

use std::time::Duration;

/// The last scrape of a target, as the scrape pipeline reports it.
pub use magpie_scrape::TargetState;

/// One exporter's counters, read at one moment.
pub use magpie_export::ExporterCounters;

/// One `[[ingest]]` source's counters and state, read at one moment.
pub use magpie_ingest::status::SourceSnapshot;

/// One plugin instance's counters, read at one moment.
pub use magpie_host::metrics::PluginCounters;

/// What the WAL sync loop publishes: the WAL's statistics and the exporters' counters, read
/// together while it holds the WAL, so that backlog, drops and deliveries add up.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub wal: magpie_wal::Stats,
    pub exporters: Vec<(String, ExporterCounters)>,
}

impl Delivery {
    /// The WAL's fill in percent of its budget.
    #[allow(clippy::cast_precision_loss)]
    pub fn wal_fill_percent(&self) -> f64 {
        if self.wal.max_bytes == 0 {
            return 0.0;
        }
        self.wal.bytes_on_disk as f64 * 100.0 / self.wal.max_bytes as f64
    }
}

/// Recent values of one thing, oldest first; `NaN` where nothing was known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub points: Vec<f64>,
    /// How many points the history keeps at most.
    pub capacity: usize,
}

/// The recent history the status page draws.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Time between two points.
    pub step: Duration,
    /// Points kept per series.
    pub points: usize,
    pub wal_fill_percent: Series,
    /// Per exporter: samples not yet delivered, and the age in seconds of the oldest of them.
    pub exporters: Vec<(String, Series, Series)>,
    /// Per (job, instance): samples of the last scrape, and its duration in seconds.
    pub targets: Vec<((String, String), Series, Series)>,
    /// Targets scraped but without history, over the cap.
    pub targets_untracked: usize,
    /// The cap on targets with history.
    pub max_targets: usize,
}

/// Everything the status page shows, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub now_ms: i64,
    pub resident_bytes: Option<u64>,
    pub targets: Vec<((String, String), TargetState)>,
    /// `None` until the WAL is open.
    pub delivery: Option<Delivery>,
    pub plugins: Vec<(String, PluginCounters)>,
    /// The running configuration's ingest sources, in its order.
    pub ingest: Vec<SourceSnapshot>,
    pub history: History,
    /// Why `/-/healthy` answers 503, while it does.
    pub unhealthy: Option<String>,
    /// Why scrapes wait for the wall clock, while they do.
    pub clock_wait: Option<String>,
    /// The fleet agent's state in a line, with `[fleet]`.
    pub fleet: Option<String>,
    /// What live series cost in memory (`magpie_series_*`).
    pub series: SeriesMemory,
}

/// What the collector holds in memory for live series, as `magpie_series_active` and
/// `magpie_series_bytes` show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesMemory {
    /// Series of every target's last scrape plus pushed series within the staleness window.
    pub active: u64,
    /// Heap bytes for them: scrape caches, pushed series, metadata and the WAL series table.
    pub bytes: u64,
}
