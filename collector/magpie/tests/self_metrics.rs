//! `/metrics` scraped by a real Prometheus (Debian's `prometheus`): the exposition parses and
//! every family lands with its labels.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::Prometheus;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn prometheus_scrapes_magpie_and_stores_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n",
            pd.display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrapes_total{job=\"hello\"}", 1.0);
    // Families are only ever added, so all of these must reach Prometheus.
    let exposed: BTreeSet<String> = m
        .metrics()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    assert!(exposed.len() > 20, "{exposed:?}");
    let prom = Prometheus::start_scraping(&m.addr);

    // Prometheus fails a whole scrape on any syntax it does not accept.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let targets = prom.targets();
        assert!(targets.len() <= 1, "{targets:?}");
        let up = targets.first().is_some_and(|(_, health, error)| {
            assert!(error.is_empty(), "Prometheus refused the scrape: {error}");
            health == "up"
        });
        let stored: BTreeSet<String> = prom
            .samples("{__name__=~\"magpie_.+|process_.+\"}", "1m")
            .into_iter()
            .filter_map(|(labels, _)| {
                labels
                    .into_iter()
                    .find(|(k, _)| k == "__name__")
                    .map(|(_, v)| v)
            })
            .collect();
        let missing: Vec<_> = exposed.difference(&stored).collect();
        if up && missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{targets:?}; not stored: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Labels come through as magpie wrote them.
    let scrapes = prom.samples("magpie_scrapes_total{job=\"hello\"}", "1m");
    assert_eq!(scrapes.len(), 1, "{scrapes:?}");
    assert!(scrapes[0].1.iter().all(|(_, v)| *v >= 1.0), "{scrapes:?}");
    assert!(m.terminate().success());
}
