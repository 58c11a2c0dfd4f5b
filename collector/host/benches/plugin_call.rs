//! What the sandbox costs: loading a module (Cranelift at load time vs a precompiled artifact),
//! instantiating it, a scrape call carrying 10k samples across the boundary, and parsing the
//! same 10k-series exposition natively, in wasm under Cranelift, and in wasm under Pulley (the
//! interpreter 32-bit ARM devices run). Throughput figures are samples per second ("elem/s").
//!
//! Guests are built from `plugins/` for wasm32 by the testkit, like the contract tests do.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use magpie_host::{
    Grants, Host, InstanceSpec, Limits, MemFetch, RawSampleBatch, Runner, SampleSink,
};
use magpie_sdk::abi::{EmitStatus, Grants as AbiGrants, Replay, SampleBatch, ScrapeRequest, Value};
use magpie_testkit::guest;
use prom_scrape::{Format, ParseOptions, Parser, Sink, SinkError};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;

/// Samples in the round-trip and parse benchmarks.
const SAMPLES: u32 = 10_000;
const TARGET: &str = "http://bench.invalid/metrics";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn request(target: &str) -> ScrapeRequest<'_> {
    request_replay(target, Replay::default())
}

/// A request with replay tokens: with `token` not 0, the scraper may send repeat records of
/// scrape `order`.
fn request_replay(target: &str, replay: Replay) -> ScrapeRequest<'_> {
    ScrapeRequest::V2 {
        target: target.into(),
        scrape_time_ms: 0,
        timeout_ms: 60_000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: AbiGrants::default(),
        replay,
    }
}

/// Room for the slowest engine: Pulley interprets, and a benchmark must not hit the CPU limit.
fn spec(config: Value, urls: Vec<String>) -> InstanceSpec {
    let mut spec = InstanceSpec::new("bench");
    spec.config = config;
    spec.grants = Arc::new(Grants::new(urls, &[]).unwrap());
    spec.limits = Limits {
        cpu: Duration::from_secs(60),
        wall: Duration::from_secs(120),
        ..Limits::DEFAULT
    };
    spec
}

/// Counts samples; the count is shared so a benchmark can check what one call delivered.
/// Repeat records count in the second counter too.
struct Count(Arc<AtomicU64>, Arc<AtomicU64>);

impl SampleSink for Count {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        self.0
            .fetch_add(batch.samples.len() as u64, Ordering::Relaxed);
        EmitStatus::Continue
    }

    /// What the collector's series cache does with a batch: read it in place, touching each
    /// sample's name, label bytes and value, with no decode.
    fn push_raw(&mut self, batch: &RawSampleBatch<'_>) -> Result<EmitStatus, String> {
        let (mut n, mut repeats) = (0, 0);
        for s in batch.iter() {
            if s.is_repeat() {
                black_box(s.value);
                repeats += 1;
            } else {
                black_box((s.name_bytes(), s.labels.pairs().count(), s.value));
            }
            n += 1;
        }
        self.0.fetch_add(n, Ordering::Relaxed);
        self.1.fetch_add(repeats, Ordering::Relaxed);
        Ok(EmitStatus::Continue)
    }
}

fn load(c: &mut Criterion) {
    let rt = runtime();
    let host = Host::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("load");
    g.sampling_mode(SamplingMode::Flat).sample_size(20);
    for name in ["hello", "prom-scrape"] {
        let wasm = guest(name);
        let bytes = std::fs::read(&wasm).unwrap();
        let cwasm = dir.path().join(format!("{name}.cwasm"));
        let artifact =
            magpie_host::engine::precompile(magpie_host::engine::BUILD_TARGET, &bytes).unwrap();
        std::fs::write(&cwasm, artifact).unwrap();
        g.bench_function(BenchmarkId::new("jit", name), |b| {
            b.iter(|| rt.block_on(host.load(name, &wasm)).unwrap());
        });
        g.bench_function(BenchmarkId::new("precompiled", name), |b| {
            b.iter(|| rt.block_on(host.load(name, &cwasm)).unwrap());
        });
    }
    g.finish();
}

fn instantiate(c: &mut Criterion) {
    let rt = runtime();
    let host = Host::new().unwrap();
    let mut g = c.benchmark_group("instantiate");
    for name in ["hello", "prom-scrape"] {
        let plugin = rt.block_on(host.load(name, &guest(name))).unwrap();
        let spec = spec(Value::default(), vec![TARGET.into()]);
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(host.instantiate(&plugin, &spec)).unwrap());
        });
    }
    g.finish();
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let host = Host::new().unwrap();
    let plugin = rt
        .block_on(host.load("hostile", &guest("hostile")))
        .unwrap();
    let config = Value::Table(vec![
        ("behavior".into(), Value::Str("flood".into())),
        ("arg".into(), Value::Str(SAMPLES.to_string())),
    ]);
    let mut runner = Runner::new(host, plugin, spec(config, vec![]));
    let counted = Arc::new(AtomicU64::new(0));
    let mut sink: Option<Box<dyn SampleSink>> =
        Some(Box::new(Count(Arc::clone(&counted), Arc::default())));
    let req = request("");
    let mut call = || {
        let (back, r) = rt.block_on(runner.scrape(&req, sink.take().unwrap()));
        r.unwrap();
        sink = Some(back);
    };
    call();
    assert_eq!(counted.load(Ordering::Relaxed), u64::from(SAMPLES));

    let mut g = c.benchmark_group("call");
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(u64::from(SAMPLES)));
    g.bench_function("scrape_10k_samples", |b| b.iter(&mut call));
    g.finish();
}

