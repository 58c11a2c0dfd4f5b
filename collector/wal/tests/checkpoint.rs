//! Series log checkpoints: interrupted at every step, the WAL reopens with every definition a
//! live segment needs; dead series leave the log; a series that comes back is defined again.

mod common;

use std::path::Path;
use std::sync::Arc;

use magpie_wal::storage::{Fault, FaultStorage};
use magpie_wal::{Options, SampleRef, Wal};

const SERIES: usize = 100;

fn opts() -> Options {
    Options {
        max_bytes: 1 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    }
}

/// Sample `k` of the run: scrape `k / SERIES` of series `k % SERIES`, from set `a` for the
/// first `switch` scrapes and from set `b` after. Its value encodes `k`.
fn name(k: u64, switch: u64) -> String {
    let set = if k / SERIES as u64 >= switch {
        'b'
    } else {
        'a'
    };
    format!("{set}{:03}", k % SERIES as u64)
}

fn value(k: u64) -> f64 {
    // Hard to compress, so segments fill quickly; the low bits carry `k`.
    f64::from_bits((k.wrapping_mul(0x9e37_79b9_7f4a_7c15) & !0xf_ffff_ffff) | k)
}

/// Appends scrapes `from..to`, syncing every 10; stops at the first error. Returns the number
/// of samples synced and whether it stopped on an error.
fn run(wal: &mut Wal, from: u64, to: u64, switch: u64, synced: &mut u64) -> bool {
    for s in from..to {
        let names: Vec<String> = (0..SERIES as u64)
            .map(|i| name(s * SERIES as u64 + i, switch))
            .collect();
        let labels: Vec<[(&str, &str); 1]> =
            names.iter().map(|n| [("__name__", n.as_str())]).collect();
        let r = wal.append(labels.iter().enumerate().map(|(i, l)| SampleRef {
            labels: l,
            t_ms: s as i64,
            value: value(s * SERIES as u64 + i as u64),
        }));
        if r.is_err() {
            return true;
        }
        if s % 10 == 9 {
            if wal.sync().is_err() {
                return true;
            }
            *synced = (s + 1) * SERIES as u64;
        }
    }
    false
}

/// Reads the whole ring with a new consumer and checks every sample against its number: the
/// samples form one contiguous run, each with its own labels. Returns the run's end.
fn check(dir: &Path, switch: u64) -> (u64, u64) {
    let mut wal = Wal::open(dir, opts()).unwrap();
    let c = wal.consumer("check").unwrap();
    let mut next = None;
    let mut first = 0;
    while let Some(b) = wal.read(c, 1000).unwrap() {
        for s in &b.samples {
            let k = s.value.to_bits() & 0xf_ffff_ffff;
            assert_eq!(s.value.to_bits(), value(k).to_bits());
            assert_eq!(
                b.series[s.series as usize].iter().next().unwrap().1,
                name(k, switch),
                "sample {k}"
            );
            match next {
                None => first = k,
                Some(n) => assert_eq!(k, n, "samples missing before {k}"),
            }
            next = Some(k + 1);
        }
    }
    let st = wal.stats();
    assert_eq!(st.samples_lost_to_damage, 0, "{st:?}");
    assert_eq!(st.damaged_regions, 0, "{st:?}");
    (first, next.unwrap_or(0))
}

fn logs(dir: &Path) -> (usize, usize) {
    let mut logs = 0;
    let mut tmps = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.starts_with("series-") {
            if n.ends_with(".tmp") {
                tmps += 1;
            } else {
                logs += 1;
            }
        }
    }
    (logs, tmps)
}

/// Scrapes of set `a`, then of set `b` until the first checkpoint drops set `a`'s series.
/// Returns the storage's operation count just before and after the append call that
/// checkpointed, and that call's scrape.
fn find_checkpoint(switch: u64) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultStorage::new(Fault::Eio, u64::MAX);
    let mut wal = Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
    let mut synced = 0;
    assert!(!run(&mut wal, 0, switch, switch, &mut synced));
    for s in switch..switch * 10 {
        let before = fs.ops();
        assert!(!run(&mut wal, s, s + 1, switch, &mut synced));
        if wal.stats().series == SERIES as u64 {
            return (before, fs.ops(), s);
        }
    }
    panic!("no checkpoint dropped the first set of series");
}

