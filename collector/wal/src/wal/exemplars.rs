//! Appending exemplars: records of kind 4 (see `exemplar.rs` and FORMAT.md) in the open
//! segment, naming the ring-wide ids the scrape's samples were just appended under.

use super::Wal;
use crate::OwnedExemplar;
use crate::error::Error;

/// Exemplars per record: a record stays far below a page of the smallest size.
const PER_RECORD: usize = 16;

impl Wal {
    /// Appends exemplars of series whose samples were appended before (an exemplar of a
    /// series the ring does not hold is dropped and counted). Returns how many were dropped.
    /// They take their bytes in the ring like samples and go with the segment they are in.
    ///
    /// # Errors
    /// As [`Wal::append`]: I/O errors, a full disk with nothing left to drop.
    pub fn append_exemplars(&mut self, exemplars: &[OwnedExemplar]) -> Result<u64, Error> {
        let mut dropped = 0u64;
        let mut record = Vec::new();
        for chunk in exemplars.chunks(PER_RECORD) {
            let bound: usize = chunk
                .iter()
                .map(|e| {
                    32 + e
                        .labels
                        .iter()
                        .map(|(n, v)| n.len() + v.len() + 20)
                        .sum::<usize>()
                })
                .sum();
            if self.open.is_none()
                || self.needs_roll
                || self.open.as_ref().is_some_and(|o| !o.fits_record(bound))
            {
                self.roll()?;
            }
            let Some(seq) = self.open.as_ref().map(|o| o.seq) else {
                return Err(super::no_open(&self.dir));
            };
            let mut named = Vec::with_capacity(chunk.len());
            for e in chunk {
                match self.series.lookup_shared(e.key.hash, &e.key.labels) {
                    Some(id) => {
                        // The series log keeps the series while this segment lives.
                        self.series.touch(id, seq);
                        named.push((id, e));
                    }
                    None => dropped += 1,
                }
            }
            if named.is_empty() {
                continue;
            }
            record.clear();
            crate::exemplar::encode(&mut record, &named);
            let max_id = named.iter().map(|(id, _)| *id).max().unwrap_or(0);
            if let Some(o) = self.open.as_mut() {
                o.push_record(&record, max_id);
            }
            self.counters.exemplars_appended += named.len() as u64;
            self.write_out()?;
        }
        self.counters.exemplars_dropped += dropped;
        if self.opts.fsync_interval.is_zero() {
            self.sync()?;
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Options, SampleRef, Wal};

    #[test]
    fn a_record_of_a_later_kind_is_skipped_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), Options::default()).unwrap();
        let labels = [("__name__", "up")];
        let one = |t_ms| SampleRef {
            labels: &labels,
            t_ms,
            value: 1.0,
        };
        wal.append([one(1)]).unwrap();
        wal.flush().unwrap();
        // A kind this version does not know, between two samples records.
        wal.open.as_mut().unwrap().push_record(&[9, 1, 2, 3], 0);
        wal.append([one(2)]).unwrap();
        wal.close().unwrap();
        let mut wal = Wal::open(
            dir.path(),
            Options {
                recovery: crate::RecoveryMode::Strict,
                ..Options::default()
            },
        )
        .unwrap();
        let c = wal.consumer("c").unwrap();
        let b = wal.read(c, 10).unwrap().unwrap();
        assert_eq!(b.samples.len(), 2);
        assert!(b.exemplars.is_empty());
        assert_eq!(wal.stats().damaged_regions, 0);
    }
}
