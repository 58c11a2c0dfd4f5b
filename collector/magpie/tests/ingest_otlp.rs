//! OTLP/HTTP ingest end to end with the real binary: the OpenTelemetry Python SDK's OTLP/HTTP
//! exporter (protobuf, plain and gzip) and curl with OTLP/JSON push to `POST /v1/metrics`, and
//! a real Prometheus receiver must end up with the names, labels, values and timestamps the
//! OpenTelemetry-to-Prometheus compatibility rules give. Delta temporality, garbage, truncated
//! and oversized bodies are refused whole, with the reason in a `google.rpc.Status`.
//!
//! The SDK comes from PyPI into the virtual environment `ci/setup.sh` makes
//! (`MAGPIE_OTEL_PYTHON` names another interpreter).

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Prometheus, sample_value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The Python interpreter that has the OpenTelemetry SDK.
fn otel_python() -> PathBuf {
    let p = std::env::var_os("MAGPIE_OTEL_PYTHON").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/magpie/otel-venv/bin/python")
        },
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} is missing: run ci/setup.sh (it installs the OpenTelemetry Python SDK)",
        p.display()
    );
    p
}

/// Runs `tests/otlp/push.py`; returns the export result and the SDK's version.
fn push(url: &str, args: &[&str]) -> (String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/push.py");
    let out = Command::new(otel_python())
        .arg(script)
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "push.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    (
        lines.next().unwrap_or_default().to_string(),
        lines.next().unwrap_or_default().to_string(),
    )
}

/// `curl -X POST` with a body; returns the status, the answer's `Content-Type` and body.
fn post(url: &str, headers: &[&str], body: &[u8]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (req, answer) = (dir.path().join("req"), dir.path().join("answer"));
    std::fs::write(&req, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "%{http_code} %{content_type}", "-o"])
        .arg(&answer)
        .arg("--data-binary")
        .arg(format!("@{}", req.display()));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, ct) = text.split_once(' ').unwrap_or((&text, ""));
    (
        code.parse().unwrap(),
        ct.to_string(),
        std::fs::read(&answer).unwrap_or_default(),
    )
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    v.sort();
    v
}

fn selector(l: &[(String, String)]) -> String {
    let inner: Vec<String> = l.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// An OTLP/JSON request (the encoding of the OTLP specification: lowerCamelCase keys, 64-bit
/// integers as strings, enums as integers) with explicit timestamps at `t_ms` and an
/// unknown key receivers must ignore.
fn json_body(t_ms: i64) -> String {
    let t = format!("{t_ms}999999");
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[
  {{"key":"service.name","value":{{"stringValue":"boiler"}}}},
  {{"key":"service.instance.id","value":{{"stringValue":"b-1"}}}},
  {{"key":"building","value":{{"stringValue":"north"}}}}]}},
 "scopeMetrics":[{{"scope":{{"name":"json-scope"}},"metrics":[
  {{"name":"boiler.pressure","unit":"bar","description":"water pressure","gauge":{{"dataPoints":[
    {{"attributes":[{{"key":"circuit","value":{{"intValue":"2"}}}}],"timeUnixNano":"{t}","asDouble":1.75}}]}}}},
  {{"name":"boiler.ignitions","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
    {{"startTimeUnixNano":"1","timeUnixNano":"{t}","asInt":"12","futureField":true}}]}}}}
 ]}}]}}]}}"#
    )
}

