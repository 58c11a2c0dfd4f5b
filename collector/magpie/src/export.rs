//! One delivery loop per exporter: read the oldest unacknowledged samples from the WAL, have
//! the exporter plugin encode them, send each payload over HTTP until the receiver accepts or
//! refuses it, and only then acknowledge the batch in the WAL. Delivery is at-least-once,
//! oldest first; the cursor survives restarts, so a backlog outlives outages and reboots.
//! Stopping never waits for a receiver: the data is in the WAL.

use crate::config::Export;
use magpie_host::{PluginError, Runner};
use magpie_sdk::abi::{ExportBatchBuilder, ExportOutcome, Label, Payload, ResponseHead};
use magpie_transport::delivery::{Decision, Delivery, Outcome, RetryPolicy};
use magpie_transport::{Auth, HttpClient, PostResponse};
use magpie_wal::{Batch, ConsumerId, Wal};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How long an idle exporter waits before looking at the WAL again when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Counters of one exporter, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ExportStats {
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub rejected: AtomicU64,
    pub too_old: AtomicU64,
    pub failed_sends: AtomicU64,
    pub last_success_ms: AtomicU64,
}

/// What an exporter loop needs.
pub(crate) struct Exporter {
    pub name: String,
    pub url: String,
    pub runner: Runner,
    pub client: HttpClient,
    pub headers: Vec<(String, String)>,
    pub external_labels: Vec<(String, String)>,
    pub max_samples: usize,
    pub max_rate: u64,
    pub age_limit: Option<Duration>,
    pub timeout: Duration,
    pub policy: RetryPolicy,
    pub wal: Arc<Mutex<Wal>>,
    pub consumer: ConsumerId,
    pub stats: Arc<ExportStats>,
}

/// The headers an exporter adds to every request: its configured ones and its credentials.
///
/// # Errors
/// An unreadable secret file.
pub(crate) fn request_headers(
    e: &Export,
) -> Result<Vec<(String, String)>, magpie_transport::Error> {
    let mut h: Vec<(String, String)> = e
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let auth = match (&e.basic_auth, &e.bearer_token_file) {
        (Some(b), _) => Auth::basic(&b.username, &b.password_file)?,
        (None, Some(f)) => Auth::bearer(f)?,
        (None, None) => Auth::None,
    };
    h.extend(auth.header());
    Ok(h)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A cheap random number for jitter: no cryptographic quality needed, only spread.
fn random() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = u64::try_from(t & u128::from(u64::MAX)).unwrap_or(1) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^ (x << 17)
}

/// Sleeps; true when asked to stop meanwhile.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stop.changed() => true,
    }
}

enum Step {
    Continue,
    Stop,
}

