//! Fleet bundles over MQTT: the manifest and its signature as one retained message on a real
//! Mosquitto (published with `mosquitto_pub -r` in the first test, which shows any MQTT tool
//! will do, and with `magpie bundle publish` in the second), the files from a real nginx, applied by
//! several `magpie run` processes; refusals, a broker down at start, a broker restart, and a
//! device cut off while a new bundle was published.

mod common;

use common::Magpie;
use common::fleet::{
    Kit, applied, bundle_config, counter, device_config, envelope, last_error, publish,
    publish_mqtt, publish_retained, wait,
};
use magpie_testkit::{Mosquitto, Nginx, Prometheus};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOPIC: &str = "site-a/manifest";

/// Waits until the device applied `version` (committed after its health window).
fn on(m: &Magpie, version: &str) -> String {
    wait(m, &format!("bundle {version} applied"), |b| {
        applied(b).as_deref() == Some(version)
    })
}

#[test]
fn a_retained_bundle_rolls_out_to_every_device_and_tampered_ones_are_refused() {
    const DEVICES: usize = 3;
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let broker = Mosquitto::start();
    let config = bundle_config(&prom.write_url());
    let v1 = kit.build("1", &config, &[]);
    publish(&v1, root.path());
    publish_retained(&broker.url(), TOPIC, &envelope(&v1, &nginx.url()));

    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/{TOPIC}", broker.url());
    let devices: Vec<Magpie> = (0..DEVICES)
        .map(|i| {
            Magpie::start(&device_config(
                dir.path(),
                &kit,
                &url,
                &format!("gw-{i}"),
                "60s",
            ))
        })
        .collect();
    for m in &devices {
        on(m, "1");
    }

    // v2: its files on the web server first, then the retained message.
    let v2 = kit.build("2", &config, &[]);
    publish(&v2, root.path());
    let start = Instant::now();
    publish_retained(&broker.url(), TOPIC, &envelope(&v2, &nginx.url()));
    for m in &devices {
        on(m, "2");
    }
    println!(
        "fleet rollout over MQTT: {DEVICES} devices applied and healthy {:.2}s after the retained publish",
        start.elapsed().as_secs_f64()
    );
    devices[0].wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );

    // A manifest changed after signing, a signature by another key, and none at all: refused
    // with the reason, counted, nothing applied.
    let v3 = kit.build("3", &config, &[]);
    publish(&v3, root.path());
    let good = envelope(&v3, &nginx.url());
    let other = kit.dir.path().join("other");
    common::fleet::ok(&["key", "generate", "--out", common::fleet::s(&other)]);
    let foreign = {
        let d = kit.dir.path().join("foreign");
        common::fleet::copy_dir(&v3, &d);
        common::fleet::ok(&[
            "plugin",
            "sign",
            "--key",
            common::fleet::s(&other),
            common::fleet::s(&d.join("manifest.json")),
        ]);
        envelope(&d, &nginx.url())
    };
    let unsigned = {
        let mut e: serde_json::Value = serde_json::from_str(&good).unwrap();
        e["signature"] = "".into();
        e.to_string()
    };
    let tampered = good.replace("\\\"version\\\": \\\"3\\\"", "\\\"version\\\":  \\\"3\\\"");
    assert_ne!(tampered, good);
    let mut refused = 0.0;
    for (message, why) in [
        (tampered, "bad signature"),
        (foreign, "not a trusted key"),
        (unsigned, "signature"),
        ("{\"hello\": 1}".to_string(), "not a bundle envelope"),
    ] {
        publish_retained(&broker.url(), TOPIC, &message);
        for m in &devices {
            let b = wait(m, why, |b| {
                counter(b, "magpie_fleet_refused_total") > refused && last_error(b).contains(why)
            });
            assert_eq!(applied(&b).as_deref(), Some("2"), "{b}");
            assert!(!b.contains("magpie_fleet_candidate"), "{b}");
        }
        refused += 1.0;
    }
    for m in &devices {
        assert_eq!(counter(&m.metrics(), "magpie_fleet_rollbacks_total"), 0.0);
        assert!(!dir.path().join("data-gw-0/fleet/bundles/3").exists());
    }
}

/// A TCP relay to the broker that can be cut (every connection closed, nothing accepted)
/// and restored on the same port.
struct Relay {
    port: u16,
    upstream: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: u16) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = Self {
            port,
            upstream,
            open: Arc::new(AtomicBool::new(false)),
            conns: Arc::default(),
        };
        r.restore();
        r
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
        let l = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let (open, conns, upstream) = (
            Arc::clone(&self.open),
            Arc::clone(&self.conns),
            self.upstream,
        );
        std::thread::spawn(move || {
            l.set_nonblocking(true).unwrap();
            while open.load(Ordering::SeqCst) {
                let Ok((down, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                down.set_nonblocking(false).unwrap();
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up.try_clone().unwrap(), down.try_clone().unwrap()),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0; 16 << 10];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                conns.lock().unwrap().extend([down, up]);
            }
        });
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // The accept loop sees the flag within its sleep; the port is free again after it.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_last_known_good_runs_without_a_broker_and_what_was_missed_arrives_on_reconnect() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let mut broker = Mosquitto::start();
    let port: u16 = broker.url().rsplit(':').next().unwrap().parse().unwrap();
    let relay = Relay::start(port);
    let topic = format!("{}/{TOPIC}", broker.url());
    let config = bundle_config(&prom.write_url());
    let v1 = kit.build("1", &config, &[]);
    publish(&v1, root.path());
    publish_mqtt(&v1, &topic, Some(&nginx.url()));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}/{TOPIC}", relay.port);
    let cfg = device_config(dir.path(), &kit, &url, "gw-1", "30s");
    let m = Magpie::start(&cfg);
    on(&m, "1");

    // Restarted while the broker is unreachable: bundle 1 runs from disk and delivers.
    assert!(m.terminate().success());
    relay.cut();
    let m = Magpie::start(&cfg);
    let b = wait(&m, "a failed connection", |b| {
        counter(b, "magpie_fleet_poll_failures_total") >= 1.0
    });
    assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    let e = last_error(&b);
    assert!(e.contains(&url), "{e}");
    m.wait_for("magpie_scrapes_total{job=\"hello\"}", 1.0);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );

    // Bundle 2 is published while the device cannot reach the broker; it arrives when the
    // device can again.
    let v2 = kit.build("2", &config, &[]);
    publish(&v2, root.path());
    publish_mqtt(&v2, &topic, Some(&nginx.url()));
    let failures = counter(&m.metrics(), "magpie_fleet_poll_failures_total");
    let b = wait(&m, "more failed connections", |b| {
        counter(b, "magpie_fleet_poll_failures_total") >= failures + 2.0
    });
    assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    relay.restore();
    on(&m, "2");

    // The broker restarts (its retained message persisted); the device connects again and
    // takes what is published next.
    broker.stop();
    let failures = counter(&m.metrics(), "magpie_fleet_poll_failures_total");
    wait(&m, "the lost connection noticed", |b| {
        counter(b, "magpie_fleet_poll_failures_total") > failures
    });
    broker.resume();
    let v3 = kit.build("3", &config, &[]);
    publish(&v3, root.path());
    publish_mqtt(&v3, &topic, Some(&nginx.url()));
    on(&m, "3");
    assert_eq!(counter(&m.metrics(), "magpie_fleet_rollbacks_total"), 0.0);
    assert_eq!(counter(&m.metrics(), "magpie_fleet_refused_total"), 0.0);
}
