//! The fleet over MQTT, from the operator's side, against a real Mosquitto and nginx: the
//! fleet state a device keeps retained beside its MQTT status topic (a candidate, its
//! rollback, the last will still `offline`), envelopes whose `base_url` was changed after
//! signing, and `magpie bundle publish` to a broker with TLS and a password.

mod common;

use common::Magpie;
use common::fleet::{
    Kit, applied, counter, device_config, last_error, ok, publish, publish_mqtt, publish_retained,
    retained, s, wait,
};
use magpie_testkit::{Mosquitto, MosquittoOptions, Nginx, Prometheus};
use serde_json::Value;
use std::time::{Duration, Instant};

const TOPIC: &str = "site-a/manifest";
const STATUS: &str = "magpie/status/gw-1";

/// A bundle configuration: `hello` every 300 ms, remote-written to `write_url`, and an MQTT
/// exporter to `broker` whose status topic is [`STATUS`].
fn config(write_url: &str, broker: &str) -> String {
    format!(
        "[[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\n\
         [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{write_url}\"\nmax_backoff = \"300ms\"\n\
         [[export]]\nname = \"broker\"\nplugin = \"mqtt\"\nurl = \"{broker}\"\ntopic = \"magpie/{{job}}\"\nmax_backoff = \"300ms\"\n\
         [export.mqtt]\nclient_id = \"gw-1\"\nstatus_topic = \"{STATUS}\"\n[export.config]\nencoding = \"json\"\n"
    )
}

