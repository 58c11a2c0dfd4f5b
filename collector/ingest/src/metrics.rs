//! The ingest families on /metrics and the sources the status page lists, both drawn from the
//! sources' [`SourceStatus`] snapshots.
//!
//! | family | labels | what |
//! |---|---|---|
//! | `magpie_ingest_messages_total` | `source` | messages accepted into the WAL |
//! | `magpie_ingest_samples_total` | `source` | their samples |
//! | `magpie_ingest_rejects_total` | `source`, `reason` | messages refused, per reason |
//! | `magpie_ingest_decoder_messages_total` | `source`, `route`, `decoder` | accepted, per decoder |
//! | `magpie_ingest_decoder_samples_total` | `source`, `route`, `decoder` | their samples |
//! | `magpie_ingest_last_accepted_timestamp_seconds` | `source` | the latest accepted message |
//! | `magpie_ingest_source_up` | `source`, `state` | 1 while listening or connected |
//!
//! The collector asks [`IngestMetrics::source`] for a source's status when it starts one; a
//! source of the same name after a reload keeps its counters, so they never go back. The
//! counters of a source appear with its first accepted message (and a reason with its first
//! refusal), as they did when they were registered counters: scripts and tests wait for
//! `magpie_ingest_messages_total` to learn that a subscription is in place.

use crate::status::{About, SourceSnapshot, SourceStatus};
use magpie_metrics::{counters, gauges, seconds};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Board {
    /// Every source started since the collector started, in the order first seen.
    all: Vec<Arc<SourceStatus>>,
    /// The names of the running configuration's sources, in its order.
    current: Vec<String>,
}

/// The ingest sources' statuses: handed out to sources, read by /metrics and the page.
#[derive(Debug, Default)]
pub struct IngestMetrics {
    board: Arc<Mutex<Board>>,
}

impl IngestMetrics {
    /// Adds every family to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(Families(Arc::clone(&self.board))));
    }

    /// The status of the source `name`, with its settings now `about`: the one it had before
    /// a reload when there was one.
    pub fn source(&self, name: &str, about: About) -> Arc<SourceStatus> {
        let mut b = self.board.lock();
        if let Some(s) = b.all.iter().find(|s| s.name() == name) {
            s.restart(about);
            return Arc::clone(s);
        }
        let s = Arc::new(SourceStatus::new(name, about));
        b.all.push(Arc::clone(&s));
        s
    }

    /// The running configuration has exactly these sources, in this order.
    pub fn set_current(&self, names: Vec<String>) {
        self.board.lock().current = names;
    }

    /// The running configuration's sources, in its order.
    #[must_use]
    pub fn snapshots(&self) -> Vec<SourceSnapshot> {
        let b = self.board.lock();
        b.current
            .iter()
            .filter_map(|n| b.all.iter().find(|s| s.name() == n))
            .map(|s| s.snapshot())
            .collect()
    }
}

#[derive(Debug)]
struct Families(Arc<Mutex<Board>>);

