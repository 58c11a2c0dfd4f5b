//! Fault injection through the storage trait: ENOSPC and EIO after N operations.

mod common;

use std::sync::Arc;

use common::{Row, assert_subsequence, read_all, small_opts};
use magpie_wal::storage::{Fault, FaultStorage};
use magpie_wal::{Error, Options, SampleRef, Wal};

fn opts() -> Options {
    Options {
        max_bytes: 1 << 20,
        ..small_opts()
    }
}

/// Appends scrapes of 100 series; returns what was accepted, and the errors seen.
fn scrapes(wal: &mut Wal, from: usize, n: usize, rows: &mut Vec<Row>) -> Vec<Error> {
    let names: Vec<String> = (0..100).map(|i| format!("f{i:03}")).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    let mut errors = Vec::new();
    for k in from..from + n {
        let t = k as i64 * 15_000;
        let vals: Vec<f64> = (0..100)
            .map(|i| ((k * 7919 + i * 104_729) % 1_000_003) as f64 / 7.0)
            .collect();
        let samples = labels.iter().zip(&vals).map(|(l, &v)| SampleRef {
            labels: l,
            t_ms: t,
            value: v,
        });
        match wal.append(samples) {
            Ok(()) => {}
            Err(e) => {
                errors.push(e);
                // A partly rejected call stored a prefix; the check below tolerates that.
            }
        }
        for (n, v) in names.iter().zip(&vals) {
            rows.push((n.clone(), t, v.to_bits()));
        }
        if k % 10 == 9
            && let Err(e) = wal.sync()
        {
            errors.push(e);
        }
    }
    errors
}

#[test]
fn enospc_after_n_operations() {
    for n in (0..60).step_by(3) {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultStorage::new(Fault::NoSpace, n);
        let mut wal = Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
        let mut rows = Vec::new();
        let errors = scrapes(&mut wal, 0, 200, &mut rows);
        assert!(fs.failures() > 0, "n={n}: no fault was injected");
        assert!(!errors.is_empty(), "n={n}: faults were swallowed");
        for e in &errors {
            assert!(e.is_disk_full(), "n={n}: unexpected error {e}");
        }
        let rejected: u64 = errors
            .iter()
            .filter_map(|e| match e {
                Error::DiskFull { rejected, .. } => Some(*rejected),
                _ => None,
            })
            .sum();
        assert_eq!(wal.stats().samples_rejected, rejected, "n={n}");
        // While the disk is full the WAL stays readable.
        let c = wal.consumer("reader").unwrap();
        wal.read(c, 1000).unwrap();
        // Space comes back: appends work again and everything reads back consistently.
        fs.heal();
        let mut after = Vec::new();
        let errors = scrapes(&mut wal, 1000, 20, &mut after);
        assert!(errors.is_empty(), "n={n}: {errors:?}");
        wal.close().unwrap();
        rows.extend(after.iter().cloned());
        let got = read_all(dir.path(), opts(), 5000).unwrap();
        assert_subsequence(&got, &rows);
        // Everything appended after the disk recovered is there.
        let tail = &got[got.len() - after.len()..];
        assert_eq!(tail, after.as_slice(), "n={n}");
    }
}

#[test]
fn eio_after_n_operations() {
    for n in (0..24).step_by(2) {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultStorage::new(Fault::Eio, n);
        let mut wal = match Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())) {
            Ok(w) => w,
            Err(e) => {
                assert!(matches!(e, Error::Io { .. }), "{e}");
                continue;
            }
        };
        let mut rows = Vec::new();
        let errors = scrapes(&mut wal, 0, 60, &mut rows);
        assert!(fs.failures() > 0, "n={n}: no fault was injected");
        assert!(!errors.is_empty(), "n={n}: faults were swallowed");
        for e in &errors {
            assert!(matches!(e, Error::Io { .. }), "n={n}: unexpected error {e}");
        }
        fs.heal();
        let mut after = Vec::new();
        let errors = scrapes(&mut wal, 1000, 20, &mut after);
        assert!(errors.is_empty(), "n={n}: {errors:?}");
        wal.close().unwrap();
        rows.extend(after.iter().cloned());
        let got = read_all(dir.path(), opts(), 5000).unwrap();
        assert_subsequence(&got, &rows);
        let tail = &got[got.len() - after.len()..];
        assert_eq!(tail, after.as_slice(), "n={n}");
    }
}

#[test]
fn failed_fsync_is_an_error_and_the_next_append_uses_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let mut wal = Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
    let mut rows = Vec::new();
    assert!(scrapes(&mut wal, 0, 3, &mut rows).is_empty());
    wal.flush().unwrap();
    fs.set_budget(0);
    let e = wal.sync().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{e}"
    );
    fs.heal();
    let before = wal.stats().segments;
    assert!(scrapes(&mut wal, 3, 1, &mut rows).is_empty());
    assert_eq!(wal.stats().segments, before + 1);
    wal.close().unwrap();
    let got = read_all(dir.path(), opts(), 5000).unwrap();
    assert_eq!(got, rows);
}

#[test]
fn disk_full_drops_oldest_segments_first() {
    // The budget allows many segments, but the "disk" refuses preallocation after a while:
    // old segments are dropped to make room and appends keep succeeding.
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::NoSpace, u64::MAX);
    let big = Options {
        max_bytes: 64 << 20,
        ..small_opts()
    };
    let mut wal = Wal::open_with(dir.path(), big, Arc::new(fs.clone())).unwrap();
    let mut rows = Vec::new();
    assert!(scrapes(&mut wal, 0, 1500, &mut rows).is_empty());
    let segs = wal.stats().segments;
    assert!(segs >= 3, "{segs}");
    // One write or allocation fails, then space is back: exactly one old segment goes and
    // no append fails.
    fs.set_budget(0);
    fs.set_failures(1);
    let dropped_before = wal.stats().segments_dropped;
    let mut k = 1500;
    while fs.failures() == 0 {
        let errs = scrapes(&mut wal, k, 1, &mut rows);
        k += 1;
        assert!(errs.is_empty(), "{errs:?}");
    }
    assert_eq!(wal.stats().segments_dropped, dropped_before + 1);
    assert_eq!(wal.stats().samples_rejected, 0);
    // The ring is short of room while the file system has no room for a segment...
    fs.set_available(Some(0));
    assert!(wal.stats().disk_full);
    // ...and no longer once it has, before any new segment is started.
    let segs = wal.stats().segments;
    fs.set_available(Some(opts_segment_bytes()));
    assert!(!wal.stats().disk_full, "a segment fits again");
    assert_eq!(wal.stats().segments, segs);
    // Full again: a new segment started without dropping clears it too.
    fs.set_available(Some(0));
    assert!(wal.stats().disk_full);
    while wal.stats().segments == segs {
        assert!(scrapes(&mut wal, k, 1, &mut rows).is_empty());
        k += 1;
    }
    assert!(!wal.stats().disk_full, "the next segment found room");
}

fn opts_segment_bytes() -> u64 {
    small_opts().segment_bytes
}
