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
