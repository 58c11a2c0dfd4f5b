//! The writer against golden bytes, against `prost` (the schema's reference encoder and
//! decoder) and `snap::raw::Decoder`, and against a model of the batch for arbitrary input.

use std::num::NonZeroUsize;

use magpie_sdk::abi::raw::RawExportRequest;
use magpie_sdk::abi::{
    ExportBatch, ExportBatchBuilder, ExportRequest, Label, Payload, Point, SeriesHead,
};
use proptest::prelude::*;
use prost::Message as _;
use remote_write::meta::MetadataIndex;
use remote_write::{Config, Error, Protocol, RemoteWrite, Request, encode, encode_raw, proto};

const STALE: u64 = 0x7ff0_0000_0000_0002;

/// A series as a receiver sees it: labels, then (timestamp, value bits).
type Series = (Vec<(String, String)>, Vec<(i64, u64)>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(protocol: Protocol, max: Option<usize>) -> Config {
    Config {
        protocol,
        max_payload_bytes: max.and_then(NonZeroUsize::new),
    }
}

/// `up{job="node"} 1 @1000` and `up{job="db"} <stale> @2000`.
fn small_batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    b.series([Label::new("__name__", "up"), Label::new("job", "node")]);
    b.point(1000, 1.0);
    b.series([Label::new("__name__", "up"), Label::new("job", "db")]);
    b.point(2000, f64::from_bits(STALE));
    b.finish()
}

fn decode_v1(body: &[u8]) -> Vec<Series> {
    proto::v1::WriteRequest::decode(body)
        .expect("a valid prometheus.WriteRequest")
        .timeseries
        .into_iter()
        .map(|ts| {
            (
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

fn decode_v2(body: &[u8]) -> Vec<Series> {
    let req = proto::v2::Request::decode(body).expect("a valid io.prometheus.write.v2.Request");
    assert_eq!(
        req.symbols.first().map(String::as_str),
        Some(""),
        "symbols[0] must be \"\""
    );
    let sym = |r: u32| req.symbols[usize::try_from(r).unwrap()].clone();
    req.timeseries
        .iter()
        .map(|ts| {
            assert_eq!(ts.labels_refs.len() % 2, 0, "labels_refs come in pairs");
            (
                ts.labels_refs
                    .chunks(2)
                    .map(|p| (sym(p[0]), sym(p[1])))
                    .collect(),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            )
        })
        .collect()
}

fn decode(protocol: Protocol, body: &[u8]) -> Vec<Series> {
    match protocol {
        Protocol::V1 => decode_v1(body),
        Protocol::V2 => decode_v2(body),
    }
}

fn unsnappy(p: &Payload<'_>) -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(&p.body)
        .expect("a snappy block")
}

/// What the batch should read as: labels sorted, empty values dropped, point-less series
/// skipped.
fn model(batch: &ExportBatch<'_>) -> Vec<Series> {
    batch
        .series()
        .filter(|s| !s.points.is_empty())
        .map(|s| {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|l| !l.value.is_empty())
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.sort();
            (
                labels,
                s.points.iter().map(|p| (p.t, p.v.to_bits())).collect(),
            )
        })
        .collect()
}

/// The reference encoding of `series` by `prost`.
fn prost_v1(series: &[Series]) -> Vec<u8> {
    proto::v1::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, points)| proto::v1::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(name, value)| proto::v1::Label {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: points
                    .iter()
                    .map(|&(t, v)| proto::v1::Sample {
                        value: f64::from_bits(v),
                        timestamp: t,
                    })
                    .collect(),
            })
            .collect(),
    }
    .encode_to_vec()
}

/// The reference encoding by `prost`, symbols interned in order of first use.
fn prost_v2(series: &[Series]) -> Vec<u8> {
    let mut symbols = vec![String::new()];
    let mut intern = |s: &String| {
        let i = symbols.iter().position(|x| x == s).unwrap_or_else(|| {
            symbols.push(s.clone());
            symbols.len() - 1
        });
        u32::try_from(i).unwrap()
    };
    let timeseries = series
        .iter()
        .map(|(labels, points)| proto::v2::TimeSeries {
            labels_refs: labels
                .iter()
                .flat_map(|(n, v)| [intern(n), intern(v)])
                .collect(),
            samples: points
                .iter()
                .map(|&(t, v)| proto::v2::Sample {
                    value: f64::from_bits(v),
                    timestamp: t,
                })
                .collect(),
        })
        .collect();
    proto::v2::Request {
        symbols,
        timeseries,
    }
    .encode_to_vec()
}

