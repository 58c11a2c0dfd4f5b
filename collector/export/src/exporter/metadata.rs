//! Metric metadata on its own schedule, as Prometheus' remote write sends it with
//! `metadata_config`: every `send_interval`, the metadata of all running targets (each
//! distinct family/type/help/unit once) in requests of at most `max_samples_per_send`
//! families, apart from the samples. It is not in the WAL, so nothing is acknowledged: a
//! request the receiver refuses is logged and the next interval sends everything again.
//!
//! The sends happen in the exporter's own loop, between two batches, so one plugin instance
//! and one link serve both, as in Prometheus where a queue's shards and its metadata share
//! the client.
//!
//! Remote write 2.0 carries metadata inside each series instead. A plugin that answers a
//! report of metadata with no payload takes it that way ([`Inline`]): from then on it gets
//! the whole snapshot in one call, before the next batch whenever the store changed (or the
//! plugin instance was restarted, losing what it held) and every interval, and nothing is
//! sent apart. Whether a plugin is such is learned from its first answer; a plugin that
//! answers with payloads keeps the schedule above, unchanged.

use super::Exporter;
use super::send::PluginJudge;
use crate::exporter::encode::to_delivery;
use magpie_scrape::metadata::MetadataStore;
use magpie_sdk::abi::FamilyMeta;
use magpie_transport::delivery::{HttpLink, Pacer, Payload, Report, RoundFailed, deliver};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How an exporter sends metadata.
#[derive(Debug, Clone)]
pub struct MetadataSend {
    /// Where the scrape pipeline keeps it.
    pub store: MetadataStore,
    /// Time between two sends (Prometheus' `send_interval`, default 1m).
    pub interval: Duration,
    /// Most families per request (Prometheus' `max_samples_per_send`, default 500).
    pub max_per_send: usize,
}

/// What the loop knows about the plugin's way with metadata.
#[derive(Debug, Default)]
pub(super) struct Inline {
    /// `Some(true)`: the plugin takes metadata with the series (no payload for a non-empty
    /// report); `Some(false)`: it sends metadata apart; `None`: not asked yet.
    carries: Option<bool>,
    /// The store generation and plugin restarts of the last report it took.
    fed: Option<(u64, u64)>,
}

/// Logs what became of metadata requests; they carry no samples to count.
struct MetaTell<'a> {
    name: &'a str,
    refused: usize,
}

impl Report for MetaTell<'_> {
    fn accepted(&mut self, _p: &Payload) {}

    fn refused(&mut self, _p: &Payload, reason: &str) {
        self.refused += 1;
        log::warn!(
            "exporter `{}`: the receiver refused a metadata request; it is sent again in the next interval. error={reason}",
            self.name
        );
    }

    fn retrying(&mut self, r: &RoundFailed<'_>) {
        log::warn!(
            "exporter `{}`: sending metadata failed; retrying in {:?}. error={}",
            self.name,
            r.wait,
            r.reason
        );
    }
}

impl Exporter {
    /// When the next metadata send is due, if this exporter sends metadata.
    pub(super) fn metadata_due(&self, next: Instant) -> bool {
        self.metadata.is_some() && Instant::now() >= next
    }

    /// Before a batch: hands a plugin that carries metadata with its series the current
    /// metadata, if it changed since the plugin last got it. Learns, at the first non-empty
    /// store, whether the plugin is such; a plugin that answers with payloads is left to the
    /// interval (its payloads are dropped: the interval sends them, as Prometheus does).
    pub(super) async fn feed_metadata(&mut self, inline: &mut Inline) {
        let Some(m) = &self.metadata else { return };
        if inline.carries == Some(false) {
            return;
        }
        let now = (
            m.store.generation(),
            self.runner.stats().restarts.load(Ordering::Relaxed),
        );
        if inline.fed == Some(now) {
            return;
        }
        let families = m.store.snapshot();
        if families.is_empty() && inline.carries.is_none() {
            return;
        }
        self.feed_all(&families, now.0, inline).await;
    }

    /// Hands the plugin the whole snapshot, taken at store `generation` or later, in one
    /// call and learns from its answer.
    async fn feed_all(
        &mut self,
        families: &[FamilyMeta<'static>],
        generation: u64,
        inline: &mut Inline,
    ) {
        match self.runner.export_metadata(families).await {
            Ok(p) if p.is_empty() => {
                if !families.is_empty() {
                    inline.carries = Some(true);
                }
            }
            Ok(_) => inline.carries = Some(false),
            Err(e) => log::warn!(
                "exporter `{}`: the plugin could not take the metadata; its series go without it until it does. error={e}",
                self.name
            ),
        }
        let restarts = self.runner.stats().restarts.load(Ordering::Relaxed);
        inline.fed = Some((generation, restarts));
    }

    /// Sends the metadata of all running targets, in requests of at most `max_per_send`
    /// families; to a plugin that carries it with its series, hands it over whole. Returns
    /// the families sent.
    pub(super) async fn send_metadata(&mut self, inline: &mut Inline) -> usize {
        let Some(m) = &self.metadata else {
            return 0;
        };
        // Read before the snapshot: a change in between is fed again before the next batch.
        let generation = m.store.generation();
        let families = m.store.snapshot();
        if inline.carries == Some(true) {
            self.feed_all(&families, generation, inline).await;
            return 0;
        }
        let per = m.max_per_send.max(1);
        let mut sent = 0;
        for chunk in families.chunks(per) {
            let payloads = match self.runner.export_metadata(chunk).await {
                Ok(p) => p.iter().map(to_delivery).collect::<Vec<_>>(),
                Err(e) => {
                    log::warn!(
                        "exporter `{}`: the plugin could not encode metadata; it is sent again in the next interval. error={e}",
                        self.name
                    );
                    return sent;
                }
            };
            if payloads.is_empty() {
                // The plugin sends no metadata apart (MQTT encoders, remote write 2.0, which
                // carries it with the series): it gets the whole set at once.
                inline.carries = Some(true);
                if chunk.len() < families.len() {
                    self.feed_all(&families, generation, inline).await;
                }
                return sent;
            }
            inline.carries = Some(false);
            // Without the `mqtt` feature, `Http` is the only destination.
            #[allow(irrefutable_let_patterns)]
            let super::Destination::Http {
                url,
                client,
                headers,
            } = &self.destination
            else {
                return sent;
            };
            // Metadata goes in 1.0 only: a refused encoding is a refusal, never a fallback.
            let unsupported = std::sync::OnceLock::new();
            let mut link = HttpLink {
                client,
                url,
                headers,
                timeout: self.timeout,
                judge: PluginJudge {
                    name: &self.name,
                    runner: &mut self.runner,
                    fallback: true,
                    unsupported: &unsupported,
                },
            };
            let mut tell = MetaTell {
                name: &self.name,
                refused: 0,
            };
            let mut pacer = Pacer::new(0);
            deliver(&mut link, &payloads, self.policy, &mut pacer, &mut tell).await;
            if tell.refused == 0 {
                sent += chunk.len();
            }
        }
        sent
    }
}
