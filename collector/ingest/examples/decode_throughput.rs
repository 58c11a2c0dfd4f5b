//! Ingest throughput per decoder on one core: each message goes the whole `Source::accept`
//! path (decoder plugin under wasmtime, label checks, WAL append and flush), without the
//! network. Prints samples per second; asserts nothing.
//!
//! `cargo run --release -p magpie-ingest --example decode_throughput -- [PLUGIN_DIR] [MESSAGES]`
//! (`bench/ingest.sh` builds the plugins first).

use magpie_host::{Host, InstanceSpec, Runner};
use magpie_ingest::{Decoder, Message, Observer, Reason, Source, SourceLimits};
use magpie_sdk::abi::Value;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

struct Quiet;

impl Observer for Quiet {
    fn ingested(&self, _: &str, _: usize) {}
    fn rejected(&self, source: &str, reason: Reason) {
        eprintln!("{source}: refused ({})", reason.as_str());
    }
}

/// A 1000-sample Pushgateway body: 100 series of 10 label-distinct gauges.
fn prom_text() -> Vec<u8> {
    let mut s = String::from("# TYPE room_temp_celsius gauge\n");
    for i in 0..1000 {
        let _ = writeln!(
            s,
            "room_temp_celsius{{room=\"r{i}\",floor=\"{}\"}} {}.5",
            i % 10,
            i
        );
    }
    s.into_bytes()
}

/// A remote write 1.0 request of 1000 series with one sample each, snappy-compressed.
fn remote_write(now: i64) -> Vec<u8> {
    use prost::Message as _;
    use remote_write::proto::v1;
    let req = v1::WriteRequest {
        timeseries: (0..1000)
            .map(|i| v1::TimeSeries {
                labels: vec![
                    v1::Label {
                        name: "__name__".into(),
                        value: "node_network_receive_bytes_total".into(),
                    },
                    v1::Label {
                        name: "device".into(),
                        value: format!("eth{i}"),
                    },
                    v1::Label {
                        name: "instance".into(),
                        value: "gw-1:9100".into(),
                    },
                    v1::Label {
                        name: "job".into(),
                        value: "node".into(),
                    },
                ],
                samples: vec![v1::Sample {
                    value: f64::from(i),
                    timestamp: now,
                }],
            })
            .collect(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// An OTLP/HTTP protobuf request as an SDK sends it: one resource, 1000 gauge points of one
/// metric with two attributes each (1001 samples with `target_info`).
fn otlp_request(now: i64) -> Vec<u8> {
    use otlp::proto::{
        AnyValue, ExportMetricsServiceRequest, Gauge, InstrumentationScope, KeyValue, Metric,
        NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics, any_value, metric,
        number_data_point,
    };
    use prost::Message as _;
    let kv = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
    };
    let t = u64::try_from(now).unwrap() * 1_000_000;
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "pump".into()),
                    kv("service.instance.id", "pump-7".into()),
                    kv("host.name", "gw-1".into()),
                ],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    version: "1".into(),
                }),
                metrics: vec![Metric {
                    name: "room.temperature".into(),
                    unit: "Cel".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..1000)
                            .map(|i| NumberDataPoint {
                                attributes: vec![
                                    kv("room", format!("r{i}")),
                                    kv("floor", format!("{}", i % 10)),
                                ],
                                time_unix_nano: t,
                                value: Some(number_data_point::Value::AsDouble(f64::from(i))),
                                flags: 0,
                            })
                            .collect(),
                    })),
                }],
            }],
        }],
    };
    req.encode_to_vec()
}

/// A Sparkplug B DBIRTH of 1000 Double metrics (aliases 0..1000) and a DDATA carrying all of
/// them by alias, as an edge node sends them. The birth goes first, once; the DDATA is the
/// message measured. It has no `seq`, so repeating it notes no gap.
fn sparkplug(now: i64) -> (Vec<u8>, Vec<u8>) {
    use prost::Message as _;
    use sparkplug_b::proto::{Metric, Payload, Value};
    let metric = |i: u32, birth: bool| Metric {
        name: birth.then(|| format!("Line {}/Sensor {i}", i / 100)),
        alias: Some(u64::from(i)),
        timestamp: Some(now as u64),
        datatype: birth.then_some(10),
        is_null: None,
        value: Some(Value::Double(f64::from(i) + 0.5)),
    };
    let payload = |birth: bool| Payload {
        timestamp: Some(now as u64),
        metrics: (0..1000).map(|i| metric(i, birth)).collect(),
        seq: None,
    };
    (
        payload(true).encode_to_vec(),
        payload(false).encode_to_vec(),
    )
}

