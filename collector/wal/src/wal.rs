//! The ring of segments: appending, durability, dropping old segments and checkpointing the
//! series log (recovery on open is in `recovery.rs`, consumers in `reader.rs`).
//!
//! State kept in memory: the list of sealed segments with their header summaries (a few words
//! each), the ring-wide series table (`series.rs`), one page of unwritten bytes for the open
//! segment and one for the series log, and per consumer its positions plus one segment
//! decoder. Nothing grows with the size of the ring's data, only with the number of series.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::consumer::Consumer;
use crate::cursor::Position;
use crate::error::{Error, is_enospc};
use crate::options::Options;
use crate::segment::{self, Summary};
use crate::series::SeriesTable;
use crate::serieslog::{self, SeriesLog};
use crate::storage::{OsStorage, Storage, StorageFile};
use crate::writer::{self, OpenSegment};
use crate::{KeyedSample, Labels, SampleRef};

mod exemplars;

pub(crate) const CURSOR_DIR: &str = "cursors";
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A segment that is no longer written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
    pub(crate) page_bytes: u32,
    /// Segment format version (1: self-contained, 2: ring-wide series ids).
    pub(crate) version: u16,
    /// `None` when the header is damaged: readers skip the segment.
    pub(crate) summary: Option<Summary>,
}

/// Counters exposed through [`Stats`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) samples_appended: u64,
    pub(crate) segments_dropped: u64,
    pub(crate) samples_rejected: u64,
    pub(crate) damaged_regions: u64,
    pub(crate) samples_lost: u64,
    pub(crate) label_heavy_segments: u64,
    pub(crate) exemplars_appended: u64,
    pub(crate) exemplars_dropped: u64,
    /// Series looked up by label set (not exposed: what tests of the hints count).
    pub(crate) series_lookups: u64,
    /// The file system was full the last time the ring needed room, and old segments were
    /// dropped below the budget to make it; cleared when a new segment finds room without.
    pub(crate) disk_short: bool,
}