#[test]
fn checkpoint_interrupted_at_every_step_loses_no_definition() {
    let switch = 400;
    let (before, after, at) = find_checkpoint(switch);
    let mut saw_tmp = false;
    let mut saw_two_logs = false;
    for n in before..after {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultStorage::new(Fault::Eio, n);
        let mut wal = Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
        let mut synced = 0;
        let failed = run(&mut wal, 0, at + 1, switch, &mut synced);
        assert!(failed, "n={n}: no fault hit");
        // The process dies here: nothing more reaches the files.
        fs.set_budget(0);
        drop(wal);
        let (logs, tmps) = logs(dir.path());
        saw_tmp |= tmps > 0;
        saw_two_logs |= logs > 1;
        let (_, end) = check(dir.path(), switch);
        assert!(
            end >= synced,
            "n={n}: synced {synced}, readable up to {end}"
        );
    }
    assert!(
        saw_tmp,
        "no run stopped while the checkpoint file was being written"
    );
    assert!(
        saw_two_logs,
        "no run stopped between the rename and the old log's deletion"
    );
}

#[test]
fn power_cut_during_checkpoint_keeps_synced_definitions() {
    let switch = 400;
    let (before, after, at) = find_checkpoint(switch);
    for n in before..after {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultStorage::new(Fault::Eio, n);
        let mut wal = Wal::open_with(dir.path(), opts(), Arc::new(fs.clone())).unwrap();
        let mut synced = 0;
        run(&mut wal, 0, at + 1, switch, &mut synced);
        fs.set_budget(0);
        drop(wal);
        fs.heal();
        fs.power_cut().unwrap();
        let (_, end) = check(dir.path(), switch);
        assert!(
            end >= synced,
            "n={n}: synced {synced}, readable up to {end}"
        );
    }
}

#[test]
fn dead_series_leave_the_log_and_come_back_defined_again() {
    let dir = tempfile::tempdir().unwrap();
    let switch = 400;
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    let mut synced = 0;
    assert!(!run(&mut wal, 0, switch, switch, &mut synced));
    let log_a = wal.stats().series_log_bytes;
    let mut s = switch;
    loop {
        assert!(!run(&mut wal, s, s + 1, switch, &mut synced));
        s += 1;
        if wal.stats().series == SERIES as u64 {
            break;
        }
        assert_eq!(wal.stats().series, 2 * SERIES as u64);
    }
    // Only set b is defined now, in a log of the size of set a's (ids above 127 take a
    // second byte).
    let st = wal.stats();
    assert!(
        st.series_log_bytes >= log_a && st.series_log_bytes <= log_a + SERIES as u64,
        "{log_a} {st:?}"
    );
    assert!(st.bytes_on_disk <= st.max_bytes, "{st:?}");
    // Set a comes back (scrape numbers below `switch` name it): defined again.
    let again = 2 * switch * 10;
    wal.append((0..SERIES).map(|i| SampleRef {
        labels: &[("__name__", "a007")][..],
        t_ms: again as i64 + i as i64,
        value: 1.0,
    }))
    .unwrap();
    assert_eq!(wal.stats().series, SERIES as u64 + 1);
    wal.close().unwrap();
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    let c = wal.consumer("r").unwrap();
    let mut last = None;
    while let Some(b) = wal.read(c, 10_000).unwrap() {
        last = b.samples.last().map(|s| {
            b.series[s.series as usize]
                .iter()
                .next()
                .unwrap()
                .1
                .to_string()
        });
    }
    assert_eq!(last.as_deref(), Some("a007"));
    assert_eq!(wal.stats().samples_lost_to_damage, 0);
}

#[test]
fn the_series_log_counts_in_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), opts()).unwrap();
    wal.consumer("idle").unwrap();
    // 2000 series with ~230 bytes of labels each: the log takes about half the budget.
    let names: Vec<String> = (0..2000)
        .map(|i| format!("{}_{i:05}", "long_metric_name_".repeat(13)))
        .collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    for k in 0..60u64 {
        wal.append(labels.iter().enumerate().map(|(i, l)| SampleRef {
            labels: l,
            t_ms: k as i64,
            value: value(k * 2000 + i as u64),
        }))
        .unwrap();
        wal.sync().unwrap();
        let st = wal.stats();
        assert!(st.series_log_bytes > 400 << 10, "{st:?}");
        assert!(st.bytes_on_disk <= st.max_bytes, "{st:?}");
        let idle = &st.consumers[0];
        assert_eq!(
            idle.dropped_samples + idle.backlog_samples,
            st.samples_appended,
            "{st:?}"
        );
    }
    let st = wal.stats();
    assert!(st.segments_dropped > 0, "{st:?}");
    // The segments left room for the log: fewer than the 4 a 1 MiB ring holds without it.
    assert!(st.segments <= 2, "{st:?}");
}
