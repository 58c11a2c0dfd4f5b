//! `magpie_ingest_messages`, `magpie_ingest_samples` and `magpie_ingest_rejects`: what each
//! ingest source took and refused. The collector registers the families once
//! ([`IngestMetrics::register`]) and hands the same value to its sources as their
//! [`Observer`].

use crate::source::{Observer, Reason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    source: String,
    reason: &'static str,
}

/// Per-source counters of the ingest sources.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    messages: Family<SourceLabel, Counter>,
    samples: Family<SourceLabel, Counter>,
    rejects: Family<RejectLabels, Counter>,
}

impl IngestMetrics {
    /// Adds every family to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        // Help texts without the final period, which the registry appends.
        registry.register(
            "magpie_ingest_messages",
            "Pushed messages accepted into the WAL, per ingest source",
            self.messages.clone(),
        );
        registry.register(
            "magpie_ingest_samples",
            "Samples of accepted pushed messages, per ingest source",
            self.samples.clone(),
        );
        registry.register(
            "magpie_ingest_rejects",
            "Pushed messages refused, per ingest source and reason",
            self.rejects.clone(),
        );
    }
}

impl Observer for IngestMetrics {
    fn ingested(&self, source: &str, samples: usize) {
        let l = SourceLabel {
            source: source.into(),
        };
        self.messages.get_or_create(&l).inc();
        self.samples.get_or_create(&l).inc_by(samples as u64);
    }

    fn rejected(&self, source: &str, reason: Reason) {
        self.rejects
            .get_or_create(&RejectLabels {
                source: source.into(),
                reason: reason.as_str(),
            })
            .inc();
    }
}