/// A write-ahead log of samples in a directory: see the crate documentation.
#[derive(Debug)]
pub struct Wal {
    pub(crate) dir: PathBuf,
    pub(crate) cursor_dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) storage: Arc<dyn Storage>,
    _lock: Box<dyn StorageFile>,
    pub(crate) sealed: VecDeque<Sealed>,
    pub(crate) open: Option<OpenSegment>,
    pub(crate) next_seq: u64,
    pub(crate) consumers: Vec<Consumer>,
    pub(crate) last_sync: Option<Instant>,
    pub(crate) needs_roll: bool,
    pub(crate) counters: Counters,
    key: Vec<u8>,
    /// Ring-wide series ids and their label sets.
    pub(crate) series: SeriesTable,
    /// A read's series by id, kept from read to read.
    pub(crate) batch_index: crate::batch_index::BatchIndex,
    /// The series log being appended to (`None` only while opening).
    pub(crate) log: Option<SeriesLog>,
    /// The highest series log generation written or found.
    pub(crate) log_gen: u64,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`: loads the series log, recovers the tail
    /// segment and writes a fresh series log (a checkpoint of what was loaded).
    ///
    /// # Errors
    /// Invalid options, I/O errors, [`Error::Locked`] when another process has the directory,
    /// and [`Error::Corrupt`] or [`Error::CorruptSeriesLog`] for damage the recovery mode does
    /// not tolerate.
    pub fn open(dir: &Path, opts: Options) -> Result<Wal, Error> {
        Self::open_with(dir, opts, Arc::new(OsStorage))
    }

    /// Like [`Wal::open`] over a custom [`Storage`] (fault injection in tests).
    ///
    /// # Errors
    /// As [`Wal::open`].
    pub fn open_with(dir: &Path, opts: Options, storage: Arc<dyn Storage>) -> Result<Wal, Error> {
        opts.validate()?;
        let cursor_dir = dir.join(CURSOR_DIR);
        storage
            .create_dir_all(&cursor_dir)
            .map_err(|e| Error::io("create directory", &cursor_dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = storage
            .lock(&lock_path)
            .map_err(|e| Error::io("lock", &lock_path, e))?
            .ok_or_else(|| Error::Locked(dir.to_owned()))?;
        let mut seqs: Vec<u64> = storage
            .list(dir)
            .map_err(|e| Error::io("list", dir, e))?
            .iter()
            .filter_map(|n| segment::parse_segment_name(n))
            .collect();
        seqs.sort_unstable();
        // A power cut can take back data a consumer had acknowledged before it was synced, and
        // with it the segment its cursor names: new segments are numbered above every position
        // a cursor holds, so no cursor ever points into data it has not seen.
        let mut next_seq = seqs.last().map_or(1, |s| s + 1);
        for name in storage.list(&cursor_dir).unwrap_or_default() {
            let Some(consumer) = name.to_str().and_then(|n| n.strip_suffix(".cursor")) else {
                continue;
            };
            if let Some(p) = crate::cursor::load(storage.as_ref(), &cursor_dir, consumer)?
                && (p.seg_samples > 0 || p.skip > 0)
            {
                next_seq = next_seq.max(p.segment.saturating_add(1));
            }
        }
        let mut wal = Wal {
            dir: dir.to_owned(),
            cursor_dir,
            opts,
            storage,
            _lock: lock,
            sealed: VecDeque::new(),
            open: None,
            next_seq,
            consumers: Vec::new(),
            last_sync: None,
            needs_roll: false,
            counters: Counters::default(),
            key: Vec::new(),
            series: SeriesTable::default(),
            batch_index: crate::batch_index::BatchIndex::default(),
            log: None,
            log_gen: 0,
        };
        let loaded = serieslog::load(
            wal.storage.as_ref(),
            dir,
            wal.opts.recovery,
            &mut wal.series,
        )?;
        wal.counters.damaged_regions += loaded.damaged;
        wal.log_gen = loaded.max_gen;
        wal.series.reserve(loaded.id_bound);
        let last = seqs.len().saturating_sub(1);
        for (i, &seq) in seqs.iter().enumerate() {
            wal.load_segment(seq, i == last)?;
        }
        // Ids a segment names stay reserved even when the log lost their definition, so they
        // are never given to another series while that segment lives.
        let named = wal
            .sealed
            .iter()
            .filter(|s| s.version == segment::VERSION)
            .filter_map(|s| s.summary.map(|s| s.series))
            .max()
            .unwrap_or(0);
        wal.series.reserve(named);
        // Which series the segments use, so that the checkpoint below already leaves out
        // those no segment uses: without it a WAL restarted more often than its ring turns
        // over would keep every series it ever defined.
        let usage = wal.scan_usage();
        wal.series.loaded(wal.next_seq - 1, usage);
        // Appends go to a fresh log that ends cleanly. On a full disk the WAL opens anyway:
        // the log is written before the first sync instead.
        let oldest = if usage { wal.oldest_seq() } else { 0 };
        match wal.checkpoint(oldest) {
            Err(e) if e.is_disk_full() => {}
            other => other?,
        }
        if let Ok(free) = wal.storage.available(dir) {
            let used = wal.sealed_bytes();
            if used + free < wal.opts.max_bytes {
                log::warn!(
                    "The WAL budget exceeds the free disk space; old segments will be dropped when the disk fills. dir={} max_bytes={} available={}",
                    dir.display(),
                    wal.opts.max_bytes,
                    used + free
                );
            }
        }
        // A smaller budget than last time leaves the ring over it.
        let dropped = wal.counters.segments_dropped;
        while wal.sealed_bytes() + wal.opts.segment_bytes + wal.log_bytes() > wal.opts.max_bytes
            && !wal.sealed.is_empty()
        {
            wal.drop_oldest()?;
        }
        let oldest = wal.oldest_seq();
        if usage && wal.counters.segments_dropped > dropped && wal.series.has_dead(oldest) {
            // As after any drop; a failure is retried before the next sync.
            let _ = wal.checkpoint(oldest);
        }
        Ok(wal)
    }

    pub(crate) fn seg_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment::segment_name(seq))
    }

    pub(crate) fn sealed_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum()
    }

    /// Appends samples. Series new to the ring have their labels written once, to the series
    /// log; samples cost a few bits each.
    ///
    /// Appended samples are buffered: they become durable at the next [`Wal::sync`] (or
    /// [`Wal::sync_if_due`], [`Wal::close`]), or at once when `fsync_interval` is zero.
    ///
    /// # Errors
    /// [`Error::InvalidLabels`] for a label set that is empty, unsorted or over 64 KiB (the
    /// samples before it are appended); [`Error::DiskFull`] when the file system has no room even
    /// after dropping every old segment, with the number of samples of this call not stored;
    /// I/O errors.
    pub fn append<'a, I>(&mut self, samples: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = SampleRef<'a>>,
    {
        self.append_all(samples.into_iter(), |wal, s| {
            let mut key = std::mem::take(&mut wal.key);
            let r = writer::encode_key(s.labels, &mut key)
                .and_then(|h| wal.append_one(h, Key::Bytes(&key), None, s.t_ms, s.value))
                .map(drop);
            wal.key = key;
            r
        })
    }

    /// Appends samples of series whose labels were validated and encoded once, in a
    /// [`SeriesKey`](crate::SeriesKey): the same as [`Wal::append`] with the key's labels,
    /// without encoding and hashing them again for every sample.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn append_keyed<'a, I>(&mut self, samples: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = KeyedSample<'a>>,
    {
        self.append_all(samples.into_iter(), |wal, s| {
            wal.append_one(
                s.key.hash,
                Key::Shared(&s.key.labels),
                None,
                s.t_ms,
                s.value,
            )
            .map(drop)
        })
    }

    /// As [`Wal::append_keyed`], with a hint per sample: `ids` holds, by position, the series
    /// id each sample's key had in an earlier append (it may be shorter than the samples), and
    /// on return the id each sample appended got (a failed append stops where it failed). A
    /// hint is taken when that id's label set is the key's own (the same allocation), which
    /// spares looking the label set up by hash: a random probe of the series index, which at
    /// 100k series misses the CPU's caches. A hint that is missing, stale or wrong costs that
    /// look-up, nothing else.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn append_hinted<'a, I>(&mut self, samples: I, ids: &mut Vec<u32>) -> Result<(), Error>
    where
        I: IntoIterator<Item = KeyedSample<'a>>,
    {
        let mut k = 0;
        let r = self.append_all(samples.into_iter(), |wal, s| {
            let hint = ids.get(k).copied();
            let id = wal.append_one(
                s.key.hash,
                Key::Shared(&s.key.labels),
                hint,
                s.t_ms,
                s.value,
            )?;
            match ids.get_mut(k) {
                Some(slot) => *slot = id,
                None => ids.push(id),
            }
            k += 1;
            Ok(())
        });
        ids.truncate(k);
        r
    }

    /// Series look-ups by label set so far (samples whose hint was not taken, or had none).
    #[doc(hidden)]
    #[must_use]
    pub const fn series_lookups(&self) -> u64 {
        self.counters.series_lookups
    }

    /// The loop of both append calls: `one` appends one item.
    fn append_all<T, I, F>(&mut self, mut it: I, mut one: F) -> Result<(), Error>
    where
        I: Iterator<Item = T>,
        F: FnMut(&mut Self, T) -> Result<(), Error>,
    {
        while let Some(s) = it.next() {
            if let Err(e) = one(self, s) {
                if e.is_disk_full() {
                    let rejected = 1 + it.count() as u64;
                    self.counters.samples_rejected += rejected;
                    log::error!(
                        "WAL append rejected: the disk is full and no old segment is left to drop. dir={} rejected={rejected}",
                        self.dir.display()
                    );
                    return Err(Error::DiskFull {
                        path: self.dir.clone(),
                        rejected,
                    });
                }
                return Err(e);
            }
        }
        if self.opts.fsync_interval.is_zero() {
            self.sync()?;
        }
        Ok(())
    }

    /// Appends one sample; returns its series' id.
    fn append_one(
        &mut self,
        h: u64,
        key: Key<'_>,
        hint: Option<u32>,
        t_ms: i64,
        value: f64,
    ) -> Result<u32, Error> {
        if self.open.is_none() || self.needs_roll || self.open.as_ref().is_some_and(|o| !o.fits()) {
            self.roll()?;
        }
        let seq = self.open.as_ref().ok_or_else(|| no_open(&self.dir))?.seq;
        let found = match (key, hint) {
            (Key::Shared(l), Some(id)) if self.series.shared(id).is_some_and(|s| s.same(l)) => {
                Some(id)
            }
            (Key::Bytes(b), _) => {
                self.counters.series_lookups += 1;
                self.series.lookup(h, b)
            }
            (Key::Shared(l), _) => {
                self.counters.series_lookups += 1;
                self.series.lookup_shared(h, l)
            }
        };
        let id = match found {
            Some(id) => {
                self.series.touch(id, seq);
                id
            }
            None => {
                let labels = match key {
                    Key::Bytes(b) => Labels::from_trusted(b.to_vec()),
                    Key::Shared(l) => l.clone(),
                };
                let id = self.series.insert(h, labels, seq);
                if let (Some(log), Some(l)) = (self.log.as_mut(), self.series.labels(id)) {
                    log.add(id, l);
                }
                id
            }
        };
        if self.open.as_ref().is_some_and(OpenSegment::pending_full) {
            // Written before the sample is added, so a failure leaves the sample out entirely.
            self.emit();
            self.write_out()?;
        }
        let open = self.open.as_mut().ok_or_else(|| no_open(&self.dir))?;
        open.add_sample(id, t_ms, value);
        self.counters.samples_appended += 1;
        Ok(id)
    }

    /// Writes framed bytes of the series log and then the open segment, making room by
    /// dropping old segments when the file system is full.
    fn write_out(&mut self) -> Result<(), Error> {
        self.write_log()?;
        loop {
            let Some(open) = self.open.as_mut() else {
                return Ok(());
            };
            match open.write_out() {
                Ok(()) => return Ok(()),
                Err(e) if is_enospc(&e) && !self.sealed.is_empty() => {
                    log::warn!(
                        "Disk full while writing the WAL; dropping the oldest segment. dir={}",
                        self.dir.display()
                    );
                    self.make_room()?;
                }
                Err(e) => return Err(Error::io("write", &open.path, e)),
            }
        }
    }

    /// Closes the open segment and starts a new one within the byte budget.
    fn roll(&mut self) -> Result<(), Error> {
        self.seal_open()?;
        self.needs_roll = false;
        let dropped = self.counters.segments_dropped;
        while self.sealed_bytes() + self.opts.segment_bytes + self.log_bytes() > self.opts.max_bytes
            && !self.sealed.is_empty()
        {
            self.drop_oldest()?;
        }
        // The log keeps only series a live segment uses. Segments are deleted first, so a crash
        // in between leaves a log that defines more than needed, never less.
        let oldest = self.oldest_seq();
        if self.counters.segments_dropped > dropped && self.series.has_dead(oldest) {
            // A failure is retried before the next sync (the log is marked for rewriting).
            let _ = self.checkpoint(oldest);
        }
        let seq = self.next_seq;
        let path = self.seg_path(seq);
        // Truncating is safe: a file with this number can only be left from a failed attempt.
        let mut file = self
            .storage
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        // Short of room only if this segment needs some made.
        self.counters.disk_short = false;
        loop {
            match file.allocate(self.opts.segment_bytes) {
                Ok(()) => break,
                Err(e) if is_enospc(&e) && !self.sealed.is_empty() => self.make_room()?,
                Err(e) => {
                    drop(file);
                    // The empty file is not part of the ring; a leftover is cleaned at open.
                    let _ = self.storage.remove(&path);
                    return Err(Error::io("fallocate", &path, e));
                }
            }
        }
        self.next_seq += 1;
        self.open = Some(OpenSegment::new(
            seq,
            path,
            file,
            self.opts.page_bytes,
            self.opts.segment_bytes,
        ));
        Ok(())
    }

    /// Writes out the open segment, records its summary in its header and syncs it.
    pub(crate) fn seal_open(&mut self) -> Result<(), Error> {
        if self.open.is_none() {
            return Ok(());
        }
        self.emit();
        self.write_out()?;
        // Definitions are durable before the samples that name them.
        self.sync_log()?;
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let data_len = open.frames.end();
        let summary = Summary {
            data_len,
            ..open.summary
        };
        let path = open.path.clone();
        open.file
            .set_len(data_len)
            .map_err(|e| Error::io("truncate", &path, e))?;
        open.file
            .write_all_at(&segment::encode_summary(&summary), segment::SUMMARY_OFFSET)
            .map_err(|e| Error::io("write", &path, e))?;
        open.sync()?;
        if !open.dir_synced {
            self.storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync", &self.dir, e))?;
        }
        let seq = open.seq;
        self.open = None;
        self.sealed.push_back(Sealed {
            seq,
            bytes: data_len,
            page_bytes: self.opts.page_bytes,
            version: segment::VERSION,
            summary: Some(summary),
        });
        Ok(())
    }

    /// Drops the oldest segment because the file system is full, below the budget: the ring
    /// is short of room ([`crate::Stats::disk_full`]) until a new segment finds it.
    pub(crate) fn make_room(&mut self) -> Result<(), Error> {
        self.counters.disk_short = true;
        self.drop_oldest()
    }

    /// Deletes the oldest sealed segment without reading it, and counts for every consumer the
    /// samples in it that it had not acknowledged.
    pub(crate) fn drop_oldest(&mut self) -> Result<(), Error> {
        let Some(seg) = self.sealed.pop_front() else {
            return Ok(());
        };
        let path = self.seg_path(seg.seq);
        match self.storage.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                self.sealed.push_front(seg);
                return Err(Error::io("remove", &path, e));
            }
        }
        self.counters.segments_dropped += 1;
        let samples = seg.summary.map_or(0, |s| s.samples);
        let next = Position::segment_start(seg.seq + 1);
        let after = |p: Position| match p.segment.cmp(&seg.seq) {
            std::cmp::Ordering::Less => samples,
            std::cmp::Ordering::Equal => samples.saturating_sub(p.seg_samples),
            std::cmp::Ordering::Greater => 0,
        };
        for c in &mut self.consumers {
            if c.retired || c.limit.is_some_and(|l| seg.seq >= l) {
                continue;
            }
            // Samples read but not yet acknowledged are in the consumer's hands and usually
            // still get delivered: they count as dropped only if the consumer rewinds.
            let unacked = after(c.acked);
            let lost = after(c.read).min(unacked);
            if unacked > lost {
                c.in_flight_lost += unacked - lost;
                c.lost_upto = c.lost_upto.max(c.read);
            }
            if lost > 0 {
                log::error!(
                    "WAL ring full: dropped samples a consumer had not acknowledged. consumer={} segment={} samples={lost}",
                    c.name,
                    seg.seq
                );
            }
            c.dropped += lost;
            c.acked = c.acked.max(next);
            if c.read < next {
                c.read = next;
                c.cur = None;
            }
        }
        Ok(())
    }

    /// Frames pending samples and writes them to the file (no sync). Readers see flushed data.
    ///
    /// # Errors
    /// I/O errors; the data stays buffered and the next flush retries.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.emit();
        self.write_out()
    }

    /// Flushes and `fdatasync`s the open segment. A failed sync is returned, and the segment is
    /// not written again: the next append starts a new one, since after a failed sync the state
    /// of the unsynced pages is unknown.
    ///
    /// # Errors
    /// I/O errors, including the failed sync itself.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.flush()?;
        if self.log.as_ref().is_none_or(SeriesLog::dirty)
            && let Err(e) = self.sync_log()
        {
            // Samples may name definitions whose state is unknown: continue in a new segment.
            self.needs_roll = true;
            log::error!("WAL series log sync failed; samples since the last sync may be lost. {e}");
            return Err(e);
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        if open.synced == open.frames.flushed() && open.dir_synced {
            return Ok(());
        }
        if let Err(e) = open.sync() {
            self.needs_roll = true;
            log::error!("WAL sync failed; samples since the last sync may be lost. {e}");
            return Err(e);
        }
        if !open.dir_synced {
            self.storage
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync", &self.dir, e))?;
            open.dir_synced = true;
        }
        Ok(())
    }

    /// Syncs when unsynced data exists and `fsync_interval` has passed since the last sync.
    /// Returns whether it synced. Call it from the owner's timer; the WAL has no clock.
    ///
    /// # Errors
    /// As [`Wal::sync`].
    pub fn sync_if_due(&mut self, now: Instant) -> Result<bool, Error> {
        let dirty = self.open.as_ref().is_some_and(OpenSegment::dirty)
            || self.log.as_ref().is_some_and(SeriesLog::dirty);
        let due = self
            .last_sync
            .is_none_or(|l| now.saturating_duration_since(l) >= self.opts.fsync_interval);
        if !(dirty && due) {
            return Ok(false);
        }
        self.sync()?;
        self.last_sync = Some(now);
        Ok(true)
    }

    /// Flushes, syncs and seals the open segment. Dropping a `Wal` without closing it loses
    /// what was not synced, like a crash.
    ///
    /// # Errors
    /// I/O errors.
    pub fn close(mut self) -> Result<(), Error> {
        let cursors = self.sync_cursors();
        self.seal_open().and(cursors)
    }

    /// The directory this WAL lives in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A sample's series as an append names it: labels encoded for this sample, or a key whose
/// shared labels the series table can keep.
#[derive(Clone, Copy)]
enum Key<'a> {
    Bytes(&'a [u8]),
    Shared(&'a Labels),
}

fn no_open(dir: &Path) -> Error {
    Error::io(
        "append",
        dir,
        std::io::Error::other("no open segment after roll"),
    )
}

impl Drop for Wal {
    fn drop(&mut self) {
        if self.open.as_ref().is_some_and(OpenSegment::dirty)
            || self.log.as_ref().is_some_and(|l| l.dirty() && !l.broken)
        {
            log::warn!(
                "WAL dropped without close; unsynced samples are lost. dir={}",
                self.dir.display()
            );
        }
    }
}
