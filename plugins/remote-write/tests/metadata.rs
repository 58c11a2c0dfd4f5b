//! Metadata requests: remote write 1.0 sends them apart from samples, 2.0 never does.

use magpie_sdk::abi::{FamilyMeta, MetricType, Value};
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
