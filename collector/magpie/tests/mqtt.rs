//! MQTT delivery end to end: the real binary scrapes into its WAL and publishes to a real
//! Mosquitto started on a loopback port; a `mosquitto_sub` with a persistent session records
//! what the broker delivered, and an oracle compares it with the WAL.

mod common;

use common::{EXPOSITION, Magpie, Stored, plugin_dir, read_wal};
use magpie_testkit::{Behavior, Message, Mosquitto, MosquittoOptions, TargetServer, sample_value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const STATUS: &str = "magpie/status/test";
const SENT: &str = "magpie_exporter_sent_samples_total{exporter=\"broker\"}";
const BACKLOG: &str = "magpie_exporter_backlog_samples{exporter=\"broker\"}";
/// Prometheus' staleness marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
const FAILED: &str = "magpie_exporter_failed_sends_total{exporter=\"broker\"}";

fn outage_secs() -> u64 {
    std::env::var("MAGPIE_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

fn target() -> TargetServer {
    TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )])
}

/// A config scraping `target` every 200 ms (none: export only) and publishing JSON to the
/// broker; `extra` goes into the `[[export]]` table.
fn config(dir: &Path, name: &str, target: Option<&str>, url: &str, extra: &str) -> PathBuf {
    let pd = dir.join("plugins");
    let scrape = target.map_or(String::new(), |t| {
        format!("[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{t}\"]\n")
    });
    let cfg = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nexternal_labels = {{ site = \"pi-07\" }}\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\nmax_bytes = \"64MiB\"\n{scrape}[[export]]\nname = \"broker\"\nplugin = \"mqtt\"\nurl = \"{url}\"\ntopic = \"magpie/{{site}}/{{job}}\"\nmax_backoff = \"500ms\"\n{extra}\n[export.mqtt]\nstatus_topic = \"{STATUS}\"\nkeep_alive = \"2s\"\n",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

fn metric(m: &Magpie, name: &str) -> f64 {
    sample_value(&m.metrics(), name).unwrap_or(-1.0)
}

fn wait_until(what: &str, m: Option<&Magpie>, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; log:\n{}",
            m.map(Magpie::log_text).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs an export-only magpie until the exporter's backlog is empty.
fn drain(dir: &Path, url: &str, extra: &str) {
    let m = Magpie::start(&config(dir, "drain.toml", None, url, extra));
    wait_until("the backlog to drain", Some(&m), || {
        metric(&m, BACKLOG) == 0.0
    });
    assert!(m.terminate().success());
}

/// A received sample's value: a number, or the string form of a non-finite one.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Text(String),
}

/// Received samples by series (labels sorted), in arrival order.
type Received = BTreeMap<Vec<(String, String)>, Vec<(i64, Val)>>;

/// Every received sample by series, in arrival order.
fn received(msgs: &[Message]) -> Received {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for m in msgs.iter().filter(|m| m.topic.starts_with("magpie/pi-07/")) {
        let v: serde_json::Value = serde_json::from_slice(&m.payload)
            .unwrap_or_else(|e| panic!("message on {} is not JSON: {e}", m.topic));
        for s in v["series"].as_array().unwrap() {
            let mut labels: Vec<(String, String)> = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            assert_eq!(
                m.topic,
                format!(
                    "magpie/pi-07/{}",
                    labels.iter().find(|(n, _)| n == "job").unwrap().1
                ),
                "series on the wrong topic"
            );
            let points = out.entry(labels).or_default();
            for p in s["samples"].as_array().unwrap() {
                let t = p[0].as_i64().unwrap();
                let val = p[1]
                    .as_f64()
                    .map_or_else(|| Val::Text(p[1].as_str().unwrap().into()), Val::Num);
                points.push((t, val));
            }
        }
    }
    out
}

/// Every sample of the WAL must have been received, external label added; returns how many
/// were checked.
fn oracle(wal: &[Stored], msgs: &[Message]) -> usize {
    let got = received(msgs);
    let mut checked = 0;
    for (labels, t, v) in wal {
        let mut l = labels.clone();
        l.push(("site".into(), "pi-07".into()));
        l.sort();
        let series = got
            .get(&l)
            .unwrap_or_else(|| panic!("series {l:?} never received"));
        let want = if v.is_nan() {
            Val::Text(
                if v.to_bits() == STALE_NAN {
                    "StaleNaN"
                } else {
                    "NaN"
                }
                .into(),
            )
        } else {
            Val::Num(*v)
        };
        assert!(
            series.iter().any(|(pt, pv)| pt == t && *pv == want),
            "sample {l:?} @ {t} = {v} never received; {} points received",
            series.len()
        );
        checked += 1;
    }
    checked
}

fn statuses(msgs: &[Message]) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.topic == STATUS)
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

#[test]
fn every_acknowledged_sample_reaches_the_subscriber() {
    let broker = Mosquitto::start();
    let sub = broker.subscribe("magpie/#", "oracle-all", None);
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path(), &["prom-scrape", "mqtt"]);
    let cfg = config(
        dir.path(),
        "run.toml",
        Some(&target.url("/metrics")),
        &broker.url(),
        "",
    );
    let m = Magpie::start(&cfg);
    m.wait_for(SENT, 100.0);
    assert!(m.terminate().success());
    drain(dir.path(), &broker.url(), "");
    let wal = read_wal(&dir.path().join("data/wal"));
    wait_until("every sample at the subscriber", None, || {
        let n: usize = received(&sub.messages()).values().map(Vec::len).sum();
        n >= wal.len()
    });
    // Each run says `online` when connected, and `offline` when it stops.
    wait_until("four status messages", None, || {
        statuses(&sub.messages()).len() >= 4
    });
    let msgs = sub.messages();
    let checked = oracle(&wal, &msgs);
    assert!(checked >= 100, "only {checked} samples checked");
    let st = statuses(&msgs);
    assert_eq!(st.first().map(String::as_str), Some("online"), "{st:?}");
    assert_eq!(st.last().map(String::as_str), Some("offline"), "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "online").count(), 2, "{st:?}");
    assert_eq!(st.get(1).map(String::as_str), Some("offline"), "{st:?}");
}

#[test]
fn a_broker_restart_and_an_outage_lose_nothing_and_the_backlog_comes_oldest_first() {
    let mut broker = Mosquitto::start();
    let sub = broker.subscribe("magpie/#", "oracle-outage", None);
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path(), &["prom-scrape", "mqtt"]);
    let cfg = config(
        dir.path(),
        "run.toml",
        Some(&target.url("/metrics")),
        &broker.url(),
        "",
    );
    let m = Magpie::start(&cfg);
    m.wait_for(SENT, 30.0);

    // A quick restart mid-stream.
    broker.stop();
    std::thread::sleep(Duration::from_millis(500));
    broker.resume();
    let sent = metric(&m, SENT);
    m.wait_for(SENT, sent + 30.0);

    // An outage: scraping goes on into the WAL, publishing fails with the broker named.
    broker.stop();
    std::thread::sleep(Duration::from_secs(outage_secs()));
    let body = m.metrics();
    assert!(sample_value(&body, BACKLOG).unwrap() > 0.0, "{body}");
    assert!(sample_value(&body, FAILED).unwrap() > 0.0, "{body}");
    assert!(
        m.log_text().contains(&broker.url()),
        "no log line names the broker:\n{}",
        m.log_text()
    );
    broker.resume();
    wait_until("the backlog to drain", Some(&m), || {
        metric(&m, BACKLOG) == 0.0
    });
    assert!(m.terminate().success());
    drain(dir.path(), &broker.url(), "");

    let wal = read_wal(&dir.path().join("data/wal"));
    wait_until("every sample at the subscriber", None, || {
        let n: usize = received(&sub.messages()).values().map(Vec::len).sum();
        n >= wal.len()
    });
    let msgs = sub.messages();
    let checked = oracle(&wal, &msgs);
    let per_scrape = 6; // 3 series + up + duration + samples_scraped
    let expected_min = usize::try_from(outage_secs()).unwrap() * 5 * per_scrape / 2;
    assert!(
        checked >= expected_min,
        "{checked} samples checked, expected {expected_min}"
    );
    // Oldest first: each series' samples arrive in time order, apart from resends of what
    // was in flight when the connection broke (at-least-once), which repeat earlier ones.
    for (labels, points) in received(&msgs) {
        let mut newest = i64::MIN;
        let mut seen = std::collections::BTreeSet::new();
        for (t, _) in points {
            assert!(
                t >= newest || seen.contains(&t),
                "{labels:?}: {t} arrived after {newest} and is no resend"
            );
            seen.insert(t);
            newest = newest.max(t);
        }
    }
}

/// Starts magpie against a broker it cannot use yet; checks the error is logged naming the
/// broker, retried, and the data kept; then fixes the config with `fixed_extra`, reloads, and
/// checks the data arrives.
fn refused_then_fixed(
    broker: &Mosquitto,
    bad_extra: &str,
    fixed_extra: &str,
    expect: &[&str],
    sub_user: Option<(&str, &str)>,
) {
    let sub = broker.subscribe("magpie/#", "oracle-refused", sub_user);
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path(), &["prom-scrape", "mqtt"]);
    let url = broker.url();
    let cfg = config(
        dir.path(),
        "run.toml",
        Some(&target.url("/metrics")),
        &url,
        bad_extra,
    );
    let m = Magpie::start(&cfg);
    wait_until("the connection error in the log", Some(&m), || {
        let log = m.log_text();
        log.lines()
            .filter(|l| l.contains(&url) && expect.iter().all(|e| l.to_lowercase().contains(e)))
            .count()
            >= 2
    });
    m.wait_for(FAILED, 2.0);
    let body = m.metrics();
    assert_eq!(sample_value(&body, SENT), Some(0.0), "{body}");
    assert!(sample_value(&body, BACKLOG).unwrap() > 0.0, "{body}");
    // Retried with backoff, not in a busy loop.
    let attempts = m
        .log_text()
        .lines()
        .filter(|l| l.contains("Connecting to MQTT broker"))
        .count();
    assert!(
        attempts < 60,
        "{attempts} connection attempts logged in a few seconds"
    );
    assert!(!m.log_text().contains("panicked"), "{}", m.log_text());

    config(
        dir.path(),
        "run.toml",
        Some(&target.url("/metrics")),
        &url,
        fixed_extra,
    );
    m.signal(rustix::process::Signal::HUP);
    m.wait_for(SENT, 50.0);
    assert!(m.terminate().success());
    drain(dir.path(), &url, fixed_extra);
    let wal = read_wal(&dir.path().join("data/wal"));
    wait_until(
        &format!(
            "every sample at the subscriber ({} in the WAL, {} messages, broker log {})",
            wal.len(),
            sub.messages().len(),
            broker.log()
        ),
        None,
        || {
            let n: usize = received(&sub.messages()).values().map(Vec::len).sum();
            n >= wal.len()
        },
    );
    assert!(oracle(&wal, &sub.messages()) >= 50);
}

