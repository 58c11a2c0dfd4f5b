//! Fleet management through the real binary: bundles built and verified by the CLI, served by
//! a real nginx, fetched, checked, applied, watched and rolled back by `magpie run`, delivering
//! to a real Prometheus.

mod common;

use common::Magpie;
use common::fleet::{
    Kit, applied, bundle_config, counter, device_config, last_error, magpie, ok, polls, publish, s,
    wait,
};
use magpie_testkit::{Nginx, Prometheus, http_get};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[test]
fn the_cli_builds_and_verifies_bundles_and_refuses_bad_ones() {
    let kit = Kit::new();
    let built = kit.build(
        "1",
        &bundle_config("http://127.0.0.1:9/api/v1/write"),
        &["--percent", "10"],
    );
    let out = ok(&["bundle", "verify", "--key", s(&kit.public), s(&built)]);
    assert!(out.contains("good signature"), "{out}");
    let manifest = std::fs::read_to_string(built.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"percent\": 10"), "{manifest}");
    assert!(
        manifest.contains(&format!("\"target\": \"{}\"", kit.triple)),
        "{manifest}"
    );

    // A plugin changed after signing.
    let cwasm = built.join("1/plugins/hello.cwasm");
    let mut bytes = std::fs::read(&cwasm).unwrap();
    bytes.push(0);
    std::fs::write(&cwasm, &bytes).unwrap();
    let (good, out) = magpie(&["bundle", "verify", "--key", s(&kit.public), s(&built)]);
    assert!(!good && out.contains("hello.cwasm"), "{out}");

    // Another key.
    let other = kit.dir.path().join("other");
    ok(&["key", "generate", "--out", s(&other)]);
    let built = kit.build("2", &bundle_config("http://127.0.0.1:9/"), &[]);
    let (good, out) = magpie(&[
        "bundle",
        "verify",
        "--key",
        &format!("{}.pub", s(&other)),
        s(&built),
    ]);
    assert!(!good && out.contains("not a trusted key"), "{out}");

    // No signature.
    std::fs::remove_file(built.join("manifest.json.sig")).unwrap();
    let (good, out) = magpie(&["bundle", "verify", "--key", s(&kit.public), s(&built)]);
    assert!(!good && out.contains("missing signature"), "{out}");

    // A bundle may not carry the local file's sections.
    let cfg = kit.dir.path().join("bad.toml");
    std::fs::write(&cfg, "[collector]\ndata_dir = \"/\"\n").unwrap();
    let (good, out) = magpie(&[
        "bundle",
        "build",
        "--key",
        s(&kit.key),
        "--config",
        s(&cfg),
        "--version",
        "3",
        "--out",
        s(&kit.dir.path().join("x")),
    ]);
    assert!(
        !good && out.contains("`collector` cannot come from a bundle"),
        "{out}"
    );
}

