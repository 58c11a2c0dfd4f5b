//! Push ingest end to end with the real binary: curl pushes to the Pushgateway and remote
//! write paths, a real Prometheus in agent mode remote-writing into magpie, and
//! `mosquitto_pub` publishing JSON to a real Mosquitto. What magpie acknowledged must be in its
//! WAL even when it is SIGKILLed right after, and must reach a real Prometheus receiver with
//! values and labels exact; garbage, truncated and oversized bodies are refused.

mod common;

use common::{Magpie, Stored, label, plugin_dir, publish, read_wal};
use magpie_testkit::{Mosquitto, Prometheus, sample_value};
use prost::Message as _;
use remote_write::proto::{v1, v2};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A series' labels and its points, as the WAL and the receiver must hold them.
type Expected<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

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

/// A config with `ingest` sections, exporting to `write_url` when given. The WAL's sync
/// interval is long: what survives a SIGKILL survives because the ingest path wrote it out
/// before acknowledging, not because a periodic sync happened to run.
fn config(dir: &Path, pd: &Path, write_url: Option<&str>, ingest: &str) -> PathBuf {
    let name = if write_url.is_some() {
        "export.toml"
    } else {
        "ingest-only.toml"
    };
    let export = write_url.map_or(String::new(), |u| {
        format!("[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{u}\"\nmax_backoff = \"500ms\"\n")
    });
    let cfg = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"1h\"\n{export}{ingest}",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

/// `curl -X method` with a body; returns the status and the answer's body.
fn curl(method: &str, url: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-w", "\n%{http_code}", "-X", method, "--data-binary"])
        .arg(format!("@{}", f.path().display()));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    v.sort();
    v
}

/// The samples of `wal` with exactly these labels, as `(t, value)`.
fn points(wal: &[Stored], labels: &[(&str, &str)]) -> Vec<(i64, f64)> {
    let want = sorted(labels);
    wal.iter()
        .filter(|(l, _, _)| *l == want)
        .map(|(_, t, v)| (*t, *v))
        .collect()
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
fn http_pushes_are_durable_when_acknowledged_and_reach_prometheus_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(
        dir.path(),
        &["prom-text", "remote-write-in", "remote-write"],
    );
    let prom = Prometheus::start();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let ingest = format!(
        "[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\nmax_body_bytes = \"64KiB\"\n"
    );
    // Delivery is checked after the SIGKILL, by a run with the exporter, from the WAL the
    // kill left.
    let cfg = config(dir.path(), &pd, Some(&prom.write_url()), &ingest);
    let no_export = config(dir.path(), &pd, None, &ingest);
    let m = Magpie::start(&no_export);
    let t0 = now_ms() - 5_000;

    // Pushgateway: the path's labels over the body's.
    let text = format!(
        "# TYPE backup_bytes gauge\nbackup_bytes{{kind=\"full\",job=\"ignored\"}} 1234.5 {t0}\nbackup_ok 1 {t0}\n"
    );
    let (status, body) = curl(
        "PUT",
        &format!("{base}/metrics/job/backup/host/db1"),
        &["Content-Type: text/plain; version=0.0.4"],
        text.as_bytes(),
    );
    assert_eq!(status, 200, "{body}");

    // Remote write 1.0 and 2.0.
    let rw1 = v1::WriteRequest {
        timeseries: vec![v1::TimeSeries {
            labels: vec![
                v1::Label {
                    name: "__name__".into(),
                    value: "pushed_temp".into(),
                },
                v1::Label {
                    name: "room".into(),
                    value: "a".into(),
                },
            ],
            samples: vec![
                v1::Sample {
                    value: 21.5,
                    timestamp: t0,
                },
                v1::Sample {
                    value: 22.25,
                    timestamp: t0 + 1000,
                },
            ],
        }],
    };
    let rw_headers = [
        "Content-Type: application/x-protobuf",
        "Content-Encoding: snappy",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
    ];
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/write"),
        &rw_headers,
        &snappy(&rw1.encode_to_vec()),
    );
    assert_eq!(status, 204, "{body}");
    let rw2 = v2::Request {
        symbols: vec![
            String::new(),
            "__name__".into(),
            "pushed_v2".into(),
            "room".into(),
            "b".into(),
        ],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: vec![v2::Sample {
                value: 3.5,
                timestamp: t0,
            }],
        }],
    };
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/write"),
        &[
            "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "Content-Encoding: snappy",
        ],
        &snappy(&rw2.encode_to_vec()),
    );
    assert_eq!(status, 204, "{body}");

    // Refusals, each with its reason; nothing of them may reach the WAL.
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/write"),
        &rw_headers,
        b"garbage garbage garbage",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("snappy"), "{body}");
    let mut truncated = rw1.clone();
    truncated.timeseries[0].labels[0].value = "truncated_metric".into();
    let bytes = truncated.encode_to_vec();
    let (status, body) = curl(
        "POST",
        &format!("{base}/api/v1/write"),
        &rw_headers,
        &snappy(&bytes[..bytes.len() - 4]),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("remote write 1.0"), "{body}");
    let (status, body) = curl(
        "POST",
        &format!("{base}/metrics/job/broken"),
        &[],
        b"broken_ok 1\nbroken_bad{ 2\n",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("line 2"), "{body}");
    let big = format!("big_metric 1\n{}", "# padding\n".repeat(10_000));
    let (status, body) = curl(
        "POST",
        &format!("{base}/metrics/job/big"),
        &[],
        big.as_bytes(),
    );
    assert_eq!(status, 413, "{body}");
    let (status, _) = curl("POST", &format!("{base}/nowhere"), &[], b"x 1\n");
    assert_eq!(status, 404);
    let (status, _) = curl("POST", &format!("{base}/write"), &[], b"m f=1\n");
    assert_eq!(status, 404, "no influx decoder is configured");

    let metrics = m.metrics();
    for (metric, want) in [
        ("magpie_ingest_messages_total{source=\"lan\"}", 3.0),
        ("magpie_ingest_samples_total{source=\"lan\"}", 5.0),
        (
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"malformed\"}",
            3.0,
        ),
        (
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"too_large\"}",
            1.0,
        ),
        (
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"unsupported\"}",
            2.0,
        ),
    ] {
        assert_eq!(
            sample_value(&metrics, metric),
            Some(want),
            "{metric}\n{metrics}"
        );
    }

    // One more push, and SIGKILL the moment its 200 is in.
    let (status, body) = curl(
        "POST",
        &format!("{base}/metrics/job/last"),
        &[],
        format!("last_gasp 42 {t0}\n").as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let mut m = m;
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    drop(m);

    let wal = read_wal(&dir.path().join("data/wal"));
    let expect: Vec<Expected<'_>> = vec![
        (
            vec![
                ("__name__", "backup_bytes"),
                ("host", "db1"),
                ("job", "backup"),
                ("kind", "full"),
            ],
            vec![(t0, 1234.5)],
        ),
        (
            vec![
                ("__name__", "backup_ok"),
                ("host", "db1"),
                ("job", "backup"),
            ],
            vec![(t0, 1.0)],
        ),
        (
            vec![("__name__", "pushed_temp"), ("room", "a")],
            vec![(t0, 21.5), (t0 + 1000, 22.25)],
        ),
        (
            vec![("__name__", "pushed_v2"), ("room", "b")],
            vec![(t0, 3.5)],
        ),
        (
            vec![("__name__", "last_gasp"), ("job", "last")],
            vec![(t0, 42.0)],
        ),
    ];
    for (labels, want) in &expect {
        assert_eq!(
            &points(&wal, labels),
            want,
            "{labels:?} in the WAL: {wal:?}"
        );
    }
    assert_eq!(wal.len(), 6, "only the accepted samples: {wal:?}");
    assert!(
        !wal.iter()
            .any(|(l, _, _)| label(l, "job") == Some("broken")),
        "a refused body left samples: {wal:?}"
    );

    // Restart with the exporter: everything reaches Prometheus, exact.
    let m = Magpie::start(&cfg);
    wait_backlog_empty(&m);
    for (labels, want) in &expect {
        let selector = format!(
            "{{{}}}",
            labels
                .iter()
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let got = prom.samples(&selector, "1h");
        assert_eq!(got.len(), 1, "{selector}: {got:?}");
        assert_eq!(got[0].0, sorted(labels), "{selector}");
        assert_eq!(&got[0].1, want, "{selector}");
    }
    assert!(m.terminate().success());
}

