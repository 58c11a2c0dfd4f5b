//! The WAL's owner: one thread holds the [`Wal`] and does every operation on it, in the order
//! its bounded queue delivers them; everyone else holds a [`WalHandle`].
//!
//! Why a thread: `fdatasync`, cursor renames and directory syncs take from microseconds to
//! seconds on an SD card. Run inline on an async task (as a shared `Mutex<Wal>` would), they
//! stall every scrape and export scheduled on that runtime thread. Here they block only the
//! owner; a scrape hands its samples over and goes on (the queue applies back-pressure only
//! when it is full), an exporter waits only for what it asked (a batch to read).
//!
//! The syncs themselves run on a second thread (`wal-sync`, [`crate::SyncJob`]): the owner
//! writes what is buffered, hands the `fdatasync`s over and goes on with appends and reads;
//! a sync covers what was written when it started. Files that cannot be synced from another
//! thread (a custom [`crate::storage::Storage`]) and segment seals still sync on the owner.
//! Cursor writes run on the sync thread as well ([`crate::CursorJob`]).
//!
//! Group commit: the owner drains its queue before it syncs. Every caller that asked for
//! durability ([`Durability::Synced`]) among the messages drained waits for that one sync;
//! durable appends arriving while it runs are covered by the next one. So N concurrent
//! durable appends cost one `fdatasync`, not N, and a caller waits for at most the sync
//! under way plus its own.
//!
//! Acknowledgements ([`WalHandle::ack`]) are taken in memory and the cursors written
//! ([`Wal::persist_cursors`]) at the first tick an `fsync_interval` after the last write, or
//! as soon as [`MAX_UNWRITTEN_ACKS`] acknowledgements are waiting, instead of once per batch
//! (each write is a tmp file, fdatasync, rename and directory fsync). So a SIGKILL or power
//! cut re-sends at most the batches acknowledged since the last cursor write, at most
//! `MAX_UNWRITTEN_ACKS` of them, plus the one in flight (see `docs/design.md`, "WAL owner").
//!
//! Statistics: the owner publishes a [`Stats`] snapshot on a `watch` channel at every tick;
//! readers (the clock check, `/metrics`, the status page) never queue behind a sync.
//!
//! The channels are tokio's `sync` ones, which need no runtime: the owner blocks on its queue,
//! async callers await replies.

use crate::{ConsumerId, Error, KeyedSample, Position, SeriesKey, Stats, Wal};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, watch};

mod sync;
use sync::Syncer;

/// Messages the queue holds before senders wait for room.
pub const QUEUE: usize = 1024;

/// Acknowledgements kept in memory before the cursors are written whatever the time: with the
/// batch in flight, what a crash may re-send is at most this many batches plus one.
pub const MAX_UNWRITTEN_ACKS: usize = 16;

/// One sample of an append handed to the owner: owned, since it crosses threads.
#[derive(Debug, Clone)]
pub struct OwnedSample {
    /// The series.
    pub key: SeriesKey,
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value.
    pub value: f64,
}

/// When an append's caller hears back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once the samples are written to the file (readable, lost on power loss).
    Flushed,
    /// Once the sync covering them has returned (group commit).
    Synced,
}

/// The owner stopped (closed or gone): nothing more can be done through the handle.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the WAL is closed")]
pub struct Closed;

/// What an append's caller hears: the WAL's error is shared, since one failed sync answers
/// every caller it covered.
pub type AppendResult = Result<(), Arc<Error>>;

/// A tick's outcome.
#[derive(Debug)]
pub struct Tick {
    /// Whether a sync finished since the last tick, and how it went (syncs run on a thread of
    /// their own: one started by this tick reports at the next).
    pub synced: Result<bool, Arc<Error>>,
    /// Cursor files written since the last tick, or the error of a run of failed writes that
    /// is not over (every tick retries it).
    pub cursors: Result<usize, Arc<Error>>,
    /// The statistics after it, as published to [`WalHandle::stats`].
    pub stats: Arc<Stats>,
}

type Job = Box<dyn FnOnce(&mut Wal) + Send>;

/// What [`WalHandle::append_hinted_then`] calls with the outcome and the ids.
type IdsReport = Box<dyn FnOnce(Result<(), Error>, Vec<u32>) + Send>;

