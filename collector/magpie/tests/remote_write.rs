//! Delivery end to end: the real binary scrapes into its WAL and remote-writes to a real
//! Prometheus; an oracle compares what the WAL holds with what Prometheus can query.

mod common;

use common::{Magpie, Stored, label, plugin_dir, read_wal};
use magpie_testkit::{Behavior, Prometheus, TargetServer, TestCerts, sample_value};
use magpie_transport::{HttpClient, TlsOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EXPOSITION: &str = "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\nroom_temp_celsius{room=\"b\"} 19.25\n# TYPE door_opens_total counter\ndoor_opens_total 7\n";

fn config(dir: &Path, pd: &Path, target: Option<&str>, write_url: &str) -> PathBuf {
    let scrape = target.map_or(String::new(), |t| {
        format!("[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{t}\"]\n")
    });
    let cfg = dir.join(if target.is_some() {
        "scrape.toml"
    } else {
        "drain.toml"
    });
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nexternal_labels = {{ site = \"pi-07\" }}\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\nmax_bytes = \"64MiB\"\n{scrape}[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{write_url}\"\nmax_backoff = \"500ms\"\n",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// Runs an export-only magpie until the exporter's backlog is empty.
fn drain(dir: &Path, pd: &Path, prom: &Prometheus) {
    let m = Magpie::start(&config(dir, pd, None, &prom.write_url()));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = m.metrics();
        if sample_value(
            &body,
            "magpie_exporter_backlog_samples{exporter=\"central\"}",
        ) == Some(0.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "backlog did not drain:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(m.terminate().success());
}

/// Every non-stale sample of the WAL must be in Prometheus, with the external label added.
fn oracle(wal: &[Stored], prom: &Prometheus) -> usize {
    let mut got: BTreeMap<Vec<(String, String)>, BTreeMap<i64, f64>> = BTreeMap::new();
    for (labels, points) in prom.samples("{site=\"pi-07\"}", "1h") {
        got.insert(labels, points.into_iter().collect());
    }
    let mut checked = 0;
    for (labels, t, v) in wal {
        if v.is_nan() {
            continue;
        }
        let mut l = labels.clone();
        l.push(("site".into(), "pi-07".into()));
        l.sort();
        let series = got
            .get(&l)
            .unwrap_or_else(|| panic!("series {l:?} missing from Prometheus"));
        assert_eq!(
            series.get(t),
            Some(v),
            "sample {l:?} @ {t} missing or wrong; the receiver has {} points from {:?} to {:?}",
            series.len(),
            series.keys().next(),
            series.keys().last()
        );
        checked += 1;
    }
    checked
}

#[test]
fn every_acknowledged_sample_reaches_prometheus() {
    let prom = Prometheus::start();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let m = Magpie::start(&config(
        dir.path(),
        &pd,
        Some(&target.url("/metrics")),
        &prom.write_url(),
    ));
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        100.0,
    );
    assert!(m.terminate().success());
    drain(dir.path(), &pd, &prom);
    let wal = read_wal(&dir.path().join("data/wal"));
    let checked = oracle(&wal, &prom);
    assert!(checked >= 100, "only {checked} samples checked");
    assert!(
        wal.iter()
            .any(|(l, _, v)| label(l, "__name__") == Some("room_temp_celsius") && *v == 19.25)
    );
}

fn outage_secs() -> u64 {
    std::env::var("MAGPIE_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

#[test]
fn an_outage_and_a_restart_during_it_lose_nothing() {
    let mut prom = Prometheus::start();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = config(
        dir.path(),
        &pd,
        Some(&target.url("/metrics")),
        &prom.write_url(),
    );
    let m = Magpie::start(&cfg);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        20.0,
    );

    // The receiver goes away; scraping goes on into the ring, and a SIGTERM in the middle of
    // the outage returns at once, with the backlog kept on disk.
    prom.stop();
    std::thread::sleep(Duration::from_secs(outage_secs() / 2));
    let stopping = Instant::now();
    assert!(m.terminate().success());
    let shutdown = stopping.elapsed();
    assert!(
        shutdown < Duration::from_secs(5),
        "shutdown with the receiver down took {shutdown:?}"
    );
    let m = Magpie::start(&cfg);
    std::thread::sleep(Duration::from_secs(outage_secs() / 2));
    let body = m.metrics();
    assert!(
        sample_value(
            &body,
            "magpie_exporter_backlog_samples{exporter=\"central\"}"
        )
        .unwrap()
            > 0.0,
        "{body}"
    );
    prom.resume();
    m.wait_for("magpie_exporter_retries_total{exporter=\"central\"}", 1.0);
    assert!(m.terminate().success());
    drain(dir.path(), &pd, &prom);
    let wal = read_wal(&dir.path().join("data/wal"));
    let checked = oracle(&wal, &prom);
    let per_scrape = 6; // 3 series + up + duration + samples_scraped
    let expected_min = usize::try_from(outage_secs()).unwrap() * 5 * per_scrape / 2;
    assert!(
        checked >= expected_min,
        "{checked} samples checked, expected at least {expected_min}"
    );
}

fn scripted(
    script: Vec<magpie_testkit::Answer>,
) -> (
    magpie_testkit::ScriptedReceiver,
    Magpie,
    tempfile::TempDir,
    TargetServer,
) {
    let recv = magpie_testkit::ScriptedReceiver::start(script);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let m = Magpie::start(&config(
        dir.path(),
        &pd,
        Some(&target.url("/metrics")),
        &recv.url(),
    ));
    (recv, m, dir, target)
}

#[test]
fn server_errors_are_retried_until_accepted() {
    use magpie_testkit::Answer;
    let (recv, m, _dir, _t) = scripted(vec![
        Answer {
            status: 500,
            retry_after: None,
        },
        Answer {
            status: 503,
            retry_after: None,
        },
    ]);
    let body = m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );
    assert!(
        sample_value(&body, "magpie_exporter_retries_total{exporter=\"central\"}").unwrap() >= 2.0,
        "{body}"
    );
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_rejected_samples_total{exporter=\"central\"}"
        ),
        Some(0.0)
    );
    let r = recv.received();
    assert_eq!((r[0].status, r[1].status, r[2].status), (500, 503, 200));
    // The same payload was sent again, with the remote-write headers each time.
    assert_eq!(r[0].body_len, r[2].body_len);
    for req in &r[..3] {
        let h = |k: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("content-encoding"), Some("snappy"));
        assert_eq!(h("content-type"), Some("application/x-protobuf"));
        assert_eq!(h("x-prometheus-remote-write-version"), Some("0.1.0"));
        assert!(h("user-agent").is_some_and(|u| u.starts_with("magpie/")));
    }
    assert!(m.terminate().success());
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    use magpie_testkit::Answer;
    let (recv, m, _dir, _t) = scripted(vec![Answer {
        status: 429,
        retry_after: Some(2),
    }]);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );
    let r = recv.received();
    assert_eq!((r[0].status, r[1].status), (429, 200));
    let waited = r[1].at - r[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "retried after {waited:?}, before Retry-After"
    );
    assert!(m.terminate().success());
}

#[test]
fn a_refused_payload_is_dropped_and_counted_not_retried() {
    use magpie_testkit::Answer;
    // A receiver that refuses everything: each payload is sent once, counted rejected, and
    // the exporter goes on with the next batch instead of insisting on the first.
    let refuse = Answer {
        status: 400,
        retry_after: None,
    };
    let (recv, m, _dir, _t) = scripted(vec![refuse; 100_000]);
    let body = m.wait_for(
        "magpie_exporter_rejected_samples_total{exporter=\"central\"}",
        30.0,
    );
    let r = recv.received();
    assert!(r.len() >= 3, "{} requests", r.len());
    assert!(r.iter().all(|x| x.status == 400));
    // Never the same payload twice: every request carried new samples.
    let bodies: std::collections::BTreeSet<&[u8]> = r.iter().map(|x| x.body.as_slice()).collect();
    assert_eq!(bodies.len(), r.len());
    for (metric, want) in [
        ("magpie_exporter_sent_samples_total", 0.0),
        ("magpie_exporter_retries_total", 0.0),
    ] {
        assert_eq!(
            sample_value(&body, &format!("{metric}{{exporter=\"central\"}}")),
            Some(want),
            "{body}"
        );
    }
    assert!(
        m.log_text()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("refused a payload with 400")),
        "{}",
        m.log_text()
    );
    assert!(m.terminate().success());
}

