//! Exemplar records: read back with their series exactly once, kept across a restart and a
//! crash, lost alone (never with samples) when torn or flipped, and counted in the ring's
//! bytes like samples.

mod common;

use std::path::Path;

use common::{segments, small_opts};
use magpie_wal::{Error, OwnedExemplar, RecoveryMode, SampleRef, SeriesKey, Wal};

const T0: i64 = 1_700_000_000_000;

fn labels(i: usize) -> [(String, String); 2] {
    [
        ("__name__".into(), format!("req_bucket{i:03}")),
        ("job".into(), "t".into()),
    ]
}

fn key(i: usize) -> SeriesKey {
    let l = labels(i);
    SeriesKey::new(&[(&l[0].0, &l[0].1), (&l[1].0, &l[1].1)]).unwrap()
}

/// One scrape: `series` samples, then one exemplar on every third series.
fn scrape(wal: &mut Wal, k: usize, series: usize) -> Vec<(String, String, i64, u64)> {
    let t = T0 + k as i64 * 15_000;
    let ls: Vec<[(String, String); 2]> = (0..series).map(labels).collect();
    let refs: Vec<[(&str, &str); 2]> = ls
        .iter()
        .map(|l| [(&l[0].0[..], &l[0].1[..]), (&l[1].0[..], &l[1].1[..])])
        .collect();
    wal.append(refs.iter().map(|l| SampleRef {
        labels: l,
        t_ms: t,
        value: k as f64,
    }))
    .unwrap();
    let ex: Vec<OwnedExemplar> = (0..series)
        .step_by(3)
        .map(|i| OwnedExemplar {
            key: key(i),
            labels: vec![("trace_id".into(), format!("{k:04}-{i:03}"))],
            t_ms: t - 7,
            value: 0.25 * i as f64,
        })
        .collect();
    assert_eq!(wal.append_exemplars(&ex).unwrap(), 0);
    ex.iter()
        .enumerate()
        .map(|(j, e)| {
            (
                labels(j * 3)[0].1.clone(),
                e.labels[0].1.clone(),
                e.t_ms,
                e.value.to_bits(),
            )
        })
        .collect()
}

type ExRow = (String, String, i64, u64);

/// Everything a fresh consumer reads, acknowledging each batch: samples and exemplars.
fn read_all(dir: &Path, mode: RecoveryMode, batch: usize) -> Result<(usize, Vec<ExRow>), Error> {
    let mut wal = Wal::open(
        dir,
        magpie_wal::Options {
            recovery: mode,
            ..small_opts()
        },
    )?;
    let c = wal.consumer(&format!("check{batch}"))?;
    let (mut samples, mut ex) = (0, Vec::new());
    while let Some(b) = wal.read(c, batch)? {
        samples += b.samples.len();
        if b.exemplars.is_empty() {
            assert_eq!(
                b.exemplars.capacity(),
                0,
                "a batch without exemplars allocates"
            );
        }
        for e in &b.exemplars {
            let series = &b.series[e.series as usize];
            assert_eq!(series.iter().nth(1).unwrap().1, "t");
            ex.push((
                series.iter().next().unwrap().1.to_string(),
                e.labels.iter().next().unwrap().1.to_string(),
                e.t_ms,
                e.value.to_bits(),
            ));
        }
        wal.ack_deferred(c, b.end)?;
    }
    Ok((samples, ex))
}

#[test]
fn exemplars_come_back_once_with_their_series_in_any_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let mut want = Vec::new();
    for k in 0..800 {
        want.extend(scrape(&mut wal, k, 30));
    }
    let st = wal.stats();
    assert_eq!(st.exemplars_appended, want.len() as u64);
    assert_eq!(st.exemplars_dropped, 0);
    assert!(segments(dir.path()).len() > 1, "the test spans segments");
    wal.close().unwrap();
    for batch in [3, 500, 100_000] {
        let (samples, got) = read_all(dir.path(), RecoveryMode::Strict, batch).unwrap();
        assert_eq!(samples, 800 * 30, "batch {batch}");
        assert_eq!(got, want, "batch {batch}");
    }
}

#[test]
fn exemplars_survive_a_crash_after_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let mut want = Vec::new();
    for k in 0..50 {
        want.extend(scrape(&mut wal, k, 10));
    }
    wal.sync().unwrap();
    drop(wal); // no close: the tail is left unsealed, as after a power cut
    let (samples, got) = read_all(dir.path(), RecoveryMode::Strict, 64).unwrap();
    assert_eq!(samples, 500);
    assert_eq!(got, want);
}

#[test]
fn an_exemplar_of_a_series_the_ring_does_not_hold_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    scrape(&mut wal, 0, 3);
    let stray = OwnedExemplar {
        key: SeriesKey::new(&[("__name__", "never_appended")]).unwrap(),
        labels: vec![],
        t_ms: T0,
        value: 1.0,
    };
    assert_eq!(wal.append_exemplars(&[stray]).unwrap(), 1);
    assert_eq!(wal.stats().exemplars_dropped, 1);
}

