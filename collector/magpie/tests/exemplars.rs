//! Exemplars end to end against a real receiver: magpie scrapes an OpenMetrics target with
//! exemplars on a counter and on histogram buckets and remote-writes to Prometheus 2.42 with
//! exemplar storage; `/api/v1/query_exemplars` must return exactly the exemplars of the
//! exposition. A 2.0 exporter is refused by 2.42 and falls back to 1.0, carrying the
//! exemplars of the batch it sends again (2.0 encoding itself: `plugins/remote-write/tests`).
//! An exporter without `send_exemplars` delivers none. The Prometheus agent, run on the same
//! target with `send_exemplars: true`, is the reference.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, Prometheus, PrometheusAgent, QueriedExemplar, TargetServer};
use std::time::{Duration, Instant};

const OPENMETRICS: &str = r#"# TYPE http_requests counter
http_requests_total{code="200"} 10 # {trace_id="4bf92f3577b34da6",span_id="00f067aa"} 1 1700000000.123
http_requests_total{code="500"} 2 # {trace_id="a\"b\\c"} 1 1700000001
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1 # {trace_id="t-fast"} 0.05 1700000002.5
latency_seconds_bucket{le="1"} 3 # {trace_id="t-mid"} 0.7 1700000003
latency_seconds_bucket{le="+Inf"} 4 # {} 2.5 1700000004
latency_seconds_count 4
latency_seconds_sum 3.25
# TYPE temperature gauge
temperature 21.5
# EOF
"#;

/// The exemplars of the exposition as the receiver must hold them, with the scrape's
/// target labels (job `om`, the target's address as instance).
fn expected(instance: &str) -> Vec<QueriedExemplar> {
    let series = |name: &str, (k, v): (&str, &str)| {
        let mut l = vec![
            ("__name__".to_string(), name.to_string()),
            ("instance".into(), instance.into()),
            ("job".into(), "om".into()),
            (k.into(), v.into()),
        ];
        l.sort();
        l
    };
    let labels = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    };
    let mut want = vec![
        (
            series("http_requests_total", ("code", "200")),
            labels(&[("span_id", "00f067aa"), ("trace_id", "4bf92f3577b34da6")]),
            1.0,
            1_700_000_000_123,
        ),
        (
            series("http_requests_total", ("code", "500")),
            labels(&[("trace_id", "a\"b\\c")]),
            1.0,
            1_700_000_001_000,
        ),
        (
            series("latency_seconds_bucket", ("le", "0.1")),
            labels(&[("trace_id", "t-fast")]),
            0.05,
            1_700_000_002_500,
        ),
        (
            series("latency_seconds_bucket", ("le", "1")),
            labels(&[("trace_id", "t-mid")]),
            0.7,
            1_700_000_003_000,
        ),
        (
            series("latency_seconds_bucket", ("le", "+Inf")),
            Vec::new(),
            2.5,
            1_700_000_004_000,
        ),
    ];
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    want
}

fn remote_write(url: &str, exemplars: Option<bool>, protocol: Option<&str>) -> String {
    let mut s = format!("  - url: {url}\n");
    if let Some(e) = exemplars {
        s.push_str(&format!("    send_exemplars: {e}\n"));
    }
    if let Some(p) = protocol {
        s.push_str(&format!("    protobuf_message: {p}\n"));
    }
    s
}

fn prometheus_yml(target: &str, writes: &[String]) -> String {
    format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: om\n    static_configs: [{{targets: ['{target}']}}]\nremote_write:\n{}",
        writes.concat()
    )
}

const ALL: &str = r#"{__name__=~"http_requests_total|latency_seconds_bucket|temperature"}"#;

/// Polls until `done` holds for what `r` returns, or a minute passed (which only bounds a
/// failing run); returns the last reading.
fn poll<T>(mut r: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = r();
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn prometheus_holds_exactly_the_exposition_s_exemplars_and_none_unless_sent() {
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8".into(),
            body: OPENMETRICS.into(),
        },
    )]);
    let v1 = Prometheus::start_with_exemplar_storage();
    let v2 = Prometheus::start_with_exemplar_storage();
    let off = Prometheus::start_with_exemplar_storage();
    let for_agent = Prometheus::start_with_exemplar_storage();

    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    std::fs::write(
        dir.path().join("prometheus.yml"),
        prometheus_yml(
            target.addr(),
            &[
                remote_write(&v1.write_url(), Some(true), None),
                remote_write(
                    &v2.write_url(),
                    Some(true),
                    Some("io.prometheus.write.v2.Request"),
                ),
                remote_write(&off.write_url(), None, None),
            ],
        ),
    )
    .unwrap();
    let toml = dir.path().join("magpie.toml");
    std::fs::write(
        &toml,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nprometheus_config = \"prometheus.yml\"\n",
            pd.display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let agent_yml = dir.path().join("agent.yml");
    std::fs::write(
        &agent_yml,
        prometheus_yml(
            target.addr(),
            &[remote_write(&for_agent.write_url(), Some(true), None)],
        ),
    )
    .unwrap();
    let m = Magpie::start(&toml);
    let _agent = PrometheusAgent::start_with_features(&agent_yml, "agent,exemplar-storage");

    let want = expected(target.addr());
    let log = || {
        m.log_text()
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let got_v1 = poll(|| v1.exemplars(ALL), |g| g == &want);
    assert_eq!(
        got_v1,
        want,
        "remote write 1.0; magpie's log ends:\n{}",
        log()
    );
    let got_v2 = poll(|| v2.exemplars(ALL), |g| g == &want);
    assert_eq!(
        got_v2,
        want,
        "2.0 exporter after its fallback to 1.0; magpie's log ends:\n{}",
        log()
    );

    // The exporter without send_exemplars delivered the samples of several scrapes, and not
    // one exemplar.
    let samples = poll(
        || off.samples("temperature", "5m"),
        |s| s.first().is_some_and(|(_, p)| p.len() >= 3),
    );
    assert!(
        samples.first().is_some_and(|(_, p)| p.len() >= 3),
        "{samples:?}"
    );
    assert_eq!(off.exemplars(ALL), Vec::new());

    // The incumbent, from the same target, stored the same set, but for one difference:
    // Prometheus 2.42 keeps an exemplar's label values as written in the exposition, escapes
    // and all, where the OpenMetrics text format (and magpie) unescape them as series label
    // values are.
    let as_prometheus_2_42: Vec<QueriedExemplar> = got_v1
        .iter()
        .map(|(series, labels, v, t)| {
            let raw = labels
                .iter()
                .map(|(n, v)| (n.clone(), v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            (series.clone(), raw, *v, *t)
        })
        .collect();
    let got_agent = poll(|| for_agent.exemplars(ALL), |g| g == &as_prometheus_2_42);
    assert_eq!(
        got_agent, as_prometheus_2_42,
        "left: the Prometheus agent, right: magpie (exemplar label values escaped)"
    );
}
