//! The `remote-write` exporter built for wasm32 and run by the host: batches in, payloads out,
//! decoded here by a snappy block decoder and a protobuf reader of this file's own (an oracle
//! that shares no code with the plugin), and the receiver's answers judged.

use magpie_host::{Host, Instance, InstanceSpec, Limits, PluginError};
use magpie_sdk::abi::{
    ExportBatch, ExportBatchBuilder, ExportOutcome, Label, Payload, ResponseHead, Value,
};
use magpie_testkit::guest;
use std::borrow::Cow;
use std::time::Duration;

const STALE: u64 = 0x7ff0_0000_0000_0002;

/// A series as a receiver reads it: labels, then (timestamp, value bits).
type Series = (Vec<(String, String)>, Vec<(i64, u64)>);

fn table(entries: Vec<(&str, Value)>) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

async fn exporter(config: Value) -> Result<Instance, PluginError> {
    let host = Host::new().unwrap();
    let plugin = host
        .load("remote-write", &guest("remote-write"))
        .await
        .unwrap();
    let mut spec = InstanceSpec::new("rw");
    spec.config = config;
    // Generous CPU time: tests run an unoptimised host on a shared machine.
    spec.limits = Limits {
        cpu: Duration::from_secs(10),
        wall: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    host.instantiate(&plugin, &spec).await
}

/// Three node_exporter-like series, labels as the host hands them (sorted, `__name__` in),
/// one ending in a staleness marker.
fn batch() -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    b.series([
        Label::new("__name__", "node_cpu_seconds_total"),
        Label::new("cpu", "0"),
        Label::new("instance", "pi:9100"),
        Label::new("job", "node"),
        Label::new("mode", "idle"),
    ]);
    b.point(1_700_000_000_000, 1234.5);
    b.point(1_700_000_015_000, 1249.25);
    b.series([
        Label::new("__name__", "node_load1"),
        Label::new("instance", "pi:9100"),
        Label::new("job", "node"),
    ]);
    b.point(1_700_000_000_000, 0.42);
    b.series([
        Label::new("__name__", "up"),
        Label::new("instance", "pi:9100"),
        Label::new("job", "node"),
    ]);
    b.point(1_700_000_000_000, 1.0);
    b.point(1_700_000_015_000, f64::from_bits(STALE));
    b.finish()
}

fn expected(batch: &ExportBatch<'_>) -> Vec<Series> {
    batch
        .series()
        .map(|s| {
            (
                s.labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                s.points.iter().map(|p| (p.t, p.v.to_bits())).collect(),
            )
        })
        .collect()
}

fn header<'p>(p: &'p Payload<'_>, name: &str) -> Option<&'p str> {
    p.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| &**v)
}

fn head(status: u16, headers: &[(&'static str, &'static str)]) -> ResponseHead<'static> {
    ResponseHead::V1 {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect(),
        body: Cow::Borrowed(b""),
    }
}

// ---------------------------------------------------------------------------------------------
// Oracle: snappy block decoding and a protobuf reader

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint longer than 10 bytes")
}

/// Decodes a snappy block: the uncompressed length, then literals and back-references.
fn unsnappy(src: &[u8]) -> Vec<u8> {
    let mut at = 0;
    let len = usize::try_from(varint(src, &mut at)).unwrap();
    let mut out = Vec::with_capacity(len);
    let le = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    while at < src.len() {
        let tag = src[at];
        at += 1;
        let (n, offset) = match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    n = le(&src[at..at + extra]);
                    at += extra;
                }
                out.extend_from_slice(&src[at..=at + n]);
                at += n + 1;
                continue;
            }
            1 => {
                let off = (usize::from(tag >> 5) << 8) | usize::from(src[at]);
                at += 1;
                (4 + usize::from((tag >> 2) & 7), off)
            }
            2 => {
                at += 2;
                (1 + usize::from(tag >> 2), le(&src[at - 2..at]))
            }
            _ => {
                at += 4;
                (1 + usize::from(tag >> 2), le(&src[at - 4..at]))
            }
        };
        assert!(
            offset > 0 && offset <= out.len(),
            "bad copy offset {offset}"
        );
        let start = out.len() - offset;
        for k in 0..n {
            out.push(out[start + k]);
        }
    }
    assert_eq!(out.len(), len, "snappy length prefix");
    out
}

/// A protobuf field's payload.
#[derive(Debug)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

/// The fields of a message, in order.
fn fields(buf: &[u8]) -> Vec<(u64, Wire<'_>)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let key = varint(buf, &mut at);
        let wire = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut at)),
            1 => {
                at += 8;
                Wire::Fixed64(u64::from_le_bytes(buf[at - 8..at].try_into().unwrap()))
            }
            2 => {
                let n = usize::try_from(varint(buf, &mut at)).unwrap();
                at += n;
                Wire::Bytes(&buf[at - n..at])
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, wire));
    }
    out
}

