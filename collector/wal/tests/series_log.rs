//! Damage to the series log: torn and corrupt definitions, a lost log. Samples whose series
//! definition is gone are counted lost, never given another series' labels, also after new
//! series are appended.

mod common;

use std::path::{Path, PathBuf};

use magpie_wal::{Error, Options, RecoveryMode, SampleRef, Wal};

fn opts(recovery: RecoveryMode) -> Options {
    Options {
        recovery,
        ..common::small_opts()
    }
}

/// Scrapes `scrapes` of series `from..to`; sample value `k * 1000 + i` for series `s{i}`.
fn scrape(wal: &mut Wal, from: u32, to: u32, scrapes: u32) {
    let names: Vec<String> = (from..to).map(|i| format!("s{i}")).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    for k in 0..scrapes {
        wal.append(labels.iter().zip(from..to).map(|(l, i)| SampleRef {
            labels: l,
            t_ms: i64::from(k),
            value: f64::from(k * 1000 + i),
        }))
        .unwrap();
        wal.sync().unwrap();
    }
}

/// Reads everything with a new consumer; checks every sample's labels against its value.
/// Returns (samples delivered, samples lost).
fn read_checked(wal: &mut Wal, name: &str) -> (u64, u64) {
    let c = wal.consumer(name).unwrap();
    let lost_before = wal.stats().samples_lost_to_damage;
    let mut n = 0;
    while let Some(b) = wal.read(c, 1000).unwrap() {
        for s in &b.samples {
            let want = if s.value >= 1e9 {
                "new".to_owned()
            } else {
                format!("s{}", s.value as u64 % 1000)
            };
            assert_eq!(
                b.series[s.series as usize].iter().next().unwrap().1,
                want,
                "value {}",
                s.value
            );
            n += 1;
        }
    }
    (n, wal.stats().samples_lost_to_damage - lost_before)
}

fn log_path(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("series-")
        })
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    logs.pop().unwrap()
}

/// A WAL with 40 series defined in a first sync and 40 more later: 10 scrapes each.
fn two_batches(dir: &Path) -> u64 {
    let mut wal = Wal::open(dir, opts(RecoveryMode::TruncateTail)).unwrap();
    scrape(&mut wal, 0, 40, 10);
    scrape(&mut wal, 40, 80, 10);
    wal.close().unwrap();
    800
}

/// After damage: new series appended get labels of their own, and the samples of lost
/// definitions stay lost.
fn new_series_are_not_confused(wal: &mut Wal, lost: u64) {
    wal.append((0..50).map(|k| SampleRef {
        labels: &[("__name__", "new")][..],
        t_ms: 100 + k,
        value: 1e9 + k as f64,
    }))
    .unwrap();
    let (n, l) = read_checked(wal, "after");
    assert_eq!(l, lost);
    assert!(n >= 50);
}

#[test]
fn corrupt_definition_loses_only_its_series() {
    for recovery in [RecoveryMode::TruncateTail, RecoveryMode::SkipCorrupt] {
        let dir = tempfile::tempdir().unwrap();
        let total = two_batches(dir.path());
        // Flip a byte of the last definitions record: the second batch of series.
        let path = log_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.iter().rposition(|&b| b != 0).unwrap();
        bytes[end - 3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let mut wal = Wal::open(dir.path(), opts(recovery)).unwrap();
        assert!(wal.stats().damaged_regions > 0);
        assert!(wal.stats().series < 80, "{:?}", wal.stats());
        let (n, lost) = read_checked(&mut wal, "r");
        assert_eq!(n + lost, total, "{recovery:?}");
        assert!(
            n >= 400 && lost > 0,
            "{recovery:?}: delivered {n}, lost {lost}"
        );
        new_series_are_not_confused(&mut wal, lost);
        // Strict refuses the damaged log, naming it.
        drop(wal);
        let dir = tempfile::tempdir().unwrap();
        two_batches(dir.path());
        let path = log_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.iter().rposition(|&b| b != 0).unwrap();
        bytes[end - 3] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        match Wal::open(dir.path(), opts(RecoveryMode::Strict)) {
            Err(Error::CorruptSeriesLog { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected a corrupt series log error, got {other:?}"),
        }
    }
}

#[test]
fn torn_series_log_tail_loses_only_unsynced_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let total = two_batches(dir.path());
    let path = log_path(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    // Cut inside the last record, as an interrupted write would.
    std::fs::write(&path, &bytes[..end - 10]).unwrap();
    let mut wal = Wal::open(dir.path(), opts(RecoveryMode::TruncateTail)).unwrap();
    let (n, lost) = read_checked(&mut wal, "r");
    assert_eq!(n + lost, total);
    assert!(lost > 0 && n >= 400, "delivered {n}, lost {lost}");
    new_series_are_not_confused(&mut wal, lost);
}

#[test]
fn segments_naming_series_of_a_lost_log_count_them_lost() {
    let dir = tempfile::tempdir().unwrap();
    let total = two_batches(dir.path());
    std::fs::remove_file(log_path(dir.path())).unwrap();
    let mut wal = Wal::open(dir.path(), opts(RecoveryMode::TruncateTail)).unwrap();
    assert_eq!(wal.stats().series, 0);
    let (n, lost) = read_checked(&mut wal, "r");
    assert_eq!((n, lost), (0, total));
    new_series_are_not_confused(&mut wal, total);
    // And after a restart, still nothing is confused.
    wal.close().unwrap();
    let mut wal = Wal::open(dir.path(), opts(RecoveryMode::TruncateTail)).unwrap();
    let (n, lost) = read_checked(&mut wal, "again");
    assert_eq!((n, lost), (50, total));
}

/// Opening reads which series each segment names; a segment it cannot read whole (a damaged
/// page) leaves that unknown, so every definition is kept: the series named only after the
/// damage still read back under `SkipCorrupt`, with their own labels.
#[test]
fn damage_inside_a_segment_keeps_the_series_named_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupt)).unwrap();
    // Segment 1: series s0..s50 over its first four pages, then s100..s150 until it is
    // sealed; then s200..s250. The damage goes into its second page.
    while wal.stats().data_bytes < 16 << 10 {
        scrape(&mut wal, 0, 50, 20);
    }
    let mut after = 0;
    while wal.stats().segments < 2 {
        scrape(&mut wal, 100, 150, 1);
        after += 1;
    }
    assert!(
        after > 200,
        "the second set has {after} scrapes in the first segment"
    );
    scrape(&mut wal, 200, 250, 20);
    wal.close().unwrap();
    let first = common::segments(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[4096 + 100] ^= 0x20;
    std::fs::write(&first, bytes).unwrap();

    let mut wal = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupt)).unwrap();
    let c = wal.consumer("after-damage").unwrap();
    let mut second_set = std::collections::HashSet::new();
    while let Some(b) = wal.read(c, 1000).unwrap() {
        for s in &b.samples {
            let name = b.series[s.series as usize].iter().next().unwrap().1;
            let i: u32 = name[1..].parse().unwrap();
            assert_eq!(
                s.value % 1000.0,
                f64::from(i),
                "{name} carries another series' value"
            );
            if (100..150).contains(&i) {
                second_set.insert(i);
            }
        }
        wal.ack(c, b.end).unwrap();
    }
    assert_eq!(
        second_set.len(),
        50,
        "series named only after the damage were lost"
    );
}
