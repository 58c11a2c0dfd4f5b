//! Metadata requests: remote write 1.0 sends them apart from samples, 2.0 never does; 2.0
//! carries each series' type, help and unit in the series.

use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, FamilyMeta, Label, MetricType, Value};
use prost::Message as _;
use remote_write::{RemoteWrite, proto};

fn family(
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    unit: &'static str,
) -> FamilyMeta<'static> {
    FamilyMeta {
        name: name.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    }
}

#[test]
fn v1_sends_one_request_with_metadata_only() {
    let mut rw = RemoteWrite::from_table(&Value::default()).unwrap();
    let families = [
        family("http_requests", MetricType::Counter, "Requests served.", ""),
        family(
            "latency_seconds",
            MetricType::Histogram,
            "How long \"it\" took\n",
            "seconds",
        ),
        family("build", MetricType::Info, "", ""),
        family("mode", MetricType::StateSet, "", ""),
        family("queue", MetricType::GaugeHistogram, "", ""),
        family("rpc", MetricType::Summary, "", ""),
        family("temp", MetricType::Gauge, "", "celsius"),
        family("x", MetricType::Unknown, "", ""),
    ];
    let payloads = rw.export_metadata(&families).unwrap();
    assert_eq!(payloads.len(), 1);
    let p = &payloads[0];
    assert_eq!(p.samples, 0);
    assert_eq!(p.content_type, "application/x-protobuf");
    let raw = snap::raw::Decoder::new().decompress_vec(&p.body).unwrap();
    let req = proto::v1::MetadataWriteRequest::decode(raw.as_slice()).unwrap();
    let got: Vec<(i32, &str, &str, &str)> = req
        .metadata
        .iter()
        .map(|m| (m.r#type, &*m.metric_family_name, &*m.help, &*m.unit))
        .collect();
    assert_eq!(
        got,
        [
            (1, "http_requests", "Requests served.", ""),
            (3, "latency_seconds", "How long \"it\" took\n", "seconds"),
            (6, "build", "", ""),
            (7, "mode", "", ""),
            (4, "queue", "", ""),
            (5, "rpc", "", ""),
            (2, "temp", "", "celsius"),
            (0, "x", "", ""),
        ]
    );
    // No series in it: a full request decodes to none.
    let full = proto::v1::WriteRequest::decode(raw.as_slice()).unwrap();
    assert!(full.timeseries.is_empty());
}

#[test]
fn v2_and_empty_sets_send_nothing_apart() {
    let mut rw = RemoteWrite::from_table(&Value::default()).unwrap();
    assert!(rw.export_metadata(&[]).unwrap().is_empty());
    let table: Value = Value::Table(vec![("protocol".into(), Value::Str("2.0".into()))]);
    let mut v2 = RemoteWrite::from_table(&table).unwrap();
    let f = [family("a", MetricType::Gauge, "h", "")];
    assert!(v2.export_metadata(&f).unwrap().is_empty());
}

fn v2(max_payload_bytes: Option<i64>) -> RemoteWrite {
    let mut table = vec![("protocol".into(), Value::Str("2.0".into()))];
    if let Some(m) = max_payload_bytes {
        table.push(("max_payload_bytes".into(), Value::Int(m)));
    }
    RemoteWrite::from_table(&Value::Table(table)).unwrap()
}

fn batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    for (name, le) in [
        ("http_requests_total", None),
        ("latency_seconds_bucket", Some("0.5")),
        ("latency_seconds_bucket", Some("+Inf")),
        ("latency_seconds_count", None),
        ("temp", None),
        ("no_metadata_here", None),
    ] {
        let mut labels = vec![Label::new("__name__", name), Label::new("job", "a")];
        if let Some(le) = le {
            labels.push(Label::new("le", le));
        }
        b.series(labels);
        b.point(1_700_000_000_000, 1.0);
    }
    b.finish()
}

/// (metric name, type, help, unit) per series, from the symbols its references name.
type Seen = Vec<(String, Option<(i32, String, String)>)>;

fn v2_seen(payloads: &[magpie_sdk::abi::Payload<'_>]) -> Seen {
    let mut out = Vec::new();
    for p in payloads {
        let raw = snap::raw::Decoder::new().decompress_vec(&p.body).unwrap();
        let req = proto::v2::Request::decode(raw.as_slice()).unwrap();
        let metas = proto::v2::RequestMetadata::decode(raw.as_slice()).unwrap();
        let sym = |i: u32| req.symbols[i as usize].clone();
        for (ts, tm) in req.timeseries.iter().zip(&metas.timeseries) {
            let name = ts
                .labels_refs
                .chunks(2)
                .find(|p| sym(p[0]) == "__name__")
                .map(|p| sym(p[1]))
                .unwrap();
            let meta = tm
                .metadata
                .map(|m| (m.r#type, sym(m.help_ref), sym(m.unit_ref)));
            out.push((name, meta));
        }
    }
    out
}

fn families() -> [FamilyMeta<'static>; 4] {
    [
        family("http_requests", MetricType::Counter, "Requests served.", ""),
        family(
            "latency_seconds",
            MetricType::Histogram,
            "How long it took.",
            "seconds",
        ),
        family("temp", MetricType::Gauge, "", "celsius"),
        family("unused", MetricType::Gauge, "Not scraped.", ""),
    ]
}

fn expected() -> Seen {
    let m = |t: i32, h: &str, u: &str| Some((t, h.to_string(), u.to_string()));
    vec![
        ("http_requests_total".into(), m(1, "Requests served.", "")),
        (
            "latency_seconds_bucket".into(),
            m(3, "How long it took.", "seconds"),
        ),
        (
            "latency_seconds_bucket".into(),
            m(3, "How long it took.", "seconds"),
        ),
        (
            "latency_seconds_count".into(),
            m(3, "How long it took.", "seconds"),
        ),
        ("temp".into(), m(2, "", "celsius")),
        ("no_metadata_here".into(), None),
    ]
}

#[test]
fn v2_series_carry_their_family_metadata() {
    let mut rw = v2(None);
    // Before the host reported any metadata, no series carries some.
    let before = v2_seen(&rw.export(&batch()).unwrap());
    assert!(before.iter().all(|s| s.1.is_none()), "{before:?}");

    assert!(rw.export_metadata(&families()).unwrap().is_empty());
    let payloads = rw.export(&batch()).unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(v2_seen(&payloads), expected());
    // Read where it lies, the request carries the same metadata.
    let bytes =
        magpie_sdk::abi::encode(&magpie_sdk::abi::ExportRequest::V1 { batch: batch() }).unwrap();
    let raw = magpie_sdk::abi::raw::RawExportRequest::parse(&bytes).unwrap();
    assert_eq!(rw.export_raw(&raw).unwrap(), payloads);

    // The 1.0 fallback carries none: 1.0 has no place for it in a series.
    let fallback = rw.export_fallback(&batch()).unwrap();
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&fallback[0].body)
        .unwrap();
    assert_eq!(
        proto::v1::WriteRequest::decode(raw.as_slice())
            .unwrap()
            .timeseries
            .len(),
        6
    );

    // A new report replaces the old one: a family gone carries nothing any more.
    rw.export_metadata(&families()[2..]).unwrap();
    let after = v2_seen(&rw.export(&batch()).unwrap());
    assert_eq!(after[0], ("http_requests_total".into(), None));
    assert_eq!(after[4], expected()[4]);
}

#[test]
fn v2_metadata_is_written_as_prost_writes_it() {
    let mut rw = v2(None);
    rw.export_metadata(&families()).unwrap();
    let payloads = rw.export(&batch()).unwrap();
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&payloads[0].body)
        .unwrap();
    // Every series holds metadata, and each is exactly what `prost` writes for it: the
    // series' bytes are its labels and samples, then its metadata.
    let req = proto::v2::Request::decode(raw.as_slice()).unwrap();
    let metas = proto::v2::RequestMetadata::decode(raw.as_slice()).unwrap();
    let mut want = Vec::new();
    for s in &req.symbols {
        prost::encoding::string::encode(4, s, &mut want);
    }
    for (ts, tm) in req.timeseries.iter().zip(&metas.timeseries) {
        let mut series = ts.encode_to_vec();
        if let Some(m) = &tm.metadata {
            prost::encoding::message::encode(5, m, &mut series);
        }
        prost::encoding::bytes::encode(5, &series, &mut want);
    }
    assert_eq!(want, raw);
    assert_eq!(metas.timeseries.len(), 6);
}

#[test]
fn v2_split_requests_each_hold_the_symbols_their_metadata_names() {
    // Small enough that every series travels alone.
    let mut rw = v2(Some(60));
    rw.export_metadata(&families()).unwrap();
    let payloads = rw.export(&batch()).unwrap();
    assert_eq!(payloads.len(), 6);
    for p in &payloads {
        let raw = snap::raw::Decoder::new().decompress_vec(&p.body).unwrap();
        // The writer's size accounting includes the metadata: only a lone series may be over.
        let req = proto::v2::Request::decode(raw.as_slice()).unwrap();
        assert!(
            raw.len() <= 60 || req.timeseries.len() == 1,
            "{}",
            raw.len()
        );
    }
    assert_eq!(v2_seen(&payloads), expected());
    // And with room for all, one request whose size the writer computed right.
    let mut rw = v2(Some(4096));
    rw.export_metadata(&families()).unwrap();
    let payloads = rw.export(&batch()).unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(v2_seen(&payloads), expected());
}
