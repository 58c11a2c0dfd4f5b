//! Remote write encoding, natively: throughput (samples/s) of remote write 1.0 and 2.0, as
//! uncompressed requests and as snappy payloads, and wire bytes per sample.
//!
//! Batches are node_exporter-like: about 50 bytes of label names and values per series
//! (`__name__`, `instance`, `job` and one more), 1 to 10 samples per series, 2000 samples per batch.
//! A second shape has one sample per series, as a sender streaming in real time produces.
//!
//! `decoded_request` and `request_in_place` start from the request's bytes, as the plugin
//! does: decoded into `Label`s, or read where it lies (`RawExportRequest`, label bytes copied
//! as they are).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use magpie_sdk::abi::raw::RawExportRequest;
use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, ExportRequest, Label};
use remote_write::meta::MetadataIndex;
use remote_write::{Config, Protocol, RemoteWrite, encode, encode_raw};

const BATCH_SAMPLES: usize = 2000;

/// Series label sets in node_exporter's style, about 50 bytes of names and values each:
/// `__name__`, the target's `instance` and `job`, and one label telling the series of a
/// family apart (sorted by name, as the host hands them).
fn series_labels(i: usize) -> Vec<(String, String)> {
    const FAMILIES: [(&str, &str); 5] = [
        ("node_cpu_total", "cpu"),
        ("node_load1", "ix"),
        ("node_net_rx_bytes", "dev"),
        ("node_fs_avail", "mnt"),
        ("node_mem_free", "zone"),
    ];
    let (family, label) = FAMILIES[i % FAMILIES.len()];
    let mut labels = vec![
        ("__name__".to_string(), family.to_string()),
        ("instance".into(), "pi:9100".into()),
        ("job".into(), "node".into()),
        (label.into(), (i / FAMILIES.len()).to_string()),
    ];
    labels.sort();
    labels
}

/// Owned strings for a batch of `BATCH_SAMPLES` samples; `points(i)` gives the sample count
/// of series `i`.
struct Spec {
    series: Vec<(Vec<(String, String)>, usize)>,
}

impl Spec {
    fn new(points: impl Fn(usize) -> usize) -> Self {
        let mut series = Vec::new();
        let mut left = BATCH_SAMPLES;
        let mut i = 0;
        while left > 0 {
            let n = points(i).min(left);
            series.push((series_labels(i), n));
            left -= n;
            i += 1;
        }
        Self { series }
    }

    fn batch(&self) -> ExportBatch<'_> {
        let mut b = ExportBatchBuilder::default();
        for (k, (labels, n)) in self.series.iter().enumerate() {
            b.series(labels.iter().map(|(n, v)| Label::new(n, v)));
            for j in 0..*n {
                let t = 1_700_000_000_000 + i64::try_from(j).unwrap() * 15_000;
                #[allow(clippy::cast_precision_loss)]
                b.point(t, (k * 1000 + j) as f64 * 1.25 + 0.1);
            }
        }
        b.finish()
    }

    fn label_bytes_per_series(&self) -> f64 {
        let total: usize = self
            .series
            .iter()
            .flat_map(|(l, _)| l.iter().map(|(n, v)| n.len() + v.len()))
            .sum();
        #[allow(clippy::cast_precision_loss)]
        let avg = total as f64 / self.series.len() as f64;
        avg
    }
}

/// 1 to 10 samples per series, spread by a fixed-seed generator.
fn mixed() -> Spec {
    Spec::new(|i| {
        let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        1 + usize::try_from(x % 10).unwrap()
    })
}

fn single() -> Spec {
    Spec::new(|_| 1)
}

fn config(protocol: Protocol) -> Config {
    Config {
        protocol,
        max_payload_bytes: None,
    }
}

fn print_wire_bytes() {
    for (shape, spec) in [
        ("1-10 samples/series", mixed()),
        ("1 sample/series", single()),
    ] {
        let batch = spec.batch();
        println!(
            "batch {shape}: {} series, {} samples, {:.1} label bytes/series",
            spec.series.len(),
            batch.sample_count(),
            spec.label_bytes_per_series()
        );
        for protocol in [Protocol::V1, Protocol::V2] {
            let raw: usize = encode(&batch, &config(protocol))
                .unwrap()
                .iter()
                .map(|r| r.body.len())
                .sum();
            let wire: usize = RemoteWrite::new(config(protocol))
                .export(&batch)
                .unwrap()
                .iter()
                .map(|p| p.body.len())
                .sum();
            #[allow(clippy::cast_precision_loss)]
            let per = |b: usize| b as f64 / batch.sample_count() as f64;
            println!(
                "  RW{}: {raw} bytes protobuf ({:.2}/sample), {wire} bytes snappy ({:.2} wire bytes/sample)",
                protocol.as_str(),
                per(raw),
                per(wire)
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    print_wire_bytes();
    for (shape, spec) in [("mixed", mixed()), ("single", single())] {
        let batch = spec.batch();
        let request = magpie_sdk::abi::encode(&ExportRequest::V1 {
            batch: batch.clone(),
        })
        .unwrap();
        let index = MetadataIndex::default();
        let mut g = c.benchmark_group(format!("encode_{shape}"));
        g.throughput(Throughput::Elements(batch.sample_count() as u64));
        for protocol in [Protocol::V1, Protocol::V2] {
            let cfg = config(protocol);
            g.bench_with_input(
                BenchmarkId::new("decoded_request", format!("rw{}", protocol.as_str())),
                &request,
                |b, bytes| {
                    b.iter(|| {
                        let req: ExportRequest<'_> =
                            magpie_sdk::abi::decode(black_box(bytes)).unwrap();
                        encode(req.batch(), &cfg).unwrap()
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new("request_in_place", format!("rw{}", protocol.as_str())),
                &request,
                |b, bytes| {
                    b.iter(|| {
                        let req = RawExportRequest::parse(black_box(bytes)).unwrap();
                        encode_raw(&req.batch, &req.exemplars, &cfg, &index).unwrap()
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new("protobuf", format!("rw{}", protocol.as_str())),
                &batch,
                |b, batch| b.iter(|| encode(black_box(batch), &cfg).unwrap()),
            );
            let mut exporter = RemoteWrite::new(cfg);
            g.bench_with_input(
                BenchmarkId::new("snappy_payload", format!("rw{}", protocol.as_str())),
                &batch,
                |b, batch| b.iter(|| exporter.export(black_box(batch)).unwrap()),
            );
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
