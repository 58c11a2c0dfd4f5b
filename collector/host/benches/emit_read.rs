//! Reading a scraper's `emit` batch on the host: postcard's decoding into `Label`s (every
//! string's UTF-8 checked) against `RawSampleBatch` (framing checked, strings left as bytes),
//! each followed by what a sink keyed by label sets does for a series it has seen: hash the
//! sample's name and labels. The scrape's series cache is this second kind of sink. 10k
//! node_exporter-like samples in batches of 512, as the SDK's emitter flushes them;
//! throughput in samples per second ("elem/s").

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use magpie_host::RawSampleBatch;
use magpie_sdk::abi::{self, SampleBatch, SampleEncoder};
use std::hash::{DefaultHasher, Hasher};
use std::hint::black_box;

const SAMPLES: usize = 10_000;
const BATCH: usize = 512;

fn batches() -> Vec<Vec<u8>> {
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let mut out = Vec::new();
    let mut enc = SampleEncoder::default();
    for i in 0..SAMPLES {
        let cpu = (i / 8).to_string();
        let labels = [("cpu", cpu.as_str()), ("mode", modes[i % 8])];
        enc.push("node_cpu_seconds_total", labels, i as f64 * 0.01, None);
        if enc.len() == BATCH || i + 1 == SAMPLES {
            let mut b = Vec::new();
            enc.finish_into(&mut b);
            out.push(b);
        }
    }
    out
}

fn read(c: &mut Criterion) {
    let batches = batches();
    let mut g = c.benchmark_group("emit_read_10k_samples");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    g.bench_function("postcard_decode", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for bytes in &batches {
                let batch: SampleBatch<'_> = abi::decode(bytes).unwrap();
                assert!(batch.is_consistent());
                for (s, labels) in batch.iter() {
                    let mut h = DefaultHasher::new();
                    h.write(s.name.as_bytes());
                    for l in labels {
                        h.write(l.name.as_bytes());
                        h.write(l.value.as_bytes());
                    }
                    sum = sum.wrapping_add(h.finish() ^ s.value.to_bits());
                }
            }
            black_box(sum)
        });
    });
    g.bench_function("raw_in_place", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for bytes in &batches {
                let batch = RawSampleBatch::parse(bytes).unwrap();
                for s in batch.iter() {
                    let mut h = DefaultHasher::new();
                    h.write(s.name_bytes());
                    h.write(s.labels.bytes());
                    sum = sum.wrapping_add(h.finish() ^ s.value.to_bits());
                }
            }
            black_box(sum)
        });
    });
    g.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
