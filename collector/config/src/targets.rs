//! `[[scrape.static_configs]]`: fixed targets given as `host:port` with labels, as in
//! Prometheus, beside the plain URLs of `targets`.

use magpie_scrape::discovery::TargetGroup;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One group of fixed targets.
///
/// ```toml
/// [[scrape.static_configs]]
/// targets = ["10.0.0.7:9100", "10.0.0.8:9100"]
/// labels = { rack = "r1" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` of each target; its URL is the job's `scheme`, the address and the job's
    /// `metrics_path` (or the group's `__scheme__` and `__metrics_path__` labels).
    pub targets: Vec<String>,
    /// Labels added to the targets' samples (names starting with `__` are not).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl StaticConfig {
    /// As a target group, `source` naming it in logs.
    #[must_use]
    pub fn group(&self, source: String) -> TargetGroup {
        TargetGroup {
            targets: self.targets.clone(),
            labels: self.labels.clone(),
            source,
        }
    }
}
