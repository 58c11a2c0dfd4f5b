//! Self-observability: counters and per-target state, rendered as Prometheus text on
//! `/metrics` and as the status page on `/`, plus `/-/healthy` and `/-/ready`.

use crate::export::ExportStats;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use magpie_host::PluginStats;
use magpie_wal::Wal;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Picks one counter of an exporter's stats.
type Counter = fn(&ExportStats) -> &AtomicU64;

pub(crate) use magpie_scrape::TargetState;

#[derive(Debug, Default)]
struct JobCounters {
    scrapes: u64,
    failures: u64,
    samples: u64,
}

/// Shared by the scrape loops, the WAL syncer and the HTTP server.
#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    ready: AtomicBool,
    jobs: Mutex<BTreeMap<String, JobCounters>>,
    pub(crate) targets: Mutex<BTreeMap<(String, String), TargetState>>,
    pub(crate) plugins: Mutex<Vec<(String, Arc<PluginStats>)>>,
    pub(crate) exporters: Mutex<Vec<(String, Arc<ExportStats>)>>,
    wal: Mutex<Option<Arc<Mutex<Wal>>>>,
    pub wal_sync_failures: AtomicU64,
    pub wal_append_failures: AtomicU64,
    /// Whether WAL appends and syncs have been failing too long (`/-/healthy`).
    pub wal_health: Mutex<crate::health::WalHealth>,
    /// Why scrapes wait for the wall clock, while they do.
    pub clock_wait: Mutex<Option<String>>,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Telemetry {
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn set_wal(&self, wal: Arc<Mutex<Wal>>) {
        *self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(wal);
    }

    /// The WAL's statistics, once it is open.
    pub fn wal_stats(&self) -> Option<magpie_wal::Stats> {
        let wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        Some(
            wal.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stats(),
        )
    }

    /// Lets go of the WAL so it can be closed.
    pub fn take_wal(&self) -> Option<Arc<Mutex<Wal>>> {
        self.wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    pub fn add_exporter(&self, name: String, stats: Arc<ExportStats>) {
        self.exporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, stats));
    }

    /// Forgets plugin and exporter counters of a configuration being replaced.
    pub fn clear_plugins(&self) {
        self.plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.exporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    pub fn add_plugin(&self, name: String, stats: Arc<PluginStats>) {
        self.plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((name, stats));
    }

    pub fn record_scrape(&self, job: &str, instance: &str, state: TargetState, appended: bool) {
        {
            let mut jobs = self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let c = jobs.entry(job.to_string()).or_default();
            c.scrapes += 1;
            c.failures += u64::from(!state.up);
            c.samples += state.samples as u64;
        }
        if !appended {
            self.wal_append_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((job.to_string(), instance.to_string()), state);
    }

    /// The `/metrics` exposition.
    #[allow(clippy::cast_precision_loss)]
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut o,
            "magpie_build_info",
            "gauge",
            "Build of this magpie.",
        );
        let _ = writeln!(
            o,
            "magpie_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        {
            let jobs = self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            family(
                &mut o,
                "magpie_scrapes_total",
                "counter",
                "Scrapes run, per job.",
            );
            for (j, c) in jobs.iter() {
                let _ = writeln!(
                    o,
                    "magpie_scrapes_total{{job=\"{}\"}} {}",
                    esc(j),
                    c.scrapes
                );
            }
            family(
                &mut o,
                "magpie_scrape_failures_total",
                "counter",
                "Scrapes that failed, per job.",
            );
            for (j, c) in jobs.iter() {
                let _ = writeln!(
                    o,
                    "magpie_scrape_failures_total{{job=\"{}\"}} {}",
                    esc(j),
                    c.failures
                );
            }
            family(
                &mut o,
                "magpie_samples_scraped_total",
                "counter",
                "Samples scraped, per job.",
            );
            for (j, c) in jobs.iter() {
                let _ = writeln!(
                    o,
                    "magpie_samples_scraped_total{{job=\"{}\"}} {}",
                    esc(j),
                    c.samples
                );
            }
        }
        {
            let targets = self
                .targets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            family(
                &mut o,
                "magpie_target_up",
                "gauge",
                "Whether the last scrape of a target succeeded.",
            );
            for ((j, i), s) in targets.iter() {
                let _ = writeln!(
                    o,
                    "magpie_target_up{{job=\"{}\",instance=\"{}\"}} {}",
                    esc(j),
                    esc(i),
                    u8::from(s.up)
                );
            }
            family(
                &mut o,
                "magpie_target_last_scrape_timestamp_seconds",
                "gauge",
                "When a target was last scraped.",
            );
            for ((j, i), s) in targets.iter() {
                let _ = writeln!(
                    o,
                    "magpie_target_last_scrape_timestamp_seconds{{job=\"{}\",instance=\"{}\"}} {}",
                    esc(j),
                    esc(i),
                    s.last_scrape_ms as f64 / 1000.0
                );
            }
            family(
                &mut o,
                "magpie_target_scrape_duration_seconds",
                "gauge",
                "Duration of the last scrape of a target.",
            );
            for ((j, i), s) in targets.iter() {
                let _ = writeln!(
                    o,
                    "magpie_target_scrape_duration_seconds{{job=\"{}\",instance=\"{}\"}} {}",
                    esc(j),
                    esc(i),
                    s.duration.as_secs_f64()
                );
            }
        }
        if let Some(st) = self.wal_stats() {
            if let Some(ms) = st.oldest_sample_ms {
                family(
                    &mut o,
                    "magpie_wal_oldest_sample_timestamp_seconds",
                    "gauge",
                    "Lower bound of the timestamp of the oldest sample the WAL ring holds.",
                );
                let _ = writeln!(
                    o,
                    "magpie_wal_oldest_sample_timestamp_seconds {}",
                    ms as f64 / 1000.0
                );
            }
            for (name, kind, help, v) in [
                (
                    "magpie_wal_max_bytes",
                    "gauge",
                    "The size budget of the WAL ring.",
                    st.max_bytes,
                ),
                (
                    "magpie_wal_bytes",
                    "gauge",
                    "Bytes the WAL segments take on disk.",
                    st.bytes_on_disk,
                ),
                (
                    "magpie_wal_segments",
                    "gauge",
                    "Segments in the WAL ring.",
                    st.segments as u64,
                ),
                (
                    "magpie_wal_samples_appended_total",
                    "counter",
                    "Samples appended to the WAL since start.",
                    st.samples_appended,
                ),
                (
                    "magpie_wal_samples",
                    "gauge",
                    "Samples held by the WAL ring.",
                    st.samples_in_ring,
                ),
                (
                    "magpie_wal_samples_rejected_total",
                    "counter",
                    "Samples refused because the disk was full.",
                    st.samples_rejected,
                ),
                (
                    "magpie_wal_segments_dropped_total",
                    "counter",
                    "Segments deleted to respect the size budget or free disk space.",
                    st.segments_dropped,
                ),
                (
                    "magpie_wal_label_heavy_segments_total",
                    "counter",
                    "WAL segments that filled up with fewer than 4 samples per series (raise segment_bytes).",
                    st.label_heavy_segments,
                ),
                (
                    "magpie_wal_damaged_regions_total",
                    "counter",
                    "Damaged WAL areas met while opening or reading.",
                    st.damaged_regions,
                ),
            ] {
                family(&mut o, name, kind, help);
                let _ = writeln!(o, "{name} {v}");
            }
            family(
                &mut o,
                "magpie_exporter_backlog_samples",
                "gauge",
                "Samples in the WAL not yet acknowledged by an exporter.",
            );
            for c in &st.consumers {
                let _ = writeln!(
                    o,
                    "magpie_exporter_backlog_samples{{exporter=\"{}\"}} {}",
                    esc(&c.name),
                    c.backlog_samples
                );
            }
            family(
                &mut o,
                "magpie_exporter_oldest_unacked_timestamp_seconds",
                "gauge",
                "Lower bound of the timestamp of the oldest sample an exporter has not delivered.",
            );
            for c in &st.consumers {
                if let Some(ms) = c.oldest_unacked_ms {
                    let _ = writeln!(
                        o,
                        "magpie_exporter_oldest_unacked_timestamp_seconds{{exporter=\"{}\"}} {}",
                        esc(&c.name),
                        ms as f64 / 1000.0
                    );
                }
            }
            family(
                &mut o,
                "magpie_exporter_dropped_samples_total",
                "counter",
                "Samples the ring dropped before an exporter delivered them.",
            );
            for c in &st.consumers {
                let _ = writeln!(
                    o,
                    "magpie_exporter_dropped_samples_total{{exporter=\"{}\"}} {}",
                    esc(&c.name),
                    c.dropped_samples
                );
            }
        }
        for (name, help, v) in [
            (
                "magpie_wal_sync_failures_total",
                "WAL syncs that failed.",
                &self.wal_sync_failures,
            ),
            (
                "magpie_wal_append_failures_total",
                "Scrapes whose samples could not be appended to the WAL.",
                &self.wal_append_failures,
            ),
        ] {
            family(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name} {}", v.load(Ordering::Relaxed));
        }
        {
            let exporters = self
                .exporters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let counters: [(&str, &str, Counter); 5] = [
                (
                    "magpie_exporter_sent_samples_total",
                    "Samples an exporter delivered.",
                    |s| &s.sent,
                ),
                (
                    "magpie_exporter_retries_total",
                    "Sends an exporter retried.",
                    |s| &s.retries,
                ),
                (
                    "magpie_exporter_rejected_samples_total",
                    "Samples a receiver refused for good.",
                    |s| &s.rejected,
                ),
                (
                    "magpie_exporter_too_old_samples_total",
                    "Samples dropped for being older than sample_age_limit.",
                    |s| &s.too_old,
                ),
                (
                    "magpie_exporter_failed_sends_total",
                    "Sends that failed to reach the receiver.",
                    |s| &s.failed_sends,
                ),
            ];
            for (name, help, get) in counters {
                family(&mut o, name, "counter", help);
                for (e, s) in exporters.iter() {
                    let _ = writeln!(
                        o,
                        "{name}{{exporter=\"{}\"}} {}",
                        esc(e),
                        get(s).load(Ordering::Relaxed)
                    );
                }
            }
            family(
                &mut o,
                "magpie_exporter_last_success_timestamp_seconds",
                "gauge",
                "When an exporter last delivered a payload.",
            );
            for (e, s) in exporters.iter() {
                let _ = writeln!(
                    o,
                    "magpie_exporter_last_success_timestamp_seconds{{exporter=\"{}\"}} {}",
                    esc(e),
                    s.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0
                );
            }
        }
        let plugins = self
            .plugins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        family(
            &mut o,
            "magpie_plugin_calls_total",
            "counter",
            "Calls into a plugin instance.",
        );
        for (p, s) in plugins.iter() {
            let _ = writeln!(
                o,
                "magpie_plugin_calls_total{{plugin=\"{}\"}} {}",
                esc(p),
                s.calls.load(Ordering::Relaxed)
            );
        }
        family(
            &mut o,
            "magpie_plugin_faults_total",
            "counter",
            "Plugin calls that faulted, by kind.",
        );
        for (p, s) in plugins.iter() {
            for (kind, c) in [
                ("trap", &s.traps),
                ("timeout", &s.timeouts),
                ("memory_limit", &s.memory_limits),
                ("abi", &s.abi_errors),
            ] {
                let _ = writeln!(
                    o,
                    "magpie_plugin_faults_total{{plugin=\"{}\",kind=\"{kind}\"}} {}",
                    esc(p),
                    c.load(Ordering::Relaxed)
                );
            }
        }
        family(
            &mut o,
            "magpie_plugin_failures_total",
            "counter",
            "Failures a plugin reported itself.",
        );
        for (p, s) in plugins.iter() {
            let _ = writeln!(
                o,
                "magpie_plugin_failures_total{{plugin=\"{}\"}} {}",
                esc(p),
                s.failures.load(Ordering::Relaxed)
            );
        }
        family(
            &mut o,
            "magpie_plugin_restarts_total",
            "counter",
            "Plugin instances recreated after a fault.",
        );
        for (p, s) in plugins.iter() {
            let _ = writeln!(
                o,
                "magpie_plugin_restarts_total{{plugin=\"{}\"}} {}",
                esc(p),
                s.restarts.load(Ordering::Relaxed)
            );
        }
        family(
            &mut o,
            "magpie_plugin_quarantined",
            "gauge",
            "Whether a plugin is quarantined after repeated faults.",
        );
        for (p, s) in plugins.iter() {
            let _ = writeln!(
                o,
                "magpie_plugin_quarantined{{plugin=\"{}\"}} {}",
                esc(p),
                u8::from(s.quarantined.load(Ordering::Relaxed))
            );
        }
        if let Some((cpu, start)) = process_times() {
            family(
                &mut o,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
            );
            let _ = writeln!(o, "process_cpu_seconds_total {cpu}");
            family(
                &mut o,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
            );
            let _ = writeln!(o, "process_start_time_seconds {start}");
        }
        if let Some(rss) = resident_bytes() {
            family(
                &mut o,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(o, "process_resident_memory_bytes {rss}");
        }
        o
    }

    /// The WAL's health now.
    pub fn health(&self) -> crate::health::Verdict {
        self.wal_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verdict(std::time::Instant::now())
    }

    /// Records the outcome of a WAL operation for [`Telemetry::health`].
    pub fn wal_outcome(&self, op: crate::health::WalOp, error: Option<&str>) {
        let mut h = self
            .wal_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match error {
            Some(e) => h.failed(op, std::time::Instant::now(), e),
            None => h.succeeded(op),
        }
    }

    /// Answers one HTTP request.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let (status, ctype, body) = match req.uri().path() {
            "/" => (
                StatusCode::OK,
                "text/html; charset=utf-8",
                crate::status::page(self),
            ),
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.render(),
            ),
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

pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

/// Serves the status page, `/metrics`, `/-/healthy` and `/-/ready` until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    telemetry: Arc<Telemetry>,
    mut stop: tokio::sync::watch::Receiver<bool>,
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
                let resp = t.handle(&req);
                async move { Ok::<_, std::convert::Infallible>(resp) }
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
        *self
            .clock_wait
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = why.map(str::to_string);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(body: &str, name: &str) -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
    }

    #[test]
    fn process_metrics_are_those_of_this_process() {
        // Burn a little CPU so the counter cannot read zero by luck.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        assert_ne!(x, 1);
        let body = Telemetry::default().render();
        let cpu = value(&body, "process_cpu_seconds_total");
        assert!(cpu > 0.0 && cpu < 3600.0, "{cpu}");
        let start = value(&body, "process_start_time_seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
        assert!(value(&body, "process_resident_memory_bytes") > 1e6);
    }
}
