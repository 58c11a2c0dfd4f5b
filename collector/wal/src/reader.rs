//! Consumers: named read cursors with at-least-once delivery.
//!
//! Each consumer has two positions: `read`, in memory, advanced by every [`Wal::read`], and
//! `acked`, persisted by [`Wal::ack`]. After a restart reading resumes at `acked`, so anything
//! read but not acknowledged is delivered again. A consumer keeps one [`SegmentDecoder`] for
//! the segment it is in; resuming in the middle of a segment re-reads that segment from its
//! start, because value history is segment-local. Format-2 samples name ring-wide series ids,
//! mapped to labels through the WAL's series table; format-1 segments define their own.

use crate::batch_index::BatchIndex;
use crate::consumer::{Consumer, ReadState};
use crate::cursor::{self, Position};
use crate::error::Error;
use crate::options::RecoveryMode;
use crate::segment::{SegmentDecoder, SegmentReader, Step};
use crate::wal::Wal;
use crate::{Batch, ConsumerId, Sample};

/// Suffixes of the files a split consumer keeps next to its cursor.
pub(crate) const NEWEST: &str = ".newest";
pub(crate) const SPLIT: &str = ".split";

enum Source {
    Sealed {
        limit: u64,
        page_bytes: u32,
        version: u16,
    },
    Open {
        limit: u64,
        page_bytes: u32,
    },
    Missing,
}

impl Wal {
    /// Registers a consumer by name, loading its persisted cursor. A new consumer starts at the
    /// oldest data in the ring. Calling it again with the same name returns the same id.
    ///
    /// # Errors
    /// [`Error::InvalidConsumer`] for a name unusable as a file name; I/O errors.
    pub fn consumer(&mut self, name: &str) -> Result<ConsumerId, Error> {
        cursor::check_name(name)?;
        if name.ends_with(NEWEST) || name.ends_with(SPLIT) {
            return Err(Error::InvalidConsumer {
                name: name.to_owned(),
                reason: "must not end in `.newest` or `.split` (reserved for newest-first delivery)",
            });
        }
        if let Some(i) = self.consumers.iter().position(|c| c.name == name) {
            return Ok(ConsumerId(i));
        }
        let acked =
            cursor::load(self.storage.as_ref(), &self.cursor_dir, name)?.unwrap_or_default();
        let id = self.register(name, acked);
        // A split persisted before a restart resumes where it was.
        let storage = std::sync::Arc::clone(&self.storage);
        let split_name = format!("{name}{SPLIT}");
        let newest_name = format!("{name}{NEWEST}");
        if let Some(boundary) = cursor::load(storage.as_ref(), &self.cursor_dir, &split_name)? {
            let newest =
                cursor::load(storage.as_ref(), &self.cursor_dir, &newest_name)?.unwrap_or(boundary);
            let n = self.register(&newest_name, newest);
            let c = &mut self.consumers[id.0];
            c.limit = Some(boundary.segment);
            c.newest = Some(n.0);
        } else {
            // A sub-consumer left by a split that never took effect: its data is the main
            // consumer's again.
            let _ = storage.remove(&self.cursor_dir.join(cursor::file_name(&newest_name)));
            let _ = storage.remove(&self.cursor_dir.join(crate::reads::file_name(&newest_name)));
        }
        Ok(id)
    }

    /// Adds a consumer at `acked`, or brings back a retired one of that name.
    pub(crate) fn register(&mut self, name: &str, acked: Position) -> ConsumerId {
        let ends = crate::reads::Ends::load(
            self.storage.as_ref(),
            &self.cursor_dir,
            name,
            acked,
            &self.segment_summaries(),
        );
        let fresh = Consumer {
            name: name.to_owned(),
            acked,
            persisted: acked,
            unsynced_since: None,
            read: acked,
            dropped: 0,
            in_flight_lost: 0,
            lost_upto: Position::default(),
            cur: None,
            limit: None,
            newest: None,
            retired: false,
            ends,
        };
        if let Some(i) = self.consumers.iter().position(|c| c.name == name) {
            let dropped = self.consumers[i].dropped;
            self.consumers[i] = Consumer { dropped, ..fresh };
            return ConsumerId(i);
        }
        self.consumers.push(fresh);
        ConsumerId(self.consumers.len() - 1)
    }

    pub(crate) fn consumer_mut(&mut self, id: ConsumerId) -> Result<&mut Consumer, Error> {
        self.consumers
            .get_mut(id.0)
            .ok_or(Error::UnknownConsumer(id.0))
    }

