//! Syncs run away from the thread that owns the WAL.
//!
//! An `fdatasync` on an SD card takes from milliseconds to seconds. [`Wal::sync`] runs it on
//! the caller's thread; the WAL's owner (`owner.rs`) instead writes what is buffered, takes a
//! [`SyncJob`] ([`Wal::begin_sync`]), hands it to a thread of its own and goes on serving
//! appends and reads. When the job is done, [`Wal::end_sync`] marks what it covered as synced.
//! The order of a sync is kept: the series log before the segment whose samples name its
//! definitions, then the directory when the segment is new. What is written while a job runs
//! is covered by the next one.

use crate::error::Error;
use crate::serieslog::SeriesLog;
use crate::storage::{FileSync, Storage};
use crate::wal::Wal;
use crate::writer::OpenSegment;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// How [`Wal::begin_sync`] went.
#[derive(Debug)]
pub enum SyncStart {
    /// Nothing was waiting to be synced.
    Clean,
    /// Synced on the calling thread (a file without a handle for another thread, or a series
    /// log that must be rewritten first).
    Synced,
    /// Run this job on another thread, then give its outcome to [`Wal::end_sync`].
    Job(SyncJob),
}

/// The syncs of one [`Wal::begin_sync`], in order.
pub struct SyncJob {
    log: Option<(PathBuf, Box<dyn FileSync>, u64)>,
    segment: Option<(u64, PathBuf, Box<dyn FileSync>, u64)>,
    /// The directory, when the segment is new to it.
    dir: Option<(Arc<dyn Storage>, PathBuf)>,
}

impl std::fmt::Debug for SyncJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncJob")
            .field("log", &self.log.as_ref().map(|l| (&l.0, l.2)))
            .field("segment", &self.segment.as_ref().map(|s| (s.0, &s.1, s.3)))
            .field("dir", &self.dir.as_ref().map(|d| &d.1))
            .finish()
    }
}

/// A finished [`SyncJob`]: what it covered and how it went.
#[derive(Debug)]
pub struct SyncDone {
    log: Option<(PathBuf, u64)>,
    segment: Option<(u64, u64, bool)>,
    failed: Option<Failed>,
}

#[derive(Debug)]
struct Failed {
    /// The series log failed (it is rewritten at the next sync).
    log: bool,
    error: Error,
}

impl SyncJob {
    /// Runs the syncs; call it on any thread.
    #[must_use]
    pub fn run(self) -> SyncDone {
        let mut done = SyncDone {
            log: self.log.as_ref().map(|(p, _, upto)| (p.clone(), *upto)),
            segment: self
                .segment
                .as_ref()
                .map(|(seq, _, _, upto)| (*seq, *upto, self.dir.is_some())),
            failed: None,
        };
        if let Some((path, mut s, _)) = self.log
            && let Err(e) = s.sync_data()
        {
            done.failed = Some(Failed {
                log: true,
                error: Error::io("fdatasync", path, e),
            });
            return done;
        }
        if let Some((_, path, mut s, _)) = self.segment
            && let Err(e) = s.sync_data()
        {
            done.failed = Some(Failed {
                log: false,
                error: Error::io("fdatasync", path, e),
            });
            return done;
        }
        if let Some((storage, dir)) = self.dir
            && let Err(e) = storage.sync_dir(&dir)
        {
            done.failed = Some(Failed {
                log: false,
                error: Error::io("fsync", dir, e),
            });
        }
        done
    }
}

impl Wal {
    /// True when unsynced data exists and `fsync_interval` has passed since the last sync
    /// started; see [`Wal::sync_if_due`].
    #[must_use]
    pub fn sync_due(&self, now: Instant) -> bool {
        let dirty = self.open.as_ref().is_some_and(OpenSegment::dirty)
            || self
                .log
                .as_ref()
                .is_some_and(crate::serieslog::SeriesLog::dirty);
        dirty
            && self
                .last_sync
                .is_none_or(|l| now.saturating_duration_since(l) >= self.opts.fsync_interval)
    }

    /// Writes what is buffered and returns the syncs still owed as a job for another thread
    /// (see the module documentation). `now`, when given, starts the next `fsync_interval`.
    ///
    /// # Errors
    /// Write errors, and the errors of a sync run here ([`SyncStart::Synced`]).
    pub fn begin_sync(&mut self, now: Option<Instant>) -> Result<SyncStart, Error> {
        if let Some(now) = now {
            self.last_sync = Some(now);
        }
        self.flush()?;
        match self.job()? {
            Some(start) => Ok(start),
            None => self.sync().map(|()| SyncStart::Synced),
        }
    }

