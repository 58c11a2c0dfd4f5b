//! WAL benchmarks: append throughput per fsync policy, bytes per sample on node_exporter-like
//! data (against postcard + snappy per record), recovery time of a full 64 MiB ring, drain
//! throughput. Figures are printed; nothing is asserted.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use magpie_wal::synth::Dataset;
use magpie_wal::{Options, Wal};

const START_MS: i64 = 1_700_000_000_000;

fn seg_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Bytes per sample for 6 hours of 4 node_exporter targets at 15 s, in the WAL (syncing after
/// every scrape as a 1 s interval does, and never syncing, which makes records span scrapes)
/// and as postcard + snappy per scrape record.
fn bytes_per_sample() {
    let ds = Dataset::node_exporter(4, 3);
    let refs = ds.label_refs();
    let scrapes = 6 * 240;
    let samples = (ds.series.len() * scrapes) as f64;
    for sync in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path(), Options::default()).unwrap();
        let mut walk = ds.walk(START_MS);
        let mut now = Instant::now();
        let started = Instant::now();
        for _ in 0..scrapes {
            walk.step();
            wal.append(walk.samples(&refs)).unwrap();
            if sync {
                now += Duration::from_secs(15);
                wal.sync_if_due(now).unwrap();
            }
        }
        let took = started.elapsed();
        wal.close().unwrap();
        println!(
            "bytes/sample, WAL, {} series x {scrapes} scrapes, labels included, {}: {:.3} ({:.0} ns/sample to append)",
            ds.series.len(),
            if sync {
                "sync after each scrape"
            } else {
                "no sync until close"
            },
            seg_bytes(dir.path()) as f64 / samples,
            took.as_nanos() as f64 / samples,
        );
    }
    let mut enc = snap::raw::Encoder::new();
    let mut snappy_bytes = 0usize;
    let mut walk = ds.walk(START_MS);
    let started = Instant::now();
    for _ in 0..scrapes {
        let (t, vals) = walk.step();
        let rec: Vec<(u32, i64, f64)> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u32, t, v))
            .collect();
        let raw = postcard::to_allocvec(&rec).unwrap();
        snappy_bytes += enc.compress_vec(&raw).unwrap().len();
    }
    println!(
        "bytes/sample, postcard+snappy per scrape record, labels excluded: {:.3} ({:.0} ns/sample to encode)",
        snappy_bytes as f64 / samples,
        started.elapsed().as_nanos() as f64 / samples,
    );
}

fn append(c: &mut Criterion) {
    bytes_per_sample();
    let ds = Dataset::node_exporter(4, 5);
    let refs = ds.label_refs();
    let mut g = c.benchmark_group("append_scrape_1640_samples");
    g.throughput(Throughput::Elements(ds.series.len() as u64));
    for (name, interval) in [
        ("fsync_every_append", Some(Duration::ZERO)),
        ("fsync_every_1s", Some(Duration::from_secs(1))),
        ("no_fsync", None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            fsync_interval: interval.unwrap_or(Duration::from_secs(3600)),
            ..Options::default()
        };
        let mut wal = Wal::open(dir.path(), opts).unwrap();
        let mut walk = ds.walk(START_MS);
        g.bench_function(name, |b| {
            b.iter(|| {
                walk.step();
                wal.append(walk.samples(&refs)).unwrap();
                if interval.is_some() {
                    wal.sync_if_due(Instant::now()).unwrap();
                }
            });
        });
        wal.close().unwrap();
    }
    g.finish();
}

/// Fills a default 64 MiB ring until it starts dropping; returns the number of samples.
fn full_ring(dir: &Path) -> u64 {
    let ds = Dataset::node_exporter(25, 9);
    let refs = ds.label_refs();
    let mut wal = Wal::open(dir, Options::default()).unwrap();
    let mut walk = ds.walk(START_MS);
    while wal.stats().segments_dropped == 0 {
        walk.step();
        wal.append(walk.samples(&refs)).unwrap();
    }
    let n = wal.stats().samples_in_ring;
    wal.close().unwrap();
    n
}