    /// Persists `pos` (from a [`Batch`]) as the consumer's acknowledged position: after a
    /// restart, reading resumes there. Acknowledging a position at or behind the current one is
    /// a no-op.
    ///
    /// # Errors
    /// [`Error::InvalidPosition`] for a position beyond what was read; I/O errors.
    pub fn ack(&mut self, id: ConsumerId, pos: Position) -> Result<(), Error> {
        if !self.ack_deferred(id, pos)? {
            return Ok(());
        }
        let storage = std::sync::Arc::clone(&self.storage);
        let dir = self.cursor_dir.clone();
        let c = self.consumer_mut(id)?;
        cursor::update(storage.as_ref(), &dir, &c.name, &pos, true)?;
        c.persisted = pos;
        c.unsynced_since = None;
        c.ends.persisted(storage.as_ref(), pos);
        Ok(())
    }

    /// Takes `pos` as the consumer's acknowledged position in memory only (reads and the
    /// ring's accounting go on from it at once); [`Wal::persist_cursors`] writes it. A crash
    /// before that resumes from the position last written, so what was acknowledged since is
    /// read again. Returns whether the position moved.
    ///
    /// # Errors
    /// [`Error::InvalidPosition`] for a position beyond what was read;
    /// [`Error::UnknownConsumer`].
    pub fn ack_deferred(&mut self, id: ConsumerId, pos: Position) -> Result<bool, Error> {
        let c = self.consumer_mut(id)?;
        if pos >= c.lost_upto {
            c.in_flight_lost = 0;
        }
        if pos <= c.acked {
            return Ok(false);
        }
        if pos > c.read {
            return Err(Error::InvalidPosition {
                consumer: c.name.clone(),
                position: pos,
                reason: "beyond what was read",
            });
        }
        c.acked = pos;
        Ok(true)
    }

    /// Writes the cursor of every consumer whose acknowledged position moved since it was last
    /// written, in place and unsynced: the write survives a crash of the process at once, and
    /// a power cut takes back at most [`cursor::SYNC_EVERY`] of acknowledgements, since a file
    /// holding an unsynced write that long is synced here (moved or not). Returns how many were
    /// written or synced. A failed write is retried at the next call; [`Wal::close`] syncs
    /// what is left.
    ///
    /// # Errors
    /// The first I/O error (the cursors after it are tried at the next call).
    pub fn persist_cursors(&mut self) -> Result<usize, Error> {
        self.persist_cursors_at(std::time::Instant::now())
    }

    /// [`Wal::persist_cursors`] as if called at `now` (for tests of the sync interval).
    ///
    /// # Errors
    /// As [`Wal::persist_cursors`].
    #[doc(hidden)]
    pub fn persist_cursors_at(&mut self, now: std::time::Instant) -> Result<usize, Error> {
        let storage = std::sync::Arc::clone(&self.storage);
        let mut written = 0;
        for c in &mut self.consumers {
            let Some(w) = c.cursor_work(now) else {
                continue;
            };
            w.run(storage.as_ref(), &self.cursor_dir)?;
            c.cursor_written(storage.as_ref(), &w, now);
            written += 1;
        }
        Ok(written)
    }

    /// Syncs every cursor file that holds an unsynced write.
    pub(crate) fn sync_cursors(&mut self) -> Result<(), Error> {
        let storage = std::sync::Arc::clone(&self.storage);
        for c in &mut self.consumers {
            if c.retired || c.unsynced_since.is_none() {
                continue;
            }
            cursor::sync(storage.as_ref(), &self.cursor_dir, &c.name)?;
            c.unsynced_since = None;
        }
        Ok(())
    }

    /// Moves the consumer's read position back to its last acknowledgement, so the next
    /// [`Wal::read`] delivers the unacknowledged data again.
    ///
    /// # Errors
    /// [`Error::UnknownConsumer`].
    pub fn rewind(&mut self, id: ConsumerId) -> Result<(), Error> {
        let c = self.consumer_mut(id)?;
        c.dropped += std::mem::take(&mut c.in_flight_lost);
        c.read = c.acked;
        c.cur = None;
        Ok(())
    }

    /// The consumer's last acknowledged position.
    ///
    /// # Errors
    /// [`Error::UnknownConsumer`].
    pub fn acked(&self, id: ConsumerId) -> Result<Position, Error> {
        self.consumers
            .get(id.0)
            .map(|c| c.acked)
            .ok_or(Error::UnknownConsumer(id.0))
    }

    fn source(&self, seq: u64) -> Source {
        if let Some(o) = self.open.as_ref().filter(|o| o.seq == seq) {
            return Source::Open {
                limit: o.frames.flushed(),
                page_bytes: self.opts.page_bytes,
            };
        }
        match self.sealed.iter().find(|s| s.seq == seq) {
            Some(s) => match s.summary {
                Some(sum) => Source::Sealed {
                    limit: sum.data_len,
                    page_bytes: s.page_bytes,
                    version: s.version,
                },
                None => Source::Missing,
            },
            None => Source::Missing,
        }
    }

