//! The owner thread against a disk whose `fdatasync` blocks until the test lets it go: no
//! appender waits for a sync in progress, durable appends queued during one sync share the
//! next (group commit), a sync on the sync thread holds up neither appends nor reads, and
//! acknowledgements reach the cursor file only at a tick.
//!
//! No timing is asserted: a sync is held on a gate, and the test counts what completed while
//! it was held.

use magpie_wal::owner::{self, Durability, OwnedSample, WalHandle};
use magpie_wal::storage::{FileSync, OsStorage, Storage, StorageFile};
use magpie_wal::{Options, SeriesKey, Wal};
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Counts `fdatasync`s and, while armed, holds each one until released.
#[derive(Debug, Default)]
struct Gate {
    syncs: AtomicU64,
    armed: AtomicBool,
    /// (a sync is waiting, released)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Gate {
    fn pass(&self) {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
        s.0 = false;
    }

    /// Blocks until a sync is held at the gate.
    fn wait_held(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }

    fn release(&self) {
        self.armed.store(false, Ordering::SeqCst);
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// `background`: files give a handle for syncs on another thread.
#[derive(Debug)]
struct Gated(Arc<Gate>, bool);

#[derive(Debug)]
struct GatedFile(Box<dyn StorageFile>, Arc<Gate>, bool);

struct GatedSync(Box<dyn FileSync>, Arc<Gate>);

impl FileSync for GatedSync {
    fn sync_data(&mut self) -> io::Result<()> {
        self.1.pass();
        self.0.sync_data()
    }
}

impl StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.1.pass();
        self.0.sync_data()
    }
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        self.0.allocate(len)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn syncer(&self) -> Option<Box<dyn FileSync>> {
        if !self.2 {
            return None;
        }
        Some(Box::new(GatedSync(self.0.syncer()?, Arc::clone(&self.1))))
    }
}

impl Storage for Gated {
    fn syncs_elsewhere(&self) -> bool {
        self.1
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(GatedFile(
            OsStorage.create(path)?,
            Arc::clone(&self.0),
            self.1,
        )))
    }
    fn open(&self, path: &Path, write: bool) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(GatedFile(
            OsStorage.open(path, write)?,
            Arc::clone(&self.0),
            self.1,
        )))
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        OsStorage.list(dir)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        OsStorage.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsStorage.rename(from, to)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        OsStorage.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        OsStorage.lock(path)
    }
    fn available(&self, dir: &Path) -> io::Result<u64> {
        OsStorage.available(dir)
    }
}

fn sample(key: &SeriesKey, t_ms: i64) -> Vec<OwnedSample> {
    vec![OwnedSample {
        key: key.clone(),
        t_ms,
        value: 1.0,
    }]
}

/// The owner over a gated disk whose files sync on the owner thread.
fn open(dir: &Path, gate: &Arc<Gate>) -> WalHandle {
    open_with(dir, gate, false)
}