/// A Telegraf-like body: 250 `cpu` lines of 4 fields (1000 samples), nanosecond timestamps.
fn influx(now: i64) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..250 {
        let _ = writeln!(
            s,
            "cpu,cpu=cpu{i},host=gw-1 usage_idle={}.5,usage_user=1.25,usage_system=0.5,usage_iowait=0i {now}000000",
            90 + i % 10
        );
    }
    s.into_bytes()
}

/// A zigbee2mqtt-like payload with 8 numbers.
fn json() -> Vec<u8> {
    br#"{"battery":97,"humidity":41.2,"linkquality":120,"pressure":1012.4,"temperature":21.5,"voltage":2995,"color":{"x":0.31,"y":0.32},"state":"ON"}"#.to_vec()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target/plugins".into());
    let messages: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = Host::new().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let (dbirth, ddata) = sparkplug(now);
        let cases: Vec<(&str, &str, &str, Vec<u8>, Value)> = vec![
            ("prom-text", "/metrics/job/bench", "text/plain", prom_text(), Value::default()),
            ("remote-write-in", "/api/v1/write", "application/x-protobuf", remote_write(now), Value::default()),
            ("sparkplug-b", "spBv1.0/plant/DDATA/gw1/line", "", ddata, Value::default()),
            ("influx", "/write", "text/plain", influx(now), Value::default()),
            ("otlp", "/v1/metrics", "application/x-protobuf", otlp_request(now), Value::default()),
            (
                "json",
                "zigbee2mqtt/kitchen",
                "",
                json(),
                Value::table([
                    ("metric_prefix", Value::Str("sensor".into())),
                    ("topic_labels", Value::Str("zigbee2mqtt/{device}".into())),
                ]),
            ),
        ];
        println!("| decoder | samples/message | messages | samples/s (one core, WAL append + flush included) |");
        println!("|---|---|---|---|");
        for (name, context, ct, body, config) in cases {
            let plugin = host
                .load_from_dir(std::path::Path::new(&dir), name)
                .await
                .unwrap_or_else(|e| panic!("{e}; run ci/build-plugins.sh first"));
            let spec = InstanceSpec {
                config,
                ..InstanceSpec::new("bench")
            };
            let decoder = Decoder::new(Runner::new(host.clone(), plugin, spec));
            let wal_dir = tempfile::tempdir().unwrap();
            let wal = magpie_wal::Wal::open(wal_dir.path(), magpie_wal::Options::default()).unwrap();
            let source = Source::new(
                "bench",
                SourceLimits {
                    max_body_bytes: 16 << 20,
                    sample_limit: 0,
                    fsync_ack: false,
                    max_messages_per_second: 0,
                },
                vec![("job".into(), "bench".into())],
                magpie_wal::owner::spawn(wal).unwrap(),
                Arc::new(tokio::sync::Notify::new()),
                Arc::new(Quiet),
            );
            let msg = Message {
                context,
                content_type: ct,
                headers: &[],
                body: &body,
            };
            if name == "sparkplug-b" {
                // The data is read against this birth.
                let birth = Message {
                    context: "spBv1.0/plant/DBIRTH/gw1/line",
                    body: &dbirth,
                    ..msg
                };
                source.accept(&decoder, birth).await.unwrap();
            }
            // Warm-up: instantiation and first-touch allocations.
            let per = source.accept(&decoder, msg).await.unwrap().samples;
            let start = Instant::now();
            let mut samples = 0;
            for _ in 0..messages {
                samples += source.accept(&decoder, msg).await.unwrap().samples;
            }
            let secs = start.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = samples as f64 / secs;
            println!("| {name} | {per} | {messages} | {rate:.0} |");
        }
    });
}