impl Collector for Families {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let all: Vec<SourceSnapshot> = self.0.lock().all.iter().map(|s| s.snapshot()).collect();
        let taken = || all.iter().filter(|s| s.messages > 0);
        let source = |s: &SourceSnapshot| [("source", s.name.clone())];
        counters(
            &mut e,
            "magpie_ingest_messages",
            "Pushed messages accepted into the WAL, per ingest source.",
            taken().map(|s| (source(s), s.messages)),
        )?;
        counters(
            &mut e,
            "magpie_ingest_samples",
            "Samples of accepted pushed messages, per ingest source.",
            taken().map(|s| (source(s), s.samples)),
        )?;
        counters(
            &mut e,
            "magpie_ingest_rejects",
            "Pushed messages refused, per ingest source and reason.",
            all.iter().flat_map(|s| {
                s.rejects
                    .iter()
                    .map(|(r, n)| ([("source", s.name.as_str()), ("reason", r.as_str())], *n))
            }),
        )?;
        let decoders = || {
            taken().flat_map(|s| {
                s.decoders.iter().map(|d| {
                    (
                        [
                            ("source", s.name.as_str()),
                            ("route", d.route.as_str()),
                            ("decoder", d.plugin.as_str()),
                        ],
                        d,
                    )
                })
            })
        };
        counters(
            &mut e,
            "magpie_ingest_decoder_messages",
            "Pushed messages accepted into the WAL, per ingest source and decoder.",
            decoders().map(|(l, d)| (l, d.messages)),
        )?;
        counters(
            &mut e,
            "magpie_ingest_decoder_samples",
            "Samples of accepted pushed messages, per ingest source and decoder.",
            decoders().map(|(l, d)| (l, d.samples)),
        )?;
        gauges(
            &mut e,
            "magpie_ingest_last_accepted_timestamp_seconds",
            "When an ingest source last accepted a message.",
            all.iter()
                .filter_map(|s| s.last_accepted_ms.map(|ms| (source(s), seconds(ms)))),
        )?;
        let current = self.0.lock().current.clone();
        gauges(
            &mut e,
            "magpie_ingest_source_up",
            "Whether an ingest source is listening or connected; state names where it stands.",
            all.iter().filter(|s| current.contains(&s.name)).map(|s| {
                (
                    [("source", s.name.as_str()), ("state", s.link.as_str())],
                    i64::from(s.link.up()),
                )
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reason;
    use crate::status::{Endpoint, Link, Route};
    use prometheus_client::encoding::prometheus_text;

    fn about(listen: &str) -> About {
        About {
            endpoint: Endpoint::Http {
                listen: listen.into(),
                bearer_token: false,
            },
            decoders: vec![(Route::Pushgateway, "prom-text".into())],
            max_messages_per_second: 0,
        }
    }

    fn text(m: &IngestMetrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut o = String::new();
        prometheus_text::encode(&mut o, &r).unwrap();
        o
    }

    #[test]
    fn families_follow_the_snapshots_and_survive_a_reload() {
        let m = IngestMetrics::default();
        let lan = m.source("lan", about("127.0.0.1:1"));
        m.set_current(vec!["lan".into()]);
        // Nothing accepted yet: no message counters, so waiting for them means "taken".
        let t = text(&m);
        assert!(!t.contains("magpie_ingest_messages_total{"), "{t}");
        assert!(
            t.contains("magpie_ingest_source_up{source=\"lan\",state=\"starting\"} 0"),
            "{t}"
        );
        lan.set_link(Link::Listening);
        lan.accepted(Route::Pushgateway, 7, 1_500);
        lan.refused(Reason::TooLarge);
        let t = text(&m);
        for line in [
            "magpie_ingest_messages_total{source=\"lan\"} 1",
            "magpie_ingest_samples_total{source=\"lan\"} 7",
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"too_large\"} 1",
            "magpie_ingest_decoder_messages_total{source=\"lan\",route=\"pushgateway\",decoder=\"prom-text\"} 1",
            "magpie_ingest_decoder_samples_total{source=\"lan\",route=\"pushgateway\",decoder=\"prom-text\"} 7",
            "magpie_ingest_last_accepted_timestamp_seconds{source=\"lan\"} 1.5",
            "magpie_ingest_source_up{source=\"lan\",state=\"listening\"} 1",
        ] {
            assert!(t.contains(line), "{line} missing:\n{t}");
        }
        // A reload with the same source and a new one: counters go on, the page lists both.
        let again = m.source("lan", about("127.0.0.1:2"));
        assert!(Arc::ptr_eq(&lan, &again));
        m.source("plant", about("127.0.0.1:3"));
        m.set_current(vec!["plant".into(), "lan".into()]);
        let names: Vec<_> = m.snapshots().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["plant", "lan"]);
        assert_eq!(m.snapshots()[1].messages, 1);
        // A source gone from the configuration leaves the page and the state family, and
        // keeps its counters.
        m.set_current(vec!["plant".into()]);
        let t = text(&m);
        assert!(
            t.contains("magpie_ingest_messages_total{source=\"lan\"} 1"),
            "{t}"
        );
        assert!(!t.contains("magpie_ingest_source_up{source=\"lan\""), "{t}");
        assert_eq!(m.snapshots().len(), 1);
    }
}