fn open_with(dir: &Path, gate: &Arc<Gate>, background: bool) -> WalHandle {
    let storage = Arc::new(Gated(Arc::clone(gate), background));
    let wal = Wal::open_with(dir, Options::default(), storage).unwrap();
    owner::spawn(wal).unwrap()
}

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_on_while_a_sync_is_held_and_the_waiters_share_one_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let wal = open(tmp.path(), &gate);
    let key = SeriesKey::new(&[("__name__", "up"), ("job", "a")]).unwrap();
    // The series log gets its definition synced now, so later syncs are the segment's only.
    wal.append(sample(&key, T0), Durability::Synced)
        .await
        .unwrap();

    gate.armed.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let wal = wal.clone();
        let key = key.clone();
        async move { wal.append(sample(&key, T0 + 1), Durability::Synced).await }
    });
    tokio::task::spawn_blocking({
        let gate = Arc::clone(&gate);
        move || gate.wait_held()
    })
    .await
    .unwrap();
    let syncs_held = gate.syncs.load(Ordering::SeqCst);

    // A scraper hands 200 scrapes over while the sync is held: none waits for it, and none is
    // appended yet (the owner is inside the sync).
    let reported = Arc::new(AtomicU64::new(0));
    for i in 0..200 {
        let reported = Arc::clone(&reported);
        wal.append_then(sample(&key, T0 + 10 + i), move |r| {
            r.unwrap();
            reported.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    }
    assert_eq!(
        reported.load(Ordering::SeqCst),
        0,
        "the owner is held in its sync"
    );
    // Twenty durable appends queue behind the sync; they will share the next one.
    let durable: Vec<_> = (0..20)
        .map(|i| {
            let wal = wal.clone();
            let key = key.clone();
            tokio::spawn(async move {
                wal.append(sample(&key, T0 + 1000 + i), Durability::Synced)
                    .await
            })
        })
        .collect();
    // Spawned is not sent: wait until all twenty are on the owner's queue, behind the 200.
    let deadline = Instant::now() + Duration::from_secs(30);
    while wal.queued() < 220 {
        assert!(
            Instant::now() < deadline,
            "only {} messages queued",
            wal.queued()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The statistics snapshot (the last tick's; none ran yet) answers while the owner is
    // blocked.
    assert_eq!(wal.stats().borrow().samples_appended, 0);
    assert!(!first.is_finished());

    gate.release();
    first.await.unwrap().unwrap();
    for d in durable {
        d.await.unwrap().unwrap();
    }
    assert_eq!(reported.load(Ordering::SeqCst), 200);
    let group_syncs = gate.syncs.load(Ordering::SeqCst) - syncs_held;
    assert!(
        group_syncs <= 2,
        "20 durable appends queued during one sync took {group_syncs} more syncs"
    );
    let tick = wal.tick(Instant::now()).await.unwrap();
    assert_eq!(tick.stats.samples_appended, 222);
    wal.close().await.unwrap();
    assert!(wal.tick(Instant::now()).await.is_err(), "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_the_sync_thread_holds_up_neither_appends_nor_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let wal = open_with(tmp.path(), &gate, true);
    let key = SeriesKey::new(&[("__name__", "up"), ("job", "a")]).unwrap();
    wal.append(sample(&key, T0), Durability::Synced)
        .await
        .unwrap();
    let c = wal.call(|w| w.consumer("central")).await.unwrap().unwrap();

    gate.armed.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let wal = wal.clone();
        let key = key.clone();
        async move { wal.append(sample(&key, T0 + 1), Durability::Synced).await }
    });
    tokio::task::spawn_blocking({
        let gate = Arc::clone(&gate);
        move || gate.wait_held()
    })
    .await
    .unwrap();
    let syncs_held = gate.syncs.load(Ordering::SeqCst);

    // While the sync is held: 200 scrapes are appended (their reports come back)...
    let reported = Arc::new(AtomicU64::new(0));
    for i in 0..200 {
        let reported = Arc::clone(&reported);
        wal.append_then(sample(&key, T0 + 10 + i), move |r| {
            r.unwrap();
            reported.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    }
    // ...an exporter reads them (a call queued after the appends runs after them)...
    // (A bound, not a timing: an owner inside the sync would never answer.)
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        wal.call(move |w| w.read(c, 10_000).unwrap().map(|b| (b.samples.len(), b.end))),
    )
    .await
    .expect("the read waited for the sync")
    .unwrap()
    .unwrap();
    assert_eq!(read.0, 202);
    assert_eq!(reported.load(Ordering::SeqCst), 200);
    // ...and acknowledges them: the tick that writes the cursor (behind the held sync, on
    // the sync thread) answers with fresh statistics.
    wal.ack(c, read.1).await.unwrap();
    let tick = tokio::time::timeout(std::time::Duration::from_secs(60), wal.tick(Instant::now()))
        .await
        .expect("the tick waited for the cursor write")
        .unwrap();
    assert_eq!(tick.stats.samples_appended, 202);
    let cursor = tmp.path().join("cursors/central.cursor");
    assert!(!cursor.exists(), "written while the sync is held");
    // Durable appends wait for a sync that covers them: the one held does not.
    let durable: Vec<_> = (0..20)
        .map(|i| {
            let wal = wal.clone();
            let key = key.clone();
            tokio::spawn(async move {
                wal.append(sample(&key, T0 + 1000 + i), Durability::Synced)
                    .await
            })
        })
        .collect();
    // Wait until the owner has taken all of them (under emulation a spawned task can start
    // late, and one not yet queued at the release would need a sync of its own).
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while wal.call(|w| w.stats().samples_appended).await.unwrap() < 222 {
        assert!(
            Instant::now() < deadline,
            "the durable appends reached the owner"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!first.is_finished());
    assert!(durable.iter().all(|d| !d.is_finished()));

    gate.release();
    first.await.unwrap().unwrap();
    for d in durable {
        d.await.unwrap().unwrap();
    }
    let group_syncs = gate.syncs.load(Ordering::SeqCst) - syncs_held;
    assert!(
        group_syncs <= 2,
        "20 durable appends queued during one sync took {group_syncs} more syncs"
    );
    // The sync and the cursor write finish after the release; the next tick reports them.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let tick = loop {
        let tick = wal.tick(Instant::now()).await.unwrap();
        if matches!(tick.cursors, Ok(1)) {
            break tick;
        }
        assert!(Instant::now() < deadline, "{:?}", tick.cursors);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert!(tick.synced.is_ok());
    assert!(cursor.exists());
    wal.close().await.unwrap();
    // Everything is on disk after close.
    let mut back = Wal::open(tmp.path(), Options::default()).unwrap();
    let c = back.consumer("check").unwrap();
    assert_eq!(back.read(c, 10_000).unwrap().unwrap().samples.len(), 222);
}

#[tokio::test]
async fn acknowledgements_reach_the_cursor_at_a_tick() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let wal = open(tmp.path(), &gate);
    let key = SeriesKey::new(&[("__name__", "up"), ("job", "a")]).unwrap();
    for i in 0..10 {
        wal.append(sample(&key, T0 + i), Durability::Flushed)
            .await
            .unwrap();
    }
    let (id, end) = wal
        .call(|w| {
            let id = w.consumer("central").unwrap();
            let b = w.read(id, 100).unwrap().unwrap();
            assert_eq!(b.samples.len(), 10);
            (id, b.end)
        })
        .await
        .unwrap();
    wal.ack(id, end).await.unwrap();
    let cursor = tmp.path().join("cursors/central.cursor");
    let before = std::fs::read(&cursor).ok();
    let tick = wal.tick(Instant::now()).await.unwrap();
    assert_eq!(tick.cursors.unwrap(), 1);
    let after = std::fs::read(&cursor).unwrap();
    assert_ne!(
        before.as_deref(),
        Some(&after[..]),
        "the tick wrote the cursor"
    );
    assert_eq!(wal.tick(Instant::now()).await.unwrap().cursors.unwrap(), 0);
    wal.close().await.unwrap();

    // Reopened, the consumer resumes after what was acknowledged.
    let mut w = Wal::open(tmp.path(), Options::default()).unwrap();
    let id = w.consumer("central").unwrap();
    assert!(w.read(id, 100).unwrap().is_none());
}

#[tokio::test]
async fn an_acknowledgement_not_yet_written_is_read_again_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let wal = open(tmp.path(), &gate);
    let key = SeriesKey::new(&[("__name__", "up"), ("job", "a")]).unwrap();
    wal.append(sample(&key, T0), Durability::Synced)
        .await
        .unwrap();
    let (id, end) = wal
        .call(|w| {
            let id = w.consumer("central").unwrap();
            (id, w.read(id, 100).unwrap().unwrap().end)
        })
        .await
        .unwrap();
    wal.ack(id, end).await.unwrap();
    // The last handle goes without a close or a tick: as a SIGKILL.
    drop(wal);
    let mut w = loop {
        match Wal::open(tmp.path(), Options::default()) {
            Ok(w) => break w,
            // The owner thread may still hold the directory lock for a moment.
            Err(magpie_wal::Error::Locked(_)) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    let id = w.consumer("central").unwrap();
    assert_eq!(w.read(id, 100).unwrap().unwrap().samples.len(), 1);
}

#[tokio::test]
async fn enough_acknowledgements_write_the_cursor_without_a_tick() {
    let tmp = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let wal = open(tmp.path(), &gate);
    let key = SeriesKey::new(&[("__name__", "up"), ("job", "a")]).unwrap();
    let n = owner::MAX_UNWRITTEN_ACKS;
    for i in 0..n {
        wal.append(
            sample(&key, T0 + i64::try_from(i).unwrap()),
            Durability::Flushed,
        )
        .await
        .unwrap();
    }
    let id = wal.call(|w| w.consumer("central").unwrap()).await.unwrap();
    let read_one = move |w: &mut Wal| w.read(id, 1).unwrap().unwrap().end;
    let cursor = tmp.path().join("cursors/central.cursor");
    for i in 0..n {
        let end = wal.call(read_one).await.unwrap();
        wal.ack(id, end).await.unwrap();
        // Queued after the acknowledgement: runs once the owner has taken it.
        wal.call(|_| ()).await.unwrap();
        assert_eq!(
            cursor.exists(),
            i + 1 == n,
            "after {} acknowledgements",
            i + 1
        );
    }
    drop(wal);
    let mut w = loop {
        match Wal::open(tmp.path(), Options::default()) {
            Ok(w) => break w,
            Err(magpie_wal::Error::Locked(_)) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    let id = w.consumer("central").unwrap();
    assert!(w.read(id, 100).unwrap().is_none(), "all {n} acknowledged");
}
