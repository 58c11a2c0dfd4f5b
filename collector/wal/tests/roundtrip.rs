//! End-to-end behaviour over real files: round trips, compression, ring budget, cursors.

use std::time::{Duration, Instant};

use magpie_wal::synth::Dataset;
use magpie_wal::{Batch, KeyedSample, Options, SampleRef, SeriesKey, Wal};

pub fn small_opts() -> Options {
    Options {
        max_bytes: 4 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    }
}

/// Reads everything the consumer has, as (labels, t, value bits).
fn drain(wal: &mut Wal, name: &str, batch: usize, ack: bool) -> Vec<(String, i64, u64)> {
    let c = wal.consumer(name).unwrap();
    let mut out = Vec::new();
    while let Some(b) = wal.read(c, batch).unwrap() {
        flatten(&b, &mut out);
        if ack {
            wal.ack(c, b.end).unwrap();
        }
    }
    out
}

fn flatten(b: &Batch, out: &mut Vec<(String, i64, u64)>) {
    for s in &b.samples {
        let l = &b.series[s.series as usize];
        let key: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
        out.push((key.join(","), s.t_ms, s.value.to_bits()));
    }
}

fn expected(ds: &Dataset, scrapes: usize) -> Vec<(String, i64, u64)> {
    let mut walk = ds.walk(1_700_000_000_000);
    let mut out = Vec::new();
    for _ in 0..scrapes {
        let (t, vals) = walk.step();
        for (l, v) in ds.series.iter().zip(vals) {
            let key: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
            out.push((key.join(","), t, v.to_bits()));
        }
    }
    out
}

#[test]
fn synth_data_round_trips_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::node_exporter(2, 7);
    let refs = ds.label_refs();
    let scrapes = 400;
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let mut walk = ds.walk(1_700_000_000_000);
    for _ in 0..scrapes {
        walk.step();
        wal.append(walk.samples(&refs)).unwrap();
    }
    let stats = wal.stats();
    assert!(stats.segments > 1, "{stats:?}");
    wal.close().unwrap();

    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let got = drain(&mut wal, "a", 777, false);
    assert_eq!(got.len(), expected(&ds, scrapes).len());
    assert!(got == expected(&ds, scrapes), "decoded data differs");
}

#[test]
fn keyed_appends_write_the_same_bytes_as_label_appends() {
    let ds = Dataset::node_exporter(2, 7);
    let refs = ds.label_refs();
    let keys: Vec<SeriesKey> = refs.iter().map(|l| SeriesKey::new(l).unwrap()).collect();
    let plain = tempfile::tempdir().unwrap();
    let keyed = tempfile::tempdir().unwrap();
    let mut a = Wal::open(plain.path(), small_opts()).unwrap();
    let mut b = Wal::open(keyed.path(), small_opts()).unwrap();
    let mut walk = ds.walk(1_700_000_000_000);
    for _ in 0..300 {
        walk.step();
        a.append(walk.samples(&refs)).unwrap();
        b.append_keyed(walk.samples(&refs).zip(&keys).map(|(s, key)| KeyedSample {
            key,
            t_ms: s.t_ms,
            value: s.value,
        }))
        .unwrap();
    }
    assert!(a.stats().segments > 1);
    a.close().unwrap();
    b.close().unwrap();
    let files = |d: &std::path::Path| {
        let mut f: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.file_name().unwrap() != "LOCK")
            .map(|p| {
                (
                    p.file_name().unwrap().to_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        f.sort();
        f
    };
    let (fa, fb) = (files(plain.path()), files(keyed.path()));
    assert!(!fa.is_empty());
    assert!(fa == fb, "keyed appends wrote different segments");
    assert_eq!(
        SeriesKey::new(&[("b", "1"), ("a", "2")])
            .unwrap_err()
            .to_string(),
        a_err()
    );
}

fn a_err() -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let labels = [("b", "1"), ("a", "2")];
    wal.append([SampleRef {
        labels: &labels,
        t_ms: 1,
        value: 1.0,
    }])
    .unwrap_err()
    .to_string()
}

#[test]
fn bytes_per_sample_on_node_exporter_data() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Dataset::node_exporter(4, 11);
    let refs = ds.label_refs();
    let mut wal = Wal::open(dir.path(), Options::default()).unwrap();
    let mut walk = ds.walk(1_700_000_000_000);
    let scrapes = 240; // one hour at 15 s
    let mut now = Instant::now();
    for _ in 0..scrapes {
        walk.step();
        wal.append(walk.samples(&refs)).unwrap();
        now += Duration::from_secs(15);
        wal.sync_if_due(now).unwrap();
    }
    wal.close().unwrap();
    let bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let samples = (ds.series.len() * scrapes) as f64;
    let per = bytes as f64 / samples;
    println!(
        "{} series x {scrapes} scrapes: {bytes} bytes, {per:.3} bytes/sample",
        ds.series.len()
    );
    assert!(per <= 2.0, "{per} bytes per sample");
}