    /// The syncs owed as a job, `Clean` when none is, `None` when they must run here (a
    /// storage or file without handles for another thread, a series log to rewrite).
    fn job(&mut self) -> Result<Option<SyncStart>, Error> {
        if !self.storage.syncs_elsewhere() || self.log.as_ref().is_none_or(|l| l.broken) {
            return Ok(None);
        }
        if self.log.as_ref().is_some_and(SeriesLog::dirty)
            && let Err(e) = self.write_log()
        {
            self.needs_roll = true;
            return Err(e);
        }
        let Some(log) = self.log.as_ref() else {
            return Ok(None);
        };
        let log_job = if log.unsynced() {
            match log.sync_handle() {
                (Some(s), upto) => Some((log.path.clone(), s, upto)),
                (None, _) => return Ok(None),
            }
        } else {
            None
        };
        let mut segment = None;
        let mut dir = None;
        if let Some(open) = self
            .open
            .as_ref()
            .filter(|o| o.synced != o.frames.flushed() || !o.dir_synced)
        {
            let Some(s) = open.file.syncer() else {
                return Ok(None);
            };
            segment = Some((open.seq, open.path.clone(), s, open.frames.flushed()));
            if !open.dir_synced {
                dir = Some((Arc::clone(&self.storage), self.dir.clone()));
            }
        }
        if log_job.is_none() && segment.is_none() {
            return Ok(Some(SyncStart::Clean));
        }
        Ok(Some(SyncStart::Job(SyncJob {
            log: log_job,
            segment,
            dir,
        })))
    }

    /// Takes the outcome of a [`SyncJob`]: what it synced counts as synced (unless the file
    /// was replaced or sealed meanwhile, which synced it anyway). A failed sync is handled as
    /// in [`Wal::sync`]: the next append starts a new segment, a failed series log is
    /// rewritten.
    ///
    /// # Errors
    /// The job's error.
    pub fn end_sync(&mut self, done: SyncDone) -> Result<(), Error> {
        if let Some(f) = done.failed {
            if f.log
                && let (Some(log), Some((path, _))) = (self.log.as_mut(), done.log.as_ref())
                && &log.path == path
            {
                log.broken = true;
            }
            self.needs_roll = true;
            log::error!(
                "WAL sync failed; samples since the last sync may be lost. {}",
                f.error
            );
            return Err(f.error);
        }
        if let (Some(log), Some((path, upto))) = (self.log.as_mut(), done.log)
            && log.path == path
        {
            log.synced_to(upto);
        }
        if let (Some(open), Some((seq, upto, dir))) = (self.open.as_mut(), done.segment)
            && open.seq == seq
        {
            open.synced = open.synced.max(upto);
            open.dir_synced |= dir;
        }
        Ok(())
    }
}

/// Cursor files to write away from the owner ([`Wal::begin_cursor_write`]): each is written
/// in place, synced when due (see [`Wal::persist_cursors`]).
pub struct CursorJob {
    cursors: Vec<crate::consumer::CursorWrite>,
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    at: std::time::Instant,
}

impl std::fmt::Debug for CursorJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorJob")
            .field("cursors", &self.cursors)
            .finish_non_exhaustive()
    }
}

/// A finished [`CursorJob`]: the cursors written, and the first error.
#[derive(Debug)]
pub struct CursorsDone {
    written: Vec<crate::consumer::CursorWrite>,
    at: std::time::Instant,
    error: Option<Error>,
}

impl CursorJob {
    /// Writes the cursors, in order, until one fails; call it on any thread.
    #[must_use]
    pub fn run(self) -> CursorsDone {
        let mut done = CursorsDone {
            written: Vec::new(),
            at: self.at,
            error: None,
        };
        for w in self.cursors {
            match w.run(self.storage.as_ref(), &self.dir) {
                Ok(()) => done.written.push(w),
                Err(e) => {
                    done.error = Some(e);
                    break;
                }
            }
        }
        done
    }
}

impl Wal {
    /// True when the storage may sync and write cursors on another thread.
    #[must_use]
    pub fn storage_syncs_elsewhere(&self) -> bool {
        self.storage.syncs_elsewhere()
    }

    /// The cursors whose acknowledged position moved since they were written, as a job for
    /// another thread; `None` when none moved or the storage writes only on its own thread
    /// (then [`Wal::persist_cursors`]). Until [`Wal::end_cursor_write`], they count as not
    /// written.
    #[must_use]
    pub fn begin_cursor_write(&self) -> Option<CursorJob> {
        if !self.storage.syncs_elsewhere() {
            return None;
        }
        let at = std::time::Instant::now();
        let cursors: Vec<_> = self
            .consumers
            .iter()
            .filter_map(|c| c.cursor_work(at))
            .collect();
        (!cursors.is_empty()).then(|| CursorJob {
            cursors,
            storage: Arc::clone(&self.storage),
            dir: self.cursor_dir.clone(),
            at,
        })
    }

    /// Takes a [`CursorJob`]'s outcome: the cursors it wrote are persisted (and their read
    /// journals trimmed); returns how many, or its error (the rest is written next time).
    ///
    /// # Errors
    /// The first write that failed.
    pub fn end_cursor_write(&mut self, done: CursorsDone) -> Result<usize, Error> {
        let storage = Arc::clone(&self.storage);
        let n = done.written.len();
        for w in &done.written {
            // A consumer retired or re-registered meanwhile keeps what it has.
            if let Some(c) = self
                .consumers
                .iter_mut()
                .find(|c| c.name == w.name && !c.retired)
            {
                c.cursor_written(storage.as_ref(), w, done.at);
            }
        }
        done.error.map_or(Ok(n), Err)
    }
}
