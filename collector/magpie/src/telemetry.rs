//! Self-observability: a `prometheus-client` registry rendered on `/metrics` (Prometheus text
//! 0.0.4), the status page on `/` drawn from the same sources, `/-/healthy` and `/-/ready`.
//!
//! The scrape loops report each scrape here (`record_scrape`); plugins and exporters hand over
//! their counters when they start. The WAL is never locked from here: its sync loop publishes
//! a snapshot of the WAL's and the exporters' counters every tick (`publish`), and a request
//! asks it for a fresh one first, so a scrape counted on `/metrics` has its samples counted in
//! the WAL too. A history task takes a point of every sparkline series every `step`.

use magpie_status::history;
mod metrics;
mod series;

use crate::observed::{Delivery, View};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use magpie_export::ExportStats;
use magpie_host::PluginStats;
pub(crate) use magpie_scrape::TargetState;
use magpie_transport::clock::now_ms;
use metrics::Sources;
use parking_lot::Mutex;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a request waits for the WAL sync loop's fresh snapshot before using the last one.
const FRESH_WAIT: Duration = Duration::from_secs(1);

/// Shared by the scrape loops, the exporters, the WAL sync loop and the HTTP server.
#[derive(Debug)]
pub(crate) struct Telemetry {
    ready: AtomicBool,
    registry: Registry,
    scrape: magpie_scrape::metrics::ScrapeMetrics,
    /// The `[[ingest]]` sources' counters; the sources report to it directly.
    pub ingest: Arc<magpie_ingest::metrics::IngestMetrics>,
    wal_sync_failures: Counter,
    sources: Arc<Sources>,
    delivery: watch::Sender<Option<Arc<Delivery>>>,
    wanted: Notify,
    history: Mutex<history::Recorder>,
    /// Whether WAL appends and syncs have been failing too long (`/-/healthy`).
    pub wal_health: Mutex<crate::health::WalHealth>,
    /// Why scrapes wait for the wall clock, while they do.
    clock_wait: Mutex<Option<String>>,
    /// The fleet agent's state (`magpie_fleet_*`).
    pub fleet: Arc<crate::fleet::Status>,
    /// What live series cost in memory (`magpie_series_*`), summed over their holders.
    pub series: Arc<magpie_metrics::memory::SeriesAccount>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl Telemetry {
    /// A registry with every family; the status page keeps a point every `history_step`.
    pub fn new(history_step: Duration) -> Self {
        let sources = Arc::new(Sources::default());
        let (delivery, delivery_rx) = watch::channel(None);
        let mut registry = Registry::default();
        let scrape = magpie_scrape::metrics::ScrapeMetrics::default();
        let wal_sync_failures = Counter::default();
        scrape.register(&mut registry);
        let ingest = Arc::new(magpie_ingest::metrics::IngestMetrics::default());
        ingest.register(&mut registry);
        // Help texts without the final period, which the registry appends.
        registry.register(
            "magpie_wal_sync_failures",
            "WAL syncs that failed",
            wal_sync_failures.clone(),
        );
        registry.register_collector(Box::new(metrics::Process));
        let series = magpie_metrics::memory::SeriesAccount::new();
        registry.register_collector(Box::new(series::SeriesFamilies {
            account: Arc::clone(&series),
            delivery: delivery_rx.clone(),
        }));
        registry.register_collector(Box::new(metrics::DeliveryFamilies(delivery_rx)));
        registry.register_collector(Box::new(metrics::Plugins(Arc::clone(&sources))));
        let fleet = Arc::new(crate::fleet::Status::default());
        registry.register_collector(Box::new(crate::fleet::StatusFamilies(Arc::clone(&fleet))));
        Self {
            ready: AtomicBool::new(false),
            registry,
            scrape,
            ingest,
            wal_sync_failures,
            sources,
            delivery,
            wanted: Notify::new(),
            history: Mutex::new(history::Recorder::new(history_step, history::POINTS)),
            wal_health: Mutex::default(),
            clock_wait: Mutex::default(),
            fleet,
            series,
        }
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn add_exporter(&self, name: String, stats: Arc<ExportStats>) {
        self.sources.add_exporter(name, stats);
    }

    pub fn add_plugin(&self, name: String, stats: Arc<PluginStats>) {
        self.sources.add_plugin(name, stats);
    }

    /// Forgets plugin and exporter counters of a configuration being replaced.
    pub fn clear_plugins(&self) {
        self.sources.clear_plugins();
    }

    pub fn record_scrape(&self, job: &str, instance: &str, state: TargetState, appended: bool) {
        self.scrape.scraped(job, instance, state, appended);
    }

    pub fn wal_sync_failed(&self) {
        self.wal_sync_failures.inc();
    }

    /// The exporters' counters now; the WAL sync loop reads them with the WAL's statistics.
    pub fn exporter_counters(&self) -> Vec<(String, crate::observed::ExporterCounters)> {
        self.sources.exporters()
    }

    /// Takes the WAL sync loop's latest snapshot.
    pub fn publish(
        &self,
        wal: magpie_wal::Stats,
        exporters: Vec<(String, crate::observed::ExporterCounters)>,
    ) {
        self.delivery
            .send_replace(Some(Arc::new(Delivery { wal, exporters })));
    }

    /// Resolves when a request wants a fresh snapshot.
    pub async fn snapshot_wanted(&self) {
        self.wanted.notified().await;
    }

    /// Waits for the sync loop's next snapshot. Before its first one (the listener is up while
    /// the WAL opens and plugins compile), waits as long for that first one, so a request
    /// right after start-up does not see every exporter without a backlog.
    async fn refresh(&self) {
        let mut rx = self.delivery.subscribe();
        if rx.borrow_and_update().is_none() {
            let _ = tokio::time::timeout(FRESH_WAIT, rx.wait_for(Option::is_some)).await;
            return;
        }
        self.wanted.notify_one();
        let _ = tokio::time::timeout(FRESH_WAIT, rx.changed()).await;
    }

    /// The `/metrics` exposition, from the last published snapshot.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut o, &self.registry);
        o
    }

    /// Takes one point of every sparkline series.
    pub fn record_history(&self, now_ms: i64) {
        let delivery = self.delivery.borrow().clone();
        let targets = self.scrape.targets();
        self.history.lock().record(
            now_ms,
            delivery.as_deref(),
            targets.iter().map(|(k, v)| (k, v)),
        );
    }

    /// Time between two history points.
    pub fn history_step(&self) -> Duration {
        self.history.lock().step()
    }

    /// What the status page shows.
    pub fn view(&self, now_ms: i64) -> View {
        View {
            now_ms,
            resident_bytes: metrics::resident_bytes(),
            targets: self.scrape.targets(),
            delivery: self.delivery.borrow().as_deref().cloned(),
            plugins: self.sources.plugins(),
            ingest: self.ingest.snapshots(),
            history: self.history.lock().view(),
            unhealthy: match self.health() {
                crate::health::Verdict::Healthy => None,
                crate::health::Verdict::Unhealthy { cause } => Some(cause),
            },
            clock_wait: self.clock_wait.lock().clone(),
            fleet: self.fleet.summary(),
            series: series::memory(&self.series, self.delivery.borrow().as_deref(), now_ms),
        }
    }

    /// The WAL's health now.
    pub fn health(&self) -> crate::health::Verdict {
        self.wal_health.lock().verdict(std::time::Instant::now())
    }

    /// Records the outcome of a WAL operation for [`Telemetry::health`].
    pub fn wal_outcome(&self, op: crate::health::WalOp, error: Option<&str>) {
        let mut h = self.wal_health.lock();
        match error {
            Some(e) => h.failed(op, std::time::Instant::now(), e),
            None => h.succeeded(op),
        }
    }

    /// Answers one HTTP request.
    pub async fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let (status, ctype, body) = match req.uri().path() {
            "/" => {
                self.refresh().await;
                (
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    crate::status::page(&self.view(now_ms())),
                )
            }
            "/metrics" => {
                self.refresh().await;
                (StatusCode::OK, prometheus_text::CONTENT_TYPE, self.render())
            }
            "/-/healthy" => match self.health() {
                crate::health::Verdict::Healthy => (
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "magpie is healthy.\n".to_string(),
                ),
                crate::health::Verdict::Unhealthy { cause } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("magpie is unhealthy: {cause}\n"),
                ),
            },
            "/-/ready" if self.ready.load(Ordering::Acquire) => (
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "magpie is ready.\n".to_string(),
            ),
            "/-/ready" => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "magpie is starting.\n".to_string(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n".to_string(),
            ),
        };
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        resp
    }
}

/// Takes a history point every step until `stop` turns true.
pub(crate) async fn keep_history(telemetry: Arc<Telemetry>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(telemetry.history_step());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => telemetry.record_history(now_ms()),
            _ = stop.changed() => return,
        }
    }
}

/// Serves the status page, `/metrics`, `/-/healthy` and `/-/ready` until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                log::warn!("accepting a connection on the listen address failed; error={e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let t = Arc::clone(&telemetry);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let t = Arc::clone(&t);
                async move { Ok::<_, std::convert::Infallible>(t.handle(&req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

impl magpie_scrape::Observer for Telemetry {
    fn plugin_started(&self, name: String, stats: Arc<PluginStats>) {
        self.add_plugin(name, stats);
    }

    fn scraped(&self, job: &str, instance: &str, state: TargetState, appended: bool) {
        self.record_scrape(job, instance, state, appended);
    }

    fn wal_append(&self, error: Option<&str>) {
        self.wal_outcome(crate::health::WalOp::Append, error);
    }

    fn clock_waiting(&self, why: Option<&str>) {
        *self.clock_wait.lock() = why.map(str::to_string);
    }

    fn series_share(&self) -> magpie_metrics::memory::Share {
        self.series.share()
    }
}

#[cfg(test)]
mod tests;