enum Then {
    /// Called on the owner thread with the append's outcome.
    Report(Box<dyn FnOnce(Result<(), Error>) + Send>),
    /// The same, with the series ids the samples got (see [`Wal::append_hinted`]).
    ReportIds(IdsReport),
    Reply(Durability, oneshot::Sender<AppendResult>),
}

enum Msg {
    Append {
        samples: Vec<OwnedSample>,
        /// Hints for the samples, by position; may be shorter (or empty).
        hints: Vec<u32>,
        then: Then,
    },
    Call(Job),
    Ack {
        id: ConsumerId,
        pos: Position,
    },
    Tick {
        now: Instant,
        reply: oneshot::Sender<Tick>,
    },
    Close(oneshot::Sender<Result<(), Error>>),
    /// The sync thread finished a job.
    SyncDone,
}

/// A cheap, clonable way to the WAL's owner thread.
#[derive(Clone)]
pub struct WalHandle {
    tx: mpsc::Sender<Msg>,
    stats: watch::Receiver<Arc<Stats>>,
}

impl std::fmt::Debug for WalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalHandle").finish_non_exhaustive()
    }
}

/// Moves `wal` to a thread of its own (named `wal-owner`) and returns the handle to it. The
/// thread ends at [`WalHandle::close`], or, without closing the WAL (as a crash would), when
/// every handle is dropped.
///
/// # Errors
/// The thread could not be started.
pub fn spawn(wal: Wal) -> std::io::Result<WalHandle> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (stats_tx, stats) = watch::channel(Arc::new(wal.stats()));
    let syncer = Syncer::spawn(tx.downgrade())?;
    std::thread::Builder::new()
        .name("wal-owner".into())
        .spawn(move || Owner::new(wal, stats_tx, syncer).run(rx))?;
    Ok(WalHandle { tx, stats })
}