fn prost_encode(protocol: Protocol, series: &[Series]) -> Vec<u8> {
    match protocol {
        Protocol::V1 => prost_v1(series),
        Protocol::V2 => prost_v2(series),
    }
}

// ---------------------------------------------------------------------------------------------
// Golden bytes

/// `prometheus.WriteRequest` of [`small_batch`], annotated.
const GOLDEN_V1: &str = concat!(
    "0a2b",                             // timeseries (1), 43 bytes
    "0a0e",                             //   labels (1), 14 bytes
    "0a085f5f6e616d655f5f",             //     name (1) "__name__"
    "12027570",                         //     value (2) "up"
    "0a0b",                             //   labels (1), 11 bytes
    "0a036a6f62",                       //     name "job"
    "12046e6f6465",                     //     value "node"
    "120c",                             //   samples (2), 12 bytes
    "09000000000000f03f",               //     value (1) 1.0, little-endian double
    "10e807",                           //     timestamp (2) 1000, varint
    "0a29",                             // timeseries (1), 41 bytes
    "0a0e0a085f5f6e616d655f5f12027570", // labels __name__="up"
    "0a090a036a6f6212026462",           //   labels job="db"
    "120c",                             //   samples (2), 12 bytes
    "09020000000000f07f",               //     value: the staleness NaN, bit for bit
    "10d00f",                           //     timestamp 2000
);

/// `io.prometheus.write.v2.Request` of [`small_batch`], annotated.
const GOLDEN_V2: &str = concat!(
    "2200",                         // symbols (4) [0] ""
    "22085f5f6e616d655f5f",         // symbols [1] "__name__"
    "22027570",                     // symbols [2] "up"
    "22036a6f62",                   // symbols [3] "job"
    "22046e6f6465",                 // symbols [4] "node"
    "22026462",                     // symbols [5] "db"
    "2a14",                         // timeseries (5), 20 bytes
    "0a0401020304",                 //   labels_refs (1), packed: __name__=up, job=node
    "120c09000000000000f03f10e807", // samples (2): 1.0 @1000
    "2a14",                         // timeseries (5), 20 bytes
    "0a0401020305",                 //   labels_refs: __name__=up, job=db
    "120c09020000000000f07f10d00f", // samples: stale NaN @2000
);

/// The snappy block bodies of the same requests: a varint of the uncompressed length, then
/// literal and copy elements. This pins the `snap` encoder's choices; any snappy decoder
/// reads them.
const GOLDEN_V1_SNAPPY: &str = "58b80a2b0a0e0a085f5f6e616d655f5f120275700a0b0a036a6f6212046e6f6465120c09000000000000f03f10e8070a29422d000009092d40026462120c09020000000000f07f10d00f";
const GOLDEN_V2_SNAPPY: &str = "4bd0220022085f5f6e616d655f5f2202757022036a6f6222046e6f6465220264622a140a0401020304120c09000000000000f03f10e8070d163805120c09020000000000f07f10d00f";

#[test]
fn golden_v1_request() {
    let reqs = encode(&small_batch(), &config(Protocol::V1, None)).unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].samples, 2);
    assert_eq!(hex(&reqs[0].body), GOLDEN_V1);
    assert_eq!(reqs[0].body, prost_v1(&model(&small_batch())));
}

#[test]
fn golden_v2_request() {
    let reqs = encode(&small_batch(), &config(Protocol::V2, None)).unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].samples, 2);
    assert_eq!(hex(&reqs[0].body), GOLDEN_V2);
    assert_eq!(reqs[0].body, prost_v2(&model(&small_batch())));
}

