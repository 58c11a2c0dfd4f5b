//! Parse throughput (samples/s) for node_exporter-like bodies of 10k and 100k series, in the
//! text 0.0.4 and OpenMetrics formats, from memory and streamed in 16 KiB chunks; streamed
//! again with the plugin's metadata cache fed (steady state: nothing to report).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prom_scrape::meta::MetaCache;
use prom_scrape::{ExemplarRef, Format, MetricType, ParseOptions, Parser, Sink, SinkError};

/// Builds a body of about `series` samples: CPU counters, filesystem and network gauges, and
/// request-duration histograms, with node_exporter's names and label sets.
/// An exemplar as tracing libraries write them: a 32-hex trace id, a value and a timestamp.
const EXEMPLAR: &str = " # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.042 1700000000.123";

/// A node-exporter-like body of about `series` samples; with `exemplars` (OpenMetrics only),
/// one on every counter `_total` and histogram `_bucket` line, as the most a target can have.
fn body(series: usize, format: Format, exemplars: bool) -> (String, u64) {
    let om = format == Format::OpenMetrics;
    let ex = if om && exemplars { EXEMPLAR } else { "" };
    let mut out = String::with_capacity(series * 90);
    let mut n = 0u64;
    let mut block = 0;
    while (n as usize) < series {
        // CPU seconds: 8 modes per CPU.
        let f = format!("node_cpu_seconds_b{block}");
        let _ = writeln!(out, "# HELP {f} Seconds the CPUs spent in each mode.");
        let _ = writeln!(out, "# TYPE {f} counter");
        let suffix = if om { "_total" } else { "" };
        for cpu in 0..16 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let _ = writeln!(
                    out,
                    "{f}{suffix}{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{:02}{ex}",
                    100_000 + cpu * 37 + n,
                    n % 100
                );
                n += 1;
            }
        }
        // Filesystem gauges.
        let f = format!("node_filesystem_avail_bytes_b{block}");
        let _ = writeln!(
            out,
            "# HELP {f} Filesystem space available to non-root users in bytes."
        );
        let _ = writeln!(out, "# TYPE {f} gauge");
        for dev in 0..32 {
            let _ = writeln!(
                out,
                "{f}{{device=\"/dev/mmcblk0p{dev}\",fstype=\"ext4\",mountpoint=\"/srv/data{dev}\"}} {}e+09",
                1.5 + f64::from(dev) * 0.25
            );
            n += 1;
        }
        // Network counters.
        let f = format!("node_network_receive_bytes_b{block}");
        let _ = writeln!(out, "# HELP {f} Network device statistic receive_bytes.");
        let _ = writeln!(out, "# TYPE {f} counter");
        for dev in ["eth0", "wlan0", "lo", "docker0", "veth1a2b3c", "br-5f2e1a"] {
            let _ = writeln!(
                out,
                "{f}{suffix}{{device=\"{dev}\"}} {}{ex}",
                9_876_543_210u64 + n
            );
            n += 1;
        }
        // Request histograms: 10 buckets + sum + count per handler.
        let f = format!("http_request_duration_seconds_b{block}");
        let _ = writeln!(out, "# HELP {f} Latency of HTTP requests.");
        let _ = writeln!(out, "# TYPE {f} histogram");
        for handler in ["/metrics", "/api/v1/query", "/-/healthy", "/static"] {
            let labels = format!("handler=\"{handler}\",method=\"GET\",code=\"200\"");
            let mut cumulative = 0;
            for le in [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
            ] {
                cumulative += 7;
                let _ = writeln!(out, "{f}_bucket{{{labels},le=\"{le}\"}} {cumulative}{ex}");
                n += 1;
            }
            let _ = writeln!(out, "{f}_sum{{{labels}}} 12.5");
            let _ = writeln!(out, "{f}_count{{{labels}}} {cumulative}");
            n += 2;
        }
        block += 1;
    }
    if om {
        out.push_str("# EOF\n");
    }
    (out, n)
}

