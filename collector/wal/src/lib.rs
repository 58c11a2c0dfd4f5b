//! `magpie-wal`: the ring-buffered write-ahead log that holds scraped samples on disk until
//! every exporter has delivered them.
//!
//! The WAL is a directory of numbered segment files, each framed in fixed-size pages (see
//! `FORMAT.md` beside this crate). Samples are appended by one owner, compressed to a couple of
//! bytes each, and read back in batches by named consumers, oldest first, at least once.
//!
//! # Main types
//! - [`Wal`]: open, [`append`](Wal::append), [`sync_if_due`](Wal::sync_if_due),
//!   [`read`](Wal::read) / [`ack`](Wal::ack) / [`rewind`](Wal::rewind), [`stats`](Wal::stats),
//!   [`close`](Wal::close).
//! - [`Options`] and [`RecoveryMode`]: budget, segment and page sizes, sync interval, what to
//!   do with damaged data.
//! - [`SampleRef`] (or [`KeyedSample`] of a [`SeriesKey`]) in, [`Batch`] out; [`Position`] is an opaque point to acknowledge.
//! - [`health`]: when failing appends or syncs have lasted long enough to call the WAL
//!   unhealthy (sans-IO; the collector's `/-/healthy` answers from it).
//! - [`inspect()`]: a read-only report of a WAL directory, for `magpie wal inspect`.
//! - [`storage`]: the small file-system trait, with a fault-injecting implementation for tests;
//!   `uring` (feature `io-uring`) is an io_uring implementation of it.
//! - `synth` (feature `synth`): a node_exporter-like data set for benchmarks and tests.
//! - [`owner`] (feature `owner`): the thread that owns a [`Wal`] and the [`owner::WalHandle`]
//!   everyone else uses (bounded queue, group commit, batched cursors, statistics snapshots).
//! - `metrics` (feature `metrics`): the `magpie_wal_*` self-metrics families of a [`Stats`].
//!
//! # Invariants
//! - A series' labels are written once per ring, to the series log, before the first samples
//!   record naming its ring-wide id, and synced no later than those samples. Value compression
//!   state restarts in every segment, so any segment can be dropped or read alone given the
//!   series table. When segments are dropped, a checkpoint rewrites the log without the series
//!   no live segment uses. Format-1 segments (each defining its own series) are still read.
//! - The ring (segments and series log) never holds more than `max_bytes`: a new segment is started only after the oldest
//!   ones are deleted (without being read) to make room. Samples a consumer had not acknowledged
//!   are counted in its `dropped_samples`. The newest data always wins.
//! - Durability: appended samples are buffered and become durable at the next sync; the owner
//!   calls [`Wal::sync_if_due`] on a timer, so a power cut loses at most `fsync_interval` (plus
//!   the timer's lateness) of samples. A failed `fdatasync` is returned as an error.
//! - Opening reads the series log and the newest segment through (and every segment's 72-byte
//!   header): its time grows with the number of series, not with the size of the ring.
//! - Memory is the series table (a 24-byte entry per id and the encoded label set, shared with
//!   the caller's [`SeriesKey`] and with the batches that name it), one page buffer for the
//!   writer and one per consumer: O(series), never O(ring).
//! - A zero-filled, torn or bit-flipped area never decodes as data.
//!
//! # Example
//! ```
//! use magpie_wal::{Options, SampleRef, Wal};
//! # fn main() -> Result<(), magpie_wal::Error> {
//! # let tmp = tempfile::tempdir().unwrap();
//! let mut wal = Wal::open(tmp.path(), Options::default())?;
//! let labels = [("__name__", "up"), ("job", "node")];
//! wal.append([SampleRef { labels: &labels, t_ms: 1_700_000_000_000, value: 1.0 }])?;
//!
//! let exporter = wal.consumer("central")?;
//! let batch = wal.read(exporter, 500)?.expect("one sample");
//! assert_eq!(batch.series[0].get("job"), Some("node"));
//! assert_eq!(batch.samples[0].value, 1.0);
//! wal.ack(exporter, batch.end)?; // persisted: a restart resumes after this sample
//! wal.close()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod batch_index;
mod bits;
mod checkpoint;
mod codec;
mod consumer;
mod cursor;
mod error;
mod exemplar;
mod frame;
pub mod health;
mod inspect;
mod labels;
#[cfg(feature = "metrics")]
pub mod metrics;
mod options;
#[cfg(feature = "owner")]
pub mod owner;
mod reader;
mod reads;
mod recovery;
#[cfg(test)]
mod robustness;
mod segment;
mod series;
mod serieslog;
mod split;
mod stats;
pub mod storage;
mod sync_job;
#[cfg(feature = "synth")]
pub mod synth;
#[cfg(feature = "io-uring")]
pub mod uring;
mod wal;
mod writer;

pub use cursor::Position;
pub use error::Error;
pub use exemplar::{Exemplar, OwnedExemplar};
pub use inspect::{InspectReport, SegmentReport, inspect};
pub use labels::{Iter as LabelsIter, Labels, PairEnds as LabelPairEnds};
pub use options::{Options, RecoveryMode};
pub use sync_job::{CursorJob, CursorsDone, SyncDone, SyncJob, SyncStart};
pub use wal::Wal;