#[test]
fn golden_payloads() {
    for (protocol, golden, raw, content_type, version) in [
        (
            Protocol::V1,
            GOLDEN_V1_SNAPPY,
            GOLDEN_V1,
            "application/x-protobuf",
            "0.1.0",
        ),
        (
            Protocol::V2,
            GOLDEN_V2_SNAPPY,
            GOLDEN_V2,
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "2.0.0",
        ),
    ] {
        let mut exporter = RemoteWrite::new(config(protocol, None));
        let payloads = exporter.export(&small_batch()).unwrap();
        assert_eq!(payloads.len(), 1);
        let p = &payloads[0];
        assert_eq!(hex(&p.body), golden, "{protocol:?}");
        assert_eq!(hex(&unsnappy(p)), raw, "{protocol:?}");
        assert_eq!(p.content_type, content_type);
        assert_eq!(p.samples, 2);
        assert_eq!(p.topic, None);
        let headers: Vec<(&str, &str)> = p.headers.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            headers,
            [
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", version)
            ]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips and edge cases

/// Values and timestamps whose encodings take special paths.
fn awkward_batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    b.series([Label::new("__name__", "a"), Label::new("le", "+Inf")]);
    for (t, v) in [
        (0, 0.0),
        (1, -0.0),
        (-1, f64::from_bits(STALE)),
        (i64::MIN, f64::NAN),
        (i64::MAX, f64::INFINITY),
        (300, f64::NEG_INFINITY),
        (301, f64::MIN_POSITIVE),
    ] {
        b.point(t, v);
    }
    b.series([
        Label::new("__name__", "ünïcode"),
        Label::new("path", "/a\"b\n"),
    ]);
    b.point(5, 1e300);
    b.finish()
}

#[test]
fn round_trip_is_bit_exact_for_awkward_values() {
    let batch = awkward_batch();
    for protocol in [Protocol::V1, Protocol::V2] {
        let payloads = RemoteWrite::new(config(protocol, None))
            .export(&batch)
            .unwrap();
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].samples, 8);
        let got = decode(protocol, &unsnappy(&payloads[0]));
        assert_eq!(got, model(&batch), "{protocol:?}");
        // The staleness marker and -0.0 survive bit for bit.
        assert_eq!(got[0].1[2], (-1, STALE));
        assert_eq!(got[0].1[1], (1, (-0.0f64).to_bits()));
    }
}

#[test]
fn unsorted_labels_go_out_sorted_without_empty_values() {
    let mut b = ExportBatchBuilder::default();
    b.series([
        Label::new("zone", "eu"),
        Label::new("job", "node"),
        Label::new("empty", ""),
        Label::new("__name__", "up"),
    ]);
    b.point(1, 1.0);
    let batch = b.finish();
    for protocol in [Protocol::V1, Protocol::V2] {
        let reqs = encode(&batch, &config(protocol, None)).unwrap();
        let got = decode(protocol, &reqs[0].body);
        let names: Vec<&str> = got[0].0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["__name__", "job", "zone"], "{protocol:?}");
    }
}

#[test]
fn repeated_label_names_are_refused() {
    let mut b = ExportBatchBuilder::default();
    b.series([
        Label::new("__name__", "up"),
        Label::new("job", "a"),
        Label::new("job", "b"),
    ]);
    b.point(1, 1.0);
    let batch = b.finish();
    let bytes = request(&batch, false);
    let raw = RawExportRequest::parse(&bytes).unwrap();
    for protocol in [Protocol::V1, Protocol::V2] {
        let err = encode(&batch, &config(protocol, None)).unwrap_err();
        assert!(
            matches!(err, Error::InvalidSeries { series: 0, ref name, .. } if name == "up"),
            "{err}"
        );
        // Read where it lies, the batch is refused alike.
        let index = MetadataIndex::default();
        let raw_err = encode_raw(&raw.batch, &[], &config(protocol, None), &index).unwrap_err();
        assert_eq!(raw_err, err);
    }
}