fn string(w: &Wire<'_>) -> String {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn bytes<'a>(w: &Wire<'a>) -> &'a [u8] {
    match w {
        Wire::Bytes(b) => b,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// `Sample { double value = 1; int64 timestamp = 2; }`, the same in both versions.
fn sample(buf: &[u8]) -> (i64, u64) {
    let (mut t, mut v) = (0i64, 0u64);
    for (field, w) in fields(buf) {
        match (field, w) {
            (1, Wire::Fixed64(bits)) => v = bits,
            #[allow(clippy::cast_possible_wrap)]
            (2, Wire::Varint(x)) => t = x as i64,
            other => panic!("unexpected sample field {other:?}"),
        }
    }
    (t, v)
}

/// `prometheus.WriteRequest`.
fn read_v1(body: &[u8]) -> Vec<Series> {
    let mut out = Vec::new();
    for (field, ts) in fields(body) {
        assert_eq!(field, 1, "WriteRequest.timeseries");
        let mut series: Series = (Vec::new(), Vec::new());
        for (field, w) in fields(bytes(&ts)) {
            match field {
                1 => {
                    let l = fields(bytes(&w));
                    assert_eq!((l[0].0, l[1].0), (1, 2), "Label.name, Label.value");
                    series.0.push((string(&l[0].1), string(&l[1].1)));
                }
                2 => series.1.push(sample(bytes(&w))),
                f => panic!("unexpected TimeSeries field {f}"),
            }
        }
        out.push(series);
    }
    out
}

/// `io.prometheus.write.v2.Request`.
fn read_v2(body: &[u8]) -> Vec<Series> {
    let mut symbols = Vec::new();
    let mut raw_series = Vec::new();
    for (field, w) in fields(body) {
        match field {
            4 => symbols.push(string(&w)),
            5 => raw_series.push(bytes(&w)),
            f => panic!("unexpected Request field {f}"),
        }
    }
    assert_eq!(symbols.first().map(String::as_str), Some(""), "symbols[0]");
    raw_series
        .into_iter()
        .map(|ts| {
            let mut series: Series = (Vec::new(), Vec::new());
            for (field, w) in fields(ts) {
                match field {
                    1 => {
                        let packed = bytes(&w);
                        let mut at = 0;
                        let mut refs = Vec::new();
                        while at < packed.len() {
                            refs.push(usize::try_from(varint(packed, &mut at)).unwrap());
                        }
                        assert_eq!(refs.len() % 2, 0, "labels_refs in pairs");
                        series.0.extend(
                            refs.chunks(2)
                                .map(|p| (symbols[p[0]].clone(), symbols[p[1]].clone())),
                        );
                    }
                    2 => series.1.push(sample(bytes(&w))),
                    f => panic!("unexpected TimeSeries field {f}"),
                }
            }
            series
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn v1_payload_decodes_to_the_batch() {
    let mut rw = exporter(Value::default()).await.unwrap();
    let batch = batch();
    let payloads = rw.export(&batch, false).await.unwrap();
    assert_eq!(payloads.len(), 1);
    let p = &payloads[0];
    assert_eq!(p.samples, 5);
    assert_eq!(p.content_type, "application/x-protobuf");
    assert_eq!(header(p, "Content-Encoding"), Some("snappy"));
    assert_eq!(
        header(p, "X-Prometheus-Remote-Write-Version"),
        Some("0.1.0")
    );
    assert_eq!(p.topic, None);
    let got = read_v1(&unsnappy(&p.body));
    assert_eq!(got, expected(&batch));
    assert_eq!(got[2].1[1].1, STALE, "staleness marker bit for bit");
}

#[tokio::test]
async fn v2_payload_decodes_to_the_batch() {
    let mut rw = exporter(table(vec![("protocol", Value::Str("2.0".into()))]))
        .await
        .unwrap();
    let batch = batch();
    let payloads = rw.export(&batch, false).await.unwrap();
    assert_eq!(payloads.len(), 1);
    let p = &payloads[0];
    assert_eq!(p.samples, 5);
    assert_eq!(
        p.content_type,
        "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    );
    assert_eq!(header(p, "Content-Encoding"), Some("snappy"));
    assert_eq!(
        header(p, "X-Prometheus-Remote-Write-Version"),
        Some("2.0.0")
    );
    let got = read_v2(&unsnappy(&p.body));
    assert_eq!(got, expected(&batch));
}

#[tokio::test]
async fn max_payload_bytes_splits_in_the_guest() {
    for protocol in ["1.0", "2.0"] {
        let mut rw = exporter(table(vec![
            ("protocol", Value::Str(protocol.into())),
            ("max_payload_bytes", Value::Int(150)),
        ]))
        .await
        .unwrap();
        let batch = batch();
        let payloads = rw.export(&batch, false).await.unwrap();
        assert!(
            payloads.len() > 1,
            "{protocol}: {} payloads",
            payloads.len()
        );
        let mut all = Vec::new();
        for p in &payloads {
            let raw = unsnappy(&p.body);
            let got = if protocol == "1.0" {
                read_v1(&raw)
            } else {
                read_v2(&raw)
            };
            assert!(raw.len() <= 150 || got.len() == 1, "{protocol}");
            assert_eq!(
                p.samples as usize,
                got.iter().map(|s| s.1.len()).sum::<usize>()
            );
            all.extend(got);
        }
        assert_eq!(all, expected(&batch), "{protocol}");
    }
}

#[tokio::test]
async fn outcomes_follow_the_status() {
    let mut v1 = exporter(Value::default()).await.unwrap();
    let mut v2 = exporter(table(vec![("protocol", Value::Str("2.0".into()))]))
        .await
        .unwrap();
    let written = [("x-prometheus-remote-write-samples-written", "5")];
    for (status, expected) in [
        (200, ExportOutcome::Success),
        (204, ExportOutcome::Success),
        (429, ExportOutcome::Retryable),
        (500, ExportOutcome::Retryable),
        (503, ExportOutcome::Retryable),
        (400, ExportOutcome::Rejected),
    ] {
        assert_eq!(
            v1.outcome(&head(status, &[])).await.unwrap(),
            expected,
            "1.0 {status}"
        );
        assert_eq!(
            v2.outcome(&head(status, &written)).await.unwrap(),
            expected,
            "2.0 {status}"
        );
    }
    // 415 refuses the 2.0 message, not the samples; to 1.0 it is a refusal.
    assert_eq!(
        v2.outcome(&head(415, &[])).await.unwrap(),
        ExportOutcome::Unsupported
    );
    assert_eq!(
        v1.outcome(&head(415, &[])).await.unwrap(),
        ExportOutcome::Rejected
    );
    // A 2xx without any `-Written` header to a 2.0 request: a 1.0 receiver that ignored it.
    assert_eq!(
        v2.outcome(&head(200, &[])).await.unwrap(),
        ExportOutcome::Unsupported
    );
    assert_eq!(
        v2.outcome(&head(500, &[])).await.unwrap(),
        ExportOutcome::Retryable
    );
}

#[tokio::test]
async fn bad_config_fails_instantiate_naming_the_key() {
    for (config, needle) in [
        (
            table(vec![("protocl", Value::Str("2.0".into()))]),
            "config key `protocl`: unknown key",
        ),
        (
            table(vec![("protocol", Value::Str("3".into()))]),
            "config key `protocol`",
        ),
        (
            table(vec![("max_payload_bytes", Value::Int(0))]),
            "config key `max_payload_bytes`",
        ),
    ] {
        let err = exporter(config).await.unwrap_err();
        assert!(!err.is_fault(), "{err}");
        match &err {
            PluginError::Failed { reason, .. } => assert!(reason.contains(needle), "{reason}"),
            other => panic!("expected a config failure, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_2_0_exporter_asked_for_its_fallback_encodes_1_0_and_judges_1_0() {
    let mut rw = exporter(table(vec![("protocol", Value::Str("2.0".into()))]))
        .await
        .unwrap();
    let batch = batch();
    let payloads = rw.export(&batch, true).await.unwrap();
    assert_eq!(payloads.len(), 1);
    let p = &payloads[0];
    assert_eq!(p.samples, 5);
    assert_eq!(p.content_type, "application/x-protobuf");
    assert_eq!(
        header(p, "X-Prometheus-Remote-Write-Version"),
        Some("0.1.0")
    );
    assert_eq!(read_v1(&unsnappy(&p.body)), expected(&batch));
    // Answers to 1.0 need no `-Written` header, and a 415 now refuses the samples.
    assert_eq!(
        rw.outcome(&head(204, &[])).await.unwrap(),
        ExportOutcome::Success
    );
    assert_eq!(
        rw.outcome(&head(415, &[])).await.unwrap(),
        ExportOutcome::Rejected
    );
    // Asked for the configured encoding again, it sends and judges 2.0.
    let p = rw.export(&batch, false).await.unwrap();
    assert!(p[0].content_type.ends_with("v2.Request"));
    assert_eq!(
        rw.outcome(&head(204, &[])).await.unwrap(),
        ExportOutcome::Unsupported
    );
}

#[tokio::test]
async fn an_exporter_without_a_fallback_fails_the_fallback_call() {
    let host = Host::new().unwrap();
    let plugin = host.load("mqtt", &guest("mqtt")).await.unwrap();
    let mut spec = InstanceSpec::new("m");
    spec.config = table(vec![("topic", Value::Str("t".into()))]);
    let mut m = host.instantiate(&plugin, &spec).await.unwrap();
    let e = m.export(&batch(), true).await.unwrap_err();
    assert!(e.to_string().contains("no fallback encoding"), "{e}");
    assert!(m.export(&batch(), false).await.is_ok());
}