#[test]
fn a_prometheus_agent_remote_writes_into_magpie() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in"]);
    let port = free_port();
    let cfg = config(
        dir.path(),
        &pd,
        None,
        &format!("[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let m = Magpie::start(&cfg);
    let agent_port = free_port();
    let agent_cfg = dir.path().join("agent.yml");
    std::fs::write(
        &agent_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: agent\n    static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\nremote_write:\n  - url: http://127.0.0.1:{port}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n"
        ),
    )
    .unwrap();
    let mut agent = Command::new("prometheus")
        .arg("--enable-feature=agent")
        .arg(format!("--config.file={}", agent_cfg.display()))
        .arg(format!(
            "--storage.agent.path={}",
            dir.path().join("agent").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{agent_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = m.wait_for("magpie_ingest_messages_total{source=\"lan\"}", 2.0);
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(
        sample_value(
            &metrics,
            "magpie_ingest_rejects_total{source=\"lan\",reason=\"malformed\"}"
        ),
        None,
        "{metrics}"
    );
    assert!(m.terminate().success());
    let wal = read_wal(&dir.path().join("data/wal"));
    let instance = format!("127.0.0.1:{agent_port}");
    let up = points(
        &wal,
        &[
            ("__name__", "up"),
            ("instance", &instance),
            ("job", "agent"),
        ],
    );
    assert!(!up.is_empty(), "no up series from the agent: {wal:?}");
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    let now = now_ms();
    assert!(
        up.iter().all(|(t, _)| (now - 120_000..=now).contains(t)),
        "the agent's timestamps are kept: {up:?}"
    );
    assert!(
        wal.iter()
            .any(|(l, _, _)| label(l, "__name__") == Some("prometheus_build_info")),
        "the agent's own metrics arrive"
    );
}

#[test]
fn mqtt_json_is_acknowledged_once_in_the_wal_and_survives_restarts_of_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["json"]);
    let mut broker = Mosquitto::start();
    let cfg = config(
        dir.path(),
        &pd,
        None,
        &format!(
            "[[ingest]]\nname = \"sensors\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"zigbee2mqtt/+\"]\nqos = 1\nplugin = \"json\"\n[ingest.config]\nmetric_prefix = \"sensor\"\ntopic_labels = \"zigbee2mqtt/{{device}}\"\n",
            broker.url()
        ),
    );
    let m = Magpie::start(&cfg);
    // Until the subscription exists, publishes are not kept for it: probe until one lands.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        publish(&broker, "zigbee2mqtt/probe", "{\"probe\": 1}");
        std::thread::sleep(Duration::from_millis(200));
        if sample_value(
            &m.metrics(),
            "magpie_ingest_messages_total{source=\"sensors\"}",
        )
        .is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    publish(
        &broker,
        "zigbee2mqtt/kitchen",
        r#"{"temperature":21.5,"humidity":40,"state":"ON","occupancy":true}"#,
    );
    publish(&broker, "zigbee2mqtt/hall", "{\"temperature\": 18.25");
    publish(&broker, "zigbee2mqtt/cellar", r#"{"temperature":12.75}"#);
    let metrics = m.wait_for(
        "magpie_ingest_rejects_total{source=\"sensors\",reason=\"malformed\"}",
        1.0,
    );
    let _ = metrics;
    m.wait_for("magpie_ingest_samples_total{source=\"sensors\"}", 4.0);
    // The log is captured by a thread of its own: it may trail the counter a little.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !m.log_text().contains("zigbee2mqtt/hall") {
        assert!(
            Instant::now() < deadline,
            "the reject is logged with its topic:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL; while magpie is away the broker keeps QoS 1 messages for its session, across
    // a restart of the broker too.
    let mut m = m;
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    drop(m);
    publish(&broker, "zigbee2mqtt/kitchen", r#"{"temperature":22}"#);
    broker.stop();
    broker.resume();
    publish(&broker, "zigbee2mqtt/garage", r#"{"temperature":5.5}"#);
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_ingest_messages_total{source=\"sensors\"}", 2.0);
    assert!(m.terminate().success());

    let wal = read_wal(&dir.path().join("data/wal"));
    let temp = |device: &str| {
        points(
            &wal,
            &[
                ("__name__", "sensor_temperature"),
                ("device", device),
                ("job", "sensors"),
            ],
        )
        .into_iter()
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
    };
    assert_eq!(temp("kitchen"), vec![21.5, 22.0], "{wal:?}");
    assert_eq!(temp("cellar"), vec![12.75]);
    assert_eq!(temp("garage"), vec![5.5]);
    assert!(temp("hall").is_empty(), "a malformed payload left samples");
    assert_eq!(
        points(
            &wal,
            &[
                ("__name__", "sensor_occupancy"),
                ("device", "kitchen"),
                ("job", "sensors")
            ]
        )
        .len(),
        1
    );
}

#[test]
fn magpie_check_names_the_ingest_key_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(
        dir.path(),
        &["prom-text", "remote-write-in", "json", "prom-scrape"],
    );
    let check = |ingest: &str| {
        let cfg = config(dir.path(), &pd, None, ingest);
        let out = common::magpie().arg("check").arg(&cfg).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout),
        )
    };
    let (ok, text) = check(
        "[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:9091\"\n[[ingest]]\nname = \"sensors\"\nsource = \"mqtt\"\nurl = \"mqtt://127.0.0.1:1883\"\ntopics = [\"$share/g/zigbee2mqtt/+\"]\nplugin = \"json\"\n[ingest.config]\nmetric_prefix = \"sensor\"\n",
    );
    assert!(ok, "{text}");
    let (ok, text) = check(concat!(
        "[[ingest]]\nname = \"a\"\nsource = \"mqtt\"\nqos = 2\nlisten = \"127.0.0.1:1\"\n",
        "[[ingest]]\nname = \"b\"\nsource = \"http\"\nlisten = \"nowhere\"\ntopics = [\"t\"]\n",
        "[[ingest]]\nname = \"c\"\nsource = \"ftp\"\n",
        "[[ingest]]\nname = \"d\"\nsource = \"mqtt\"\nurl = \"mqtt://127.0.0.1\"\ntopics = [\"t\"]\nplugin = \"prom-scrape\"\n",
        "[[ingest]]\nname = \"e\"\nsource = \"mqtt\"\nurl = \"mqtt://127.0.0.1\"\ntopics = [\"t\"]\nplugin = \"json\"\n[ingest.config]\nmetric_prefx = \"x\"\n",
    ));
    assert!(!ok);
    for want in [
        "ingest `a`: url is required",
        "ingest `a`: topics must name",
        "ingest `a`: qos must be 0 or 1",
        "ingest `a`: plugin (the decoder) is required",
        "ingest `a`: listen does not apply to a mqtt source",
        "ingest `b`: listen: `nowhere`",
        "ingest `b`: topics does not apply to a http source",
        "ingest `c`: source: `ftp` is not a source",
        "`prom-scrape` is a scraper, not a decoder",
        "metric_prefx",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