/// One sample to append: a label set sorted by name (with `__name__`), a timestamp in
/// milliseconds and a value. Any `f64` bit pattern, staleness markers included, is stored
/// exactly.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    /// `(name, value)` pairs, sorted by name, names unique.
    pub labels: &'a [(&'a str, &'a str)],
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value.
    pub value: f64,
}

/// A series' label set, validated, encoded and hashed once, for [`Wal::append_keyed`]: a
/// collector keeps one per series it scrapes again and again. Cloning shares the encoding
/// (handing a scrape's keys to the WAL's owner thread copies no labels), and the WAL's series
/// table keeps the key's own [`Labels`], so the label text is held once in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesKey {
    hash: u64,
    labels: Labels,
}

impl SeriesKey {
    /// The key of `labels` (sorted by name, with `__name__`).
    ///
    /// # Errors
    /// [`Error::InvalidLabels`] as [`Wal::append`] returns it for these labels.
    pub fn new(labels: &[(&str, &str)]) -> Result<Self, Error> {
        let mut bytes = Vec::new();
        let hash = writer::encode_key(labels, &mut bytes)?;
        Ok(Self {
            hash,
            labels: Labels::from_trusted(bytes),
        })
    }

    /// Bytes of the label text's allocation, which the key shares with the WAL's series
    /// table once appended (the table counts them in [`Stats::series_bytes`]).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.labels.heap_bytes()
    }

    /// The label set.
    #[must_use]
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The 64-bit hash of the label set (the WAL's series hash): equal label sets have equal
    /// fingerprints.
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        self.hash
    }
}

/// One sample of a series known by its [`SeriesKey`].
#[derive(Debug, Clone, Copy)]
pub struct KeyedSample<'a> {
    /// The series.
    pub key: &'a SeriesKey,
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value.
    pub value: f64,
}

/// Identifies a consumer registered with [`Wal::consumer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId(usize);

/// A sample read back: its series is `batch.series[series]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Index into [`Batch::series`].
    pub series: u32,
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value, bit-exact.
    pub value: f64,
}

/// Samples read by a consumer, oldest first, with the label sets they refer to.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Label sets referenced by `samples`.
    pub series: Vec<Labels>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// Exemplars of the batch's series, in WAL order; empty (and unallocated) when the
    /// records read held none.
    pub exemplars: Vec<Exemplar>,
    /// Position after the last sample: acknowledge it once the batch is delivered.
    pub end: Position,
}

/// Figures for one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Its name.
    pub name: String,
    /// Its last acknowledged position.
    pub acked: Position,
    /// Samples deleted by the ring before this consumer acknowledged them, since open.
    pub dropped_samples: u64,
    /// Samples in the ring after its acknowledged position.
    pub backlog_samples: u64,
    /// Earliest timestamp of the segment holding its oldest unacknowledged sample: a lower
    /// bound of that sample's timestamp, known without reading.
    pub oldest_unacked_ms: Option<i64>,
}

/// Counters of a [`Wal`], for self-monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the segments and the series log take, counting the open segment at its full
    /// preallocated size.
    pub bytes_on_disk: u64,
    /// Bytes that hold data: the sealed segments, the open one up to its last framed record,
    /// and the series log. What buffered samples cost the ring, where `bytes_on_disk` moves
    /// by a whole preallocated segment at a time.
    pub data_bytes: u64,
    /// The size budget of the ring (`Options::max_bytes`).
    pub max_bytes: u64,
    /// Segments in the ring, the open one included.
    pub segments: usize,
    /// Timestamp of the oldest sample held (a lower bound: segments record their minimum).
    pub oldest_sample_ms: Option<i64>,
    /// Timestamp of the newest sample held (segments record their maximum).
    pub newest_sample_ms: Option<i64>,
    /// Samples appended since open.
    pub samples_appended: u64,
    /// Samples held by the ring, buffered ones included.
    pub samples_in_ring: u64,
    /// Samples refused because the disk was full.
    pub samples_rejected: u64,
    /// Segments deleted to respect the budget or to free disk space.
    pub segments_dropped: u64,
    /// The file system was full the last time the ring needed room: it dropped old segments
    /// below its budget to make it (an operator must free the disk). Cleared once a segment
    /// fits on the file system again, or a new one is started without dropping.
    pub disk_full: bool,
    /// Segments that filled up holding mostly series labels. Only format-1 segments repeated
    /// labels; since format 2 writes them once per ring, in the series log, this stays 0.
    pub label_heavy_segments: u64,
    /// Series defined in the ring (in the series log and the in-memory table).
    pub series: u64,
    /// Heap bytes of the in-memory series table.
    pub series_bytes: u64,
    /// Bytes of the series log file (counted in `bytes_on_disk` and in the budget).
    pub series_log_bytes: u64,
    /// Damaged areas met while opening or reading.
    pub damaged_regions: u64,
    /// Samples that could not be decoded after damage.
    pub samples_lost_to_damage: u64,
    /// Exemplars appended since open.
    pub exemplars_appended: u64,
    /// Exemplars dropped since open: over a scrape's cap, or of a series the ring did not
    /// hold.
    pub exemplars_dropped: u64,
    /// True when appended samples are not yet synced.
    pub unsynced: bool,
    /// Bytes free for unprivileged users on the WAL's file system (`statvfs`), if known.
    pub fs_available_bytes: Option<u64>,
    /// Per consumer.
    pub consumers: Vec<ConsumerStats>,
}