fn recovery_and_drain(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let samples = full_ring(dir.path());
    println!(
        "full ring: {} bytes in segments, {samples} samples",
        seg_bytes(dir.path())
    );
    let mut g = c.benchmark_group("recovery_64MiB_ring");
    g.bench_function("open_clean", |b| {
        b.iter(|| black_box(Wal::open(dir.path(), Options::default()).unwrap()));
    });
    // After a crash the tail is unsealed and must be scanned: restore an unsealed copy each time.
    let tail = {
        let mut v: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v.pop().unwrap()
    };
    let mut unsealed = std::fs::read(&tail).unwrap();
    unsealed[32..72].fill(0);
    g.bench_function("open_after_crash", |b| {
        b.iter_batched(
            || std::fs::write(&tail, &unsealed).unwrap(),
            |()| black_box(Wal::open(dir.path(), Options::default()).unwrap()),
            BatchSize::PerIteration,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("drain_64MiB_ring");
    g.throughput(Throughput::Elements(samples));
    let mut wal = Wal::open(dir.path(), Options::default()).unwrap();
    let reader = wal.consumer("bench").unwrap();
    g.bench_function("read_batches_of_2000", |b| {
        b.iter(|| {
            wal.rewind(reader).unwrap();
            let mut n = 0;
            while let Some(batch) = wal.read(reader, 2000).unwrap() {
                n += batch.samples.len();
            }
            black_box(n)
        });
    });
    g.finish();
}

/// Positional writes through rustix against io_uring (feature `io-uring`): raw 16 KiB writes,
/// `fdatasync`, and whole scrapes appended with a sync after each.
fn io_backend(c: &mut Criterion) {
    #[cfg_attr(not(feature = "io-uring"), allow(unused_mut))]
    let mut backends: Vec<(&str, std::sync::Arc<dyn magpie_wal::storage::Storage>)> = vec![(
        "rustix_pwrite",
        std::sync::Arc::new(magpie_wal::storage::OsStorage),
    )];
    #[cfg(feature = "io-uring")]
    match magpie_wal::uring::UringStorage::new() {
        Ok(u) => backends.push(("io_uring", std::sync::Arc::new(u))),
        Err(e) => println!("io_uring unavailable here: {e}"),
    }
    let ds = Dataset::node_exporter(4, 5);
    let refs = ds.label_refs();
    let mut g = c.benchmark_group("io_backend");
    for (name, storage) in backends {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw");
        let mut f = storage.create(&path).unwrap();
        let page = vec![0xA5u8; 16 << 10];
        let mut at = 0u64;
        g.throughput(Throughput::Bytes(page.len() as u64));
        g.bench_function(format!("{name}/write_16KiB"), |b| {
            b.iter(|| {
                f.write_all_at(&page, at).unwrap();
                at = (at + page.len() as u64) % (64 << 20);
            });
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{name}/write_4KiB_fdatasync"), |b| {
            b.iter(|| {
                f.write_all_at(&page[..4096], at).unwrap();
                at = (at + 4096) % (64 << 20);
                f.sync_data().unwrap();
            });
        });
        drop(f);
        for (policy, interval) in [
            ("fsync_each", Duration::ZERO),
            ("fsync_1s", Duration::from_secs(1)),
        ] {
            let wal_dir = tempfile::tempdir().unwrap();
            let opts = Options {
                fsync_interval: interval,
                ..Options::default()
            };
            let mut wal = Wal::open_with(wal_dir.path(), opts, storage.clone()).unwrap();
            let mut walk = ds.walk(START_MS);
            g.throughput(Throughput::Elements(ds.series.len() as u64));
            g.bench_function(format!("{name}/append_scrape_{policy}"), |b| {
                b.iter(|| {
                    walk.step();
                    wal.append(walk.samples(&refs)).unwrap();
                    wal.sync_if_due(Instant::now()).unwrap();
                });
            });
            wal.close().unwrap();
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = append, recovery_and_drain, io_backend
}
criterion_main!(benches);
