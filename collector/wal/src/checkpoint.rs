//! Keeping the series log in step with the segments: writing definitions before the samples
//! that name them, syncing them first, and checkpoints (see `serieslog.rs` for the file and
//! the order of a checkpoint's steps).

use crate::error::{Error, is_enospc};
use crate::serieslog::{self, LogHeader, SeriesLog};
use crate::wal::Wal;

impl Wal {
    /// Bytes of the series log once its queued definitions are written.
    pub(crate) fn log_bytes(&self) -> u64 {
        self.log.as_ref().map_or(0, SeriesLog::bytes)
    }

    /// The oldest segment still in the ring (or the next one when the ring is empty).
    pub(crate) fn oldest_seq(&self) -> u64 {
        self.sealed
            .front()
            .map(|s| s.seq)
            .or(self.open.as_ref().map(|o| o.seq))
            .unwrap_or(self.next_seq)
    }

    /// Replaces the series log with one holding the series used by segment `oldest` or later
    /// (see `serieslog.rs`). On failure the current log is marked for rewriting, so nothing is
    /// synced before a later checkpoint succeeds.
    pub(crate) fn checkpoint(&mut self, oldest: u64) -> Result<(), Error> {
        self.log_gen += 1;
        let header = LogHeader {
            generation: self.log_gen,
            page_bytes: self.opts.page_bytes,
            id_bound: self.series.id_bound(),
        };
        let old = self.log.as_ref().map(|l| l.generation);
        match serieslog::checkpoint(
            self.storage.as_ref(),
            &self.dir,
            &header,
            self.series.live_since(oldest),
            old,
        ) {
            Ok(log) => {
                if old.is_none() {
                    // The first log of this process: older ones found at open go.
                    if let Err(e) =
                        serieslog::remove_older(self.storage.as_ref(), &self.dir, self.log_gen)
                    {
                        log::warn!("Could not delete an old WAL series log. {e}");
                    }
                }
                self.log = Some(log);
                self.series.retain_since(oldest);
                Ok(())
            }
            Err(e) => {
                if let Some(l) = self.log.as_mut() {
                    l.broken = true;
                }
                log::error!(
                    "WAL series log checkpoint failed; it is retried before the next sync. {e}"
                );
                Err(e)
            }
        }
    }

    /// Writes out and syncs the series log, rewriting it first if an earlier write failed.
    pub(crate) fn sync_log(&mut self) -> Result<(), Error> {
        if self.log.as_ref().is_none_or(|l| l.broken) {
            loop {
                match self.checkpoint(self.oldest_seq()) {
                    Err(e) if e.is_disk_full() && !self.sealed.is_empty() => self.make_room()?,
                    other => return other,
                }
            }
        }
        self.write_log()?;
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        if let Err(e) = log.sync() {
            log.broken = true;
            return Err(e);
        }
        Ok(())
    }

    /// Frames and writes the series log's queued definitions, dropping old segments when the
    /// file system is full.
    pub(crate) fn write_log(&mut self) -> Result<(), Error> {
        loop {
            let Some(log) = self.log.as_mut() else {
                return Ok(());
            };
            match log.write_out() {
                Ok(()) => return Ok(()),
                Err(e) if is_enospc(&e) && !self.sealed.is_empty() => {
                    log::warn!(
                        "Disk full while writing the WAL series log; dropping the oldest segment. dir={}",
                        self.dir.display()
                    );
                    self.make_room()?;
                }
                Err(e) => {
                    log.broken = true;
                    return Err(Error::io("write", &log.path, e));
                }
            }
        }
    }

    /// Frames what is pending: series definitions first, then the samples naming them.
    pub(crate) fn emit(&mut self) {
        if let Some(log) = self.log.as_mut() {
            log.emit();
        }
        if let Some(open) = self.open.as_mut() {
            open.emit_pending();
        }
    }
}