#[test]
fn staleness_markers_and_odd_values_are_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let l = [("__name__", "x")];
    let vals = [
        f64::from_bits(0x7ff0_0000_0000_0002),
        -0.0,
        f64::NAN,
        f64::from_bits(0xfff8_0000_0000_0001),
        1.0,
        f64::NEG_INFINITY,
        f64::from_bits(0x7ff0_0000_0000_0002),
    ];
    for (i, v) in vals.iter().enumerate() {
        wal.append([SampleRef {
            labels: &l,
            t_ms: i as i64 * -1000,
            value: *v,
        }])
        .unwrap();
    }
    let got = drain(&mut wal, "c", 3, true);
    let bits: Vec<u64> = got.iter().map(|g| g.2).collect();
    let want: Vec<u64> = vals.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
    let times: Vec<i64> = got.iter().map(|g| g.1).collect();
    assert_eq!(times, vec![0, -1000, -2000, -3000, -4000, -5000, -6000]);
}

/// Appends `scrapes` rounds of 100 series with noisy values (poorly compressible).
fn append_noise(wal: &mut Wal, from: u64, scrapes: u64) -> u64 {
    let names: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    for k in from..from + scrapes {
        let vals: Vec<f64> = (0..100u64)
            .map(|i| f64::from_bits((k * 100 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        wal.append(labels.iter().zip(&vals).map(|(l, &v)| SampleRef {
            labels: l,
            t_ms: k as i64,
            value: v,
        }))
        .unwrap();
    }
    scrapes * 100
}

#[test]
fn a_batch_in_flight_when_its_segment_is_dropped_counts_once() {
    for deliver in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            max_bytes: 1 << 20,
            segment_bytes: 256 << 10,
            page_bytes: 4096,
            ..Options::default()
        };
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        let c = wal.consumer("c").unwrap();
        let mut appended = append_noise(&mut wal, 0, 10);
        let batch = wal.read(c, 500).unwrap().unwrap();
        assert_eq!(batch.samples.len(), 500);
        // The receiver is away long enough for the ring to drop the batch's segment.
        appended += append_noise(&mut wal, 10, 2000);
        assert!(wal.stats().segments_dropped > 0);
        let delivered = if deliver {
            wal.ack(c, batch.end).unwrap();
            500
        } else {
            wal.rewind(c).unwrap();
            0
        };
        let st = &wal.stats().consumers[0];
        assert_eq!(
            st.dropped_samples + st.backlog_samples + delivered,
            appended,
            "deliver={deliver} {st:?}"
        );
    }
}

#[test]
fn ring_drops_oldest_and_counts_exactly_per_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_bytes: 1 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    };
    let mut wal = Wal::open(dir.path(), opts.clone()).unwrap();
    let idle = wal.consumer("idle").unwrap();
    let busy = wal.consumer("busy").unwrap();
    let mut appended = 0u64;
    let mut acked = 0u64;
    for k in 0..2000u64 {
        appended += append_noise(&mut wal, k, 1);
        if k % 3 == 0
            && let Some(b) = wal.read(busy, 150).unwrap()
        {
            acked += b.samples.len() as u64;
            wal.ack(busy, b.end).unwrap();
        }
    }
    let st = wal.stats();
    assert!(st.segments_dropped > 2, "{st:?}");
    assert!(st.bytes_on_disk <= opts.max_bytes, "{st:?}");
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(on_disk <= opts.max_bytes, "{on_disk}");
    let idle_st = &st.consumers[0];
    let busy_st = &st.consumers[1];
    // Exact accounting: every appended sample is acknowledged, dropped or still waiting.
    assert_eq!(idle_st.dropped_samples + idle_st.backlog_samples, appended);
    assert_eq!(
        busy_st.dropped_samples + busy_st.backlog_samples + acked,
        appended
    );
    assert!(busy_st.dropped_samples > 0 && busy_st.dropped_samples < idle_st.dropped_samples);
    assert!(idle_st.oldest_unacked_ms.is_some());
    // What is left reads back as the newest samples, in order.
    let mut got = Vec::new();
    while let Some(b) = wal.read(idle, 10_000).unwrap() {
        got.extend(b.samples.iter().map(|s| s.t_ms));
    }
    assert_eq!(got.len() as u64, idle_st.backlog_samples);
    assert_eq!(*got.last().unwrap(), 1999);
    assert!(got.windows(2).all(|w| w[0] <= w[1]));
    // The ring reports the oldest timestamp it holds, and its budget.
    assert_eq!(st.oldest_sample_ms, Some(got[0]));
    assert!(got[0] > 0);
    assert_eq!(st.max_bytes, opts.max_bytes);
}

