//! What a slow disk sync costs the scrapes that share a runtime thread with it, with the WAL
//! behind a mutex (sync inline on the runtime, as before the owner thread) and behind its
//! owner thread. Prints figures; asserts nothing.
//!
//! `cargo run --release -p magpie-wal --example owner_stall [sync_ms]` (default 200 ms per
//! `fdatasync`, an SD card under write load). One runtime thread (a small gateway's core),
//! 4 targets of 1000 samples every 100 ms for 10 s, the WAL synced every second. A scrape's
//! "append time" is from its scheduled start until its samples are in (or handed to) the WAL:
//! the lateness a sync on its thread causes, plus the append.
//! Behind the owner, an exporter reads and acknowledges batches as they come; a read's time
//! is from asking to having the batch. The owner runs twice: syncing on its own thread (a
//! storage without `StorageFile::syncer`) and on the `wal-sync` thread.
//! Then CPU per million samples appended as fast as possible on the real disk, both ways.

use magpie_wal::owner::{self, OwnedSample};
use magpie_wal::storage::{FileSync, OsStorage, Storage, StorageFile};
use magpie_wal::{KeyedSample, Options, SeriesKey, Wal};
use parking_lot::Mutex;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A disk whose syncs take this long; `true`: files give handles for syncs on another thread.
#[derive(Debug)]
struct Slow(Duration, bool);
#[derive(Debug)]
struct SlowFile(Box<dyn StorageFile>, Duration, bool);

struct SlowSync(Box<dyn FileSync>, Duration);

impl FileSync for SlowSync {
    fn sync_data(&mut self) -> io::Result<()> {
        std::thread::sleep(self.1);
        self.0.sync_data()
    }
}

impl StorageFile for SlowFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        std::thread::sleep(self.1);
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
        Some(Box::new(SlowSync(self.0.syncer()?, self.1)))
    }
}

impl Storage for Slow {
    fn syncs_elsewhere(&self) -> bool {
        self.1
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(SlowFile(OsStorage.create(path)?, self.0, self.1)))
    }
    fn open(&self, path: &Path, write: bool) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(SlowFile(
            OsStorage.open(path, write)?,
            self.0,
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
        std::thread::sleep(self.0);
        OsStorage.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn StorageFile>>> {
        OsStorage.lock(path)
    }
    fn available(&self, dir: &Path) -> io::Result<u64> {
        OsStorage.available(dir)
    }
}

const TARGETS: usize = 4;
const SERIES: usize = 1000;
const INTERVAL: Duration = Duration::from_millis(100);
const RUN: Duration = Duration::from_secs(10);

fn keys(target: usize) -> Vec<SeriesKey> {
    (0..SERIES)
        .map(|i| {
            let (t, s) = (target.to_string(), i.to_string());
            SeriesKey::new(&[("__name__", "m"), ("s", &s), ("t", &t)]).unwrap()
        })
        .collect()
}

fn now_ms() -> i64 {
    1_700_000_000_000
        + i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                % 1_000_000_000,
        )
        .unwrap()
}

/// CPU time (user + system) of this process so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn report(name: &str, what: &str, mut waits: Vec<Duration>) {
    waits.sort();
    let p = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((waits.len() - 1) as f64 * q) as usize;
        waits[i]
    };
    println!(
        "{name:<14} {what:<7} {:>5}  time p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}",
        waits.len(),
        p(0.5),
        p(0.99),
        waits.last().unwrap()
    );
}

fn opts() -> Options {
    Options {
        fsync_interval: Duration::from_secs(1),
        ..Options::default()
    }
}

