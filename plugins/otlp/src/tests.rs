use super::*;
use crate::proto::*;
use std::io::Write as _;

type Got = Vec<(String, Vec<(String, String)>, u64, Option<i64>)>;

fn run(ct: &str, enc: Option<&str>, body: &[u8]) -> Result<Got, String> {
    let mut got = Got::new();
    decode(ct, enc, body, &mut |n, l, v, t| {
        let mut l: Vec<(String, String)> =
            l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect();
        l.sort();
        got.push((n.into(), l, v.to_bits(), t));
        Ok(())
    })?;
    Ok(got)
}

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

const T: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;

/// A request with one of each kind the decoder takes.
fn request() -> ExportMetricsServiceRequest {
    let point = |v: number_data_point::Value| NumberDataPoint {
        attributes: vec![kv("host.name", s("gw-1"))],
        time_unix_nano: T,
        value: Some(v),
        flags: 0,
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("pump")),
                    kv("service.namespace", s("plant")),
                    kv("service.instance.id", s("pump-7")),
                    kv("deployment.environment", s("prod")),
                    kv("build.number", any_value::Value::IntValue(42)),
                ],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "meter".into(),
                    version: "1.0".into(),
                }),
                metrics: vec![
                    Metric {
                        name: "room.temperature".into(),
                        unit: "Cel".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![point(number_data_point::Value::AsDouble(21.5))],
                        })),
                    },
                    Metric {
                        name: "pump.starts".into(),
                        unit: "{start}".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![point(number_data_point::Value::AsInt(7))],
                            aggregation_temporality: temporality::CUMULATIVE,
                            is_monotonic: true,
                        })),
                    },
                    Metric {
                        name: "queue.length".into(),
                        unit: String::new(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![point(number_data_point::Value::AsInt(-3))],
                            aggregation_temporality: temporality::CUMULATIVE,
                            is_monotonic: false,
                        })),
                    },
                    Metric {
                        name: "request.duration".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![kv("route", s("/a"))],
                                time_unix_nano: T,
                                count: 6,
                                sum: Some(2.5),
                                bucket_counts: vec![1, 2, 3],
                                explicit_bounds: vec![0.1, 1.0],
                                flags: 0,
                            }],
                            aggregation_temporality: temporality::CUMULATIVE,
                        })),
                    },
                ],
            }],
        }],
    }
}

/// What [`request`] decodes to.
fn expected() -> Got {
    let base = |extra: &[(&str, &str)]| {
        let mut l: Vec<(String, String)> = [
            ("instance", "pump-7"),
            ("job", "plant/pump"),
            ("otel_scope_name", "meter"),
            ("otel_scope_version", "1.0"),
        ]
        .iter()
        .chain(extra)
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
        l.sort();
        l
    };
    let host = [("host_name", "gw-1")];
    let f = |v: f64| v.to_bits();
    let t = Some(T_MS);
    vec![
        ("room_temperature_celsius".into(), base(&host), f(21.5), t),
        ("pump_starts_total".into(), base(&host), f(7.0), t),
        ("queue_length".into(), base(&host), f(-3.0), t),
        (
            "request_duration_seconds_bucket".into(),
            base(&[("route", "/a"), ("le", "0.1")]),
            f(1.0),
            t,
        ),
        (
            "request_duration_seconds_bucket".into(),
            base(&[("route", "/a"), ("le", "1")]),
            f(3.0),
            t,
        ),
        (
            "request_duration_seconds_bucket".into(),
            base(&[("route", "/a"), ("le", "+Inf")]),
            f(6.0),
            t,
        ),
        (
            "request_duration_seconds_sum".into(),
            base(&[("route", "/a")]),
            f(2.5),
            t,
        ),
        (
            "request_duration_seconds_count".into(),
            base(&[("route", "/a")]),
            f(6.0),
            t,
        ),
        (
            "target_info".into(),
            {
                let mut l: Vec<(String, String)> = [
                    ("build_number", "42"),
                    ("deployment_environment", "prod"),
                    ("instance", "pump-7"),
                    ("job", "plant/pump"),
                ]
                .iter()
                .map(|(a, b)| ((*a).into(), (*b).into()))
                .collect();
                l.sort();
                l
            },
            f(1.0),
            t,
        ),
    ]
}