    /// The first segment with sequence at least `seq`, if any.
    pub(crate) fn first_segment_from(&self, seq: u64) -> Option<u64> {
        self.sealed
            .iter()
            .map(|s| s.seq)
            .chain(self.open.as_ref().map(|o| o.seq))
            .find(|&s| s >= seq)
    }

    /// Reads up to `max_samples` samples after the consumer's read position, oldest first,
    /// with the labels of their series. `Ok(None)` when there is nothing new. Pending appends
    /// are flushed first, so everything appended is visible (if that write fails, for example
    /// on a full disk, reading goes on with what is written).
    ///
    /// # Errors
    /// [`Error::Corrupt`] in [`RecoveryMode::Strict`] when damage is found; I/O errors.
    pub fn read(&mut self, id: ConsumerId, max_samples: usize) -> Result<Option<Batch>, Error> {
        if let Err(e) = self.flush() {
            // Reading what is on disk still works; the unwritten data is retried later.
            log::warn!("WAL flush before read failed; reading written data only. {e}");
        }
        let mut c = self
            .consumers
            .get_mut(id.0)
            .ok_or(Error::UnknownConsumer(id.0))?
            .cur
            .take();
        let cap = {
            let c = &self.consumers[id.0];
            c.ends.cap(c.read)
        };
        let mut index = std::mem::take(&mut self.batch_index);
        let result = self.read_into(id, &mut c, &mut index, max_samples, cap);
        self.batch_index = index;
        self.consumers[id.0].cur = c;
        if let Ok(Some(b)) = &result {
            let storage = std::sync::Arc::clone(&self.storage);
            self.consumers[id.0].ends.read_to(storage.as_ref(), b.end);
        }
        result
    }