#[test]
fn the_built_in_default_with_a_remote_write_url_does_the_whole_job() {
    let prom = Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    // The layout of a source checkout after ci/build-plugins.sh: plugins in target/plugins.
    let plugins = dir.path().join("target/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for p in ["node", "remote-write"] {
        std::fs::copy(magpie_testkit::guest(p), plugins.join(format!("{p}.wasm"))).unwrap();
    }
    let url = prom.write_url();
    let m = Magpie::start_args(
        &["--remote-write", &url, "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"remote-write\"}",
        100.0,
    );
    assert!(m.terminate().success());
    let load = prom.samples("node_load1{job=\"node\"}", "1h");
    assert_eq!(load.len(), 1, "{load:?}");
    assert!(!load[0].1.is_empty());
    assert!(dir.path().join("magpie-data/wal").is_dir());
}

#[test]
fn a_long_outage_overflows_the_ring_within_its_cap_and_counts_what_it_drops() {
    let mut prom = Prometheus::start();
    let target = TargetServer::start(vec![("/metrics".into(), Behavior::Random(3000))]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("ring.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\nmax_bytes = \"768KiB\"\n[[scrape]]\njob = \"rnd\"\nplugin = \"prom-scrape\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"200ms\"\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            prom.write_url()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        3000.0,
    );
    prom.stop();
    let cap = 768.0 * 1024.0 + 32.0 * 1024.0; // the budget, plus one page in flight
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let body = m.metrics();
        let bytes = sample_value(&body, "magpie_wal_bytes").unwrap();
        assert!(bytes <= cap, "the WAL takes {bytes} bytes, over its cap");
        if sample_value(
            &body,
            "magpie_exporter_dropped_samples_total{exporter=\"central\"}",
        )
        .unwrap()
            > 0.0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ring never overflowed:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent_before = sample_value(
        &m.metrics(),
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
    )
    .unwrap();
    prom.resume();
    // Once the receiver is back, everything appended is either delivered, refused, dropped by
    // the ring (counted), or still waiting: nothing vanishes uncounted, nothing counts twice.
    // A batch in flight when the ring drops its segment is delivered from memory, not counted
    // as dropped.
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        sent_before + 1.0,
    );
    std::thread::sleep(Duration::from_secs(2));
    let body = m.metrics();
    let get = |k: &str| sample_value(&body, k).unwrap_or_else(|| panic!("{k} missing:\n{body}"));
    let appended = get("magpie_wal_samples_appended_total");
    let sent = get("magpie_exporter_sent_samples_total{exporter=\"central\"}");
    let dropped = get("magpie_exporter_dropped_samples_total{exporter=\"central\"}");
    let backlog = get("magpie_exporter_backlog_samples{exporter=\"central\"}");
    let rejected = get("magpie_exporter_rejected_samples_total{exporter=\"central\"}");
    let unaccounted = appended - sent - rejected - dropped - backlog;
    assert!(dropped > 0.0);
    assert!(
        unaccounted.abs() < 1.0,
        "appended {appended} sent {sent} rejected {rejected} dropped {dropped} backlog {backlog}"
    );
    assert!(m.terminate().success());
}

#[test]
fn sigkill_during_an_outage_loses_at_most_the_unsynced_tail() {
    let mut prom = Prometheus::start();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = config(
        dir.path(),
        &pd,
        Some(&target.url("/metrics")),
        &prom.write_url(),
    );
    let m = Magpie::start(&cfg);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        20.0,
    );
    prom.stop();
    std::thread::sleep(Duration::from_secs(outage_secs() / 4));
    let before_kill = sample_value(&m.metrics(), "magpie_wal_samples_appended_total").unwrap();
    m.signal(rustix::process::Signal::KILL);
    drop(m);
    // What the WAL kept survives the kill and is delivered in full once the receiver is back.
    let kept = read_wal(&dir.path().join("data/wal")).len();
    #[allow(clippy::cast_precision_loss)]
    let lost = before_kill - kept as f64;
    // fsync = 100 ms and a scrape every 200 ms: at most one scrape (6 samples) was unsynced.
    assert!(lost <= 6.0, "{lost} samples lost to the kill");
    prom.resume();
    drain(dir.path(), &pd, &prom);
    let wal = read_wal(&dir.path().join("data/wal"));
    let checked = oracle(&wal, &prom);
    assert!(
        checked >= kept.saturating_sub(12),
        "{checked} of {kept} samples arrived"
    );
}

