//! `magpie_scrapes_*`, `magpie_samples_scraped`, `magpie_wal_append_failures` and
//! `magpie_target_*`: what the scrape pipeline did, per job and per target. The collector's
//! [`Observer`](crate::observe::Observer) hands each scrape to [`ScrapeMetrics::scraped`]
//! and registers the families once ([`ScrapeMetrics::register`]).

use crate::observe::TargetState;
use magpie_metrics::{gauges, seconds};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

/// The last scrape of each target, by (job, instance).
type Targets = Arc<Mutex<BTreeMap<(String, String), TargetState>>>;

/// The scrape pipeline's counters and the last scrape of every target.
#[derive(Debug, Default)]
pub struct ScrapeMetrics {
    scrapes: Family<JobLabel, Counter>,
    scrape_failures: Family<JobLabel, Counter>,
    samples_scraped: Family<JobLabel, Counter>,
    wal_append_failures: Counter,
    targets: Targets,
}

impl ScrapeMetrics {
    /// Adds every family to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        // Help texts without the final period, which the registry appends.
        registry.register(
            "magpie_scrapes",
            "Scrapes run, per job",
            self.scrapes.clone(),
        );
        registry.register(
            "magpie_scrape_failures",
            "Scrapes that failed, per job",
            self.scrape_failures.clone(),
        );
        registry.register(
            "magpie_samples_scraped",
            "Samples scraped, per job",
            self.samples_scraped.clone(),
        );
        registry.register(
            "magpie_wal_append_failures",
            "Scrapes whose samples could not be appended to the WAL",
            self.wal_append_failures.clone(),
        );
        registry.register_collector(Box::new(TargetFamilies(Arc::clone(&self.targets))));
    }

    /// A target was scraped; `appended` is false when the WAL refused the samples.
    pub fn scraped(&self, job: &str, instance: &str, state: TargetState, appended: bool) {
        let label = JobLabel { job: job.into() };
        self.scrapes.get_or_create(&label).inc();
        // Created at the first scrape, so a job that never failed shows 0 rather than nothing.
        self.scrape_failures
            .get_or_create(&label)
            .inc_by(u64::from(!state.up));
        self.samples_scraped
            .get_or_create(&label)
            .inc_by(state.samples as u64);
        if !appended {
            self.wal_append_failures.inc();
        }
        self.targets
            .lock()
            .insert((job.to_string(), instance.to_string()), state);
    }

    /// The last scrape of every target, by (job, instance).
    pub fn targets(&self) -> Vec<((String, String), TargetState)> {
        self.targets
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// `magpie_target_*`: the last scrape of each target.
#[derive(Debug)]
struct TargetFamilies(Targets);

impl Collector for TargetFamilies {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let targets = self.0.lock();
        let rows = || {
            targets
                .iter()
                .map(|((j, i), s)| ([("job", j.as_str()), ("instance", i.as_str())], s))
        };
        gauges(
            &mut e,
            "magpie_target_up",
            "Whether the last scrape of a target succeeded.",
            rows().map(|(l, s)| (l, i64::from(s.up))),
        )?;
        gauges(
            &mut e,
            "magpie_target_last_scrape_timestamp_seconds",
            "When a target was last scraped.",
            rows().map(|(l, s)| (l, seconds(s.last_scrape_ms))),
        )?;
        gauges(
            &mut e,
            "magpie_target_scrape_duration_seconds",
            "Duration of the last scrape of a target.",
            rows().map(|(l, s)| (l, s.duration.as_secs_f64())),
        )
    }
}
