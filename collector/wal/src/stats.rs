//! Figures about the ring and its consumers, computed from segment summaries without reading
//! any segment.

use crate::consumer::Consumer;
use crate::segment::Summary;
use crate::wal::Wal;
use crate::writer::OpenSegment;
use crate::{ConsumerId, ConsumerStats, Stats};

impl Wal {
    /// Samples consumer `id` (both halves, while split) has not acknowledged; cheap.
    #[must_use]
    pub fn backlog(&self, id: ConsumerId) -> u64 {
        let Some(c) = self.consumers.get(id.0) else {
            return 0;
        };
        let segs = self.segment_summaries();
        unacked(&segs, c).0
            + c.newest
                .and_then(|n| self.consumers.get(n))
                .map_or(0, |sub| unacked(&segs, sub).0)
    }

    /// Counters and per-consumer figures.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let segs = self.segment_summaries();
        let available = self.storage.available(&self.dir).ok();
        let own = |c: &Consumer| unacked(&segs, c);
        let subs: Vec<usize> = self.consumers.iter().filter_map(|c| c.newest).collect();
        let consumers = self
            .consumers
            .iter()
            .enumerate()
            .filter(|(i, c)| !c.retired && !subs.contains(i))
            .map(|(_, c)| {
                let (mut backlog, mut oldest) = own(c);
                let mut dropped = c.dropped;
                // A split consumer reports for both halves: it is one exporter's backlog.
                if let Some(sub) = c.newest.and_then(|n| self.consumers.get(n)) {
                    let (b, o) = own(sub);
                    backlog += b;
                    oldest = oldest.or(o);
                    dropped += sub.dropped;
                }
                ConsumerStats {
                    name: c.name.clone(),
                    acked: c.acked,
                    dropped_samples: dropped,
                    backlog_samples: backlog,
                    oldest_unacked_ms: oldest,
                }
            })
            .collect();
        // Sealed segments are cut to their data; the series log holds only data.
        let closed = self.sealed_bytes() + self.log_bytes();
        Stats {
            bytes_on_disk: closed + self.open.as_ref().map_or(0, |_| self.opts.segment_bytes),
            data_bytes: closed + self.open.as_ref().map_or(0, |o| o.frames.end()),
            series: self.series.len() as u64,
            series_bytes: self.series.heap_bytes() + self.batch_index.heap_bytes() as u64,
            series_log_bytes: self.log_bytes(),
            max_bytes: self.opts.max_bytes,
            segments: self.sealed.len() + usize::from(self.open.is_some()),
            oldest_sample_ms: segs
                .iter()
                .filter(|(_, s)| s.samples > 0)
                .map(|(_, s)| s.min_t)
                .min(),
            newest_sample_ms: segs
                .iter()
                .filter(|(_, s)| s.samples > 0)
                .map(|(_, s)| s.max_t)
                .max(),
            samples_appended: self.counters.samples_appended,
            samples_in_ring: segs.iter().map(|(_, s)| s.samples).sum(),
            samples_rejected: self.counters.samples_rejected,
            segments_dropped: self.counters.segments_dropped,
            // Short of room until a new segment fits on the file system again (or one was
            // started without dropping anything).
            disk_full: self.counters.disk_short
                && available.is_none_or(|a| a < self.opts.segment_bytes),
            label_heavy_segments: self.counters.label_heavy_segments,
            damaged_regions: self.counters.damaged_regions,
            samples_lost_to_damage: self.counters.samples_lost,
            exemplars_appended: self.counters.exemplars_appended,
            exemplars_dropped: self.counters.exemplars_dropped,
            unsynced: self.open.as_ref().is_some_and(OpenSegment::dirty),
            fs_available_bytes: available,
            consumers,
        }
    }

    /// `(seq, summary)` of every segment, oldest first; the open one with its running figures.
    pub(crate) fn segment_summaries(&self) -> Vec<(u64, Summary)> {
        let mut v: Vec<(u64, Summary)> = self
            .sealed
            .iter()
            .filter_map(|s| s.summary.map(|sum| (s.seq, sum)))
            .collect();
        if let Some(o) = &self.open {
            v.push((o.seq, o.summary));
        }
        v
    }
}

/// What a consumer has not acknowledged within its limit: (samples, oldest timestamp).
fn unacked(segs: &[(u64, Summary)], c: &Consumer) -> (u64, Option<i64>) {
    let mut backlog = 0;
    let mut oldest = None;
    for &(seq, s) in segs {
        if seq < c.acked.segment || c.limit.is_some_and(|l| seq >= l) {
            continue;
        }
        let before = if seq == c.acked.segment {
            c.acked.seg_samples
        } else {
            0
        };
        let left = s.samples.saturating_sub(before);
        if left > 0 && oldest.is_none() {
            oldest = Some(s.min_t);
        }
        backlog += left;
    }
    (backlog, oldest)
}