#[test]
fn victoria_metrics_receives_every_sample_too() {
    let vm = Prometheus::start_victoria_metrics();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let m = Magpie::start(&config(
        dir.path(),
        &pd,
        Some(&target.url("/metrics")),
        &vm.write_url(),
    ));
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        60.0,
    );
    assert!(m.terminate().success());
    drain(dir.path(), &pd, &vm);
    let wal = read_wal(&dir.path().join("data/wal"));
    assert!(oracle(&wal, &vm) >= 60);
}

/// Queries an HTTPS Prometheus that requires a client certificate; returns the JSON body.
fn query_tls(prom: &Prometheus, certs: &TestCerts, query: &str) -> String {
    let tls = TlsOptions {
        ca_file: Some(certs.path("ca.pem")),
        cert_file: Some(certs.path("client.pem")),
        key_file: Some(certs.path("client.key")),
    };
    let url = format!("https://{}/api/v1/query?query={query}", prom.addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = HttpClient::new(&tls).unwrap();
        let mut resp = client
            .get(&url, &[], Duration::from_secs(10), 1 << 20)
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        let mut body = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = resp.body.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(body).unwrap()
    })
}

#[test]
fn a_receiver_requiring_a_client_certificate_gets_one_and_refuses_others() {
    let certs = TestCerts::generate();
    let prom = Prometheus::start_tls(&certs);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("tls.toml");
    let ca = certs.path("ca.pem");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"with-cert\"\nplugin = \"remote-write\"\nurl = \"{url}\"\ntls = {{ ca_file = \"{ca}\", cert_file = \"{}\", key_file = \"{}\" }}\n[[export]]\nname = \"without\"\nplugin = \"remote-write\"\nurl = \"{url}\"\nmax_backoff = \"200ms\"\ntls = {{ ca_file = \"{ca}\" }}\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            certs.path("client.pem").display(),
            certs.path("client.key").display(),
            url = prom.write_url(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"with-cert\"}",
        20.0,
    );
    m.wait_for(
        "magpie_exporter_failed_sends_total{exporter=\"without\"}",
        2.0,
    );
    let body = m.metrics();
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_sent_samples_total{exporter=\"without\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert!(
        m.log_text().contains("exporter `without`: sending failed"),
        "{}",
        m.log_text()
    );
    assert!(m.terminate().success());
    let got = query_tls(&prom, &certs, "room_temp_celsius%7Broom%3D%22b%22%7D");
    assert!(got.contains("\"19.25\""), "{got}");
}

