//! The MQTT ingest source under load, with the real binary and a real Mosquitto: a burst of
//! QoS 1 messages larger than the MQTT client's request channel is taken whole. Each message
//! is acknowledged only after its samples are in the WAL, and those acknowledgements must never
//! wait on the event loop that is the only thing able to hand them over.

mod common;

use common::{Magpie, plugin_dir, publish, read_wal};
use magpie_testkit::{Mosquitto, sample_value};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGES: &str = "magpie_ingest_messages_total{source=\"burst\"}";

#[test]
fn a_burst_of_mqtt_messages_is_taken_whole() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["json"]);
    let broker = Mosquitto::start();
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"1h\"\n[[ingest]]\nname = \"burst\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"meters/+\"]\nqos = 1\nplugin = \"json\"\n[ingest.config]\nmetric_prefix = \"meter\"\n",
            pd.display(),
            dir.path().join("data").display(),
            broker.url()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    // Until the subscription exists, publishes are not kept for it: probe until one lands.
    let counted = |m: &Magpie| sample_value(&m.metrics(), MESSAGES);
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted(&m).is_none() {
        publish(&broker, "meters/probe", "{\"probe\": 1}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    let probes = counted(&m).unwrap();
    // One connection, 500 messages as fast as mosquitto_pub sends them (`-l`: a line each).
    let n = 500;
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-q", "1", "-t", "meters/m1", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..n {
            writeln!(stdin, "{{\"reading\": {i}}}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
    m.wait_for(MESSAGES, probes + f64::from(n));
    assert!(m.terminate().success());
    let wal = read_wal(&dir.path().join("data/wal"));
    let want = vec![
        ("__name__".to_string(), "meter_reading".to_string()),
        ("job".to_string(), "burst".to_string()),
    ];
    let mut values: Vec<f64> = wal
        .iter()
        .filter(|(l, _, _)| *l == want)
        .map(|(_, _, v)| *v)
        .collect();
    values.sort_by(f64::total_cmp);
    values.dedup();
    assert_eq!(
        values.len(),
        n as usize,
        "distinct readings in the WAL: {wal:?}"
    );
}