#[test]
fn cursors_survive_restart_and_rewind_redelivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let l = [("__name__", "x"), ("job", "j")];
    wal.append((0..1000).map(|i| SampleRef {
        labels: &l,
        t_ms: i,
        value: i as f64,
    }))
    .unwrap();
    let c = wal.consumer("central").unwrap();
    let first = wal.read(c, 100).unwrap().unwrap();
    assert_eq!(first.samples.len(), 100);
    wal.ack(c, first.end).unwrap();
    let second = wal.read(c, 100).unwrap().unwrap();
    assert_eq!(second.samples[0].t_ms, 100);
    // Not acknowledged: a rewind delivers it again.
    wal.rewind(c).unwrap();
    let again = wal.read(c, 100).unwrap().unwrap();
    assert_eq!(again.samples, second.samples);
    // Acknowledging beyond what was read is refused.
    let mut far = again.end;
    wal.rewind(c).unwrap();
    assert!(matches!(
        wal.ack(c, std::mem::replace(&mut far, first.end)),
        Err(magpie_wal::Error::InvalidPosition { .. })
    ));
    // Crash without close: restart resumes after the acknowledged batch.
    drop(wal);
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let c = wal.consumer("central").unwrap();
    let b = wal.read(c, 5).unwrap().unwrap();
    assert_eq!(b.samples[0].t_ms, 100);
    assert!(wal.consumer("../etc").is_err());
    let st = wal.stats();
    assert_eq!(st.consumers[0].backlog_samples, 900);
}

#[test]
fn sync_if_due_follows_the_interval_and_locking_excludes_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), small_opts()),
        Err(magpie_wal::Error::Locked(_))
    ));
    let t0 = Instant::now();
    assert!(!wal.sync_if_due(t0).unwrap(), "nothing to sync yet");
    let l = [("__name__", "x")];
    wal.append([SampleRef {
        labels: &l,
        t_ms: 1,
        value: 1.0,
    }])
    .unwrap();
    assert!(wal.stats().unsynced);
    assert!(wal.sync_if_due(t0).unwrap());
    assert!(!wal.stats().unsynced);
    wal.append([SampleRef {
        labels: &l,
        t_ms: 2,
        value: 2.0,
    }])
    .unwrap();
    assert!(!wal.sync_if_due(t0 + Duration::from_millis(500)).unwrap());
    assert!(wal.sync_if_due(t0 + Duration::from_secs(1)).unwrap());
}

#[test]
fn invalid_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    for bad in [
        &[][..],
        &[("job", "a"), ("__name__", "x")][..],
        &[("a", "1"), ("a", "2")][..],
    ] {
        let e = wal
            .append([SampleRef {
                labels: bad,
                t_ms: 0,
                value: 0.0,
            }])
            .unwrap_err();
        assert!(matches!(e, magpie_wal::Error::InvalidLabels(_)), "{e}");
    }
}

/// Timestamps of everything `id` reads, acknowledging each batch.
fn read_all(wal: &mut Wal, id: magpie_wal::ConsumerId) -> Vec<i64> {
    let mut ts = Vec::new();
    while let Some(b) = wal.read(id, 170).unwrap() {
        ts.extend(b.samples.iter().map(|s| s.t_ms));
        wal.ack(id, b.end).unwrap();
    }
    ts
}

