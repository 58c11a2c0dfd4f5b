//! The state a consumer keeps in memory: its positions and its place in a segment. Shared by
//! the ring (`wal.rs`, which moves consumers past segments it drops) and the readers
//! (`reader.rs`).

use crate::codec::RawSample;
use crate::cursor::Position;
use crate::segment::SegmentDecoder;

/// In-memory state of one consumer.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) name: String,
    pub(crate) acked: Position,
    /// The position its cursor file holds (behind `acked` until the next
    /// [`crate::Wal::persist_cursors`]).
    pub(crate) persisted: Position,
    /// Since when its cursor file holds a write not yet synced ([`crate::cursor::SYNC_EVERY`]).
    pub(crate) unsynced_since: Option<std::time::Instant>,
    pub(crate) read: Position,
    pub(crate) dropped: u64,
    /// Samples the ring dropped after this consumer had read them but before it acknowledged
    /// them, and the read position then. They are still in the consumer's hands: counted as
    /// dropped only if it rewinds instead of acknowledging them.
    pub(crate) in_flight_lost: u64,
    pub(crate) lost_upto: Position,
    pub(crate) cur: Option<ReadState>,
    /// While split: this consumer reads only segments before this one; the newest data goes
    /// to the consumer at index `newest`.
    pub(crate) limit: Option<u64>,
    pub(crate) newest: Option<usize>,
    /// A newest-first sub-consumer that has been joined back: invisible, its cursor deleted.
    pub(crate) retired: bool,
    /// Where its earlier reads ended past the persisted cursor: reads stop there again.
    pub(crate) ends: crate::reads::Ends,
}

/// Where a consumer's decoder is inside a segment.
#[derive(Debug)]
pub(crate) struct ReadState {
    pub(crate) seq: u64,
    pub(crate) dec: SegmentDecoder,
    /// Samples in records before the current one.
    pub(crate) before: u64,
    /// The current samples record: its decoded samples and bounds.
    pub(crate) rec: Vec<RawSample>,
    pub(crate) rec_at: usize,
    pub(crate) rec_start: u64,
    pub(crate) rec_end: u64,
    pub(crate) rec_count: u64,
}

/// What a tick does with one consumer's cursor file: write the position that moved, sync it, or
/// both.
#[derive(Debug, Clone)]
pub(crate) struct CursorWrite {
    pub(crate) name: String,
    pub(crate) pos: Option<Position>,
    pub(crate) sync: bool,
}

impl Consumer {
    /// The cursor work due at `now`, if any: a moved position is written at every tick, and
    /// synced once the file has held an unsynced write for [`crate::cursor::SYNC_EVERY`].
    pub(crate) fn cursor_work(&self, now: std::time::Instant) -> Option<CursorWrite> {
        if self.retired {
            return None;
        }
        let due = self
            .unsynced_since
            .is_some_and(|t| now.saturating_duration_since(t) >= crate::cursor::SYNC_EVERY);
        let moved = self.acked > self.persisted;
        (moved || due).then(|| CursorWrite {
            name: self.name.clone(),
            pos: moved.then_some(self.acked),
            sync: due,
        })
    }

    /// Takes the outcome of `w`, done at `now`.
    pub(crate) fn cursor_written(
        &mut self,
        storage: &dyn crate::storage::Storage,
        w: &CursorWrite,
        now: std::time::Instant,
    ) {
        if let Some(pos) = w.pos
            && pos > self.persisted
        {
            self.persisted = pos;
            self.ends.persisted(storage, pos);
        }
        if w.sync {
            self.unsynced_since = None;
        } else if w.pos.is_some() {
            self.unsynced_since.get_or_insert(now);
        }
    }
}

impl CursorWrite {
    /// Does it.
    pub(crate) fn run(
        &self,
        storage: &dyn crate::storage::Storage,
        dir: &std::path::Path,
    ) -> Result<(), crate::error::Error> {
        match self.pos {
            Some(p) => crate::cursor::update(storage, dir, &self.name, &p, self.sync),
            None => crate::cursor::sync(storage, dir, &self.name),
        }
    }
}
