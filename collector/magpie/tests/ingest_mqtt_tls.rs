//! The MQTT ingest source over `mqtts://` with a user name and password, against a real
//! Mosquitto with a TLS listener and a password file made by `mosquitto_passwd`: the right
//! credentials deliver QoS 1 messages into the WAL; a wrong password and a broker certificate
//! from an untrusted CA are refused with an error naming the source, and the collector keeps
//! running and taking the good source's messages.

mod common;

use common::{Magpie, plugin_dir, read_wal};
use magpie_testkit::{Mosquitto, MosquittoOptions, TestCerts, sample_value};
use std::process::Command;
use std::time::{Duration, Instant};

const MESSAGES: &str = "magpie_ingest_messages_total{source=\"good\"}";

/// One QoS 1 message through `mosquitto_pub` over TLS with credentials.
fn publish(broker: &Mosquitto, topic: &str, payload: &str) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .arg("--cafile")
        .arg(broker.ca_file())
        .args(["-u", "gateway", "-P", "br0ker-pw"])
        .args(["-q", "1", "-t", topic, "-m", payload])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mqtts_with_a_password_delivers_and_bad_logins_or_certificates_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["json"]);
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: Some(("gateway".into(), "br0ker-pw".into())),
        tls: true,
        ..MosquittoOptions::default()
    });
    let stranger = TestCerts::generate();
    let right = dir.path().join("right.pass");
    std::fs::write(&right, "br0ker-pw\n").unwrap();
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "not-the-pw\n").unwrap();
    let source = |name: &str, pass: &std::path::Path, ca: &std::path::Path| {
        format!(
            "[[ingest]]\nname = \"{name}\"\nsource = \"mqtt\"\nurl = \"{}\"\ntopics = [\"meters/+\"]\nqos = 1\nplugin = \"json\"\nbasic_auth = {{ username = \"gateway\", password_file = \"{}\" }}\ntls = {{ ca_file = \"{}\" }}\n[ingest.config]\nmetric_prefix = \"meter\"\n",
            broker.url(),
            pass.display(),
            ca.display()
        )
    };
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"1h\"\n{}{}{}",
            pd.display(),
            dir.path().join("data").display(),
            source("good", &right, &broker.ca_file()),
            source("badpass", &wrong, &broker.ca_file()),
            source("untrusted", &right, &stranger.path("ca.pem")),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    // Until the subscription exists, publishes are not kept for it: probe until one lands.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sample_value(&m.metrics(), MESSAGES).is_none() {
        publish(&broker, "meters/probe", "{\"probe\": 1}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(Instant::now() < deadline, "{}", m.log_text());
    }
    let probes = sample_value(&m.metrics(), MESSAGES).unwrap();
    for i in 0..20 {
        publish(&broker, "meters/m1", &format!("{{\"reading\": {i}}}"));
    }
    m.wait_for(MESSAGES, probes + 20.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = m.log_text();
        if log.contains("source=badpass") && log.contains("source=untrusted") {
            break log;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = |source: &str| {
        log.lines()
            .find(|l| l.contains("MQTT ingest connection failed") && l.contains(source))
            .unwrap_or_else(|| panic!("no connection error for {source}:\n{log}"))
            .to_string()
    };
    let bad = line("source=badpass");
    assert!(
        bad.contains("the broker refused the user name or password of basic_auth"),
        "{bad}"
    );
    let untrusted = line("source=untrusted");
    assert!(
        untrusted.contains("the broker's certificate is not trusted"),
        "{untrusted}"
    );
    assert!(
        !log.contains("br0ker-pw") && !log.contains("not-the-pw"),
        "{log}"
    );
    let metrics = m.metrics();
    for refused in ["badpass", "untrusted"] {
        assert_eq!(
            sample_value(
                &metrics,
                &format!("magpie_ingest_messages_total{{source=\"{refused}\"}}")
            ),
            None,
            "{metrics}"
        );
    }
    assert!(m.terminate().success());
    let wal = read_wal(&dir.path().join("data/wal"));
    let mut readings: Vec<f64> = wal
        .iter()
        .filter(|(l, _, _)| {
            l.iter()
                .any(|(n, v)| n == "__name__" && v == "meter_reading")
                && l.iter().any(|(n, v)| n == "job" && v == "good")
        })
        .map(|(_, _, v)| *v)
        .collect();
    readings.sort_by(f64::total_cmp);
    readings.dedup();
    assert_eq!(readings, (0..20).map(f64::from).collect::<Vec<_>>());
}
