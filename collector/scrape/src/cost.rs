//! What series cost in a target's scrape cache, measured the way `magpie_series_bytes` counts
//! them: for the per-series cost table in `docs/benchmarks.md`
//! (`cargo run -p magpie-scrape --example series_cost`).

use crate::series_cache::SeriesCache;
use crate::target::{JobDef, LabelLimits, Target, target_set};
use magpie_sdk::abi::Label;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// A cache after one scrape of a set of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheCost {
    /// Series it holds.
    pub series: usize,
    /// Its heap bytes, as counted in `magpie_series_bytes`.
    pub bytes: usize,
}

/// Scrapes `series` (metric name, labels as exposed) once into a fresh cache of target
/// `instance` in job `job`, with no relabeling, and reports its size.
#[must_use]
pub fn cache_cost(
    job: &str,
    instance: &str,
    series: &[(String, Vec<(String, String)>)],
) -> CacheCost {
    let target = Target {
        def: Arc::new(JobDef {
            job: job.into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            body_size_limit: 0,
            label_limits: LabelLimits::default(),
            target_limit: 0,
            file_prefixes: Vec::new(),
            relabel: crate::relabel::Relabeler::default(),
        }),
        labels: target_set(job, instance, &[]),
    };
    let mut cache = SeriesCache::new();
    cache.scrape = 1;
    let mut labels = Vec::new();
    for (name, set) in series {
        labels.clear();
        labels.extend(set.iter().map(|(n, v)| Label {
            name: Cow::Borrowed(n.as_str()),
            value: Cow::Borrowed(v.as_str()),
        }));
        if let Ok(Some(slot)) = cache.intern(name, &labels, &target) {
            cache.written(slot);
        }
    }
    cache.sweep(true);
    cache.release();
    CacheCost {
        series: cache.live(),
        bytes: cache.heap_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_held_and_costs_at_least_its_key() {
        let series: Vec<_> = (0..1000)
            .map(|i| {
                (
                    "node_network_receive_bytes_total".to_string(),
                    vec![("device".to_string(), format!("eth{i}"))],
                )
            })
            .collect();
        let c = cache_cost("node", "10.0.0.7:9100", &series);
        assert_eq!(c.series, 1000);
        // The key alone: name, `device`, `instance`, `job` and their values.
        assert!(c.bytes > 1000 * 70, "{c:?}");
    }
}