/// Touches every field so that nothing is optimised away, as a real sink would.
#[derive(Default)]
struct Touch {
    acc: u64,
}

impl Sink for Touch {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        let label_bytes: usize = labels.iter().map(|(n, v)| n.len() + v.len()).sum();
        self.acc = self.acc.wrapping_add(
            (name.len() + label_bytes) as u64 ^ value.to_bits() ^ timestamp_ms.unwrap_or(0) as u64,
        );
        Ok(())
    }
    fn exemplar(&mut self, sample: &str, e: &ExemplarRef<'_>) -> Result<(), SinkError> {
        let label_bytes: usize = e.labels.iter().map(|(n, v)| n.len() + v.len()).sum();
        self.acc = self.acc.wrapping_add(
            (sample.len() + label_bytes) as u64
                ^ e.value.to_bits()
                ^ e.timestamp_ms.unwrap_or(0) as u64,
        );
        Ok(())
    }
}

/// [`Touch`] plus the plugin's metadata cache, as the plugin's sink feeds it.
#[derive(Default)]
struct WithMeta {
    touch: Touch,
    meta: MetaCache,
}

impl Sink for WithMeta {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.touch.sample(name, labels, value, timestamp_ms)
    }
    fn help(&mut self, family: &str, help: &str) -> Result<(), SinkError> {
        self.meta.help(family, help);
        Ok(())
    }
    fn metric_type(&mut self, family: &str, t: MetricType) -> Result<(), SinkError> {
        self.meta.kind(family, t);
        Ok(())
    }
    fn unit(&mut self, family: &str, unit: &str) -> Result<(), SinkError> {
        self.meta.unit(family, unit);
        Ok(())
    }
}

/// Serves a body in chunks, as the host streams it into the guest.
struct Chunks<'a>(&'a [u8]);

const CHUNK: usize = 16 * 1024;

impl embedded_io::ErrorType for Chunks<'_> {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(CHUNK).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for series in [10_000, 100_000] {
        for (format, label, exemplars) in [
            (Format::PrometheusText, "text-0.0.4", false),
            (Format::OpenMetrics, "openmetrics", false),
            (Format::OpenMetrics, "openmetrics+exemplars", true),
        ] {
            let (body, samples) = body(series, format, exemplars);
            group.throughput(Throughput::Elements(samples));
            let mut parser = Parser::new(ParseOptions::new(format));
            // Check once that the body is valid, so the figures are for a full parse.
            let summary = parser
                .parse_slice(body.as_bytes(), &mut Touch::default())
                .expect("benchmark body is valid");
            assert_eq!(summary.samples, samples);
            group.bench_function(BenchmarkId::new(format!("{label}/slice"), series), |b| {
                b.iter(|| {
                    let mut sink = Touch::default();
                    parser
                        .parse_slice(black_box(body.as_bytes()), &mut sink)
                        .ok();
                    black_box(sink.acc)
                });
            });
            group.bench_function(
                BenchmarkId::new(format!("{label}/stream-16k"), series),
                |b| {
                    b.iter(|| {
                        let mut sink = Touch::default();
                        parser
                            .parse_reader(Chunks(black_box(body.as_bytes())), &mut sink)
                            .ok();
                        black_box(sink.acc)
                    });
                },
            );
            // Steady state: the cache already holds the body's metadata, so each scrape
            // looks families up and reports nothing.
            let mut sink = WithMeta::default();
            sink.meta.begin();
            parser.parse_slice(body.as_bytes(), &mut sink).ok();
            assert!(sink.meta.finish().is_some());
            group.bench_function(
                BenchmarkId::new(format!("{label}/stream-16k+metadata"), series),
                |b| {
                    b.iter(|| {
                        sink.meta.begin();
                        parser
                            .parse_reader(Chunks(black_box(body.as_bytes())), &mut sink)
                            .ok();
                        assert!(sink.meta.finish().is_none());
                        black_box(sink.touch.acc)
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