/// The tail of an unsealed segment ends with an exemplar record; `damage` spoils it.
fn torn_tail_case(damage: impl Fn(&Path, u64)) {
    for mode in [
        RecoveryMode::TruncateTail,
        RecoveryMode::SkipCorrupt,
        RecoveryMode::Strict,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
        let mut want = Vec::new();
        for k in 0..20 {
            want.extend(scrape(&mut wal, k, 10));
        }
        wal.flush().unwrap();
        // The last record of the file: exemplars only, after every sample.
        let last = OwnedExemplar {
            key: key(0),
            labels: vec![("trace_id".into(), "x".repeat(100))],
            t_ms: T0,
            value: 9.0,
        };
        wal.append_exemplars(&[last]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let tail = segments(dir.path()).pop().unwrap();
        let b = std::fs::read(&tail).unwrap();
        let end = b.iter().rposition(|&x| x != 0).unwrap() as u64 + 1;
        damage(&tail, end);
        match (mode, read_all(dir.path(), mode, 1000)) {
            (RecoveryMode::Strict, Err(Error::Corrupt { .. })) => {}
            (RecoveryMode::Strict, r) => panic!("strict: {:?}", r.map(|r| r.0)),
            (_, Ok((samples, got))) => {
                assert_eq!(
                    samples, 200,
                    "{mode:?}: samples lost with the exemplar record"
                );
                assert_eq!(got, want, "{mode:?}");
            }
            (_, Err(e)) => panic!("{mode:?}: {e}"),
        }
    }
}

#[test]
fn a_torn_exemplar_record_loses_only_itself() {
    torn_tail_case(|path, end| {
        let mut b = std::fs::read(path).unwrap();
        for x in &mut b[end as usize - 40..end as usize] {
            *x = 0xA5;
        }
        std::fs::write(path, b).unwrap();
    });
}

#[test]
fn a_bit_flip_in_an_exemplar_record_loses_only_itself() {
    torn_tail_case(|path, end| {
        let mut b = std::fs::read(path).unwrap();
        b[end as usize - 20] ^= 0x20;
        std::fs::write(path, b).unwrap();
    });
}

#[test]
fn exemplars_take_ring_bytes_and_go_with_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = magpie_wal::Options {
        max_bytes: 2 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..magpie_wal::Options::default()
    };
    let mut wal = Wal::open(dir.path(), opts.clone()).unwrap();
    let c = wal.consumer("slow").unwrap();
    // Few samples, many large exemplars: the exemplars alone must fill and roll the ring.
    for k in 0..6000 {
        let t = T0 + k * 1000;
        let l = labels(0);
        wal.append([SampleRef {
            labels: &[(&l[0].0, &l[0].1), (&l[1].0, &l[1].1)],
            t_ms: t,
            value: 1.0,
        }])
        .unwrap();
        let ex: Vec<OwnedExemplar> = (0..4)
            .map(|j| OwnedExemplar {
                key: key(0),
                labels: vec![("trace_id".into(), format!("{k:08}{j}{}", "0".repeat(100)))],
                t_ms: t,
                value: 1.0,
            })
            .collect();
        wal.append_exemplars(&ex).unwrap();
        let st = wal.stats();
        assert!(st.bytes_on_disk <= opts.max_bytes, "{st:?}");
    }
    let st = wal.stats();
    assert!(
        st.segments_dropped > 0,
        "exemplar bytes did not count: {st:?}"
    );
    // The oldest data went with its segments; what is left reads back whole.
    let b = wal.read(c, 1_000_000).unwrap().unwrap();
    assert!(b.exemplars.len() < 24_000 && !b.exemplars.is_empty());
    assert_eq!(
        st.consumers[0].dropped_samples + b.samples.len() as u64,
        6000
    );
}

/// Segment bytes a scrape's exemplars add, per exemplar: a typical OpenTelemetry exemplar
/// (`trace_id` of 32 hex digits, `span_id` of 16) on one series in ten. Prints the figure
/// (docs/benchmarks.md) and checks an exemplar costs its label characters plus at most 46
/// bytes (id, timestamp, value, lengths, record and fragment headers).
#[test]
fn bytes_per_exemplar_figure() {
    let segment_bytes = |with: bool| -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
        for k in 0..200usize {
            let t = T0 + k as i64 * 15_000;
            let ls: Vec<[(String, String); 2]> = (0..100).map(labels).collect();
            let refs: Vec<[(&str, &str); 2]> = ls
                .iter()
                .map(|l| [(&l[0].0[..], &l[0].1[..]), (&l[1].0[..], &l[1].1[..])])
                .collect();
            wal.append(refs.iter().map(|l| SampleRef {
                labels: l,
                t_ms: t,
                value: k as f64,
            }))
            .unwrap();
            if with {
                let ex: Vec<OwnedExemplar> = (0..100)
                    .step_by(10)
                    .map(|i| OwnedExemplar {
                        key: key(i),
                        labels: vec![
                            ("span_id".into(), format!("{:016x}", k * 1000 + i)),
                            ("trace_id".into(), format!("{:032x}", (k * 1000 + i) * 7919)),
                        ],
                        t_ms: t - 3,
                        value: 0.001 * i as f64,
                    })
                    .collect();
                wal.append_exemplars(&ex).unwrap();
            }
        }
        wal.close().unwrap();
        segments(dir.path())
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum()
    };
    let (without, with) = (segment_bytes(false), segment_bytes(true));
    let per = (with - without) as f64 / 2000.0;
    println!(
        "WAL: {without} B for 20000 samples, {with} B with 2000 exemplars: {per:.1} B per exemplar (labels alone: 15 + 48 characters)"
    );
    assert!(per > 63.0 && per < 63.0 + 20.0 + 26.0, "{per}");
}
