//! Remote write 2.0 carries metric metadata in every series: the real binary scrapes an
//! OpenMetrics target and exports 2.0 to a recording endpoint; the requests, decoded with the
//! `prost` 2.0 definitions, must hold each series' type, help and unit as symbol references,
//! and no metadata-only request. The endpoint is not a 2.0 receiver (none is installed here:
//! Prometheus 2.42 and Debian's VictoriaMetrics 1.79 predate 2.0); it answers with the
//! `Samples-Written` header a 2.0 receiver sends, so the exporter keeps speaking 2.0.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, ScriptedReceiver, TargetServer};
use prost::Message as _;
use remote_write::proto;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const OPENMETRICS: &str = r#"# TYPE http_requests counter
# HELP http_requests Requests served.
http_requests_total{code="200"} 10
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
# HELP latency_seconds How long it took.
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_count 2
latency_seconds_sum 0.3
# TYPE room_temp_celsius gauge
# UNIT room_temp_celsius celsius
room_temp_celsius 21.5
untyped_here 1
# EOF
"#;

fn unsnappy(body: &[u8]) -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("a snappy body")
}

fn samples_in(body: &[u8]) -> u64 {
    proto::v2::Request::decode(unsnappy(body).as_slice())
        .map(|r| r.timeseries.iter().map(|t| t.samples.len() as u64).sum())
        .unwrap_or(0)
}

/// Metric name → (type, help, unit) of the last 2.0 series seen with that name; `None` for
/// a series without metadata.
type Seen = BTreeMap<String, Option<(i32, String, String)>>;

fn seen(r: &ScriptedReceiver) -> (Seen, usize) {
    let mut out = Seen::new();
    let mut not_v2 = 0;
    for req in r.received() {
        let ct = req
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if !ct.contains("io.prometheus.write.v2.Request") {
            not_v2 += 1;
            continue;
        }
        let raw = unsnappy(&req.body);
        let req = proto::v2::Request::decode(raw.as_slice()).expect("2.0");
        let metas = proto::v2::RequestMetadata::decode(raw.as_slice()).expect("2.0");
        let sym = |i: u32| req.symbols[i as usize].clone();
        for (ts, tm) in req.timeseries.iter().zip(&metas.timeseries) {
            let name = ts
                .labels_refs
                .chunks(2)
                .find(|p| sym(p[0]) == "__name__")
                .map(|p| sym(p[1]))
                .expect("a name");
            let meta = tm
                .metadata
                .map(|m| (m.r#type, sym(m.help_ref), sym(m.unit_ref)));
            out.insert(name, meta);
        }
    }
    (out, not_v2)
}

#[test]
fn every_2_0_series_carries_its_family_metadata() {
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
            body: OPENMETRICS.into(),
        },
    )]);
    let receiver = ScriptedReceiver::start_v2(samples_in);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let toml = dir.path().join("magpie.toml");
    // The metadata interval is far beyond the test: what arrives came with the series.
    std::fs::write(
        &toml,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"app\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmetadata = {{ send = true, send_interval = \"10m\" }}\n[export.config]\nprotocol = \"2.0\"\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            receiver.url()
        ),
    )
    .unwrap();
    let m = Magpie::start(&toml);

    let m3 = |t: i32, h: &str, u: &str| Some((t, h.to_string(), u.to_string()));
    let want: Seen = [
        ("http_requests_total", m3(1, "Requests served.", "")),
        (
            "latency_seconds_bucket",
            m3(3, "How long it took.", "seconds"),
        ),
        (
            "latency_seconds_count",
            m3(3, "How long it took.", "seconds"),
        ),
        ("latency_seconds_sum", m3(3, "How long it took.", "seconds")),
        ("room_temp_celsius", m3(2, "", "celsius")),
        // No TYPE, HELP or UNIT line: no metadata, as in Prometheus.
        ("untyped_here", None),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // The deadline only bounds a failing run.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (got, not_v2) = loop {
        let (got, not_v2) = seen(&receiver);
        let complete = want.keys().all(|k| got.get(k) == want.get(k));
        if complete || Instant::now() > deadline {
            break (got, not_v2);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (k, v) in &want {
        assert_eq!(
            got.get(k),
            Some(v),
            "series {k}; all: {got:#?}; magpie's log ends: {:?}",
            m.log_text().lines().rev().take(10).collect::<Vec<_>>()
        );
    }
    // Nothing but 2.0 requests: no metadata-only 1.0 request, no fallback.
    assert_eq!(not_v2, 0);
}