#[test]
fn a_wrong_password_is_logged_naming_the_broker_and_the_data_waits() {
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: Some(("gw".into(), "s3cret".into())),
        tls: false,
        tcp_nodelay: false,
    });
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let good = dir.path().join("pw-good");
    std::fs::write(&good, "s3cret\n").unwrap();
    refused_then_fixed(
        &broker,
        &format!(
            "basic_auth = {{ username = \"gw\", password_file = \"{}\" }}",
            pw.display()
        ),
        &format!(
            "basic_auth = {{ username = \"gw\", password_file = \"{}\" }}",
            good.display()
        ),
        &["refused", "basic_auth"],
        Some(("gw", "s3cret")),
    );
}

#[test]
fn an_untrusted_broker_certificate_is_logged_and_the_data_waits() {
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: None,
        tls: true,
        tcp_nodelay: false,
    });
    assert!(broker.url().starts_with("mqtts://"));
    refused_then_fixed(
        &broker,
        "",
        &format!("tls = {{ ca_file = \"{}\" }}", broker.ca_file().display()),
        &["certificate"],
        None,
    );
}

#[test]
fn sigkill_makes_the_broker_publish_the_last_will() {
    let broker = Mosquitto::start();
    let sub = broker.subscribe(STATUS, "oracle-will", None);
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path(), &["prom-scrape", "mqtt"]);
    let target = target();
    let cfg = config(
        dir.path(),
        "run.toml",
        Some(&target.url("/metrics")),
        &broker.url(),
        "",
    );
    let mut m = Magpie::start(&cfg);
    wait_until("online", Some(&m), || {
        statuses(&sub.messages()) == ["online"]
    });
    m.signal(rustix::process::Signal::KILL);
    m.child.wait().unwrap();
    wait_until("the last will", None, || {
        statuses(&sub.messages()) == ["online", "offline"]
    });
    // Retained: a late subscriber sees `offline` too.
    let late = broker.subscribe(STATUS, "late", None);
    wait_until("the retained status", None, || {
        late.messages()
            .iter()
            .any(|msg| msg.retained && msg.payload == b"offline")
    });
}
