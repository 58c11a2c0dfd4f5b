//! The ring of segments: appending, durability, dropping old segments (recovery on open is in
//! `recovery.rs`, consumers in `reader.rs`).
//!
//! State kept in memory: the list of sealed segments with their header summaries (a few words
//! each), the open segment's series table and one page of unwritten bytes, and per consumer
//! its positions plus one segment decoder. Nothing grows with the size of the ring's data.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::ConsumerId;
use crate::cursor::Position;
use crate::error::{Error, is_enospc};
use crate::options::Options;
use crate::reader::Consumer;
use crate::segment::{self, Summary};
use crate::storage::{OsStorage, Storage, StorageFile};
use crate::writer::{self, Lookup, OpenSegment};
use crate::{ConsumerStats, KeyedSample, SampleRef, Stats};

pub(crate) const CURSOR_DIR: &str = "cursors";
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A segment that is no longer written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sealed {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
    pub(crate) page_bytes: u32,
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
    last_sync: Option<Instant>,
    needs_roll: bool,
    pub(crate) counters: Counters,
    key: Vec<u8>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`, recovering the tail segment.
    ///
    /// # Errors
    /// Invalid options, I/O errors, [`Error::Locked`] when another process has the directory,
    /// and [`Error::Corrupt`] for damage the recovery mode does not tolerate.
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
        let mut wal = Wal {
            dir: dir.to_owned(),
            cursor_dir,
            opts,
            storage,
            _lock: lock,
            sealed: VecDeque::new(),
            open: None,
            next_seq: seqs.last().map_or(1, |s| s + 1),
            consumers: Vec::new(),
            last_sync: None,
            needs_roll: false,
            counters: Counters::default(),
            key: Vec::new(),
        };
        let last = seqs.len().saturating_sub(1);
        for (i, &seq) in seqs.iter().enumerate() {
            wal.load_segment(seq, i == last)?;
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
        while wal.sealed_bytes() + wal.opts.segment_bytes > wal.opts.max_bytes
            && !wal.sealed.is_empty()
        {
            wal.drop_oldest()?;
        }
        Ok(wal)
    }

    pub(crate) fn seg_path(&self, seq: u64) -> PathBuf {
        self.dir.join(segment::segment_name(seq))
    }

    pub(crate) fn sealed_bytes(&self) -> u64 {
        self.sealed.iter().map(|s| s.bytes).sum()
    }

    /// Appends samples. Series new to the open segment have their labels written once; later
    /// samples of theirs cost a few bits each.
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
                .and_then(|h| wal.append_one(h, &key, s.t_ms, s.value));
            wal.key = key;
            r
        })
    }

    /// Appends samples of series whose labels were validated and encoded once, in a
    /// [`SeriesKey`]: the same as [`Wal::append`] with the key's labels, without encoding and
    /// hashing them again for every sample.
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn append_keyed<'a, I>(&mut self, samples: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = KeyedSample<'a>>,
    {
        self.append_all(samples.into_iter(), |wal, s| {
            wal.append_one(s.key.hash, &s.key.bytes, s.t_ms, s.value)
        })
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

    fn append_one(&mut self, h: u64, key: &[u8], t_ms: i64, value: f64) -> Result<(), Error> {
        if self.open.is_none() || self.needs_roll {
            self.roll()?;
        }
        let id = loop {
            let open = self.open.as_mut().ok_or_else(|| no_open(&self.dir))?;
            let (id, new_bytes) = match open.lookup(h, key) {
                Lookup::Known(id) => (Some(id), 0),
                Lookup::New => (None, key.len()),
            };
            if open.fits(new_bytes) {
                break match id {
                    Some(id) => id,
                    None => open.insert(h, key),
                };
            }
            self.roll()?;
        };
        let open = self.open.as_mut().ok_or_else(|| no_open(&self.dir))?;
        if open.pending_full() {
            // Written before the sample is added, so a failure leaves the sample out entirely.
            open.emit_pending();
            self.write_out()?;
        }
        let open = self.open.as_mut().ok_or_else(|| no_open(&self.dir))?;
        open.add_sample(id, t_ms, value);
        self.counters.samples_appended += 1;
        Ok(())
    }

    /// Writes framed bytes of the open segment, making room by dropping old segments when the
    /// file system is full.
    fn write_out(&mut self) -> Result<(), Error> {
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
                    self.drop_oldest()?;
                }
                Err(e) => return Err(Error::io("write", &open.path, e)),
            }
        }
    }

    /// Closes the open segment and starts a new one within the byte budget.
    fn roll(&mut self) -> Result<(), Error> {
        self.seal_open()?;
        self.needs_roll = false;
        while self.sealed_bytes() + self.opts.segment_bytes > self.opts.max_bytes
            && !self.sealed.is_empty()
        {
            self.drop_oldest()?;
        }
        let seq = self.next_seq;
        let path = self.seg_path(seq);
        // Truncating is safe: a file with this number can only be left from a failed attempt.
        let mut file = self
            .storage
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        loop {
            match file.allocate(self.opts.segment_bytes) {
                Ok(()) => break,
                Err(e) if is_enospc(&e) && !self.sealed.is_empty() => self.drop_oldest()?,
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
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.emit_pending();
        self.write_out()?;
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
        // A segment filled up while holding fewer than 4 samples per series is mostly series
        // labels: every segment repeats the labels of the series it holds.
        let full = data_len * 10 >= self.opts.segment_bytes * 9;
        let series = u64::from(summary.series);
        if full && series > 0 && summary.samples < 4 * series {
            self.counters.label_heavy_segments += 1;
            if self.counters.label_heavy_segments == 1 {
                let per_series = data_len.saturating_sub(summary.samples * 2) / series;
                let suggest = (per_series * series * 8).div_ceil(1 << 20);
                log::warn!(
                    "WAL segments are too small for the number of series: segment {seq} filled up with {series} series but only {} samples, so most of it is labels. Raise [wal] segment_bytes from {} to about {suggest}MiB (and max_bytes with it). dir={}",
                    summary.samples,
                    self.opts.segment_bytes,
                    self.dir.display()
                );
            }
        }
        self.sealed.push_back(Sealed {
            seq,
            bytes: data_len,
            page_bytes: self.opts.page_bytes,
            summary: Some(summary),
        });
        Ok(())
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
        if let Some(open) = self.open.as_mut() {
            open.emit_pending();
        }
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
        let dirty = self.open.as_ref().is_some_and(OpenSegment::dirty);
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
        self.seal_open()
    }

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
        Stats {
            bytes_on_disk: self.sealed_bytes()
                + self.open.as_ref().map_or(0, |_| self.opts.segment_bytes),
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
            label_heavy_segments: self.counters.label_heavy_segments,
            damaged_regions: self.counters.damaged_regions,
            samples_lost_to_damage: self.counters.samples_lost,
            unsynced: self.open.as_ref().is_some_and(OpenSegment::dirty),
            fs_available_bytes: self.storage.available(&self.dir).ok(),
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

    /// The directory this WAL lives in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
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

fn no_open(dir: &Path) -> Error {
    Error::io(
        "append",
        dir,
        std::io::Error::other("no open segment after roll"),
    )
}

impl Drop for Wal {
    fn drop(&mut self) {
        if self.open.as_ref().is_some_and(OpenSegment::dirty) {
            log::warn!(
                "WAL dropped without close; unsynced samples are lost. dir={}",
                self.dir.display()
            );
        }
    }
}
