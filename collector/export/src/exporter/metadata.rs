//! Metric metadata on its own schedule, as Prometheus' remote write sends it with
//! `metadata_config`: every `send_interval`, the metadata of all running targets (each
//! distinct family/type/help/unit once) in requests of at most `max_samples_per_send`
//! families, apart from the samples. It is not in the WAL, so nothing is acknowledged: a
//! request the receiver refuses is logged and the next interval sends everything again.
//!
//! The sends happen in the exporter's own loop, between two batches, so one plugin instance
//! and one link serve both, as in Prometheus where a queue's shards and its metadata share
//! the client.

use super::Exporter;
use super::send::PluginJudge;
use crate::exporter::encode::to_delivery;
use magpie_scrape::metadata::MetadataStore;
use magpie_transport::delivery::{HttpLink, Pacer, Payload, Report, RoundFailed, deliver};
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

    /// Sends the metadata of all running targets, in requests of at most `max_per_send`
    /// families. Returns the families sent.
    pub(super) async fn send_metadata(&mut self) -> usize {
        let Some(m) = &self.metadata else {
            return 0;
        };
        let families = m.store.snapshot();
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
                // The plugin sends no metadata (MQTT encoders, remote write 2.0, which
                // carries it with the series).
                return sent;
            }
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