    fn read_into(
        &mut self,
        id: ConsumerId,
        cur: &mut Option<ReadState>,
        index: &mut BatchIndex,
        max: usize,
        cap: Option<Position>,
    ) -> Result<Option<Batch>, Error> {
        let mut batch = Batch {
            series: Vec::new(),
            samples: Vec::new(),
            exemplars: Vec::new(),
            end: self.consumers[id.0].read,
        };
        index.clear();
        let mut batch_seq = None;
        while batch.samples.len() < max {
            let read = self.consumers[id.0].read;
            // An earlier read ended here: this one does too.
            if cap.is_some_and(|c| read >= c) {
                break;
            }
            // Find the segment to read from.
            let Some(seq) = self.first_segment_from(read.segment) else {
                break;
            };
            if let Some(l) = self.consumers[id.0].limit
                && seq >= l
            {
                // Split: the rest belongs to the newest-first sub-consumer.
                let c = &mut self.consumers[id.0];
                c.read = c.read.max(Position::segment_start(l));
                *cur = None;
                break;
            }
            if seq != read.segment {
                self.consumers[id.0].read = Position::segment_start(seq);
                *cur = None;
                continue;
            }
            let (limit, page_bytes, version, is_open) = match self.source(seq) {
                Source::Sealed {
                    limit,
                    page_bytes,
                    version,
                } => (limit, page_bytes, version, false),
                Source::Open { limit, page_bytes } => {
                    (limit, page_bytes, crate::segment::VERSION, true)
                }
                Source::Missing => {
                    self.consumers[id.0].read = Position::segment_start(seq + 1);
                    *cur = None;
                    continue;
                }
            };
            if cur.as_ref().is_none_or(|s| s.seq != seq) {
                let path = self.dir.join(crate::segment::segment_name(seq));
                let file = self
                    .storage
                    .open(&path, false)
                    .map_err(|e| Error::io("open", &path, e))?;
                *cur = Some(ReadState {
                    seq,
                    dec: SegmentDecoder::new(SegmentReader::new(file, page_bytes, limit), version),
                    before: 0,
                    rec: Vec::new(),
                    rec_at: 0,
                    rec_start: 0,
                    rec_end: 0,
                    rec_count: 0,
                });
            }
            let Some(st) = cur.as_mut() else { break };
            st.dec.reader.set_limit(limit);
            // Hand out what is left of the current record.
            if st.rec_at < st.rec.len() {
                if batch_seq != Some(seq) {
                    index.clear();
                    batch_seq = Some(seq);
                }
                let mut take = (max - batch.samples.len()).min(st.rec.len() - st.rec_at);
                if let Some(c) = cap
                    && c.segment == seq
                    && c.offset == st.rec_start
                    && c.skip > 0
                {
                    take = take.min((c.skip as usize).saturating_sub(st.rec_at));
                    if take == 0 {
                        break;
                    }
                }
                for s in &st.rec[st.rec_at..st.rec_at + take] {
                    // Format 2 names ring-wide ids; format 1 its own. An id without a definition
                    // (the series log lost it) is counted lost, never given other labels.
                    let labels = if st.dec.version == crate::segment::VERSION_1 {
                        st.dec.series.get(s.id as usize).and_then(Clone::clone)
                    } else if index.contains(s.id) {
                        None
                    } else {
                        self.series.shared(s.id).cloned()
                    };
                    let known = labels.is_some() || index.contains(s.id);
                    if !known {
                        self.counters.samples_lost += 1;
                        continue;
                    }
                    let i = match index.get(s.id) {
                        Some(i) => i,
                        None => {
                            let next = batch.series.len() as u32;
                            batch.series.extend(labels);
                            index.insert(s.id, next);
                            next
                        }
                    };
                    batch.samples.push(Sample {
                        series: i,
                        t_ms: s.t_ms,
                        value: s.value,
                    });
                }
                st.rec_at += take;
                let pos = if st.rec_at == st.rec.len() {
                    Position {
                        segment: seq,
                        offset: st.rec_end,
                        skip: 0,
                        seg_samples: st.before + st.rec_count,
                    }
                } else {
                    Position {
                        segment: seq,
                        offset: st.rec_start,
                        skip: st.rec_at as u32,
                        seg_samples: st.before + st.rec_at as u64,
                    }
                };
                self.consumers[id.0].read = pos;
                batch.end = pos;
                continue;
            }
            if st.rec_count > 0 {
                st.before += st.rec_count;
                st.rec_count = 0;
            }
            st.rec.clear();
            st.rec_at = 0;
            let lost_before = st.dec.lost;
            let step = st
                .dec
                .next(&mut st.rec, self.series.id_bound())
                .map_err(|e| {
                    Error::io("read", self.dir.join(crate::segment::segment_name(seq)), e)
                })?;
            self.counters.samples_lost += st.dec.lost - lost_before;
            match step {
                Step::Series { .. } => {}
                Step::Samples { start, end, count } => {
                    st.rec_start = start;
                    st.rec_end = end;
                    st.rec_count = count;
                    if start < read.offset {
                        // Before the resume point: decoded for its history only.
                        st.rec.clear();
                    } else if start == read.offset && read.skip > 0 {
                        st.rec_at = (read.skip as usize).min(st.rec.len());
                    }
                }
                Step::Exemplars { start, end } | Step::Skipped { start, end } => {
                    // Before the resume point: handed out with an earlier batch.
                    if start >= read.offset {
                        if batch_seq != Some(seq) {
                            index.clear();
                            batch_seq = Some(seq);
                        }
                        if st.dec.version != crate::segment::VERSION_1 {
                            let series = &self.series;
                            crate::exemplar::into_batch(
                                &mut batch,
                                index,
                                &st.dec.exemplars,
                                |id| series.shared(id).cloned(),
                            );
                        }
                        st.dec.exemplars.clear();
                        let pos = Position {
                            segment: seq,
                            offset: end,
                            skip: 0,
                            seg_samples: st.before,
                        };
                        self.consumers[id.0].read = pos;
                        batch.end = pos;
                    }
                }
                Step::End { offset } => {
                    if is_open {
                        break;
                    }
                    if offset < limit {
                        self.damage(
                            id,
                            cur,
                            seq,
                            offset,
                            "zeroed data before the end of the segment",
                        )?;
                        continue;
                    }
                    self.consumers[id.0].read = Position::segment_start(seq + 1);
                    *cur = None;
                }
                Step::Damaged { offset, reason, .. } => {
                    self.damage(id, cur, seq, offset, reason)?;
                    if is_open {
                        break;
                    }
                }
            }
        }
        if batch.samples.is_empty() && batch.exemplars.is_empty() {
            return Ok(None);
        }
        Ok(Some(batch))
    }

    /// Applies the recovery mode to damage found by consumer `id` in segment `seq`.
    fn damage(
        &mut self,
        id: ConsumerId,
        cur: &mut Option<ReadState>,
        seq: u64,
        offset: u64,
        reason: &'static str,
    ) -> Result<(), Error> {
        match self.opts.recovery {
            RecoveryMode::Strict => Err(Error::corrupt(seq, offset, reason)),
            RecoveryMode::SkipCorrupt => {
                self.counters.damaged_regions += 1;
                log::error!(
                    "Skipping a damaged WAL page; its samples are lost. segment={seq} offset={offset} reason={reason}"
                );
                if let Some(st) = cur.as_mut() {
                    st.dec.skip_damage();
                }
                Ok(())
            }
            RecoveryMode::TruncateTail => {
                self.counters.damaged_regions += 1;
                log::error!(
                    "Damaged WAL segment; the rest of it is skipped and lost. segment={seq} offset={offset} reason={reason}"
                );
                *cur = None;
                self.consumers[id.0].read = Position::segment_start(seq + 1);
                Ok(())
            }
        }
    }
}
