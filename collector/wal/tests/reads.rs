//! The read journal: after a crash or a rewind, data already read is read again in the same
//! batches as before, and what came after in batches of its own.

mod common;

use common::small_opts;
use magpie_wal::{Batch, ConsumerId, SampleRef, Wal};
use std::path::Path;

/// Appends one record of `n` samples of series `x` from time `t0`.
fn record(wal: &mut Wal, t0: i64, n: i64) {
    let l = [("__name__", "x"), ("job", "j")];
    wal.append((t0..t0 + n).map(|t| SampleRef {
        labels: &l,
        t_ms: t,
        value: t as f64,
    }))
    .unwrap();
}

fn times(b: &Batch) -> Vec<i64> {
    b.samples.iter().map(|s| s.t_ms).collect()
}

fn range(a: i64, b: i64) -> Vec<i64> {
    (a..b).collect()
}

fn open(dir: &Path) -> (Wal, ConsumerId) {
    let mut wal = Wal::open(dir, small_opts()).unwrap();
    let c = wal.consumer("central").unwrap();
    (wal, c)
}

#[test]
fn after_a_crash_delivered_batches_come_again_as_they_were_then_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, c) = open(dir.path());
    record(&mut wal, 0, 10);
    let b1 = wal.read(c, 1000).unwrap().unwrap();
    record(&mut wal, 10, 10);
    record(&mut wal, 20, 10);
    let b2 = wal.read(c, 1000).unwrap().unwrap();
    // One record, read in two batches by the sample limit.
    record(&mut wal, 30, 10);
    let b3 = wal.read(c, 4).unwrap().unwrap();
    assert_eq!(times(&b3), range(30, 34));
    wal.ack_deferred(c, b1.end).unwrap();
    wal.ack_deferred(c, b2.end).unwrap();
    // Acknowledged in memory only; the process dies, new data follows.
    drop(wal);
    let (mut wal, c) = open(dir.path());
    record(&mut wal, 40, 10);
    let again: Vec<Vec<i64>> = std::iter::from_fn(|| wal.read(c, 1000).unwrap())
        .map(|b| times(&b))
        .collect();
    assert_eq!(
        again,
        [
            range(0, 10),
            range(10, 30),
            range(30, 34),
            // The rest of the record cut by the limit, then the new data.
            range(34, 50),
        ]
    );
}

#[test]
fn persisted_acknowledgements_and_a_rewind_follow_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, c) = open(dir.path());
    record(&mut wal, 0, 10);
    let b1 = wal.read(c, 1000).unwrap().unwrap();
    record(&mut wal, 10, 10);
    let b2 = wal.read(c, 1000).unwrap().unwrap();
    record(&mut wal, 20, 10);
    let b3 = wal.read(c, 1000).unwrap().unwrap();
    assert_eq!(times(&b3), range(20, 30));
    wal.ack_deferred(c, b1.end).unwrap();
    wal.ack_deferred(c, b2.end).unwrap();
    assert_eq!(wal.persist_cursors().unwrap(), 1);
    // In this process: a rewind reads the unacknowledged batch as it was.
    record(&mut wal, 30, 10);
    wal.rewind(c).unwrap();
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(20, 30));
    drop(wal);
    // After a restart: resumes after the persisted cursor, the last batch as it was.
    let (mut wal, c) = open(dir.path());
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(20, 30));
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(30, 40));
    assert!(wal.read(c, 1000).unwrap().is_none());
}

#[test]
fn a_torn_journal_keeps_the_records_before_the_tear() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, c) = open(dir.path());
    for k in 0..3 {
        record(&mut wal, k * 10, 10);
        wal.read(c, 1000).unwrap().unwrap();
    }
    drop(wal);
    let journal = dir.path().join("cursors/central.reads");
    let bytes = std::fs::read(&journal).unwrap();
    assert_eq!(bytes.len(), 3 * 32);
    // The second record half written, the third lost.
    std::fs::write(&journal, &bytes[..32 + 17]).unwrap();
    let (mut wal, c) = open(dir.path());
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(0, 10));
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(10, 30));
    // A damaged record ends the journal too.
    drop(wal);
    let mut bad = bytes.clone();
    bad[40] ^= 1;
    std::fs::write(&journal, &bad).unwrap();
    let (mut wal, c) = open(dir.path());
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(0, 10));
    assert_eq!(times(&wal.read(c, 1000).unwrap().unwrap()), range(10, 30));
}

#[test]
fn the_journal_stays_small_for_a_consumer_that_keeps_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, c) = open(dir.path());
    for k in 0..1000 {
        record(&mut wal, k * 2, 2);
        let b = wal.read(c, 1000).unwrap().unwrap();
        wal.ack_deferred(c, b.end).unwrap();
        if k % 10 == 9 {
            wal.persist_cursors().unwrap();
        }
    }
    let len = std::fs::metadata(dir.path().join("cursors/central.reads"))
        .unwrap()
        .len();
    assert!(len <= 256 * 32, "{len} bytes");
}