/// A body of `series` samples shaped like node_exporter's: CPU counters, labelled gauges and
/// histograms, with HELP and TYPE lines; in the text format 0.0.4, or in OpenMetrics (counter
/// samples named `_total`, and `# EOF`).
fn exposition(series: u32, format: Format) -> Vec<u8> {
    let om = format == Format::OpenMetrics;
    let mut out = String::new();
    let mut n = 0u32;
    let mut family = 0;
    while n < series {
        // The same sample names in both formats.
        let (f, total) = if om {
            (format!("node_cpu_seconds_{family}"), "_total")
        } else {
            (format!("node_cpu_seconds_total_{family}"), "")
        };
        let _ = writeln!(out, "# HELP {f} Seconds the CPUs spent in each mode.");
        let _ = writeln!(out, "# TYPE {f} counter");
        for cpu in 0..8 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let _ = writeln!(
                    out,
                    "{f}{total}{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{:02}",
                    100_000 + n,
                    n % 100
                );
                n += 1;
            }
        }
        let f = format!("node_filesystem_avail_bytes_{family}");
        let _ = writeln!(
            out,
            "# HELP {f} Filesystem space available to non-root users."
        );
        let _ = writeln!(out, "# TYPE {f} gauge");
        for dev in 0..16 {
            let _ = writeln!(
                out,
                "{f}{{device=\"/dev/mmcblk0p{dev}\",fstype=\"ext4\",mountpoint=\"/srv/data{dev}\"}} {}e+09",
                1.5 + f64::from(dev) * 0.25
            );
            n += 1;
        }
        let f = format!("http_request_duration_seconds_{family}");
        let _ = writeln!(out, "# HELP {f} Latency of HTTP requests.");
        let _ = writeln!(out, "# TYPE {f} histogram");
        for handler in ["/metrics", "/api/v1/query", "/-/healthy", "/static"] {
            let labels = format!("handler=\"{handler}\",method=\"GET\",code=\"200\"");
            let mut cumulative = 0;
            for le in [
                "0.005", "0.01", "0.05", "0.1", "0.5", "1", "2.5", "5", "10", "+Inf",
            ] {
                cumulative += 7;
                let _ = writeln!(out, "{f}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{f}_sum{{{labels}}} 12.5");
            let _ = writeln!(out, "{f}_count{{{labels}}} {cumulative}");
            n += 12;
        }
        family += 1;
    }
    if om {
        out.push_str("# EOF\n");
    }
    out.into_bytes()
}

/// Counts samples in the native parse, touching what a real sink would read.
struct CountSink(u64);

impl Sink for CountSink {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        black_box((name, labels, value, timestamp_ms));
        self.0 += 1;
        Ok(())
    }
}

fn parse(c: &mut Criterion) {
    parse_format(
        c,
        "parse_10k_series",
        Format::PrometheusText,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    parse_format(
        c,
        "parse_10k_series_openmetrics",
        Format::OpenMetrics,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    );
}

fn parse_format(c: &mut Criterion, group: &str, format: Format, content_type: &'static str) {
    let body: Arc<[u8]> = exposition(SAMPLES, format).into();
    let mut parser = Parser::new(ParseOptions::new(format));
    let mut count = CountSink(0);
    parser.parse_reader(&body[..], &mut count).unwrap();
    let samples = count.0;

    let mut g = c.benchmark_group(group);
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(samples));
    g.bench_function("native", |b| {
        b.iter(|| {
            let mut count = CountSink(0);
            parser.parse_reader(&body[..], &mut count).unwrap();
            count.0
        });
    });

    let rt = runtime();
    for (engine, target) in [("wasm_cranelift", None), ("wasm_pulley", Some("pulley64"))] {
        let host = Host::for_target(target)
            .unwrap()
            .with_fetcher(Arc::new(MemFetch::new(Arc::clone(&body), content_type)));
        let plugin = rt
            .block_on(host.load("prom-scrape", &guest("prom-scrape")))
            .unwrap();
        let spec = spec(Value::default(), vec![TARGET.into()]);
        let mut instance = rt.block_on(host.instantiate(&plugin, &spec)).unwrap();
        if target.is_some() {
            // The interpreter takes hundreds of milliseconds per body.
            g.sample_size(10);
        }
        // Whole samples every time (no replay tokens), then repeat records of the last
        // scrape, as the collector's scrapes after the first send them.
        for replay in [false, true] {
            let (counted, repeats) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let mut sink: Option<Box<dyn SampleSink>> =
                Some(Box::new(Count(Arc::clone(&counted), Arc::clone(&repeats))));
            let mut token = 0;
            let mut call = || {
                let r = if replay {
                    token += 1;
                    Replay {
                        token,
                        order: token - 1,
                    }
                } else {
                    Replay::default()
                };
                let req = request_replay(TARGET, r);
                let (back, r) = rt.block_on(instance.scrape(&req, sink.take().unwrap()));
                r.unwrap();
                sink = Some(back);
            };
            for _ in 0..2 {
                counted.store(0, Ordering::Relaxed);
                repeats.store(0, Ordering::Relaxed);
                call();
            }
            assert_eq!(counted.load(Ordering::Relaxed), samples, "{engine}");
            let expected = if replay { samples } else { 0 };
            assert_eq!(repeats.load(Ordering::Relaxed), expected, "{engine}");
            let id = if replay {
                format!("{engine}_repeats")
            } else {
                engine.to_string()
            };
            g.bench_function(id, |b| b.iter(&mut call));
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Short runs, and flat sampling where one iteration takes milliseconds (linear sampling
    // would need hundreds of them): the whole file finishes in about three minutes.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = load, instantiate, round_trip, parse
}
criterion_main!(benches);