/// The samples of every request the receiver accepted, in arrival order: `(labels, t, value)`.
fn accepted(recv: &magpie_testkit::ScriptedReceiver) -> Vec<Vec<Stored>> {
    use prost::Message as _;
    recv.received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&r.body)
                .expect("snappy");
            let req =
                remote_write::proto::v1::WriteRequest::decode(raw.as_slice()).expect("protobuf");
            let mut out = Vec::new();
            for ts in req.timeseries {
                let labels: Vec<(String, String)> =
                    ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                for s in ts.samples {
                    out.push((labels.clone(), s.timestamp, s.value));
                }
            }
            out
        })
        .collect()
}

#[test]
fn newest_first_sends_new_samples_before_the_backlog_and_loses_nothing() {
    use magpie_testkit::Answer;
    let outage = vec![
        Answer {
            status: 503,
            retry_after: None,
        };
        25
    ];
    let recv = magpie_testkit::ScriptedReceiver::start(outage);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("newest.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"200ms\"\nmax_samples_per_send = 12\nmax_samples_per_second = 120\nnewest_first = true\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            recv.url(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_exporter_retries_total{exporter=\"central\"}", 25.0);
    // The receiver now accepts everything; wait for the backlog to drain.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !m
        .log_text()
        .contains("the backlog is delivered; back to oldest-first order")
    {
        assert!(
            Instant::now() < deadline,
            "the backlog never drained:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        m.log_text()
            .contains("sending new samples first, then a backlog of")
    );
    assert!(m.terminate().success());
    let requests = accepted(&recv);
    let span = |r: &[Stored]| {
        (
            r.iter().map(|s| s.1).min().unwrap(),
            r.iter().map(|s| s.1).max().unwrap(),
        )
    };
    let spans: Vec<(i64, i64)> = requests.iter().map(|r| span(r)).collect();
    // Some request carried samples newer than a request that came after it.
    let overtaken = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans[i + 1..].iter().any(|b| b.1 < a.0));
    assert!(overtaken, "delivery stayed oldest first: {spans:?}");
    // Nothing the WAL holds is missing, up to the newest delivered sample: once the backlog
    // is delivered the order is oldest first again, so only samples scraped after the last
    // delivery (in the moments before the stop) may still wait in the WAL.
    let got: std::collections::HashSet<(Vec<(String, String)>, i64)> = requests
        .into_iter()
        .flatten()
        .map(|(l, t, _)| (l, t))
        .collect();
    let newest = got.iter().map(|(_, t)| *t).max().unwrap();
    let wal = read_wal(&dir.path().join("data/wal"));
    let mut checked = 0;
    for (labels, t, _) in wal.iter().filter(|(_, t, _)| *t <= newest) {
        let mut l = labels.clone();
        l.sort();
        assert!(got.contains(&(l.clone(), *t)), "{l:?} @ {t} never arrived");
        checked += 1;
    }
    assert!(checked > 100, "only {checked} samples checked");
}