#[test]
fn empty_batch_and_pointless_series_give_nothing() {
    let empty = ExportBatch::default();
    let mut b = ExportBatchBuilder::default();
    b.series([Label::new("__name__", "no_points")]);
    let pointless = b.finish();
    for protocol in [Protocol::V1, Protocol::V2] {
        let mut exporter = RemoteWrite::new(config(protocol, Some(10)));
        assert!(exporter.export(&empty).unwrap().is_empty());
        assert!(exporter.export(&pointless).unwrap().is_empty());
    }
    // A point-less series among others is skipped, the others kept.
    let mut b = ExportBatchBuilder::default();
    b.series([Label::new("__name__", "a")]);
    b.point(1, 1.0);
    b.series([Label::new("__name__", "none")]);
    b.series([Label::new("__name__", "b")]);
    b.point(2, 2.0);
    let batch = b.finish();
    for protocol in [Protocol::V1, Protocol::V2] {
        let reqs = encode(&batch, &config(protocol, None)).unwrap();
        let got = decode(protocol, &reqs[0].body);
        assert_eq!(got.len(), 2);
        assert_eq!(got, model(&batch));
    }
}

#[test]
fn inconsistent_batch_is_refused() {
    let batch = ExportBatch {
        labels: vec![Label::new("__name__", "a")],
        series: vec![SeriesHead {
            labels: 1,
            points: 3,
        }],
        points: vec![Point { t: 1, v: 1.0 }],
    };
    for protocol in [Protocol::V1, Protocol::V2] {
        assert_eq!(
            encode(&batch, &config(protocol, None)),
            Err(Error::InconsistentBatch {
                labels: 1,
                points: 1
            })
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Splitting

/// 20 series of 1 to 3 points, each with its own value of `instance`.
fn wide_batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    for i in 0..20i64 {
        let instance: &'static str = Box::leak(format!("10.0.0.{i}:9100").into_boxed_str());
        b.series([
            Label::new("__name__", "node_load1"),
            Label::new("instance", instance),
            Label::new("job", "node"),
        ]);
        for k in 0..=(i % 3) {
            #[allow(clippy::cast_precision_loss)]
            b.point(1_700_000_000_000 + k * 15_000, (i * 10 + k) as f64);
        }
    }
    b.finish()
}

/// Checks that `reqs` cover `batch` in order, each within `max` unless it holds one series.
fn check_split(protocol: Protocol, batch: &ExportBatch<'_>, reqs: &[Request], max: usize) {
    let mut all = Vec::new();
    for r in reqs {
        let got = decode(protocol, &r.body);
        assert!(!got.is_empty(), "no empty request");
        let samples: usize = got.iter().map(|s| s.1.len()).sum();
        assert_eq!(
            r.samples as usize, samples,
            "the count says what the request holds"
        );
        assert!(
            r.body.len() <= max || got.len() == 1,
            "{protocol:?}: a request of {} bytes with {} series exceeds {max}",
            r.body.len(),
            got.len()
        );
        // Each request stands alone: a 2.0 request's symbols are its own.
        assert_eq!(r.body, prost_encode(protocol, &got));
        all.extend(got);
    }
    assert_eq!(
        all,
        model(batch),
        "{protocol:?}: requests cover the batch in order"
    );
}

#[test]
fn max_payload_bytes_splits_by_whole_series() {
    let batch = wide_batch();
    for protocol in [Protocol::V1, Protocol::V2] {
        let whole = encode(&batch, &config(protocol, None)).unwrap();
        assert_eq!(whole.len(), 1);
        let total = whole[0].body.len();
        for max in [1, 60, 100, 200, 333, total - 1, total, total + 1] {
            let reqs = encode(&batch, &config(protocol, Some(max))).unwrap();
            check_split(protocol, &batch, &reqs, max);
            if max >= total {
                assert_eq!(reqs.len(), 1, "{protocol:?} fits in {max}");
            } else {
                assert!(reqs.len() > 1, "{protocol:?} must split at {max}");
            }
        }
        // A limit below every series gives one series per request.
        let reqs = encode(&batch, &config(protocol, Some(1))).unwrap();
        assert_eq!(reqs.len(), 20);
    }
}

#[test]
fn split_payloads_count_their_samples() {
    let batch = wide_batch();
    for protocol in [Protocol::V1, Protocol::V2] {
        let payloads = RemoteWrite::new(config(protocol, Some(200)))
            .export(&batch)
            .unwrap();
        assert!(payloads.len() > 1);
        let total: u32 = payloads.iter().map(|p| p.samples).sum();
        assert_eq!(total as usize, batch.sample_count());
        let mut all = Vec::new();
        for p in &payloads {
            let got = decode(protocol, &unsnappy(p));
            assert_eq!(
                p.samples as usize,
                got.iter().map(|s| s.1.len()).sum::<usize>()
            );
            all.extend(got);
        }
        assert_eq!(all, model(&batch));
    }
}

// ---------------------------------------------------------------------------------------------
// Property: encode → decode is lossless for arbitrary batches

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_][a-z0-9_]{0,6}", Just("__name__".to_string())]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::ANY,
        Just(f64::from_bits(STALE)),
        Just(0.0),
        Just(-0.0),
    ]
}