/// Waits for the retained fleet document to satisfy `done`; returns it.
fn document(broker: &Mosquitto, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = retained(broker.port(), &format!("{STATUS}/fleet"));
        let v: Value = doc
            .as_deref()
            .map_or(Value::Null, |d| serde_json::from_str(d).unwrap());
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: retained document {doc:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_fleet_state_is_kept_beside_the_status_topic_and_the_will_still_says_offline() {
    let kit = Kit::new();
    kit.add_plugin("mqtt");
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let broker = Mosquitto::start();
    let watcher = broker.subscribe(&format!("{STATUS}/#"), "watcher", None);
    let also = broker.subscribe(STATUS, "status-watcher", None);
    let fleet_url = format!("{}/{TOPIC}", broker.url());

    let v1 = kit.build(
        "1",
        &config(&prom.write_url(), &broker.url()),
        &["--base-url", &nginx.url()],
    );
    publish(&v1, root.path());
    let said = publish_mqtt(&v1, &fleet_url, None);
    assert!(said.contains("bundle 1 published"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let m = Magpie::start(&device_config(dir.path(), &kit, &fleet_url, "gw-1", "4s"));
    wait(&m, "bundle 1 applied", |b| {
        applied(b).as_deref() == Some("1")
    });
    let d = document(&broker, "bundle 1 committed", |d| {
        d["applied"] == "1" && d["candidate"].is_null()
    });
    assert_eq!(d["device"], "gw-1");
    assert_eq!(d["bad"], serde_json::json!([]));
    assert_eq!(retained(broker.port(), STATUS).as_deref(), Some("online"));

    // Bundle 2 delivers nothing: it runs as the candidate for the health window, then rolls
    // back to bundle 1 and is marked bad.
    let v2 = kit.build(
        "2",
        &config("http://127.0.0.1:1/api/v1/write", &broker.url()),
        &["--base-url", &nginx.url()],
    );
    publish(&v2, root.path());
    publish_mqtt(&v2, &fleet_url, None);
    let b = wait(&m, "bundle 2 rolled back", |b| {
        counter(b, "magpie_fleet_rollbacks_total") >= 1.0 && applied(b).as_deref() == Some("1")
    });
    assert!(last_error(&b).contains("bundle 2 rolled back"), "{b}");
    let d = document(&broker, "the rollback", |d| {
        d["applied"] == "1" && d["candidate"].is_null() && d["rollbacks"] == 1
    });
    assert_eq!(d["bad"], serde_json::json!(["2"]), "{d}");
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("bundle 2 rolled back")),
        "{d}"
    );

    // What a subscriber saw, in order: bundle 1 committed, bundle 2 the candidate, the
    // rollback; never a document without the device.
    let docs: Vec<Value> = watcher
        .messages()
        .iter()
        .filter(|msg| msg.topic.ends_with("/fleet"))
        .map(|msg| serde_json::from_slice(&msg.payload).unwrap())
        .collect();
    let at = |f: &dyn Fn(&Value) -> bool| docs.iter().position(f);
    let committed = at(&|d| d["applied"] == "1" && d["candidate"].is_null());
    let trying = at(&|d| d["applied"] == "1" && d["candidate"] == "2");
    let rolled = at(&|d| d["bad"] == serde_json::json!(["2"]) && d["candidate"].is_null());
    let (Some(committed), Some(trying), Some(rolled)) = (committed, trying, rolled) else {
        panic!("a document is missing: {docs:#?}");
    };
    assert!(committed < trying && trying < rolled, "{docs:#?}");
    assert!(docs.iter().all(|d| d["device"] == "gw-1"), "{docs:#?}");
    let statuses: Vec<String> = also
        .messages()
        .iter()
        .map(|msg| String::from_utf8_lossy(&msg.payload).into_owned())
        .collect();
    assert!(
        statuses.iter().all(|s| s == "online" || s == "offline"),
        "the status topic keeps its plain payloads: {statuses:?}"
    );

    // Killed: the broker's last will says `offline`; the fleet document stays.
    m.signal(rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(30);
    while retained(broker.port(), STATUS).as_deref() != Some("offline") {
        assert!(Instant::now() < deadline, "no offline after SIGKILL");
        std::thread::sleep(Duration::from_millis(100));
    }
    document(&broker, "the document after the kill", |d| {
        d["applied"] == "1" && d["bad"] == serde_json::json!(["2"])
    });
}

#[test]
fn an_envelope_whose_base_url_changed_after_signing_is_refused() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let broker = Mosquitto::start();
    let fleet_url = format!("{}/{TOPIC}", broker.url());
    let bundle = common::fleet::bundle_config(&prom.write_url());
    let v1 = kit.build("1", &bundle, &["--base-url", &nginx.url()]);
    publish(&v1, root.path());
    publish_mqtt(&v1, &fleet_url, None);
    let dir = tempfile::tempdir().unwrap();
    let m = Magpie::start(&device_config(dir.path(), &kit, &fleet_url, "gw-1", "60s"));
    wait(&m, "bundle 1 applied", |b| {
        applied(b).as_deref() == Some("1")
    });

    // Bundle 2's files are on the server and on a mirror; its envelope is republished naming
    // the mirror. The files there are the right ones, but the URL is not the signed one.
    let v2 = kit.build("2", &bundle, &["--base-url", &nginx.url()]);
    publish(&v2, root.path());
    publish(&v2, &root.path().join("mirror"));
    let mirror = format!("{}mirror/", nginx.url());
    let (refused, out) = common::fleet::magpie(&[
        "bundle",
        "publish",
        "--mqtt",
        &fleet_url,
        "--base-url",
        &mirror,
        s(&v2),
    ]);
    assert!(!refused && out.contains("signed"), "{out}");
    let signed = ok(&["bundle", "envelope", s(&v2)]);
    let mut e: Value = serde_json::from_str(&signed).unwrap();
    e["base_url"] = mirror.clone().into();
    publish_retained(&broker.url(), TOPIC, &e.to_string());
    let b = wait(&m, "the tampered envelope refused", |b| {
        counter(b, "magpie_fleet_refused_total") >= 1.0
    });
    let err = last_error(&b);
    assert!(err.contains(&mirror) && err.contains("signed"), "{err}");
    assert_eq!(applied(&b).as_deref(), Some("1"));
    assert!(!dir.path().join("data-gw-1/fleet/bundles/2").exists());

    // The same manifest with its own URL is taken.
    publish_mqtt(&v2, &fleet_url, None);
    wait(&m, "bundle 2 applied", |b| {
        applied(b).as_deref() == Some("2")
    });
}

#[test]
fn bundle_publish_reaches_a_broker_with_tls_and_a_password() {
    let kit = Kit::new();
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: Some(("ops".into(), "s3cret".into())),
        tls: true,
        ..MosquittoOptions::default()
    });
    let v1 = kit.build(
        "1",
        &common::fleet::bundle_config("http://127.0.0.1:9/api/v1/write"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("ops.pass");
    std::fs::write(&pass, "s3cret\n").unwrap();
    let settings = dir.path().join("broker.toml");
    std::fs::write(
        &settings,
        format!(
            "url = \"{}/{TOPIC}\"\nbasic_auth = {{ username = \"ops\", password_file = \"{}\" }}\ntls = {{ ca_file = \"{}\" }}\n",
            broker.url(),
            pass.display(),
            broker.ca_file().display()
        ),
    )
    .unwrap();
    let sub = broker.subscribe(TOPIC, "device", Some(("ops", "s3cret")));
    let out = ok(&[
        "bundle",
        "publish",
        "--mqtt-config",
        s(&settings),
        "--base-url",
        "https://cdn.example/site-a",
        s(&v1),
    ]);
    assert!(out.contains("bundle 1 published"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sub.messages().is_empty() {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = &sub.messages()[0];
    let expected = ok(&[
        "bundle",
        "envelope",
        "--base-url",
        "https://cdn.example/site-a",
        s(&v1),
    ]);
    assert_eq!(String::from_utf8_lossy(&got.payload), expected.trim_end());

    // A flag replaces the file's key: a wrong password is refused, naming the broker.
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "nope\n").unwrap();
    let (published, out) = common::fleet::magpie(&[
        "bundle",
        "publish",
        "--mqtt-config",
        s(&settings),
        "--password-file",
        s(&wrong),
        "--base-url",
        "https://cdn.example/site-a",
        s(&v1),
    ]);
    assert!(!published, "{out}");
    assert!(
        out.contains(&broker.url()) && out.contains("basic_auth"),
        "{out}"
    );
}