impl WalHandle {
    /// Appends `samples` and answers once they are durable as `durability` says.
    ///
    /// # Errors
    /// The WAL's error for this append or for the sync covering it; [`Error::Closed`].
    pub async fn append(&self, samples: Vec<OwnedSample>, durability: Durability) -> AppendResult {
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Append {
            samples,
            hints: Vec::new(),
            then: Then::Reply(durability, reply),
        };
        self.tx.send(msg).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Hands `samples` over and returns as soon as the queue took them; `report` is called on
    /// the owner thread with the append's outcome (keep it short: the owner waits for it).
    ///
    /// # Errors
    /// [`Closed`]: the samples were not taken.
    pub async fn append_then(
        &self,
        samples: Vec<OwnedSample>,
        report: impl FnOnce(Result<(), Error>) + Send + 'static,
    ) -> Result<(), Closed> {
        let msg = Msg::Append {
            samples,
            hints: Vec::new(),
            then: Then::Report(Box::new(report)),
        };
        self.tx.send(msg).await.map_err(|_| Closed)
    }

    /// As [`WalHandle::append_then`], with the hints of [`Wal::append_hinted`] by position
    /// (`hints[k]` for `samples[k]`; missing ones are none), and `report` also gets the ids
    /// the samples got: a producer that appends the same series in the same order again
    /// (a scrape) hands them back as the next append's hints.
    ///
    /// # Errors
    /// [`Closed`]: the samples were not taken.
    pub async fn append_hinted_then(
        &self,
        samples: Vec<OwnedSample>,
        hints: Vec<u32>,
        report: impl FnOnce(Result<(), Error>, Vec<u32>) + Send + 'static,
    ) -> Result<(), Closed> {
        let msg = Msg::Append {
            samples,
            hints,
            then: Then::ReportIds(Box::new(report)),
        };
        self.tx.send(msg).await.map_err(|_| Closed)
    }

    /// Hands a scrape's exemplars over, after its samples, and returns as soon as the queue
    /// took them; `report` is called on the owner thread with how many were dropped (their
    /// series is not in the ring) or the error that lost them. `dropped_before` (exemplars
    /// the scrape left out) joins the WAL's count of dropped exemplars.
    ///
    /// # Errors
    /// [`Closed`]: the exemplars were not taken.
    pub async fn append_exemplars_then(
        &self,
        exemplars: Vec<crate::OwnedExemplar>,
        dropped_before: u64,
        report: impl FnOnce(Result<u64, Error>) + Send + 'static,
    ) -> Result<(), Closed> {
        let job: Job = Box::new(move |wal| {
            wal.counters.exemplars_dropped += dropped_before;
            report(wal.append_exemplars(&exemplars));
        });
        self.tx.send(Msg::Call(job)).await.map_err(|_| Closed)
    }

    /// Runs `f` on the owner thread and returns its result.
    ///
    /// # Errors
    /// [`Closed`].
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Wal) -> R + Send + 'static,
    ) -> Result<R, Closed> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |wal| {
            let _ = reply.send(f(wal));
        });
        self.tx.send(Msg::Call(job)).await.map_err(|_| Closed)?;
        rx.await.map_err(|_| Closed)
    }

    /// As [`WalHandle::call`], for code that is not async (start-up, reload): blocks the
    /// calling thread until the owner has run `f`.
    ///
    /// # Errors
    /// [`Closed`].
    pub fn call_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Wal) -> R + Send + 'static,
    ) -> Result<R, Closed> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |wal| {
            let _ = reply.send(f(wal));
        });
        // `try_send` in a loop rather than `blocking_send`, which refuses to run inside a
        // runtime; start-up and reload call this from one.
        let mut msg = Msg::Call(job);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
                Err(mpsc::error::TrySendError::Full(m)) => {
                    msg = m;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        }
        rx.recv().map_err(|_| Closed)
    }

    /// Acknowledges `pos` for consumer `id` (a position from a batch it read), without waiting:
    /// reads go on from it at once, and the cursor file follows within an `fsync_interval`
    /// (or [`MAX_UNWRITTEN_ACKS`] acknowledgements). A refused position is logged by the
    /// owner; a failed cursor write is reported by the next [`Tick`].
    ///
    /// # Errors
    /// [`Closed`].
    pub async fn ack(&self, id: ConsumerId, pos: Position) -> Result<(), Closed> {
        self.tx.send(Msg::Ack { id, pos }).await.map_err(|_| Closed)
    }

    /// Syncs when due, writes pending acknowledgements when due, and publishes fresh
    /// statistics.
    /// `now` is the owner's clock reading (the WAL has none).
    ///
    /// # Errors
    /// [`Closed`].
    pub async fn tick(&self, now: Instant) -> Result<Tick, Closed> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Tick { now, reply })
            .await
            .map_err(|_| Closed)?;
        rx.await.map_err(|_| Closed)
    }

    /// Messages sent to the owner and not yet taken off its queue.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The latest statistics snapshot (updated at every tick).
    #[must_use]
    pub fn stats(&self) -> watch::Receiver<Arc<Stats>> {
        self.stats.clone()
    }

    /// Runs what is queued before, then persists acknowledgements, syncs, seals and closes the
    /// WAL; the owner thread ends. Later calls through any handle answer [`Closed`].
    ///
    /// # Errors
    /// The WAL's close error; [`Error::Closed`] when it was closed already.
    pub async fn close(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close(reply))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

fn closed() -> Arc<Error> {
    Arc::new(Error::Closed)
}

struct Owner {
    wal: Option<Wal>,
    stats: watch::Sender<Arc<Stats>>,
    syncer: Syncer,
    /// Durable appends waiting for a sync to start.
    waiting: Vec<oneshot::Sender<AppendResult>>,
    /// While a job runs on the sync thread: the appends it covers.
    syncing: Option<Vec<oneshot::Sender<AppendResult>>>,
    /// How the syncs finished since the last tick went (the last failure wins).
    synced: Option<Result<(), Arc<Error>>>,
    /// A cursor job runs on the sync thread.
    writing_cursors: bool,
    /// Cursors written since the last tick.
    cursors_written: Option<usize>,
    /// Acknowledgements taken since the cursors were last written.
    unwritten: usize,
    /// When the cursors were last written (by a tick).
    cursors_at: Option<Instant>,
    /// The last cursor write failed: the next tick retries, whatever the time.
    cursor_error: Option<Arc<Error>>,
}

