//! The status page on `/`, loaded in a real browser (headless Chromium, Debian's `chromium`).

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, TargetServer};
use std::process::Command;

fn chromium() -> String {
    std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The DOM after the page loaded, as Chromium serialises it.
fn dump_dom(url: &str) -> String {
    let bin = chromium();
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} is missing: install Debian's chromium (ci/setup.sh does)"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !dom.is_empty(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

#[test]
fn the_status_page_shows_a_dead_target_as_down_and_a_live_one_as_up() {
    let live = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: "# TYPE t gauge\nt 1\n".into(),
        },
    )]);
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/metrics", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let cfg = dir.path().join("status.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"edge\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\", \"{dead}\"]\n",
            pd.display(),
            dir.path().join("data").display(),
            live.url("/metrics"),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrape_failures_total{job=\"edge\"}", 1.0);
    m.wait_for("magpie_scrapes_total{job=\"edge\"}", 4.0);
    let dom = dump_dom(&format!("http://{}/", m.addr));
    assert!(dom.contains("<title>magpie</title>"), "{dom}");
    let row = |instance: &str| {
        dom.split("<tr")
            .find(|r| r.contains(&format!("<td>{instance}</td>")))
            .unwrap_or_else(|| panic!("no row for {instance}:\n{dom}"))
            .to_string()
    };
    let dead_instance = dead
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let live_instance = live
        .url("/metrics")
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    let d = row(dead_instance);
    assert!(d.contains("class=\"down\">down<"), "{d}");
    // The plugin's error carries the host's cause, not only "network error".
    assert!(d.contains("Connection refused"), "{d}");
    let l = row(&live_instance);
    assert!(l.contains("class=\"up\">up<"), "{l}");
    // The WAL and plugin sections are there too.
    assert!(dom.contains("id=\"wal\""), "{dom}");
    assert!(dom.contains("edge"), "{dom}");
    assert!(m.terminate().success());
}