impl Exporter {
    /// Runs until `stop` turns true.
    pub(crate) async fn run(mut self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let batch = {
                let mut wal = self
                    .wal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                wal.read(self.consumer, self.max_samples)
            };
            let batch = match batch {
                Ok(Some(b)) => b,
                Ok(None) => {
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(IDLE_POLL) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
                Err(e) => {
                    log::error!(
                        "exporter `{}`: reading the WAL failed; retrying. error={e}",
                        self.name
                    );
                    if pause(Duration::from_secs(1), &mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            let started = Instant::now();
            let n = batch.samples.len();
            match self.deliver(&batch, &mut stop).await {
                Step::Stop => return,
                Step::Continue => {}
            }
            if self.max_rate > 0 {
                // Spread a backlog over time so draining does not starve the uplink.
                #[allow(clippy::cast_precision_loss)]
                let min = Duration::from_secs_f64(n as f64 / self.max_rate as f64);
                let rest = min.saturating_sub(started.elapsed());
                if !rest.is_zero() && pause(rest, &mut stop).await {
                    return;
                }
            }
        }
    }

    fn encode<'b>(&self, batch: &'b Batch) -> magpie_sdk::abi::ExportBatch<'b> {
        let cutoff = self
            .age_limit
            .map(|l| now_ms() - i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
        // Points grouped by series, series in index order, points in WAL order: a counting
        // sort, so a batch costs no allocation per series.
        let n = batch.series.len();
        let mut start = vec![0u32; n + 1];
        let mut too_old = 0u64;
        let fresh = |t_ms: i64| cutoff.is_none_or(|c| t_ms >= c);
        for s in &batch.samples {
            if !fresh(s.t_ms) {
                too_old += 1;
            } else if let Some(c) = start.get_mut(s.series as usize + 1) {
                *c += 1;
            }
        }
        if too_old > 0 {
            self.stats.too_old.fetch_add(too_old, Ordering::Relaxed);
            log::warn!(
                "exporter `{}`: dropped {too_old} samples older than sample_age_limit",
                self.name
            );
        }
        for i in 1..=n {
            start[i] += start[i - 1];
        }
        let mut points = vec![(0i64, 0f64); start[n] as usize];
        let mut fill = start.clone();
        for s in &batch.samples {
            if fresh(s.t_ms)
                && let Some(at) = fill[..n].get_mut(s.series as usize)
            {
                points[*at as usize] = (s.t_ms, s.value);
                *at += 1;
            }
        }
        let mut b = ExportBatchBuilder::default();
        for (i, labels) in batch.series.iter().enumerate() {
            let (from, to) = (start[i] as usize, start[i + 1] as usize);
            if from == to {
                continue;
            }
            if self.external_labels.is_empty() {
                // WAL label sets are sorted by name already.
                b.series(labels.iter().map(|(n, v)| Label::new(n, v)));
            } else {
                // External labels fill in names the series lacks; the series' own values win.
                let mut all: Vec<Label<'b>> =
                    labels.iter().map(|(n, v)| Label::new(n, v)).collect();
                for (n, v) in &self.external_labels {
                    if !labels.iter().any(|(ln, _)| &**ln == n) {
                        all.push(Label {
                            name: n.clone().into(),
                            value: v.clone().into(),
                        });
                    }
                }
                all.sort_by(|a, b| a.name.cmp(&b.name));
                b.series(all);
            }
            for &(t, v) in &points[from..to] {
                b.point(t, v);
            }
        }
        b.finish()
    }

    async fn deliver(&mut self, batch: &Batch, stop: &mut watch::Receiver<bool>) -> Step {
        let encoded = self.encode(batch);
        let payloads = loop {
            if encoded.points.is_empty() {
                break Vec::new();
            }
            match self.runner.export(&encoded).await {
                Ok(p) => break p,
                Err(e) => {
                    log::error!(
                        "exporter `{}`: the plugin could not encode a batch; retrying. error={e}",
                        self.name
                    );
                    let wait = match &e {
                        PluginError::Backoff { remaining, .. }
                        | PluginError::Quarantined { remaining, .. } => *remaining,
                        _ => Duration::from_secs(1),
                    };
                    if pause(wait, stop).await {
                        return Step::Stop;
                    }
                }
            }
        };
        for p in &payloads {
            if let Step::Stop = self.send(p, stop).await {
                return Step::Stop;
            }
        }
        let mut wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = wal.ack(self.consumer, batch.end) {
            // The batch was delivered; failing to persist the cursor only means a resend.
            log::error!(
                "exporter `{}`: persisting the WAL cursor failed; the batch may be sent again. error={e}",
                self.name
            );
        }
        Step::Continue
    }

    async fn send(&mut self, p: &Payload<'static>, stop: &mut watch::Receiver<bool>) -> Step {
        let mut headers = self.headers.clone();
        headers.extend(
            p.headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        if !p.content_type.is_empty() {
            headers.push(("content-type".into(), p.content_type.to_string()));
        }
        let body = bytes::Bytes::copy_from_slice(&p.body);
        let mut delivery = Delivery::new(self.policy);
        loop {
            let outcome = match self
                .client
                .post(&self.url, &headers, body.clone(), self.timeout)
                .await
            {
                Ok(resp) => self.judge(&resp).await,
                Err(e) => {
                    self.stats.failed_sends.fetch_add(1, Ordering::Relaxed);
                    log::warn!(
                        "exporter `{}`: sending failed; will retry. error={e}",
                        self.name
                    );
                    Outcome::Retryable { retry_after: None }
                }
            };
            match delivery.decide(outcome, std::time::Instant::now(), random()) {
                Decision::Done => {
                    self.stats
                        .sent
                        .fetch_add(u64::from(p.samples), Ordering::Relaxed);
                    self.stats
                        .last_success_ms
                        .store(u64::try_from(now_ms()).unwrap_or(0), Ordering::Relaxed);
                    return Step::Continue;
                }
                Decision::Drop => {
                    self.stats
                        .rejected
                        .fetch_add(u64::from(p.samples), Ordering::Relaxed);
                    return Step::Continue;
                }
                Decision::RetryAt(at) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = at.saturating_duration_since(std::time::Instant::now());
                    if pause(wait, stop).await {
                        return Step::Stop;
                    }
                }
            }
        }
    }

    async fn judge(&mut self, resp: &PostResponse) -> Outcome {
        let head = ResponseHead::V1 {
            status: resp.status,
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            body: resp.body.as_slice().into(),
        };
        let judged = match self.runner.outcome(&head).await {
            Ok(o) => o,
            Err(e) => {
                log::warn!(
                    "exporter `{}`: the plugin could not judge a response; using the status code. error={e}",
                    self.name
                );
                ExportOutcome::from_status(resp.status)
            }
        };
        match judged {
            ExportOutcome::Success => Outcome::Success,
            // The cursor moves per batch, so a partial success resends the payload: receivers
            // accept a sample they already hold.
            ExportOutcome::Retryable | ExportOutcome::Partial(_) => {
                log::warn!(
                    "exporter `{}`: the receiver answered {}; will retry. body={}",
                    self.name,
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                );
                Outcome::Retryable {
                    retry_after: resp.retry_after(),
                }
            }
            ExportOutcome::Rejected => {
                log::error!(
                    "exporter `{}`: the receiver refused a payload with {}; its samples are dropped. body={}",
                    self.name,
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                );
                Outcome::Rejected
            }
        }
    }
}
