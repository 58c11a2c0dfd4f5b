//! Exemplars in requests: 1.0 `TimeSeries.exemplars`, 2.0 per-series exemplars with symbol
//! references, decoded with `prost`; none unless given.

use magpie_sdk::abi::raw::RawExportRequest;
use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, ExportExemplar, ExportRequest, Label};
use prost::Message as _;
use remote_write::meta::MetadataIndex;
use remote_write::{Config, Protocol, RemoteWrite, encode, encode_full, proto};

fn batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    b.series([Label::new("__name__", "req_total"), Label::new("job", "a")]);
    b.point(1_700_000_000_000, 3.0);
    b.series([Label::new("__name__", "lat_bucket"), Label::new("le", "1")]);
    b.point(1_700_000_000_000, 5.0);
    // A series with exemplars and no sample in this batch.
    b.series([
        Label::new("__name__", "lat_bucket"),
        Label::new("le", "+Inf"),
    ]);
    b.finish()
}

fn exemplars() -> Vec<ExportExemplar<'static>> {
    vec![
        ExportExemplar {
            series: 0,
            labels: vec![Label::new("span_id", "s1"), Label::new("trace_id", "t1")],
            value: 1.5,
            timestamp_ms: 1_700_000_000_123,
        },
        ExportExemplar {
            series: 1,
            labels: vec![Label::new("trace_id", "t2")],
            value: 0.0,
            timestamp_ms: -5,
        },
        ExportExemplar {
            series: 2,
            labels: vec![Label::new("trace_id", "t3"), Label::new("x", "")],
            value: -0.25,
            timestamp_ms: 0,
        },
    ]
}

fn config(protocol: Protocol) -> Config {
    Config {
        protocol,
        ..Config::default()
    }
}

/// Series index, exemplar labels, value bits, timestamp.
type Flat = (usize, Vec<(String, String)>, u64, i64);

#[test]
fn v1_carries_exemplars_in_their_series() {
    let b = batch();
    let ex = exemplars();
    let reqs = encode_full(&b, &ex, &config(Protocol::V1), &MetadataIndex::default()).unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].samples, 2);
    let full = proto::v1::WriteRequest::decode(reqs[0].body.as_slice()).unwrap();
    assert_eq!(full.timeseries.len(), 3);
    assert!(full.timeseries[2].samples.is_empty());
    let got = proto::v1::WriteRequestExemplars::decode(reqs[0].body.as_slice()).unwrap();
    let flat: Vec<Flat> = (got.timeseries.iter().enumerate())
        .flat_map(|(i, s)| {
            s.exemplars.iter().map(move |e| {
                (
                    i,
                    e.labels
                        .iter()
                        .map(|l| (l.name.clone(), l.value.clone()))
                        .collect(),
                    e.value.to_bits(),
                    e.timestamp,
                )
            })
        })
        .collect();
    let p = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        flat,
        [
            (
                0,
                vec![p("span_id", "s1"), p("trace_id", "t1")],
                1.5f64.to_bits(),
                1_700_000_000_123
            ),
            (1, vec![p("trace_id", "t2")], 0, -5),
            // The empty value is left out, as for series labels.
            (2, vec![p("trace_id", "t3")], (-0.25f64).to_bits(), 0),
        ]
    );
}

#[test]
fn v2_carries_exemplars_with_symbol_refs() {
    let b = batch();
    let ex = exemplars();
    let reqs = encode_full(&b, &ex, &config(Protocol::V2), &MetadataIndex::default()).unwrap();
    assert_eq!(reqs.len(), 1);
    let full = proto::v2::Request::decode(reqs[0].body.as_slice()).unwrap();
    let got = proto::v2::RequestExemplars::decode(reqs[0].body.as_slice()).unwrap();
    assert_eq!(got.timeseries.len(), 3);
    let sym = |r: &[u32]| -> Vec<String> {
        r.iter()
            .map(|&i| full.symbols[i as usize].clone())
            .collect()
    };
    let e0 = &got.timeseries[0].exemplars[0];
    assert_eq!(sym(&e0.labels_refs), ["span_id", "s1", "trace_id", "t1"]);
    assert_eq!((e0.value, e0.timestamp), (1.5, 1_700_000_000_123));
    let e2 = &got.timeseries[2].exemplars[0];
    assert_eq!(sym(&e2.labels_refs), ["trace_id", "t3"]);
    assert_eq!(e2.value.to_bits(), (-0.25f64).to_bits());
    assert_eq!(sym(&full.timeseries[2].labels_refs)[3], "+Inf");
}

#[test]
fn without_exemplars_the_request_is_unchanged() {
    for protocol in [Protocol::V1, Protocol::V2] {
        let b = batch();
        let plain = encode(&b, &config(protocol)).unwrap();
        let none = encode_full(&b, &[], &config(protocol), &MetadataIndex::default()).unwrap();
        assert_eq!(plain, none, "{protocol:?}");
        let ex = proto::v1::WriteRequestExemplars::decode(plain[0].body.as_slice());
        if protocol == Protocol::V1 {
            assert!(
                ex.unwrap()
                    .timeseries
                    .iter()
                    .all(|s| s.exemplars.is_empty())
            );
        }
    }
}

#[test]
fn a_size_limit_splits_between_series_with_their_exemplars() {
    let b = batch();
    let ex = exemplars();
    let cfg = Config {
        protocol: Protocol::V2,
        max_payload_bytes: std::num::NonZeroUsize::new(60),
    };
    let reqs = encode_full(&b, &ex, &cfg, &MetadataIndex::default()).unwrap();
    assert!(reqs.len() > 1);
    let mut seen = 0;
    for r in &reqs {
        let full = proto::v2::Request::decode(r.body.as_slice()).unwrap();
        let got = proto::v2::RequestExemplars::decode(r.body.as_slice()).unwrap();
        for s in &got.timeseries {
            for e in &s.exemplars {
                assert!(
                    e.labels_refs
                        .iter()
                        .all(|&i| (i as usize) < full.symbols.len())
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 3);
}

#[test]
fn read_in_place_the_request_gives_the_same_payloads() {
    for (protocol, fallback) in [
        (Protocol::V1, false),
        (Protocol::V2, false),
        (Protocol::V2, true),
    ] {
        let bytes = magpie_sdk::abi::encode(&ExportRequest::V3 {
            batch: batch(),
            fallback,
            exemplars: exemplars(),
        })
        .unwrap();
        let raw = RawExportRequest::parse(&bytes).unwrap();
        assert_eq!(raw.exemplars, exemplars());
        let mut decoded = RemoteWrite::new(config(protocol));
        let want = decoded
            .export_exemplars(&batch(), &exemplars(), fallback)
            .unwrap();
        let mut in_place = RemoteWrite::new(config(protocol));
        assert_eq!(
            in_place.export_raw(&raw).unwrap(),
            want,
            "{protocol:?}, fallback {fallback}"
        );
        assert_eq!(in_place.sending(), decoded.sending());
    }
}
