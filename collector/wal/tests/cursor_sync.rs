//! Cursor files written at every tick are written in place without a sync: a crash of the
//! process resumes after everything acknowledged up to the last tick, a power cut at most one
//! cursor sync interval earlier, and neither ever skips data.

mod common;

use common::small_opts;
use magpie_wal::storage::{Fault, FaultStorage};
use magpie_wal::{Position, SampleRef, Wal};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn open(dir: &Path, fs: &FaultStorage) -> Wal {
    Wal::open_with(dir, small_opts(), Arc::new(fs.clone())).unwrap()
}

/// Appends samples at times `0..n` and syncs them.
fn fill(wal: &mut Wal, n: i64) {
    let l = [("__name__", "x"), ("job", "j")];
    wal.append((0..n).map(|t| SampleRef {
        labels: &l,
        t_ms: t,
        value: t as f64,
    }))
    .unwrap();
    wal.sync().unwrap();
}

/// Reads `n` samples; returns the end of the batch.
fn read(wal: &mut Wal, n: usize) -> Position {
    let c = wal.consumer("central").unwrap();
    let b = wal.read(c, n).unwrap().unwrap();
    assert_eq!(b.samples.len(), n);
    b.end
}

/// The time of the first sample the consumer reads after reopening.
fn resumes_at(dir: &Path) -> i64 {
    let mut wal = Wal::open(dir, small_opts()).unwrap();
    let c = wal.consumer("central").unwrap();
    wal.read(c, 1).unwrap().unwrap().samples[0].t_ms
}

/// Acknowledges 3 samples with a synced cursor, then 5 more with the deferred path.
fn acked_3_then_8(dir: &Path, fs: &FaultStorage) -> Wal {
    let mut wal = open(dir, fs);
    fill(&mut wal, 20);
    let c = wal.consumer("central").unwrap();
    let p3 = read(&mut wal, 3);
    wal.ack(c, p3).unwrap();
    let p8 = read(&mut wal, 5);
    wal.ack_deferred(c, p8).unwrap();
    assert_eq!(wal.persist_cursors().unwrap(), 1);
    wal
}

#[test]
fn a_crash_resumes_after_the_last_cursor_written() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let wal = acked_3_then_8(dir.path(), &fs);
    drop(wal);
    assert_eq!(resumes_at(dir.path()), 8);
}

#[test]
fn a_power_cut_goes_back_at_most_to_the_last_synced_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let wal = acked_3_then_8(dir.path(), &fs);
    drop(wal);
    fs.power_cut().unwrap();
    assert_eq!(resumes_at(dir.path()), 3);
}

#[test]
fn a_cursor_unsynced_for_the_interval_is_synced_at_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let mut wal = acked_3_then_8(dir.path(), &fs);
    // Not yet due: nothing to do.
    assert_eq!(wal.persist_cursors_at(Instant::now()).unwrap(), 0);
    let later = Instant::now() + Duration::from_secs(11);
    assert_eq!(wal.persist_cursors_at(later).unwrap(), 1, "synced");
    assert_eq!(wal.persist_cursors_at(later).unwrap(), 0);
    drop(wal);
    fs.power_cut().unwrap();
    assert_eq!(resumes_at(dir.path()), 8);
}

#[test]
fn close_syncs_the_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let wal = acked_3_then_8(dir.path(), &fs);
    wal.close().unwrap();
    fs.power_cut().unwrap();
    assert_eq!(resumes_at(dir.path()), 8);
}
