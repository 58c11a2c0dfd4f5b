//! The delivery loop of one exporter (see the crate documentation for what it guarantees).

mod bisect;
mod encode;
mod metadata;
mod send;

pub use metadata::MetadataSend;

use crate::{ExportStats, Fallbacks};
use encode::Encoded;
use magpie_host::Runner;
use magpie_transport::HttpClient;
use magpie_transport::delivery::{Ended, HttpLink, Pacer, RetryPolicy, deliver_until};
use magpie_wal::owner::WalHandle;
use magpie_wal::{Batch, ConsumerId, Wal};
use send::{PluginJudge, Tell};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// How long an idle exporter waits before looking at the WAL again when nothing woke it.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// At shutdown, the longest wait for the answer to a request already sent (and never longer
/// than the exporter's timeout).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Where an exporter's payloads go. One per exporter, so the size difference of the variants
/// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Destination {
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

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http { url, .. } => f.debug_struct("Http").field("url", url).finish(),
            #[cfg(feature = "mqtt")]
            Self::Mqtt { qos, .. } => f.debug_struct("Mqtt").field("qos", qos).finish(),
        }
    }
}

/// What an exporter loop needs.
pub struct Exporter {
    pub name: String,
    pub runner: Runner,
    pub destination: Destination,
    pub external_labels: crate::ExternalLabels,
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
    /// The WAL's owner: reads and acknowledgements go through it.
    pub wal: WalHandle,
    pub consumer: ConsumerId,
    pub stats: Arc<ExportStats>,
    /// Exporters sending their plugin's fallback encoding, shared by every generation.
    pub fallbacks: Fallbacks,
    /// Sends the scraped metric metadata every interval (`None`: never).
    pub metadata: Option<MetadataSend>,
    /// Hands the plugin the exemplars of each batch (`send_exemplars`).
    pub send_exemplars: bool,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("name", &self.name)
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
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
    /// Runs until `stop` turns true, then closes the destination (an MQTT exporter publishes its
    /// `offline` status and disconnects).
    pub async fn run(mut self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        self.run_until_stopped(&wake, stop).await;
        match self.destination {
            Destination::Http { .. } => {}
            #[cfg(feature = "mqtt")]
            Destination::Mqtt { client, .. } => client.close().await,
        }
    }

