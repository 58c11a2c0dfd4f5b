//! An exporter's call into its plugin: the remote write plugin encoding a 2000-series batch
//! (node_exporter-like label sets, 5 labels and an external one, one point each) into a
//! snappy remote write 1.0 payload, natively (from the same request bytes the host sends,
//! read in place as the plugin reads them, and decoded) and in wasm under Cranelift and under
//! Pulley. Throughput figures are samples per
//! second ("elem/s").

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use magpie_host::{Host, InstanceSpec, Limits, Runner};
use magpie_sdk::abi::raw::RawExportRequest;
use magpie_sdk::abi::{self, ExportBatchEncoder, ExportRequest, Value};
use magpie_testkit::guest;
use remote_write::{Config, Protocol, RemoteWrite};
use std::hint::black_box;
use std::time::Duration;

/// Series in a batch: the exporter's default batch size.
const SERIES: usize = 2000;

/// The batch as the exporter writes it.
fn batch() -> ExportBatchEncoder {
    let mut b = ExportBatchEncoder::default();
    for i in 0..SERIES {
        let cpu = (i / 8).to_string();
        let mode = [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ][i % 8];
        b.series([
            ("__name__", "node_cpu_seconds_total"),
            ("agent", "magpie"),
            ("cpu", cpu.as_str()),
            ("instance", "gateway-17.example.net:9100"),
            ("job", "node"),
            ("mode", mode),
        ]);
        #[allow(clippy::cast_precision_loss)]
        b.point(1_700_000_000_000 + i as i64, i as f64 * 0.25);
    }
    b
}

fn export(c: &mut Criterion) {
    let encoded = batch();
    let mut g = c.benchmark_group("export_2000_series_remote_write_v1");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(SERIES as u64));

    // The request bytes the host hands the plugin: the `V1` tag, then the batch.
    let mut request = vec![0];
    encoded.write_to(&mut request);
    let mut native = RemoteWrite::new(Config {
        protocol: Protocol::V1,
        max_payload_bytes: None,
    });
    // As the plugin does: the request read where it lies.
    g.bench_function("native", |b| {
        b.iter(|| {
            let req = RawExportRequest::parse(&request).unwrap();
            black_box(native.export_raw(&req).unwrap())
        });
    });
    // The request decoded into `Label`s, as a plugin on the SDK's default path does.
    g.bench_function("native_decoded", |b| {
        b.iter(|| {
            let req: ExportRequest<'_> = abi::decode(&request).unwrap();
            black_box(native.export(req.batch()).unwrap())
        });
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for (engine, target) in [("wasm_cranelift", None), ("wasm_pulley", Some("pulley64"))] {
        let host = Host::for_target(target).unwrap();
        let plugin = rt
            .block_on(host.load("remote-write", &guest("remote-write")))
            .unwrap();
        let mut spec = InstanceSpec::new("bench");
        spec.config = Value::default();
        spec.limits = Limits {
            cpu: Duration::from_secs(60),
            wall: Duration::from_secs(120),
            ..Limits::DEFAULT
        };
        let mut runner = Runner::new(host, plugin, spec);
        let mut call = || {
            let payloads = rt
                .block_on(runner.export_encoded(&encoded, &[], false))
                .unwrap();
            assert_eq!(payloads.iter().map(|p| p.samples).sum::<u32>(), 2000);
            black_box(payloads)
        };
        call();
        if target.is_some() {
            g.sample_size(10);
        }
        g.bench_function(engine, |b| b.iter(&mut call));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = export
}
criterion_main!(benches);
