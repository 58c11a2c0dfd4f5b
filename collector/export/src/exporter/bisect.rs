//! A batch the receiver refuses is sent again in halves, to deliver what it does take.
//!
//! A receiver refuses a whole request for a few samples it cannot take: Prometheus answers
//! 400 to one sample out of bounds (older than its head accepts, e.g. a target exposing
//! hour-old timestamps) or out of order, and stores nothing of the request. Dropping the batch
//! would drop every other target's samples in it with them, batch after batch. So when the
//! batch went as one payload and was refused, its series are split in two halves (a series
//! stays whole, so no series is sent out of time order) and each half is sent; a refused half
//! is split again while its sibling was taken. When both halves of a pair are refused, both
//! are dropped: the batch is refused through and through (a backlog older than the receiver
//! takes, a wrong token), and further halving would only cost requests. One bad series among
//! `n` costs about `2 log2 n` requests; a batch refused as a whole, two more than before.

use super::{Exporter, Step};
use crate::ExportStats;
use magpie_transport::delivery::Pacer;
use magpie_wal::{Batch, Sample};
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// A refused payload, not yet booked as dropped.
#[derive(Debug)]
pub(crate) struct Held {
    pub samples: u32,
    pub reason: String,
}

impl Held {
    /// Counts the payload's samples as rejected, keeps the reason as the exporter's last
    /// error, and logs it.
    pub fn book(self, name: &str, stats: &ExportStats) {
        stats
            .rejected
            .fetch_add(u64::from(self.samples), Ordering::Relaxed);
        log::error!(
            "exporter `{name}`: {}; its {} samples are dropped",
            self.reason,
            self.samples
        );
        stats.set_error(Some(self.reason));
    }
}

/// The batch's series split in two halves, each with its samples.
pub(crate) fn split(batch: &Batch) -> (Batch, Batch) {
    let half = batch.series.len() / 2;
    let part = |range: std::ops::Range<usize>| Batch {
        series: batch.series[range].to_vec(),
        samples: Vec::new(),
        exemplars: Vec::new(),
        end: batch.end,
    };
    let (mut a, mut b) = (part(0..half), part(half..batch.series.len()));
    let cut = u32::try_from(half).unwrap_or(u32::MAX);
    for s in &batch.samples {
        if s.series < cut {
            a.samples.push(*s);
        } else {
            b.samples.push(Sample {
                series: s.series - cut,
                ..*s
            });
        }
    }
    for e in &batch.exemplars {
        if e.series < cut {
            a.exemplars.push(e.clone());
        } else {
            b.exemplars.push(magpie_wal::Exemplar {
                series: e.series - cut,
                ..e.clone()
            });
        }
    }
    (a, b)
}

impl Exporter {
    fn book(&self, held: Vec<Held>) {
        for h in held {
            h.book(&self.name, &self.stats);
        }
    }

    /// Delivers `batch`, in halves when the receiver refuses it (see the module
    /// documentation); every refusal is booked in the end.
    pub(super) async fn deliver_bisecting(
        &mut self,
        batch: &Batch,
        pacer: &mut Pacer,
        stop: &mut watch::Receiver<bool>,
    ) -> Step {
        let mut held = Vec::new();
        let Some(payloads) = self.send_batch(batch, pacer, stop, Some(&mut held)).await else {
            return Step::Stop;
        };
        if held.is_empty() {
            return Step::Continue;
        }
        if payloads != 1 || batch.series.len() < 2 {
            self.book(held);
            return Step::Continue;
        }
        log::warn!(
            "exporter `{}`: the receiver refused a batch of {} series ({}); sending it in halves to deliver what it takes",
            self.name,
            batch.series.len(),
            held[0].reason
        );
        let mut pending = vec![split(batch)];
        while let Some((a, b)) = pending.pop() {
            let mut ha = Vec::new();
            let Some(pa) = self.send_batch(&a, pacer, stop, Some(&mut ha)).await else {
                return Step::Stop;
            };
            let mut hb = Vec::new();
            let Some(pb) = self.send_batch(&b, pacer, stop, Some(&mut hb)).await else {
                return Step::Stop;
            };
            match (ha.is_empty(), hb.is_empty()) {
                (true, true) => {}
                (false, false) => {
                    self.book(ha);
                    self.book(hb);
                }
                (false, true) if pa == 1 && a.series.len() > 1 => pending.push(split(&a)),
                (true, false) if pb == 1 && b.series.len() > 1 => pending.push(split(&b)),
                (false, true) => self.book(ha),
                (true, false) => self.book(hb),
            }
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_keep_each_series_whole_with_its_samples_and_exemplars_in_order() {
        let labels =
            |n: &str| -> magpie_wal::Labels { magpie_wal::Labels::new(&[("__name__", n)]) };
        let batch = Batch {
            series: vec![labels("a"), labels("b"), labels("c")],
            samples: [(0, 1), (2, 1), (1, 1), (0, 2), (2, 2)]
                .iter()
                .map(|&(series, t_ms)| Sample {
                    series,
                    t_ms,
                    value: 0.0,
                })
                .collect(),
            exemplars: [2, 0]
                .iter()
                .map(|&series| magpie_wal::Exemplar {
                    series,
                    labels: magpie_wal::Labels::new(&[]),
                    t_ms: 1,
                    value: 0.5,
                })
                .collect(),
            end: magpie_wal::Position::default(),
        };
        let (a, b) = split(&batch);
        assert_eq!(a.series, [labels("a")]);
        assert_eq!(b.series, [labels("b"), labels("c")]);
        let got = |x: &Batch| -> Vec<(u32, i64)> {
            x.samples.iter().map(|s| (s.series, s.t_ms)).collect()
        };
        assert_eq!(got(&a), [(0, 1), (0, 2)]);
        assert_eq!(got(&b), [(1, 1), (0, 1), (1, 2)]);
        // Exemplars go with their series.
        let ex = |x: &Batch| -> Vec<u32> { x.exemplars.iter().map(|e| e.series).collect() };
        assert_eq!((ex(&a), ex(&b)), (vec![0], vec![1]));
    }
}