/// [`request`] in the OTLP/JSON encoding: lowerCamelCase keys, 64-bit integers as strings,
/// enums as integers, an unknown key that must be ignored.
const JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
 {"key":"service.name","value":{"stringValue":"pump"}},
 {"key":"service.namespace","value":{"stringValue":"plant"}},
 {"key":"service.instance.id","value":{"stringValue":"pump-7"}},
 {"key":"deployment.environment","value":{"stringValue":"prod"}},
 {"key":"build.number","value":{"intValue":"42"}}]},
 "scopeMetrics":[{"scope":{"name":"meter","version":"1.0"},"metrics":[
 {"name":"room.temperature","unit":"Cel","description":"ignored","gauge":{"dataPoints":[
   {"attributes":[{"key":"host.name","value":{"stringValue":"gw-1"}}],"startTimeUnixNano":"1","timeUnixNano":"1700000000123456789","asDouble":21.5}]}},
 {"name":"pump.starts","unit":"{start}","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
   {"attributes":[{"key":"host.name","value":{"stringValue":"gw-1"}}],"timeUnixNano":"1700000000123456789","asInt":"7"}]}},
 {"name":"queue.length","sum":{"aggregationTemporality":2,"dataPoints":[
   {"attributes":[{"key":"host.name","value":{"stringValue":"gw-1"}}],"timeUnixNano":"1700000000123456789","asInt":"-3"}]}},
 {"name":"request.duration","unit":"s","histogram":{"aggregationTemporality":2,"dataPoints":[
   {"attributes":[{"key":"route","value":{"stringValue":"/a"}}],"timeUnixNano":"1700000000123456789",
    "count":"6","sum":2.5,"bucketCounts":["1","2","3"],"explicitBounds":[0.1,1],"min":0.05,"max":2}]}}
 ]}]}]}"#;

#[test]
fn protobuf_json_and_gzip_bodies_decode_to_the_same_samples() {
    let pb = request().encode_to_vec();
    assert_eq!(
        run("application/x-protobuf", None, &pb).unwrap(),
        expected()
    );
    assert_eq!(
        run("application/json", None, JSON.as_bytes()).unwrap(),
        expected()
    );
    assert_eq!(
        run(
            "Application/JSON; charset=utf-8",
            Some("gzip"),
            &gzip(JSON.as_bytes())
        )
        .unwrap(),
        expected()
    );
    assert_eq!(
        run("application/x-protobuf", Some("gzip"), &gzip(&pb)).unwrap(),
        expected()
    );
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn garbage_truncated_and_unknown_bodies_are_refused_with_the_reason() {
    let pb = request().encode_to_vec();
    let err = |ct, enc, b: &[u8]| run(ct, enc, b).unwrap_err();
    assert!(err("application/x-protobuf", None, &pb[..pb.len() - 5]).contains("protobuf"));
    assert!(err("application/x-protobuf", None, b"\xff\xff\xff garbage").contains("protobuf"));
    assert!(err("application/json", None, &JSON.as_bytes()[..200]).contains("JSON"));
    assert!(err("application/json", None, b"[1,2]").contains("JSON"));
    assert!(err("text/plain", None, &pb).contains("Content-Type `text/plain`"));
    assert!(err("application/x-protobuf", Some("br"), &pb).contains("`br`"));
    assert!(err("application/x-protobuf", Some("gzip"), &pb).contains("gzip"));
    let big = gzip(&vec![0u8; usize::try_from(MAX_INFLATED_BYTES).unwrap() + 1]);
    assert!(err("application/x-protobuf", Some("gzip"), &big).contains("inflates to more than"));
}

fn with_metric(m: Metric) -> Vec<u8> {
    let mut r = request();
    r.resource_metrics[0].scope_metrics[0].metrics.push(m);
    r.encode_to_vec()
}

#[test]
fn delta_unspecified_and_exponential_metrics_refuse_the_whole_request() {
    let sum = |t| Metric {
        name: "x".into(),
        unit: String::new(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![],
            aggregation_temporality: t,
            is_monotonic: true,
        })),
    };
    let e = run(
        "application/x-protobuf",
        None,
        &with_metric(sum(temporality::DELTA)),
    )
    .unwrap_err();
    assert!(e.contains("metric `x`: delta temporality"), "{e}");
    let e = run(
        "application/x-protobuf",
        None,
        &with_metric(sum(temporality::UNSPECIFIED)),
    )
    .unwrap_err();
    assert!(e.contains("temporality 0"), "{e}");
    let hist = Metric {
        name: "h".into(),
        unit: String::new(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![],
            aggregation_temporality: temporality::DELTA,
        })),
    };
    let e = run("application/x-protobuf", None, &with_metric(hist)).unwrap_err();
    assert!(e.contains("metric `h`: histogram temporality 1"), "{e}");
    let exp = Metric {
        name: "e".into(),
        unit: String::new(),
        data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {})),
    };
    let e = run("application/x-protobuf", None, &with_metric(exp)).unwrap_err();
    assert!(e.contains("exponential histograms are not taken"), "{e}");
    let json = JSON.replace(
        r#""aggregationTemporality":2,"isMonotonic""#,
        r#""aggregationTemporality":1,"isMonotonic""#,
    );
    let e = run("application/json", None, json.as_bytes()).unwrap_err();
    assert!(e.contains("metric `pump.starts`: delta"), "{e}");
}