async fn with_mutex(dir: &Path, storage: Arc<dyn Storage>) -> Vec<Duration> {
    let wal = Arc::new(Mutex::new(Wal::open_with(dir, opts(), storage).unwrap()));
    let end = Instant::now() + RUN;
    let syncer = tokio::spawn({
        let wal = Arc::clone(&wal);
        async move {
            while Instant::now() < end {
                tokio::time::sleep(INTERVAL).await;
                let _ = wal.lock().sync_if_due(Instant::now());
            }
        }
    });
    let mut tasks = Vec::new();
    for t in 0..TARGETS {
        let wal = Arc::clone(&wal);
        tasks.push(tokio::spawn(async move {
            let keys = keys(t);
            let mut waits = Vec::new();
            let mut tick = tokio::time::interval(INTERVAL);
            while Instant::now() < end {
                let due = tick.tick().await;
                let ts = now_ms();
                wal.lock()
                    .append_keyed(keys.iter().map(|key| KeyedSample {
                        key,
                        t_ms: ts,
                        value: 1.0,
                    }))
                    .unwrap();
                waits.push(due.elapsed());
            }
            waits
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    syncer.await.unwrap();
    all
}

/// Append times of the scrapes and read times of the exporter.
async fn with_owner(dir: &Path, storage: Arc<dyn Storage>) -> (Vec<Duration>, Vec<Duration>) {
    let wal = owner::spawn(Wal::open_with(dir, opts(), storage).unwrap()).unwrap();
    let end = Instant::now() + RUN;
    let c = wal.call(|w| w.consumer("central")).await.unwrap().unwrap();
    let exporter = tokio::spawn({
        let wal = wal.clone();
        async move {
            let mut reads = Vec::new();
            while Instant::now() < end {
                let asked = Instant::now();
                let batch = wal
                    .call(move |w| w.read(c, 2000).unwrap().map(|b| b.end))
                    .await
                    .unwrap();
                reads.push(asked.elapsed());
                match batch {
                    Some(pos) => wal.ack(c, pos).await.unwrap(),
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            reads
        }
    });
    let syncer = tokio::spawn({
        let wal = wal.clone();
        async move {
            while Instant::now() < end {
                tokio::time::sleep(INTERVAL).await;
                let _ = wal.tick(Instant::now()).await;
            }
        }
    });
    let mut tasks = Vec::new();
    for t in 0..TARGETS {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let keys = keys(t);
            let mut waits = Vec::new();
            let mut tick = tokio::time::interval(INTERVAL);
            while Instant::now() < end {
                let due = tick.tick().await;
                let ts = now_ms();
                let samples = keys
                    .iter()
                    .map(|key| OwnedSample {
                        key: key.clone(),
                        t_ms: ts,
                        value: 1.0,
                    })
                    .collect();
                wal.append_then(samples, |r| r.unwrap()).await.unwrap();
                waits.push(due.elapsed());
            }
            waits
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    syncer.await.unwrap();
    let reads = exporter.await.unwrap();
    wal.close().await.unwrap();
    (all, reads)
}

/// CPU per million samples appended in batches of `SERIES` as fast as possible.
async fn cpu_per_million(dir: &Path, via_owner: bool) -> Duration {
    const BATCHES: usize = 1000;
    let keys = keys(0);
    let before = cpu();
    if via_owner {
        let wal = owner::spawn(Wal::open(dir, opts()).unwrap()).unwrap();
        for b in 0..BATCHES {
            let samples = keys
                .iter()
                .map(|key| OwnedSample {
                    key: key.clone(),
                    t_ms: 1_700_000_000_000 + i64::try_from(b).unwrap() * 1000,
                    value: 1.0,
                })
                .collect();
            wal.append_then(samples, |r| r.unwrap()).await.unwrap();
        }
        wal.close().await.unwrap();
    } else {
        let wal = Arc::new(Mutex::new(Wal::open(dir, opts()).unwrap()));
        for b in 0..BATCHES {
            wal.lock()
                .append_keyed(keys.iter().map(|key| KeyedSample {
                    key,
                    t_ms: 1_700_000_000_000 + i64::try_from(b).unwrap() * 1000,
                    value: 1.0,
                }))
                .unwrap();
        }
        Arc::try_unwrap(wal).unwrap().into_inner().close().unwrap();
    }
    cpu() - before
}

fn main() {
    let sync_ms: u64 = std::env::args()
        .nth(1)
        .map_or(200, |a| a.parse().expect("sync time in ms"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let d = Duration::from_millis(sync_ms);
    println!(
        "{TARGETS} targets x {SERIES} samples every {INTERVAL:?} for {RUN:?}, one runtime thread, fdatasync {sync_ms} ms, synced every 1 s"
    );
    let tmp = tempfile::tempdir().unwrap();
    report(
        "mutex",
        "scrapes",
        rt.block_on(with_mutex(&tmp.path().join("a"), Arc::new(Slow(d, false)))),
    );
    for (name, background, sub) in [("owner", false, "b"), ("owner+wal-sync", true, "e")] {
        let (appends, reads) = rt.block_on(with_owner(
            &tmp.path().join(sub),
            Arc::new(Slow(d, background)),
        ));
        report(name, "scrapes", appends);
        report(name, "reads", reads);
    }
    let m = rt.block_on(cpu_per_million(&tmp.path().join("c"), false));
    let o = rt.block_on(cpu_per_million(&tmp.path().join("d"), true));
    println!("CPU per 1M samples appended (real disk): mutex {m:?}, owner {o:?}");
}