impl Owner {
    fn new(wal: Wal, stats: watch::Sender<Arc<Stats>>, syncer: Syncer) -> Self {
        Self {
            wal: Some(wal),
            stats,
            syncer,
            waiting: Vec::new(),
            syncing: None,
            synced: None,
            writing_cursors: false,
            cursors_written: None,
            unwritten: 0,
            cursors_at: None,
            cursor_error: None,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            // Drain what is queued: one sync then covers every durable append among it.
            while let Some(msg) = next.take() {
                if !self.handle(msg) {
                    return;
                }
                next = rx.try_recv().ok();
            }
            self.group_sync();
        }
        // Every handle dropped without closing: as a crash, what was not synced is lost.
    }

    /// Handles one message; false once the WAL is closed.
    fn handle(&mut self, msg: Msg) -> bool {
        let Some(wal) = self.wal.as_mut() else {
            return false;
        };
        match msg {
            Msg::Append {
                samples,
                hints,
                then,
            } => {
                let keyed = samples.iter().map(|s| KeyedSample {
                    key: &s.key,
                    t_ms: s.t_ms,
                    value: s.value,
                });
                // The hints become the ids, in place.
                let mut ids = hints;
                let r = if let Then::ReportIds(_) = then {
                    wal.append_hinted(keyed, &mut ids)
                } else {
                    wal.append_keyed(keyed)
                };
                match then {
                    Then::Report(report) => report(r),
                    Then::ReportIds(report) => report(r, ids),
                    Then::Reply(_, reply) if r.is_err() => {
                        let _ = reply.send(r.map_err(Arc::new));
                    }
                    Then::Reply(Durability::Flushed, reply) => {
                        let _ = reply.send(wal.flush().map_err(Arc::new));
                    }
                    Then::Reply(Durability::Synced, reply) => self.waiting.push(reply),
                }
            }
            Msg::Call(job) => job(wal),
            Msg::Ack { id, pos } => match wal.ack_deferred(id, pos) {
                Ok(moved) => {
                    self.unwritten += usize::from(moved);
                    if self.unwritten >= MAX_UNWRITTEN_ACKS {
                        // A failure is kept, logged and reported by the next tick.
                        self.start_cursors();
                    }
                }
                Err(e) => log::error!(
                    "WAL: an acknowledgement was refused; the batch will be sent again. error={e}"
                ),
            },
            Msg::Tick { now, reply } => {
                let due = self.cursor_error.is_some()
                    || self.cursors_at.is_none_or(|at| {
                        now.saturating_duration_since(at) >= wal.opts.fsync_interval
                    });
                if (self.unwritten > 0 || self.cursor_error.is_some()) && due {
                    self.cursors_at = Some(now);
                    self.start_cursors();
                }
                let written = self.cursors_written.take().unwrap_or(0);
                let cursors = self.cursor_error.clone().map_or(Ok(written), Err);
                let Some(wal) = self.wal.as_mut() else {
                    return false;
                };
                if self.syncing.is_none() && wal.sync_due(now) {
                    self.start_sync(Some(now));
                }
                let synced = match self.synced.take() {
                    None => Ok(false),
                    Some(r) => r.map(|()| true),
                };
                let Some(wal) = self.wal.as_mut() else {
                    return false;
                };
                let stats = Arc::new(wal.stats());
                self.stats.send_replace(Arc::clone(&stats));
                let _ = reply.send(Tick {
                    synced,
                    cursors,
                    stats,
                });
            }
            Msg::SyncDone => self.sync_done(false),
            Msg::Close(reply) => {
                // The job running first, then the appends still waiting, synced here.
                self.sync_done(true);
                if !self.waiting.is_empty() {
                    let r = self
                        .wal
                        .as_mut()
                        .map_or(Ok(()), Wal::sync)
                        .map(|()| true)
                        .map_err(Arc::new);
                    self.finished(r);
                }
                let mut wal = self.wal.take().expect("checked above");
                let cursors = wal.persist_cursors();
                let closed = wal.close();
                let _ = reply.send(closed.and(cursors.map(|_| ())));
                return false;
            }
        }
        true
    }
}
