//! The host's side of an export call: a batch of WAL label sets and points becomes the
//! plugin's request bytes. Compares building an `ExportBatch` of borrowed labels and encoding
//! it with postcard (the generic path, which tests and other callers use) with the
//! exporter's path, `ExportBatchEncoder` copying each label set's encoding in one piece.
//! Throughput figures are samples per second ("elem/s"); one point per series, as a scrape
//! interval's batch holds.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use magpie_export::ExternalLabels;
use magpie_sdk::abi::{self, ExportBatchBuilder, ExportBatchEncoder, ExportRequest, Label};
use magpie_wal::Labels;
use std::hint::black_box;

/// Series in a batch: the exporter's default batch size.
const SERIES: usize = 2000;

/// node_exporter-like label sets: `node_cpu_seconds_total{cpu, instance, job, mode}`.
fn label_sets() -> Vec<Labels> {
    (0..SERIES)
        .map(|i| {
            let cpu = (i / 8).to_string();
            let mode = [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ][i % 8];
            Labels::new(&[
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", &cpu),
                ("instance", "gateway-17.example.net:9100"),
                ("job", "node"),
                ("mode", mode),
            ])
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let sets = label_sets();
    let mut g = c.benchmark_group("export_request_2000_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("batch_then_postcard", |b| {
        b.iter(|| {
            let mut batch = ExportBatchBuilder::default();
            for (i, l) in sets.iter().enumerate() {
                batch.series(l.iter().map(|(n, v)| Label::new(n, v)));
                batch.point(1_700_000_000_000 + i as i64, i as f64 * 0.25);
            }
            let req = ExportRequest::V1 {
                batch: batch.finish(),
            };
            black_box(abi::encode(&req).unwrap())
        });
    });
    g.bench_function("encoder_copying_label_sets", |b| {
        b.iter(|| {
            let mut batch = ExportBatchEncoder::default();
            for (i, l) in sets.iter().enumerate() {
                let (count, pairs) = l.encoded_pairs();
                batch.series_encoded(count, pairs);
                batch.point(1_700_000_000_000 + i as i64, i as f64 * 0.25);
            }
            let mut out = vec![0];
            batch.write_to(&mut out);
            black_box(out)
        });
    });
    // As the side-by-side bench runs it: one external label, merged into each encoding.
    let external = ExternalLabels::new(&[("agent".to_string(), "magpie".to_string())]);
    g.bench_function("encoder_merging_an_external_label", |b| {
        let mut scratch = Vec::new();
        b.iter(|| {
            let mut batch = ExportBatchEncoder::default();
            for (i, l) in sets.iter().enumerate() {
                scratch.clear();
                let count = external.write_merged(l, &mut scratch);
                batch.series_encoded(count, &scratch);
                batch.point(1_700_000_000_000 + i as i64, i as f64 * 0.25);
            }
            let mut out = vec![0];
            batch.write_to(&mut out);
            black_box(out)
        });
    });
    // The way such label sets went before: decoded, the external label added, sorted.
    g.bench_function("encoder_external_label_by_strings", |b| {
        b.iter(|| {
            let mut batch = ExportBatchEncoder::default();
            for (i, l) in sets.iter().enumerate() {
                let mut all: Vec<(&str, &str)> = l.iter().collect();
                if l.get("agent").is_none() {
                    all.push(("agent", "magpie"));
                }
                all.sort_by(|a, b| a.0.cmp(b.0));
                batch.series(all);
                batch.point(1_700_000_000_000 + i as i64, i as f64 * 0.25);
            }
            let mut out = vec![0];
            batch.write_to(&mut out);
            black_box(out)
        });
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
