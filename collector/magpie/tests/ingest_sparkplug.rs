//! Sparkplug B end to end with the real binary: an edge node's births, data by alias and a
//! device death, built with Python protobuf from the public `sparkplug_b.proto` and published
//! with paho-mqtt to a real Mosquitto (`collector/testkit/sparkplug/publish.py`), decoded by the
//! `sparkplug-b` plugin and remote-written to a real Prometheus. Values and timestamps must
//! arrive exact, data for an alias no birth defined is refused and logged with its topic, a
//! broker restart loses nothing at QoS 1, and the death leaves an instant query empty.

mod common;

use common::Magpie;
use magpie_testkit::{Mosquitto, Prometheus, http_get, sample_value, workspace_root};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOPIC: &str = "spBv1.0/plant/DDATA/gw1/pump";

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Publishes Sparkplug messages (JSON as `publish.py` reads them), each acknowledged by the
/// broker at QoS 1 before the next.
fn publish(broker: &Mosquitto, messages: &[Value]) {
    let script = workspace_root().join("collector/testkit/sparkplug/publish.py");
    // Debian's python3-protobuf and python3-paho-mqtt live under the system interpreter.
    let python = std::env::var("MAGPIE_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let mut child = Command::new(python)
        .arg(&script)
        .args(["127.0.0.1", &broker.port().to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        for m in messages {
            writeln!(stdin, "{m}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "publish.py failed (ci/setup.sh installs protobuf-compiler, python3-protobuf, python3-paho-mqtt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The values an instant query at the receiver's present returns.
fn instant(prom: &Prometheus, q: &str) -> Vec<f64> {
    let (status, body) =
        http_get(prom.addr(), &format!("/api/v1/query?query={}", encode(q))).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
        .collect()
}

fn wait_backlog_empty(m: &Magpie) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_value(
        &m.metrics(),
        "magpie_exporter_backlog_samples{exporter=\"central\"}",
    ) != Some(0.0)
    {
        assert!(Instant::now() < deadline, "backlog did not drain");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config(dir: &Path, broker: &Mosquitto, prom: &Prometheus) -> std::path::PathBuf {
    let pd = common::plugin_dir(dir, &["sparkplug-b", "remote-write"]);
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
             [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"500ms\"\n\
             [[ingest]]\nname = \"plant\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"spBv1.0/#\"]\nqos = 1\nplugin = \"sparkplug-b\"\n",
            pd.display(),
            dir.join("data").display(),
            prom.write_url(),
            broker.url()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn births_data_by_alias_and_a_device_death_reach_prometheus_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start();
    let mut broker = Mosquitto::start();
    let m = Magpie::start(&config(dir.path(), &broker, &prom));
    // Until the subscription exists, publishes are not kept for it: probe with a host
    // application's STATE message (taken, no samples) until one lands.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_value(
        &m.metrics(),
        "magpie_ingest_messages_total{source=\"plant\"}",
    )
    .is_none()
    {
        publish(&broker, &[json!({"topic": "spBv1.0/STATE/probe"})]);
        std::thread::sleep(Duration::from_millis(200));
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }

    let t0 = now_ms() - 60_000;
    publish(
        &broker,
        &[
            json!({"topic": "spBv1.0/plant/NBIRTH/gw1", "seq": 0, "timestamp": t0, "metrics": [
                {"name": "bdSeq", "datatype": 8, "value": 0},
                {"name": "Node Control/Rebirth", "alias": 0, "datatype": 11, "value": false},
                {"name": "Uptime", "alias": 1, "datatype": 8, "value": 100},
            ]}),
            json!({"topic": "spBv1.0/plant/DBIRTH/gw1/pump", "seq": 1, "timestamp": t0, "metrics": [
                {"name": "Inputs/Temperature", "alias": 10, "datatype": 10, "value": 21.5},
                {"name": "Inputs/Offset", "alias": 11, "datatype": 1, "value": -3},
                {"name": "Running", "alias": 12, "datatype": 11, "value": true},
                {"name": "Serial", "alias": 13, "datatype": 12, "value": "P-7"},
            ]}),
            json!({"topic": TOPIC, "seq": 2, "timestamp": t0 + 1000, "metrics": [
                {"alias": 10, "kind": "double", "value": 22.25},
                {"alias": 11, "kind": "int", "value": -5},
                {"alias": 12, "kind": "boolean", "value": false},
                {"alias": 13, "kind": "string", "value": "P-8"},
            ]}),
            json!({"topic": TOPIC, "seq": 3, "timestamp": t0 + 1500, "metrics": [
                {"alias": 10, "kind": "double", "value": 99.0},
                {"alias": 99, "kind": "double", "value": 1.0},
            ]}),
        ],
    );
    m.wait_for(
        "magpie_ingest_rejects_total{source=\"plant\",reason=\"malformed\"}",
        1.0,
    );
    let log = m.log_text();
    assert!(
        log.contains(&format!("context={TOPIC}")) && log.contains("unknown metric alias 99"),
        "the refusal is logged with its topic and reason:\n{log}"
    );

    // The broker goes away and comes back with its persistent state; what is published at
    // QoS 1 right after is queued for magpie's session until it reconnects.
    broker.stop();
    broker.resume();
    publish(
        &broker,
        &[
            json!({"topic": TOPIC, "seq": 4, "timestamp": t0 + 2000, "metrics": [
                {"alias": 10, "kind": "double", "value": 23.5},
            ]}),
        ],
    );
    m.wait_for("magpie_ingest_samples_total{source=\"plant\"}", 8.0);
    wait_backlog_empty(&m);

    let series = |name: &str, device: bool| {
        let mut l = vec![
            ("__name__".to_string(), name.to_string()),
            ("edge_node".into(), "gw1".into()),
            ("group".into(), "plant".into()),
            ("job".into(), "plant".into()),
        ];
        if device {
            l.push(("device".into(), "pump".into()));
        }
        l.sort();
        l
    };
    let want = vec![
        (
            series("Inputs_Offset", true),
            vec![(t0, -3.0), (t0 + 1000, -5.0)],
        ),
        (
            series("Inputs_Temperature", true),
            vec![(t0, 21.5), (t0 + 1000, 22.25), (t0 + 2000, 23.5)],
        ),
        (series("Running", true), vec![(t0, 1.0), (t0 + 1000, 0.0)]),
        (series("Uptime", false), vec![(t0, 100.0)]),
    ];
    assert_eq!(prom.samples("{group=\"plant\"}", "10m"), want);
    assert_eq!(
        instant(&prom, "Inputs_Temperature{device=\"pump\"}"),
        vec![23.5]
    );

    // DDEATH: the pump's series end; the node's do not.
    publish(
        &broker,
        &[json!({"topic": "spBv1.0/plant/DDEATH/gw1/pump", "seq": 5, "timestamp": now_ms()})],
    );
    m.wait_for("magpie_ingest_samples_total{source=\"plant\"}", 11.0);
    wait_backlog_empty(&m);
    assert_eq!(instant(&prom, "{device=\"pump\"}"), Vec::<f64>::new());
    assert_eq!(instant(&prom, "Uptime"), vec![100.0]);
    assert!(m.terminate().success());
}
