//! One delivery loop per exporter: read the oldest unacknowledged samples from the WAL, have
//! the exporter plugin encode them ([`encode`]), hand the payloads to the delivery driver of
//! `magpie-transport` (HTTP: one POST at a time until the receiver accepts or refuses it;
//! MQTT: pipelined publishes until the broker acknowledged each), and only when the driver is
//! done acknowledge the batch in the WAL. Retry, backoff, `Retry-After` and pacing are the
//! driver's; this loop does no waiting of its own but for an idle WAL or a backing-off plugin.
//! Delivery is at-least-once, oldest first; the cursor survives restarts, so a backlog
//! outlives outages and reboots. Stopping never waits for a receiver: the data is in the WAL.

mod encode;
mod send;

use crate::config::Export;
use encode::Encoded;
use magpie_host::Runner;
use magpie_transport::clock::now_ms;
use magpie_transport::delivery::{HttpLink, Pacer, RetryPolicy, deliver};
use magpie_transport::{Auth, HttpClient};
use magpie_wal::{Batch, ConsumerId, Wal};
use send::{PluginJudge, Tell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

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
    /// Samples of batches the plugin could not encode in `ENCODE_ATTEMPTS` attempts.
    pub poisoned_samples: AtomicU64,
    pub last_success_ms: AtomicU64,
    /// The last failure (ms since the epoch, what happened); cleared by a delivery.
    pub last_error: Mutex<Option<(i64, String)>>,
    /// Why the last acknowledgement could not be persisted; cleared by one that was.
    pub cursor_error: Mutex<Option<String>>,
}

impl ExportStats {
    fn set_cursor_error(&self, e: Option<String>) {
        *self
            .cursor_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = e;
    }

    /// Why the last acknowledgement could not be persisted, if it could not.
    pub(crate) fn cursor_error(&self) -> Option<String> {
        self.cursor_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

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
    /// `write_relabel_configs`, compiled.
    pub relabel: magpie_scrape::relabel::Relabeler,
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
        let mut pacer = Pacer::new(self.max_rate);
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
            match self.deliver(&batch, from, &mut pacer, &mut stop).await {
                Step::Stop => return,
                Step::Continue => {}
            }
            if self.recovering {
                self.recovering = false;
                if self.newest_first {
                    self.split_backlog();
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

    /// Encodes and delivers one batch, then acknowledges it.
    async fn deliver(
        &mut self,
        batch: &Batch,
        from: ConsumerId,
        pacer: &mut Pacer,
        stop: &mut watch::Receiver<bool>,
    ) -> Step {
        let payloads = match self.encode_payloads(batch, stop).await {
            Encoded::Payloads(p) => p,
            Encoded::Poisoned => Vec::new(),
            Encoded::Stop => return Step::Stop,
        };
        let mut tell = Tell {
            name: &self.name,
            stats: &self.stats,
            recovering: &mut self.recovering,
        };
        let delivered = async {
            match &self.sink {
                Sink::Http {
                    url,
                    client,
                    headers,
                } => {
                    let mut link = HttpLink {
                        client,
                        url,
                        headers,
                        timeout: self.timeout,
                        judge: PluginJudge {
                            name: &self.name,
                            runner: &mut self.runner,
                        },
                    };
                    deliver(&mut link, &payloads, self.policy, pacer, &mut tell).await;
                }
                #[cfg(feature = "mqtt")]
                Sink::Mqtt { client, qos } => {
                    let mut link = magpie_transport::delivery::MqttLink {
                        client,
                        qos: *qos,
                        timeout: self.timeout,
                    };
                    deliver(&mut link, &payloads, self.policy, pacer, &mut tell).await;
                }
            }
        };
        tokio::select! {
            () = delivered => {}
            _ = stop.changed() => return Step::Stop,
        }
        let mut wal = self
            .wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let acked = wal.ack(from, batch.end);
        drop(wal);
        self.stats
            .set_cursor_error(acked.as_ref().err().map(ToString::to_string));
        if let Err(e) = acked {
            // The batch was delivered; failing to persist the cursor only means a resend.
            log::error!(
                "exporter `{}`: persisting the WAL cursor failed; the batch may be sent again. error={e}",
                self.name
            );
        }
        Step::Continue
    }
}