    async fn run_until_stopped(&mut self, wake: &Notify, mut stop: watch::Receiver<bool>) {
        let mut pacer = Pacer::new(self.max_rate);
        if let Destination::Http { url, .. } = &self.destination
            && self.fallbacks.contains(&self.name, url)
        {
            self.stats.fallback.store(true, Ordering::Relaxed);
        }
        // As Prometheus' metadata watcher: the first send one interval after the start,
        // when the targets have been scraped.
        let mut metadata_at =
            Instant::now() + self.metadata.as_ref().map_or(IDLE_POLL, |m| m.interval);
        let mut inline = metadata::Inline::default();
        loop {
            if *stop.borrow() {
                return;
            }
            if self.metadata_due(metadata_at) {
                tokio::select! {
                    _ = self.send_metadata(&mut inline) => {}
                    _ = stop.changed() => return,
                }
                metadata_at =
                    Instant::now() + self.metadata.as_ref().map_or(IDLE_POLL, |m| m.interval);
            }
            let (main, max, name) = (self.consumer, self.max_samples, self.name.clone());
            let batch = match self
                .wal
                .call(move |wal| next_batch(wal, main, max, &name))
                .await
            {
                Ok(b) => b,
                Err(magpie_wal::owner::Closed) => return,
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
            self.feed_metadata(&mut inline).await;
            match self.deliver(&batch, from, &mut pacer, &mut stop).await {
                Step::Stop => return,
                Step::Continue => {}
            }
            if self.recovering {
                self.recovering = false;
                if self.newest_first {
                    self.split_backlog().await;
                }
            }
        }
    }

    /// After an outage, lets new samples overtake a backlog of more than one batch.
    async fn split_backlog(&mut self) {
        let (id, max) = (self.consumer, self.max_samples as u64);
        let split = self
            .wal
            .call(move |wal| {
                let backlog = wal.backlog(id);
                if wal.newest(id).is_some() || backlog <= max {
                    return None;
                }
                Some(wal.split(id).map(|_| backlog))
            })
            .await;
        match split {
            Ok(Some(Ok(backlog))) => log::info!(
                "exporter `{}`: sending new samples first, then a backlog of {backlog}",
                self.name
            ),
            Ok(Some(Err(e))) => log::error!(
                "exporter `{}`: cannot split the backlog; sending oldest first. error={e}",
                self.name
            ),
            Ok(None) | Err(_) => {}
        }
    }

    /// Delivers one batch (in parts when the receiver refuses it: [`bisect`]), then
    /// acknowledges it.
    async fn deliver(
        &mut self,
        batch: &Batch,
        from: ConsumerId,
        pacer: &mut Pacer,
        stop: &mut watch::Receiver<bool>,
    ) -> Step {
        match self.deliver_bisecting(batch, pacer, stop).await {
            Step::Stop => Step::Stop,
            Step::Continue => self.acknowledge(batch, from).await,
        }
    }

    /// Encodes and delivers one batch. When the receiver refuses the plugin's encoding, the
    /// batch is encoded again in the fallback and delivered. Refusals go to `held` when given
    /// (else they are booked at once). Returns how many payloads the batch made, `None` when
    /// asked to stop.
    async fn send_batch(
        &mut self,
        batch: &Batch,
        pacer: &mut Pacer,
        stop: &mut watch::Receiver<bool>,
        mut held: Option<&mut Vec<bisect::Held>>,
    ) -> Option<usize> {
        loop {
            let fallback = self.stats.fallback.load(Ordering::Relaxed);
            let payloads = match self.encode_payloads(batch, fallback, stop).await {
                Encoded::Payloads(p) => p,
                Encoded::Poisoned => Vec::new(),
                Encoded::Stop => return None,
            };
            let unsupported = OnceLock::new();
            if let Step::Stop = self
                .send(
                    &payloads,
                    fallback,
                    &unsupported,
                    pacer,
                    stop,
                    held.as_deref_mut(),
                )
                .await
            {
                return None;
            }
            let Some(&status) = unsupported.get() else {
                return Some(payloads.len());
            };
            self.fall_back(status);
        }
    }

    /// From now on, sends the plugin's fallback encoding to this exporter's receiver.
    fn fall_back(&self, status: u16) {
        self.stats.fallback.store(true, Ordering::Relaxed);
        let url = match &self.destination {
            Destination::Http { url, .. } => url.as_str(),
            #[cfg(feature = "mqtt")]
            Destination::Mqtt { .. } => "",
        };
        if self.fallbacks.insert(&self.name, url) {
            log::warn!(
                "exporter `{}`: the receiver at {url} does not take the plugin's encoding (remote write 2.0; it answered status {status}); sending the fallback (remote write 1.0) to it from now on, starting with the same batch",
                self.name
            );
        }
    }

    /// Delivers `payloads`; `unsupported` gets the status of an answer the plugin judged
    /// [`magpie_sdk::abi::ExportOutcome::Unsupported`] (only while `fallback` is off).
    async fn send(
        &mut self,
        payloads: &[magpie_transport::delivery::Payload],
        fallback: bool,
        unsupported: &OnceLock<u16>,
        pacer: &mut Pacer,
        stop: &mut watch::Receiver<bool>,
        held: Option<&mut Vec<bisect::Held>>,
    ) -> Step {
        let mut tell = Tell {
            name: &self.name,
            stats: &self.stats,
            recovering: &mut self.recovering,
            unsupported,
            held,
        };
        let grace = self.timeout.min(SHUTDOWN_GRACE);
        let ended = match &self.destination {
            Destination::Http {
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
                        fallback,
                        unsupported,
                    },
                };
                deliver_until(
                    &mut link,
                    payloads,
                    self.policy,
                    pacer,
                    &mut tell,
                    stop,
                    grace,
                )
                .await
            }
            #[cfg(feature = "mqtt")]
            Destination::Mqtt { client, qos } => {
                let mut link = magpie_transport::delivery::MqttLink {
                    client,
                    qos: *qos,
                    timeout: self.timeout,
                };
                deliver_until(
                    &mut link,
                    payloads,
                    self.policy,
                    pacer,
                    &mut tell,
                    stop,
                    grace,
                )
                .await
            }
        };
        match ended {
            Ended::Finished => Step::Continue,
            Ended::Stopped => Step::Stop,
        }
    }

    /// Acknowledges a delivered batch in the WAL, without waiting for the cursor write.
    async fn acknowledge(&mut self, batch: &Batch, from: ConsumerId) -> Step {
        // Taken in memory at once; the owner writes the cursor within an fsync interval and
        // reports a failed write (a resend after a restart, not a loss) through its tick.
        match self.wal.ack(from, batch.end).await {
            Ok(()) => Step::Continue,
            Err(magpie_wal::owner::Closed) => Step::Stop,
        }
    }
}

/// The next batch to send and the WAL consumer it came from: while split for newest-first
/// delivery, new samples before the backlog; otherwise oldest first. Runs on the WAL's owner.
fn next_batch(
    wal: &mut Wal,
    main: ConsumerId,
    max_samples: usize,
    name: &str,
) -> Result<Option<(Batch, ConsumerId)>, magpie_wal::Error> {
    let Some(newest) = wal.newest(main) else {
        return Ok(wal.read(main, max_samples)?.map(|b| (b, main)));
    };
    if let Some(b) = wal.read(newest, max_samples)? {
        return Ok(Some((b, newest)));
    }
    if let Some(b) = wal.read(main, max_samples)? {
        return Ok(Some((b, main)));
    }
    if wal.caught_up(main) {
        wal.join(main)?;
        log::info!("exporter `{name}`: the backlog is delivered; back to oldest-first order");
    }
    Ok(None)
}