#[test]
fn bucket_counts_must_match_the_bounds() {
    let hist = |counts: Vec<u64>, bounds: Vec<f64>| Metric {
        name: "h".into(),
        unit: String::new(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                count: 1,
                bucket_counts: counts,
                explicit_bounds: bounds,
                ..HistogramDataPoint::default()
            }],
            aggregation_temporality: temporality::CUMULATIVE,
        })),
    };
    let e = run(
        "application/x-protobuf",
        None,
        &with_metric(hist(vec![1, 0], vec![1.0, 2.0])),
    )
    .unwrap_err();
    assert!(e.contains("2 bucket counts for 2 bounds"), "{e}");
    let e = run(
        "application/x-protobuf",
        None,
        &with_metric(hist(vec![1, 0, 0], vec![2.0, 1.0])),
    )
    .unwrap_err();
    assert!(e.contains("not increasing"), "{e}");
}

#[test]
fn summaries_no_recorded_values_and_attribute_types_convert() {
    let mut r = ExportMetricsServiceRequest::default();
    r.resource_metrics.push(ResourceMetrics {
        resource: Some(Resource {
            attributes: vec![kv("service.name", s("svc"))],
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: None,
            metrics: vec![
                Metric {
                    name: "rpc.latency".into(),
                    unit: "ms".into(),
                    data: Some(metric::Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            attributes: vec![
                                kv("ok", any_value::Value::BoolValue(true)),
                                kv("ratio", any_value::Value::DoubleValue(0.5)),
                                kv(
                                    "tags",
                                    any_value::Value::ArrayValue(ArrayValue {
                                        values: vec![
                                            AnyValue {
                                                value: Some(s("a")),
                                            },
                                            AnyValue {
                                                value: Some(any_value::Value::IntValue(1)),
                                            },
                                        ],
                                    }),
                                ),
                                kv("raw", any_value::Value::BytesValue(b"hi".to_vec())),
                            ],
                            time_unix_nano: 0,
                            count: 4,
                            sum: 10.0,
                            quantile_values: vec![ValueAtQuantile {
                                quantile: 0.5,
                                value: 2.0,
                            }],
                            flags: 0,
                        }],
                    })),
                },
                Metric {
                    name: "level".into(),
                    unit: "1".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![],
                            time_unix_nano: T,
                            value: None,
                            flags: FLAG_NO_RECORDED_VALUE,
                        }],
                    })),
                },
            ],
        }],
    });
    let got = run("application/x-protobuf", None, &r.encode_to_vec()).unwrap();
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    // No target_info: the resource has only identity attributes.
    assert_eq!(
        names,
        [
            "rpc_latency_milliseconds",
            "rpc_latency_milliseconds_sum",
            "rpc_latency_milliseconds_count",
            "level_ratio"
        ]
    );
    let labels: Vec<(&str, &str)> = got[0]
        .1
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("job", "svc"),
            ("ok", "true"),
            ("quantile", "0.5"),
            ("ratio", "0.5"),
            ("raw", "aGk="),
            ("tags", r#"["a",1]"#)
        ]
    );
    assert_eq!((got[0].2, got[0].3), (2f64.to_bits(), None));
    assert_eq!(got[2].2, 4f64.to_bits());
    assert_eq!((got[3].2, got[3].3), (convert::STALE_NAN, Some(T_MS)));
}