fn wait_backlog_empty(m: &Magpie) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = m.metrics();
        if sample_value(
            &body,
            "magpie_exporter_backlog_samples{exporter=\"central\"}",
        ) == Some(0.0)
        {
            return;
        }
        assert!(Instant::now() < deadline, "backlog did not drain:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn otel_sdk_and_json_pushes_reach_prometheus_exactly_and_bad_bodies_are_refused() {
    let python = otel_python();
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["otlp", "remote-write"]);
    let prom = Prometheus::start();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1/metrics");
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"500ms\"\n\
             [[ingest]]\nname = \"otel\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = \"64KiB\"\n\
             [ingest.decoders]\notlp = \"otlp\"\n",
            pd.display(),
            dir.path().join("data").display(),
            prom.write_url()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);

    // The SDK, protobuf then protobuf with gzip: two points per series.
    let before = now_ms();
    let (result, version) = push(&url, &["none"]);
    assert_eq!(result, "SUCCESS", "python: {}", python.display());
    let (result, _) = push(&url, &["gzip"]);
    assert_eq!(result, "SUCCESS");
    let after = now_ms();

    // A delta counter is refused, the whole export with it (400, the SDK does not retry).
    let (result, _) = push(&url, &["none", "delta"]);
    assert_eq!(result, "FAILURE");

    // OTLP/JSON: 200 with an empty ExportMetricsServiceResponse in JSON.
    let t_json = now_ms() - 5_000;
    let json_ct = "Content-Type: application/json";
    let (status, ct, body) = post(&url, &[json_ct], json_body(t_json).as_bytes());
    assert_eq!(
        (status, ct.as_str(), &body[..]),
        (200, "application/json", &b"{}"[..])
    );

    // Refusals: the reason in a google.rpc.Status, protobuf or JSON as the request was.
    let pb_ct = "Content-Type: application/x-protobuf";
    let (status, ct, body) = post(&url, &[pb_ct], b"\xff\xff\xff\xff garbage");
    assert_eq!((status, ct.as_str()), (400, "application/x-protobuf"));
    assert_eq!(&body[..2], [0x08, 0x03], "code INVALID_ARGUMENT: {body:?}");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("not an OTLP ExportMetricsServiceRequest (protobuf)"),
        "{text}"
    );
    let truncated = json_body(t_json - 1000);
    let (status, ct, body) = post(&url, &[json_ct], &truncated.as_bytes()[..300]);
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    let status_json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status_json["code"], 3);
    assert!(
        status_json["message"].as_str().unwrap().contains("(JSON)"),
        "{status_json}"
    );
    let (status, _, body) = post(
        &url,
        &[json_ct, "Content-Encoding: gzip"],
        &gzip(truncated.as_bytes())[..100],
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("gzip"));
    let (status, _, body) = post(&url, &[pb_ct], &vec![0u8; 100 << 10]);
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("max_body_bytes"));
    let (status, _, _) = post(&url, &["Content-Type: text/plain"], b"x 1\n");
    assert_eq!(status, 400);

    let metrics = m.metrics();
    for (metric, want) in [
        ("magpie_ingest_messages_total{source=\"otel\"}", 3.0),
        ("magpie_ingest_samples_total{source=\"otel\"}", 21.0),
        (
            "magpie_ingest_rejects_total{source=\"otel\",reason=\"malformed\"}",
            5.0,
        ),
        (
            "magpie_ingest_rejects_total{source=\"otel\",reason=\"too_large\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            sample_value(&metrics, metric),
            Some(want),
            "{metric}\n{metrics}"
        );
    }
    wait_backlog_empty(&m);

    // What the SDK pushed, twice, with the compatibility spec's names and labels.
    let svc = [
        ("job", "plant/pump"),
        ("instance", "pump-7"),
        ("otel_scope_name", "magpie.test"),
        ("otel_scope_version", "1.2.3"),
    ];
    let with = |name: &str, extra: &[(&str, &str)]| {
        let mut l: Vec<(&str, &str)> = vec![("__name__", name)];
        l.extend_from_slice(&svc);
        l.extend_from_slice(extra);
        labels(&l)
    };
    let h = [("route", "/a"), ("http_method", "GET")];
    let expect: Vec<(Vec<(String, String)>, f64)> = vec![
        (with("room_temperature_celsius", &[("room", "a")]), 21.5),
        (with("pump_starts_total", &[("pump", "p1")]), 7.0),
        (with("queue_length", &[("queue", "in")]), -3.0),
        (
            with(
                "request_duration_seconds_bucket",
                &[h[0], h[1], ("le", "0.1")],
            ),
            1.0,
        ),
        (
            with(
                "request_duration_seconds_bucket",
                &[h[0], h[1], ("le", "1")],
            ),
            3.0,
        ),
        (
            with(
                "request_duration_seconds_bucket",
                &[h[0], h[1], ("le", "+Inf")],
            ),
            6.0,
        ),
        (with("request_duration_seconds_sum", &h), 11.25),
        (with("request_duration_seconds_count", &h), 6.0),
        (
            labels(&[
                ("__name__", "target_info"),
                ("job", "plant/pump"),
                ("instance", "pump-7"),
                ("deployment_environment", "test"),
                ("site_floor", "3"),
                ("telemetry_sdk_language", "python"),
                ("telemetry_sdk_name", "opentelemetry"),
                ("telemetry_sdk_version", &version),
            ]),
            1.0,
        ),
    ];
    for (l, v) in &expect {
        let sel = selector(l);
        let got = prom.samples(&sel, "1h");
        assert_eq!(got.len(), 1, "{sel}: {got:?}");
        assert_eq!(&got[0].0, l, "{sel}");
        let points = &got[0].1;
        assert_eq!(
            points.len(),
            2,
            "one point per successful push, none from the refused one: {sel}: {points:?}"
        );
        for (t, got_v) in points {
            assert_eq!(got_v, v, "{sel}");
            assert!(
                (before..=after).contains(t),
                "{sel}: {t} outside {before}..={after}"
            );
        }
    }
    // Every series of the job is one of those: nothing else, nothing renamed.
    let all = prom.samples("{job=\"plant/pump\"}", "1h");
    assert_eq!(all.len(), expect.len(), "{all:?}");

    // The JSON push: its own timestamps (ns cut to ms), job without a namespace.
    for (l, v) in [
        (
            labels(&[
                ("__name__", "boiler_pressure_bar"),
                ("job", "boiler"),
                ("instance", "b-1"),
                ("otel_scope_name", "json-scope"),
                ("circuit", "2"),
            ]),
            1.75,
        ),
        (
            labels(&[
                ("__name__", "boiler_ignitions_total"),
                ("job", "boiler"),
                ("instance", "b-1"),
                ("otel_scope_name", "json-scope"),
            ]),
            12.0,
        ),
        (
            labels(&[
                ("__name__", "target_info"),
                ("job", "boiler"),
                ("instance", "b-1"),
                ("building", "north"),
            ]),
            1.0,
        ),
    ] {
        let sel = selector(&l);
        let got = prom.samples(&sel, "1h");
        assert_eq!(got, vec![(l, vec![(t_json, v)])], "{sel}");
    }
    assert!(m.terminate().success());
}