#[test]
fn a_split_delivers_new_data_first_and_joins_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let c = wal.consumer("x").unwrap();
    assert!(
        wal.consumer("x.newest").is_err(),
        "reserved names are refused"
    );
    append_noise(&mut wal, 0, 10);
    let n = wal.split(c).unwrap();
    assert_eq!(wal.split(c).unwrap(), n, "splitting twice is one split");
    assert_eq!(wal.newest(c), Some(n));
    append_noise(&mut wal, 10, 5);
    let st = wal.stats();
    assert_eq!(st.consumers.len(), 1, "{st:?}");
    assert_eq!(st.consumers[0].backlog_samples, 1500);
    assert_eq!(wal.backlog(c), 1500);
    // New data first...
    let newest = read_all(&mut wal, n);
    assert_eq!(newest.len(), 500);
    assert!(newest.iter().all(|&t| t >= 10));
    assert!(!wal.caught_up(c));
    // ...and the split survives a restart.
    wal.close().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let c = wal.consumer("x").unwrap();
    let n = wal.newest(c).expect("the split was persisted");
    assert!(
        read_all(&mut wal, n).is_empty(),
        "the newest data was acknowledged"
    );
    assert_eq!(wal.stats().consumers[0].backlog_samples, 1000);
    let backlog = read_all(&mut wal, c);
    assert_eq!(backlog.len(), 1000);
    assert!(backlog.iter().all(|&t| t < 10));
    assert!(backlog.windows(2).all(|w| w[0] <= w[1]));
    assert!(wal.caught_up(c));
    wal.join(c).unwrap();
    assert_eq!(wal.newest(c), None);
    append_noise(&mut wal, 15, 3);
    // After the join the consumer goes on after what the sub-consumer delivered.
    let after = read_all(&mut wal, c);
    assert_eq!(after.len(), 300);
    assert!(after.iter().all(|&t| t >= 15));
    let st = wal.stats();
    assert_eq!(
        (st.consumers.len(), st.consumers[0].backlog_samples),
        (1, 0)
    );
    // And the join is what a restart sees.
    wal.close().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    let c = wal.consumer("x").unwrap();
    assert_eq!(wal.newest(c), None);
    assert!(read_all(&mut wal, c).is_empty());
}

#[test]
fn labels_are_written_once_per_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    // 20k series with long labels: in format 1 a 256 KiB segment filled up with labels.
    let names: Vec<String> = (0..20_000)
        .map(|i| format!("a_rather_long_metric_name_for_series_number_{i:06}"))
        .collect();
    let labels: Vec<[(&str, &str); 2]> = names
        .iter()
        .map(|n| [("__name__", n.as_str()), ("job", "big")])
        .collect();
    let scrape = |wal: &mut Wal, t: i64| {
        wal.append(labels.iter().map(|l| SampleRef {
            labels: l,
            t_ms: t,
            value: 1.0,
        }))
        .unwrap();
        wal.sync().unwrap();
    };
    scrape(&mut wal, 1);
    let st = wal.stats();
    assert_eq!((st.series, st.segments), (20_000, 1), "{st:?}");
    assert!(st.series_log_bytes > 20_000 * 60, "{st:?}");
    assert!(st.series_bytes >= 20_000 * 60, "{st:?}");
    // Scrapes of known series add samples, not labels.
    for t in 2..20 {
        scrape(&mut wal, t);
    }
    let st2 = wal.stats();
    assert_eq!(st2.series_log_bytes, st.series_log_bytes, "{st2:?}");
    assert_eq!(st2.segments, 1, "{st2:?}");
    assert_eq!(st2.label_heavy_segments, 0);
    wal.close().unwrap();
    // After a restart the labels are still there, once.
    let mut wal = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(wal.stats().series, 20_000);
    let c = wal.consumer("r").unwrap();
    let b = wal.read(c, 20_000).unwrap().unwrap();
    assert_eq!(b.samples.len(), 20_000);
    assert_eq!(
        b.series[b.samples[7].series as usize].get("__name__"),
        Some(names[7].as_str())
    );
}

#[test]
fn data_bytes_count_what_the_segments_hold_not_their_preallocation() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    };
    let mut wal = Wal::open(dir.path(), opts).unwrap();
    append_noise(&mut wal, 0, 5);
    wal.sync().unwrap();
    let first = wal.stats();
    append_noise(&mut wal, 5, 5);
    wal.sync().unwrap();
    let second = wal.stats();
    // The open segment is preallocated: its size on disk does not move, its data does.
    assert_eq!(second.segments, 1, "{second:?}");
    assert_eq!(first.bytes_on_disk, second.bytes_on_disk);
    assert!(first.data_bytes < second.data_bytes, "{first:?} {second:?}");
    assert!(second.data_bytes < second.bytes_on_disk, "{second:?}");
    // Sealing cuts the segment to its data: the files then take what `data_bytes` said.
    wal.close().unwrap();
    let files: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".seg") || name.starts_with("series-")
        })
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(files, second.data_bytes);
}
