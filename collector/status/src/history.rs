//! The last hour at a glance: a fixed number of points per series, taken every `step` (120
//! points at 30 s by default), for the status page's sparklines. Memory is bounded whatever
//! the configuration: at most [`MAX_TARGETS`] targets and [`MAX_EXPORTERS`] exporters have a
//! history (the first ones seen, in job/instance order); the page says how many are left out.

use crate::observed::{Delivery, History as HistoryView, Series, TargetState};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Points kept per series.
pub const POINTS: usize = 120;
/// Targets with a history at most.
pub const MAX_TARGETS: usize = 64;
/// Exporters with a history at most.
pub const MAX_EXPORTERS: usize = 16;

/// A fixed-size ring of values: pushing onto a full ring forgets the oldest.
#[derive(Debug, Clone)]
pub struct Ring {
    values: VecDeque<f64>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            values: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn push(&mut self, v: f64) {
        if self.capacity == 0 {
            return;
        }
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(v);
    }

    /// The values, oldest first.
    pub fn series(&self) -> Series {
        Series {
            points: self.values.iter().copied().collect(),
            capacity: self.capacity,
        }
    }
}

#[derive(Debug)]
struct Pair(Ring, Ring);

impl Pair {
    fn new(capacity: usize) -> Self {
        Self(Ring::new(capacity), Ring::new(capacity))
    }
}

/// The rings of every tracked series.
#[derive(Debug)]
pub struct Recorder {
    step: Duration,
    capacity: usize,
    wal_fill: Ring,
    exporters: BTreeMap<String, Pair>,
    targets: BTreeMap<(String, String), Pair>,
    untracked: usize,
}

impl Recorder {
    pub fn new(step: Duration, capacity: usize) -> Self {
        Self {
            step,
            capacity,
            wal_fill: Ring::new(capacity),
            exporters: BTreeMap::new(),
            targets: BTreeMap::new(),
            untracked: 0,
        }
    }

    pub fn step(&self) -> Duration {
        self.step
    }

    /// Takes one point of every series. Targets and exporters that are gone lose their
    /// history; new ones get one while there is room.
    #[allow(clippy::cast_precision_loss)]
    pub fn record<'a>(
        &mut self,
        now_ms: i64,
        delivery: Option<&Delivery>,
        targets: impl Iterator<Item = (&'a (String, String), &'a TargetState)>,
    ) {
        let cap = self.capacity;
        self.wal_fill
            .push(delivery.map_or(f64::NAN, Delivery::wal_fill_percent));
        let consumers = delivery.map_or(&[][..], |d| &d.wal.consumers[..]);
        self.exporters
            .retain(|name, _| consumers.iter().any(|c| &c.name == name));
        for c in consumers {
            if !self.exporters.contains_key(&c.name) && self.exporters.len() >= MAX_EXPORTERS {
                continue;
            }
            let p = self
                .exporters
                .entry(c.name.clone())
                .or_insert_with(|| Pair::new(cap));
            p.0.push(c.backlog_samples as f64);
            p.1.push(
                c.oldest_unacked_ms
                    .map_or(0.0, |ms| (now_ms.saturating_sub(ms)).max(0) as f64 / 1000.0),
            );
        }
        let mut seen = BTreeMap::new();
        for (key, s) in targets {
            seen.insert(key.clone(), s);
        }
        self.targets.retain(|k, _| seen.contains_key(k));
        self.untracked = 0;
        for (key, s) in seen {
            if !self.targets.contains_key(&key) && self.targets.len() >= MAX_TARGETS {
                self.untracked += 1;
                continue;
            }
            let p = self.targets.entry(key).or_insert_with(|| Pair::new(cap));
            p.0.push(s.samples as f64);
            p.1.push(s.duration.as_secs_f64());
        }
    }

    pub fn view(&self) -> HistoryView {
        HistoryView {
            step: self.step,
            points: self.capacity,
            wal_fill_percent: self.wal_fill.series(),
            exporters: self
                .exporters
                .iter()
                .map(|(n, p)| (n.clone(), p.0.series(), p.1.series()))
                .collect(),
            targets: self
                .targets
                .iter()
                .map(|(k, p)| (k.clone(), p.0.series(), p.1.series()))
                .collect(),
            targets_untracked: self.untracked,
            max_targets: MAX_TARGETS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_forgets_the_oldest_and_keeps_its_size() {
        let mut r = Ring::new(3);
        assert!(r.series().points.is_empty());
        for v in 1..=5 {
            r.push(f64::from(v));
        }
        assert_eq!(r.series().points, vec![3.0, 4.0, 5.0]);
        assert_eq!(r.series().capacity, 3);
        assert_eq!(r.values.len(), 3);
        let mut z = Ring::new(0);
        z.push(1.0);
        assert!(z.series().points.is_empty());
    }

    fn target(samples: usize, ms: u64) -> TargetState {
        TargetState {
            up: true,
            samples,
            duration: Duration::from_millis(ms),
            ..TargetState::default()
        }
    }

    #[test]
    fn targets_beyond_the_cap_have_no_history_and_are_counted() {
        let mut rec = Recorder::new(Duration::from_secs(30), 4);
        let targets: BTreeMap<(String, String), TargetState> = (0..MAX_TARGETS + 5)
            .map(|i| (("job".to_string(), format!("t{i:03}")), target(i, 10)))
            .collect();
        rec.record(0, None, targets.iter());
        rec.record(0, None, targets.iter());
        let v = rec.view();
        assert_eq!(v.targets.len(), MAX_TARGETS);
        assert_eq!(v.targets_untracked, 5);
        assert_eq!(v.targets[1].1.points, vec![1.0, 1.0]);
        assert_eq!(v.targets[1].2.points, vec![0.01, 0.01]);
        // No WAL yet: a gap, not a zero.
        assert!(v.wal_fill_percent.points.iter().all(|p| p.is_nan()));

        // A target that is gone loses its history and makes room for one without.
        let mut fewer = targets.clone();
        fewer.remove(&("job".to_string(), "t000".to_string()));
        rec.record(0, None, fewer.iter());
        let v = rec.view();
        assert_eq!(v.targets.len(), MAX_TARGETS);
        assert_eq!(v.targets_untracked, 4);
        assert_eq!(v.targets[0].0.1, "t001");
        assert_eq!(v.targets[0].1.points, vec![1.0, 1.0, 1.0]);
        assert_eq!(v.targets.last().unwrap().1.points, vec![64.0]);
    }
}