#[test]
fn bad_bundles_are_refused_a_failing_one_rolled_back_and_the_good_one_kept_offline() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let mut nginx = Nginx::start(root.path());
    let good = bundle_config(&prom.write_url());
    publish(&kit.build("1", &good, &[]), root.path());

    let dir = tempfile::tempdir().unwrap();
    let cfg = device_config(dir.path(), &kit, &nginx.url(), "gw-01", "3s");
    let m = Magpie::start(&cfg);
    wait(&m, "bundle 1 applied", |b| {
        applied(b).as_deref() == Some("1")
    });
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );
    // A SIGHUP re-reads the local file and keeps the bundle's job and exporter.
    m.signal(rustix::process::Signal::HUP);
    let reloaded = || {
        m.log_text()
            .matches("configuration reloaded; jobs=1 exporters=1")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while reloaded() < 2 {
        assert!(Instant::now() < deadline, "{}", m.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Each bad bundle is refused with its reason; bundle 1 keeps running.
    let mut refused = 0.0;
    let mut refuse = |built: PathBuf, tamper: &dyn Fn(&Path), why: &str| {
        tamper(&built);
        publish(&built, root.path());
        let b = wait(&m, why, |b| {
            counter(b, "magpie_fleet_refused_total") > refused && last_error(b).contains(why)
        });
        refused = counter(&b, "magpie_fleet_refused_total");
        assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    };
    refuse(
        kit.build("2", &good, &[]),
        &|d| {
            let p = d.join("2/plugins/hello.cwasm");
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[100] ^= 1;
            std::fs::write(&p, bytes).unwrap();
        },
        "hello.cwasm: SHA-256",
    );
    refuse(
        kit.build("3", &good, &[]),
        &|d| {
            // The manifest changed after signing.
            let p = d.join("manifest.json");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                text.replace("\"version\": \"3\"", "\"version\":  \"3\""),
            )
            .unwrap();
        },
        "bad signature",
    );
    let other = kit.dir.path().join("other");
    ok(&["key", "generate", "--out", s(&other)]);
    refuse(
        kit.build("4", &good, &[]),
        &|d| {
            let sig = d.join("manifest.json.sig");
            ok(&[
                "plugin",
                "sign",
                "--key",
                s(&other),
                s(&d.join("manifest.json")),
            ]);
            assert!(sig.exists());
        },
        "not a trusted key",
    );
    refuse(
        kit.build("5", &good, &[]),
        &|d| {
            std::fs::remove_file(d.join("manifest.json.sig")).unwrap();
            let _ = std::fs::remove_file(root.path().join("manifest.json.sig"));
        },
        "missing signature",
    );
    refuse(
        kit.build(
            "6",
            &good.replace("plugin = \"hello\"", "plugin = \"no-such-plugin\""),
            &[],
        ),
        &|_| {},
        "does not pass the checks",
    );

    // A bundle that checks but delivers nothing: rolled back within the window, marked bad.
    publish(
        &kit.build("7", &bundle_config("http://127.0.0.1:1/api/v1/write"), &[]),
        root.path(),
    );
    let b = wait(&m, "bundle 7 rolled back", |b| {
        counter(b, "magpie_fleet_rollbacks_total") >= 1.0 && applied(b).as_deref() == Some("1")
    });
    let e = last_error(&b);
    assert!(
        e.contains("bundle 7 rolled back") && e.contains("exporter `central`"),
        "{e}"
    );
    // Not tried again, and bundle 1 delivers.
    polls(&m, 5.0);
    let sent = counter(
        &m.metrics(),
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
    );
    let b = m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        sent + 1.0,
    );
    assert_eq!(counter(&b, "magpie_fleet_rollbacks_total"), 1.0, "{b}");
    assert_eq!(applied(&b).as_deref(), Some("1"));
    let state = std::fs::read_to_string(dir.path().join("data-gw-01/fleet/state.json")).unwrap();
    assert!(
        state.contains("\"good\": \"1\"") && state.contains("\"7\""),
        "{state}"
    );
    let page = http_get(&m.addr, "/").unwrap().1;
    assert!(page.contains("running bundle 1"), "{page}");

    // The server goes away and the device restarts: bundle 1 runs from disk.
    nginx.stop();
    assert!(m.terminate().success());
    let m = Magpie::start(&cfg);
    let b = wait(&m, "a failed poll", |b| {
        counter(b, "magpie_fleet_poll_failures_total") >= 1.0
    });
    assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        1.0,
    );
    m.wait_for("magpie_scrapes_total{job=\"hello\"}", 1.0);
}

#[test]
fn twenty_devices_take_a_canary_then_everyone() {
    const DEVICES: usize = 20;
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let config = bundle_config(&prom.write_url());
    publish(&kit.build("1", &config, &[]), root.path());
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..DEVICES).map(|i| format!("gw-{i:02}")).collect();
    let devices: Vec<Magpie> = ids
        .iter()
        .map(|id| Magpie::start(&device_config(dir.path(), &kit, &nginx.url(), id, "60s")))
        .collect();
    for m in &devices {
        wait(m, "bundle 1 applied", |b| {
            applied(b).as_deref() == Some("1")
        });
    }

    // Version 2 to 10 % of the devices, by the hash of their ids.
    let canary: Vec<bool> = ids
        .iter()
        .map(|id| magpie::fleet::manifest::bucket(id) < 10)
        .collect();
    let n = canary.iter().filter(|c| **c).count();
    assert!(n > 0 && n < DEVICES, "{n} canaries");
    let start = Instant::now();
    publish(&kit.build("2", &config, &["--percent", "10"]), root.path());
    for (m, _) in devices.iter().zip(&canary).filter(|(_, c)| **c) {
        wait(m, "bundle 2 on a canary", |b| {
            applied(b).as_deref() == Some("2")
        });
    }
    let canary_time = start.elapsed();
    for (m, _) in devices.iter().zip(&canary).filter(|(_, c)| !**c) {
        polls(m, 3.0);
        assert_eq!(
            applied(&m.metrics()).as_deref(),
            Some("1"),
            "{}",
            m.log_text()
        );
    }

    // Then everyone.
    let start = Instant::now();
    publish(&kit.build("2", &config, &[]), root.path());
    for m in &devices {
        wait(m, "bundle 2 everywhere", |b| {
            applied(b).as_deref() == Some("2")
        });
    }
    let all_time = start.elapsed();
    for m in &devices {
        assert_eq!(counter(&m.metrics(), "magpie_fleet_rollbacks_total"), 0.0);
    }
    println!(
        "fleet rollout (poll 200ms): canary of {n}/{DEVICES} applied and healthy {:.2}s after publishing; all {DEVICES} {:.2}s after publishing to everyone",
        canary_time.as_secs_f64(),
        all_time.as_secs_f64()
    );
}
