//! Delivery end to end: the real binary scrapes into its WAL and remote-writes to a real
//! Prometheus; an oracle compares what the WAL holds with what Prometheus can query.

mod common;

use common::{EXPOSITION, Magpie, Stored, label, plugin_dir, read_wal};
use magpie_testkit::{Behavior, Prometheus, TargetServer, sample_value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    overflow_case(3000, "100ms", "256KiB", "768KiB");
}

/// The same at 100k series: the series log (about 7 MiB of the 12) counts in the budget, and
/// the ring overflows after a few scrapes of the outage.
#[test]
fn at_100k_series_the_ring_overflows_within_its_cap_and_counts_what_it_drops() {
    overflow_case(100_000, "5s", "1MiB", "12MiB");
}

/// One target of `series` random gauges scraped every `interval` into a ring of
/// `segment_bytes` segments within `max_bytes`: the receiver stops until the ring has
/// dropped data, then comes back. The WAL never takes more than its budget, and once the
/// backlog is delivered every appended sample is sent, refused, dropped by the ring (counted)
/// or still waiting, to the sample.
fn overflow_case(series: usize, interval: &str, segment_bytes: &str, max_bytes: &str) {
    let mut prom = Prometheus::start();
    let target = TargetServer::start(vec![("/metrics".into(), Behavior::Random(series))]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("ring.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"{segment_bytes}\"\nmax_bytes = \"{max_bytes}\"\n[[scrape]]\njob = \"rnd\"\nplugin = \"prom-scrape\"\ninterval = \"{interval}\"\ntimeout = \"{interval}\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"200ms\"\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            prom.write_url()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    #[allow(clippy::cast_precision_loss)]
    let scrape = series as f64;
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        scrape,
    );
    prom.stop();
    let budget = |text: &str| {
        let (n, unit) = text.split_at(text.len() - 3);
        let n: f64 = n.parse().unwrap();
        n * if unit == "MiB" {
            1024.0 * 1024.0
        } else {
            1024.0
        }
    };
    let cap = budget(max_bytes) + 32.0 * 1024.0; // the budget, plus one page in flight
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
        sent_before + scrape,
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
