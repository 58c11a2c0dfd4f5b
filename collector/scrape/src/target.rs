//! Prometheus' target-label rules: the `instance` of a target, a target's own label set
//! (discovery labels, `job`, `instance`), how they attach to scraped series, and where in
//! the interval a target is scraped.

use crate::relabel::Relabeler;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// A label set as `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// What a scrape job needs to run its targets.
#[derive(Debug, Clone)]
pub struct JobDef {
    /// The job name (`job` label).
    pub job: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Longest a scrape may take.
    pub timeout: Duration,
    /// Keep scraped labels that clash with target labels.
    pub honor_labels: bool,
    /// Keep the timestamps targets expose; when false, every sample gets the scrape's time
    /// (Prometheus' `honor_timestamps: false`).
    pub honor_timestamps: bool,
    /// Most samples a scrape may return; 0 = no limit.
    pub sample_limit: u32,
    /// Largest body a scrape may read; 0 = no limit.
    pub body_size_limit: u64,
    /// Limits on each final label set (after metric relabeling).
    pub label_limits: LabelLimits,
    /// Most targets the job may have; 0 = no limit. Over it, every target's scrape fails
    /// (`up` 0) until the count drops, as in Prometheus.
    pub target_limit: u32,
    /// File prefixes the plugin may read.
    pub file_prefixes: Vec<String>,
    /// `metric_relabel_configs`, compiled.
    pub relabel: Relabeler,
}

/// Prometheus' `label_limit`, `label_name_length_limit` and `label_value_length_limit`: a
/// scrape with a series over any of them fails whole. 0 = no limit. Lengths are in bytes and
/// `__name__` counts, as in Prometheus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelLimits {
    /// Most labels a series may have.
    pub count: u32,
    /// Longest label name.
    pub name_len: u32,
    /// Longest label value.
    pub value_len: u32,
}

impl LabelLimits {
    /// Whether `labels` (a final label set) is within the limits.
    ///
    /// # Errors
    /// Which limit the series exceeds, naming the series.
    pub fn check(&self, labels: &[(String, String)]) -> Result<(), String> {
        let over = |n: usize, limit: u32| limit > 0 && n > limit as usize;
        let name = || {
            labels
                .iter()
                .find(|(n, _)| n == "__name__")
                .map_or("", |(_, v)| v.as_str())
                .to_string()
        };
        if over(labels.len(), self.count) {
            return Err(format!(
                "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                name(),
                labels.len(),
                self.count
            ));
        }
        for (n, v) in labels {
            if over(n.len(), self.name_len) {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {}, label name: {n}, length: {}, limit: {})",
                    name(),
                    n.len(),
                    self.name_len
                ));
            }
            if over(v.len(), self.value_len) {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {}, label name: {n}, value length: {}, limit: {})",
                    name(),
                    v.len(),
                    self.value_len
                ));
            }
        }
        Ok(())
    }
}

/// What the series cache needs to turn scraped label sets into series.
pub(crate) struct Target {
    pub(crate) def: Arc<JobDef>,
    pub(crate) labels: Labels,
}

/// This host's name, as the kernel knows it; `localhost` when unknown.
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The `instance` label: the target's `host:port`, or this host's name for targetless jobs.
pub fn instance_of(target: &str) -> String {
    if target.is_empty() {
        return hostname();
    }
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_string()
}

/// Where in the interval a target is scraped: a stable hash spreads targets so a gateway
/// with many of them does not scrape all at once.
pub fn offset(job: &str, target: &str, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (job, target).hash(&mut h);
    let ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(h.finish() % ms)
}

/// A target's own labels as Prometheus builds them: its discovery group's labels, then `job`
/// and `instance` unless the group set them.
pub fn target_set(job: &str, instance: &str, group: &[(String, String)]) -> Labels {
    let mut t: Labels = group
        .iter()
        .filter(|(n, _)| !n.starts_with("__"))
        .cloned()
        .collect();
    for (name, value) in [("job", job), ("instance", instance)] {
        if !t.iter().any(|(n, _)| n == name) {
            t.push((name.into(), value.into()));
        }
    }
    t.sort_unstable();
    t
}

/// Attaches target labels as Prometheus does: with `honor_labels`, scraped labels win;
/// otherwise clashing scraped labels are kept as `exported_<name>`.
pub fn target_labels(labels: &mut Labels, target: &[(String, String)], honor: bool) {
    for (name, value) in target {
        if let Some(i) = labels.iter().position(|(n, _)| n == name) {
            if honor {
                continue;
            }
            labels[i].0 = format!("exported_{name}");
        }
        labels.push((name.clone(), value.clone()));
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    labels.dedup_by(|a, b| a.0 == b.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn label_limits_count_name_and_every_label() {
        let l = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
                .collect()
        };
        let series = l(&[("__name__", "m"), ("job", "j"), ("instance", "h:1")]);
        let none = LabelLimits::default();
        assert_eq!(none.check(&series), Ok(()));
        let count = |n| LabelLimits { count: n, ..none };
        assert_eq!(count(3).check(&series), Ok(()));
        assert_eq!(
            count(2).check(&series),
            Err("label_limit exceeded (metric: m, number of labels: 3, limit: 2)".into())
        );
        let names = LabelLimits {
            name_len: 4,
            ..none
        };
        assert!(
            names
                .check(&series)
                .unwrap_err()
                .contains("label name: __name__, length: 8")
        );
        let values = LabelLimits {
            value_len: 2,
            ..none
        };
        assert!(
            values
                .check(&series)
                .unwrap_err()
                .contains("label name: instance, value length: 3")
        );
        assert_eq!(
            LabelLimits {
                value_len: 3,
                name_len: 8,
                count: 3
            }
            .check(&series),
            Ok(())
        );
    }

    #[test]
    fn instance_is_the_authority() {
        assert_eq!(
            instance_of("http://127.0.0.1:9100/metrics"),
            "127.0.0.1:9100"
        );
        assert_eq!(instance_of("https://[::1]:443/m?x=1"), "[::1]:443");
        assert!(!instance_of("").is_empty());
    }

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let i = Duration::from_secs(15);
        let a = offset("node", "http://a/metrics", i);
        assert_eq!(a, offset("node", "http://a/metrics", i));
        assert!(a < i);
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|n| offset("node", &format!("http://h{n}/metrics"), i))
            .collect();
        assert!(spread.len() > 40, "targets should spread over the interval");
    }

    #[test]
    fn discovery_labels_come_first_then_job_and_instance() {
        let group = vec![
            ("rack".into(), "r1".into()),
            ("job".into(), "from-sd".into()),
            ("__meta_x".into(), "y".into()),
        ];
        let t = target_set("node", "h:1", &group);
        let names: Vec<_> = t.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(names, ["instance=h:1", "job=from-sd", "rack=r1"]);
    }

    #[test]
    fn clashing_labels_are_exported_unless_honored() {
        let t = target_set("node", "h:1", &[]);
        let mut l = vec![
            ("__name__".into(), "m".into()),
            ("job".into(), "scraped".into()),
        ];
        target_labels(&mut l, &t, false);
        let names: Vec<_> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            names,
            [
                "__name__=m",
                "exported_job=scraped",
                "instance=h:1",
                "job=node"
            ]
        );
        let mut l = vec![
            ("__name__".into(), "m".into()),
            ("job".into(), "scraped".into()),
        ];
        target_labels(&mut l, &t, true);
        let names: Vec<_> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(names, ["__name__=m", "instance=h:1", "job=scraped"]);
    }
}
