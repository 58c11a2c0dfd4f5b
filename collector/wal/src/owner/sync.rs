//! The owner's side of the sync thread: the jobs it hands over (data syncs and cursor
//! writes) and what it does when they finish. See the parent module's documentation.

use super::{MAX_UNWRITTEN_ACKS, Msg, Owner};
use crate::{CursorJob, CursorsDone, Error, SyncDone, SyncJob, SyncStart};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Work for the sync thread.
pub(super) enum Work {
    Sync(SyncJob),
    Cursors(CursorJob),
}

/// Its outcome.
pub(super) enum Done {
    Sync(SyncDone),
    Cursors(CursorsDone),
}

/// The thread that runs [`SyncJob`]s and [`CursorJob`]s, so the owner goes on while a file
/// syncs. It wakes the owner through its queue (a weak sender: it does not keep the queue
/// open).
pub(super) struct Syncer {
    pub(super) jobs: std::sync::mpsc::Sender<Work>,
    pub(super) done: std::sync::mpsc::Receiver<Done>,
}

impl Syncer {
    pub(super) fn spawn(wake: mpsc::WeakSender<Msg>) -> std::io::Result<Self> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<Work>();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                while let Ok(work) = job_rx.recv() {
                    let done = match work {
                        Work::Sync(job) => Done::Sync(job.run()),
                        Work::Cursors(job) => Done::Cursors(job.run()),
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                    if let Some(tx) = wake.upgrade() {
                        let _ = tx.blocking_send(Msg::SyncDone);
                    }
                }
            })?;
        Ok(Self { jobs, done })
    }
}

impl Owner {
    /// Starts a sync for the durable appends waiting, unless one is running (they wait for the
    /// next, started when it ends).
    pub(super) fn group_sync(&mut self) {
        if self.waiting.is_empty() || self.syncing.is_some() {
            return;
        }
        self.start_sync(None);
    }

    /// Starts a sync on the sync thread covering every durable append waiting; a sync that
    /// cannot run there runs here and answers them at once.
    pub(super) fn start_sync(&mut self, now: Option<Instant>) {
        let Some(wal) = self.wal.as_mut() else {
            return;
        };
        let r = match wal.begin_sync(now) {
            Ok(SyncStart::Job(job)) => match self.syncer.jobs.send(Work::Sync(job)) {
                Ok(()) => {
                    self.syncing = Some(std::mem::take(&mut self.waiting));
                    return;
                }
                // The sync thread is gone: sync here.
                Err(_) => wal.sync().map(|()| true),
            },
            Ok(SyncStart::Synced) => Ok(true),
            Ok(SyncStart::Clean) => Ok(false),
            Err(e) => Err(e),
        }
        .map_err(Arc::new);
        self.finished(r);
    }

    /// Answers the appends a sync covered and keeps its outcome for the next tick.
    pub(super) fn finished(&mut self, r: Result<bool, Arc<Error>>) {
        let covered = self.syncing.take().unwrap_or_default();
        let waiting = std::mem::take(&mut self.waiting);
        let answer = r.clone().map(|_| ());
        for w in covered.into_iter().chain(waiting) {
            let _ = w.send(answer.clone());
        }
        self.finished_outcome(r);
    }

    /// Takes the sync thread's finished jobs; with `wait`, blocks until none is running.
    pub(super) fn sync_done(&mut self, wait: bool) {
        while self.syncing.is_some() || self.writing_cursors {
            let done = if wait {
                self.syncer.done.recv().ok()
            } else {
                self.syncer.done.try_recv().ok()
            };
            match done {
                Some(Done::Sync(d)) => self.take_sync(d),
                Some(Done::Cursors(d)) => self.take_cursors(d),
                None if wait => {
                    // The thread died with its jobs: what they covered counts as not done.
                    self.finished(Err(Arc::new(Error::Closed)));
                    self.writing_cursors = false;
                }
                None => break,
            }
        }
        if !wait {
            // Appends that arrived meanwhile get the next sync; acknowledgements that piled
            // up the next cursor write.
            self.group_sync();
            if self.unwritten >= MAX_UNWRITTEN_ACKS {
                self.start_cursors();
            }
        }
    }

    fn take_sync(&mut self, done: SyncDone) {
        let Some(wal) = self.wal.as_mut() else {
            return;
        };
        let r = wal.end_sync(done).map(|()| true).map_err(Arc::new);
        let covered = self.syncing.take().unwrap_or_default();
        let answer = r.clone().map(|_| ());
        for w in covered {
            let _ = w.send(answer.clone());
        }
        self.finished_outcome(r);
    }

    fn take_cursors(&mut self, done: CursorsDone) {
        self.writing_cursors = false;
        let Some(wal) = self.wal.as_mut() else {
            return;
        };
        let r = wal.end_cursor_write(done);
        self.cursor_outcome(r);
    }

    /// Starts writing the moved cursors on the sync thread (or here, for a storage that writes
    /// only on its own thread), unless a write is under way.
    pub(super) fn start_cursors(&mut self) {
        if self.writing_cursors {
            return;
        }
        let Some(wal) = self.wal.as_mut() else {
            return;
        };
        if !wal.storage_syncs_elsewhere() {
            self.write_cursors();
            return;
        }
        let Some(job) = wal.begin_cursor_write() else {
            self.unwritten = 0;
            return;
        };
        if self.syncer.jobs.send(Work::Cursors(job)).is_ok() {
            self.writing_cursors = true;
            self.unwritten = 0;
        } else {
            self.write_cursors();
        }
    }

    fn finished_outcome(&mut self, r: Result<bool, Arc<Error>>) {
        match r {
            Ok(false) => {}
            Ok(true) if matches!(self.synced, Some(Err(_))) => {}
            Ok(true) => self.synced = Some(Ok(())),
            Err(e) => self.synced = Some(Err(e)),
        }
    }

    /// Writes the moved cursors here; keeps the error for the next tick to retry and report.
    pub(super) fn write_cursors(&mut self) {
        let Some(wal) = self.wal.as_mut() else {
            return;
        };
        let r = wal.persist_cursors();
        if r.is_ok() {
            self.unwritten = 0;
        }
        self.cursor_outcome(r);
    }

    /// Logs the first of a run of failed cursor writes; a success ends the run. While it
    /// lasts, every tick retries and reports it.
    fn cursor_outcome(&mut self, r: Result<usize, Error>) {
        match r {
            Ok(n) => {
                self.cursor_error = None;
                self.cursors_written = Some(n + self.cursors_written.unwrap_or(0));
            }
            Err(e) => {
                if self.cursor_error.is_none() {
                    log::error!(
                        "persisting WAL cursors failed; acknowledged batches may be sent again after a restart. error={e}"
                    );
                }
                self.cursor_error = Some(Arc::new(e));
            }
        }
    }
}
