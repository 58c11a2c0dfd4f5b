//! Fleet corner cases over HTTP against a real nginx: two manifests published within one
//! second (nginx's ETag has one-second resolution), a SIGHUP while a bundle is in its health
//! window, and bundle files swapped on the server.

mod common;

use common::Magpie;
use common::fleet::{
    Kit, applied, bundle_config, counter, device_config, last_error, publish, publish_same_second,
    wait,
};
use magpie_testkit::{Fault, FaultProxy, Nginx, Prometheus};
use std::path::Path;
use std::time::{Duration, Instant};

fn on(m: &Magpie, version: &str) -> String {
    wait(m, &format!("bundle {version} applied"), |b| {
        applied(b).as_deref() == Some(version)
    })
}

/// The served manifest's ETag, as nginx makes it: modification time and size.
fn same_etag(root: &Path, a: &Path, b: &Path) {
    let size = |p: &Path| std::fs::metadata(p.join("manifest.json")).unwrap().len();
    assert_eq!(size(a), size(b), "the manifests must be the same size");
    assert!(root.join("manifest.json").exists());
}

#[test]
fn a_manifest_published_within_the_same_second_is_still_seen() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let config = bundle_config(&prom.write_url());
    let v1 = kit.build("1", &config, &[]);
    publish(&v1, root.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = device_config(dir.path(), &kit, &nginx.url(), "gw-1", "30s");
    // A slow poll: the device fetches bundle 1 at start and asks again 4 s later, by when
    // bundle 2 is there with bundle 1's ETag.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("poll = \"200ms\"", "poll = \"4s\"");
    std::fs::write(&cfg, text).unwrap();
    let m = Magpie::start(&cfg);
    on(&m, "1");
    let v2 = kit.build("2", &config, &[]);
    same_etag(root.path(), &v1, &v2);
    publish_same_second(&v2, root.path());
    on(&m, "2");
    // Settled on bundle 2's ETag, the device asks conditionally: 304s, nothing re-applied.
    let polls = counter(&m.metrics(), "magpie_fleet_polls_total");
    wait(&m, "more polls", |b| {
        counter(b, "magpie_fleet_polls_total") >= polls + 2.0
    });
    assert_eq!(
        m.log_text().matches("fetching bundle; version=2").count(),
        1,
        "{}",
        m.log_text()
    );
}

#[test]
fn a_sighup_in_the_health_window_keeps_the_candidate_on_trial() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let proxy = FaultProxy::start(prom.addr());
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    publish(
        &kit.build("1", &bundle_config(&prom.write_url()), &[]),
        root.path(),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = device_config(dir.path(), &kit, &nginx.url(), "gw-1", "60s");
    let m = Magpie::start(&cfg);
    on(&m, "1");

    // Bundle 2 has a second job and delivers through a proxy that answers 503 for now: it
    // stays in its health window.
    proxy.set(Fault::status(503));
    let two = bundle_config(&proxy.url())
        + "[[scrape]]\njob = \"hello-b\"\nplugin = \"hello\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\n";
    publish(&kit.build("2", &two, &[]), root.path());
    wait(&m, "bundle 2 on trial", |b| {
        b.contains("magpie_fleet_candidate{version=\"2\"}")
    });
    let reloads = |m: &Magpie, jobs: usize| {
        m.log_text()
            .matches(&format!("configuration reloaded; jobs={jobs} exporters=1"))
            .count()
    };
    let before = reloads(&m, 2);
    assert_eq!(before, 1, "{}", m.log_text());
    m.signal(rustix::process::Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reloads(&m, 2) == before {
        assert!(Instant::now() < deadline, "{}", m.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reloaded with bundle 2's jobs, still on trial, nothing committed or rolled back.
    let b = m.metrics();
    assert!(b.contains("magpie_fleet_candidate{version=\"2\"}"), "{b}");
    assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    assert_eq!(counter(&b, "magpie_fleet_rollbacks_total"), 0.0);
    let state = std::fs::read_to_string(dir.path().join("data-gw-1/fleet/state.json")).unwrap();
    assert!(state.contains("\"good\": \"1\""), "{state}");

    // The receiver answers again: bundle 2 proves healthy and is committed.
    proxy.set(Fault::Forward);
    let b = on(&m, "2");
    assert!(!b.contains("magpie_fleet_candidate"), "{b}");
    assert_eq!(reloads(&m, 1), 1, "{}", m.log_text());
    m.wait_for("magpie_scrapes_total{job=\"hello-b\"}", 1.0);
}

#[test]
fn files_swapped_on_the_server_are_refused() {
    let kit = Kit::new();
    let prom = Prometheus::start();
    let root = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(root.path());
    let config = bundle_config(&prom.write_url());
    publish(&kit.build("1", &config, &[]), root.path());
    let dir = tempfile::tempdir().unwrap();
    let cfg = device_config(dir.path(), &kit, &nginx.url(), "gw-1", "30s");
    let m = Magpie::start(&cfg);
    on(&m, "1");
    // The two plugins trade places: each name now holds the other's signed bytes.
    let built = kit.build("2", &config, &[]);
    let (a, b) = (
        built.join("2/plugins/hello.cwasm"),
        built.join("2/plugins/remote-write.cwasm"),
    );
    let (ab, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, bb).unwrap();
    std::fs::write(&b, ab).unwrap();
    publish(&built, root.path());
    let b = wait(&m, "the swap refused", |b| {
        counter(b, "magpie_fleet_refused_total") >= 1.0
    });
    let e = last_error(&b);
    assert!(e.contains("bundle 2") && e.contains(".cwasm"), "{e}");
    assert_eq!(applied(&b).as_deref(), Some("1"), "{b}");
    assert!(!dir.path().join("data-gw-1/fleet/bundles/2").exists());
}
