//! One delivery loop per exporter: read the oldest unacknowledged samples from the WAL, have
//! the exporter plugin encode them, send each payload over the exporter's [`Sink`] (HTTP: until
//! the receiver accepts or refuses it; MQTT: until the broker acknowledged it, see [`mqtt`]),
//! and only then acknowledge the batch in the WAL. Delivery is at-least-once,
//! oldest first; the cursor survives restarts, so a backlog outlives outages and reboots.
//! Stopping never waits for a receiver: the data is in the WAL.

#[cfg(feature = "mqtt")]
mod mqtt;

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
    /// The last failure (ms since the epoch, what happened); cleared by a delivery.
    pub last_error: Mutex<Option<(i64, String)>>,
}

impl ExportStats {
    fn set_error(&self, e: Option<String>) {
        let mut last = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match e {
            Some(e) => *last = Some((now_ms(), e)),
            None => *last = None,
        }
    }
}

/// Where an exporter's payloads go. One per exporter, so the size difference of the variants
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Sink {
    /// POSTed to `url`, with these headers on every request.
    Http {
        url: String,
        client: HttpClient,
        headers: Vec<(String, String)>,
    },
    /// Published to a broker, each on its payload's topic.
    #[cfg(feature = "mqtt")]
    Mqtt {
        client: magpie_transport::mqtt::MqttClient,
        qos: magpie_transport::mqtt::Qos,
    },
}

impl ExportStats {
    /// A payload of `samples` samples was accepted.
    fn delivered(&self, samples: u32) {
        self.set_error(None);
        self.sent.fetch_add(u64::from(samples), Ordering::Relaxed);
        self.last_success_ms
            .store(u64::try_from(now_ms()).unwrap_or(0), Ordering::Relaxed);
    }
}

/// What an exporter loop needs.
pub(crate) struct Exporter {
    pub name: String,
    pub runner: Runner,
    pub sink: Sink,
    pub external_labels: Vec<(String, String)>,
    pub max_samples: usize,
    pub max_rate: u64,
    pub age_limit: Option<Duration>,
    /// Deliver new samples before a backlog (see `Export::newest_first`).
    pub newest_first: bool,
    /// Set by a retry and at start: the next delivery may find a backlog worth splitting.
    pub recovering: bool,
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

/// The user name and password of an MQTT exporter (`basic_auth`), read from the file.
///
/// # Errors
/// An unreadable or empty password file.
#[cfg(feature = "mqtt")]
pub(crate) fn mqtt_credentials(
    e: &Export,
) -> Result<Option<(String, String)>, magpie_transport::Error> {
    e.basic_auth
        .as_ref()
        .map(|b| match Auth::basic(&b.username, &b.password_file)? {
            Auth::Basic { username, password } => Ok((username, password)),
            _ => unreachable!("Auth::basic gives basic credentials"),
        })
        .transpose()
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
    /// Runs until `stop` turns true, then closes the sink (an MQTT exporter publishes its
    /// `offline` status and disconnects).
    pub(crate) async fn run(mut self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        self.run_until_stopped(&wake, stop).await;
        match self.sink {
            Sink::Http { .. } => {}
            #[cfg(feature = "mqtt")]
            Sink::Mqtt { client, .. } => client.close().await,
        }
    }

    async fn run_until_stopped(&mut self, wake: &Notify, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let batch = {
                let mut wal = self
                    .wal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                self.next_batch(&mut wal)
            };
            let (batch, from) = match batch {
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
            match self.deliver(&batch, from, &mut stop).await {
                Step::Stop => return,
                Step::Continue => {}
            }
            if self.recovering {
                self.recovering = false;
                if self.newest_first {
                    self.split_backlog();
                }
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

    /// The next batch to send and the WAL consumer it came from: while split for newest-first
    /// delivery, new samples before the backlog; otherwise oldest first.
    fn next_batch(&self, wal: &mut Wal) -> Result<Option<(Batch, ConsumerId)>, magpie_wal::Error> {
        let main = self.consumer;
        let Some(newest) = wal.newest(main) else {
            return Ok(wal.read(main, self.max_samples)?.map(|b| (b, main)));
        };
        if let Some(b) = wal.read(newest, self.max_samples)? {
            return Ok(Some((b, newest)));
        }
        if let Some(b) = wal.read(main, self.max_samples)? {
            return Ok(Some((b, main)));
        }
        if wal.caught_up(main) {
            wal.join(main)?;
            log::info!(
                "exporter `{}`: the backlog is delivered; back to oldest-first order",
                self.name
            );
        }
        Ok(None)
    }

    /// After an outage, lets new samples overtake a backlog of more than one batch.
    fn split_backlog(&self) {
        let mut wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let backlog = wal.backlog(self.consumer);
        if wal.newest(self.consumer).is_some() || backlog <= self.max_samples as u64 {
            return;
        }
        match wal.split(self.consumer) {
            Ok(_) => log::info!(
                "exporter `{}`: sending new samples first, then a backlog of {backlog}",
                self.name
            ),
            Err(e) => log::error!(
                "exporter `{}`: cannot split the backlog; sending oldest first. error={e}",
                self.name
            ),
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

    async fn deliver(
        &mut self,
        batch: &Batch,
        from: ConsumerId,
        stop: &mut watch::Receiver<bool>,
    ) -> Step {
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
                    self.stats
                        .set_error(Some(format!("the plugin could not encode a batch: {e}")));
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
        match &self.sink {
            Sink::Http { .. } => {
                for p in &payloads {
                    if let Step::Stop = self.send(p, stop).await {
                        return Step::Stop;
                    }
                }
            }
            #[cfg(feature = "mqtt")]
            Sink::Mqtt { .. } => {
                if let Step::Stop = self.publish(&payloads, stop).await {
                    return Step::Stop;
                }
            }
        }
        let mut wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = wal.ack(from, batch.end) {
            // The batch was delivered; failing to persist the cursor only means a resend.
            log::error!(
                "exporter `{}`: persisting the WAL cursor failed; the batch may be sent again. error={e}",
                self.name
            );
        }
        Step::Continue
    }

    async fn send(&mut self, p: &Payload<'static>, stop: &mut watch::Receiver<bool>) -> Step {
        #[cfg_attr(not(feature = "mqtt"), allow(irrefutable_let_patterns))]
        let Sink::Http {
            url,
            client,
            headers,
        } = &self.sink
        else {
            return Step::Continue;
        };
        let (url, client) = (url.clone(), client.clone());
        let mut headers = headers.clone();
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
            let outcome = match client
                .post(&url, &headers, body.clone(), self.timeout)
                .await
            {
                Ok(resp) => self.judge(&resp).await,
                Err(e) => {
                    self.stats.failed_sends.fetch_add(1, Ordering::Relaxed);
                    self.stats.set_error(Some(e.to_string()));
                    log::warn!(
                        "exporter `{}`: sending failed; will retry. error={e}",
                        self.name
                    );
                    Outcome::Retryable { retry_after: None }
                }
            };
            match delivery.decide(outcome, std::time::Instant::now(), random()) {
                Decision::Done => {
                    self.stats.delivered(p.samples);
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
                    self.recovering = true;
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
                self.stats.set_error(Some(format!(
                    "the receiver answered {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                )));
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
                self.stats.set_error(Some(format!(
                    "the receiver refused a payload with {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body).trim()
                )));
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