/// Series of unique label names (possibly unsorted, some values empty) with 0 to 4 points.
/// A series to build: labels, then (timestamp, value).
type SeriesSpec = (Vec<(String, String)>, Vec<(i64, f64)>);

fn batch_spec() -> impl Strategy<Value = Vec<SeriesSpec>> {
    let series = (
        proptest::collection::btree_map(label_name(), ".{0,6}", 0..5),
        any::<bool>(),
        proptest::collection::vec(
            (
                prop_oneof![Just(0i64), any::<i64>(), 0i64..2_000_000],
                value(),
            ),
            0..4,
        ),
    )
        .prop_map(|(labels, reverse, points)| {
            let mut labels: Vec<(String, String)> = labels.into_iter().collect();
            if reverse {
                labels.reverse();
            }
            (labels, points)
        });
    proptest::collection::vec(series, 0..12)
}

/// The host's encoding of the export request for `batch`.
fn request(batch: &ExportBatch<'_>, fallback: bool) -> Vec<u8> {
    let req = if fallback {
        ExportRequest::V2 {
            batch: batch.clone(),
            fallback,
        }
    } else {
        ExportRequest::V1 {
            batch: batch.clone(),
        }
    };
    magpie_sdk::abi::encode(&req).unwrap()
}

fn build(spec: &[SeriesSpec]) -> ExportBatch<'_> {
    let mut b = ExportBatchBuilder::default();
    for (labels, points) in spec {
        b.series(labels.iter().map(|(n, v)| Label::new(n, v)));
        for &(t, v) in points {
            b.point(t, v);
        }
    }
    b.finish()
}

proptest! {
    #[test]
    fn encode_decode_is_lossless(
        spec in batch_spec(),
        v2 in any::<bool>(),
        max in proptest::option::of(1usize..400),
        fallback in any::<bool>(),
    ) {
        let configured = if v2 { Protocol::V2 } else { Protocol::V1 };
        let batch = build(&spec);
        let mut rw = RemoteWrite::new(config(configured, max));
        let (payloads, protocol) = if fallback {
            (rw.export_fallback(&batch).unwrap(), Protocol::V1)
        } else {
            (rw.export(&batch).unwrap(), configured)
        };
        // Read where it lies, the request gives the same payloads.
        let bytes = request(&batch, fallback);
        let raw = RawExportRequest::parse(&bytes).unwrap();
        let mut rw = RemoteWrite::new(config(configured, max));
        prop_assert_eq!(&rw.export_raw(&raw).unwrap(), &payloads);
        prop_assert_eq!(rw.sending(), protocol);
        let mut all = Vec::new();
        for p in &payloads {
            let raw = unsnappy(p);
            let got = decode(protocol, &raw);
            prop_assert_eq!(p.samples as usize, got.iter().map(|s| s.1.len()).sum::<usize>());
            if let Some(max) = max {
                prop_assert!(raw.len() <= max || got.len() == 1);
            }
            // Byte for byte what prost writes, except that prost drops -0.0 as a default.
            let negative_zero = got.iter().any(|s| s.1.iter().any(|p| p.1 == (-0.0f64).to_bits()));
            if !negative_zero {
                prop_assert_eq!(&raw, &prost_encode(protocol, &got));
            }
            all.extend(got);
        }
        prop_assert_eq!(all, model(&batch));
    }
}
