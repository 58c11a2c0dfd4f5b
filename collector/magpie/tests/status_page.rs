//! The status page on `/`, loaded in a real browser (headless Chromium, Debian's `chromium`).

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, TargetServer, http_get};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// The points of each `<polyline>` in `html`, in order.
fn polylines(html: &str) -> Vec<Vec<(f64, f64)>> {
    html.split("<polyline points=\"")
        .skip(1)
        .map(|p| {
            p.split('"')
                .next()
                .unwrap()
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// The inner HTML of the first `<td class="hist {class}">` in `html`.
fn hist_cell<'a>(html: &'a str, class: &str) -> &'a str {
    let start = html
        .find(&format!("<td class=\"hist {class}\">"))
        .unwrap_or_else(|| panic!("no {class} sparkline cell:\n{html}"));
    let rest = &html[start..];
    &rest[..rest.find("</td>").unwrap()]
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
    // A receiver nobody listens on either: the exporter's backlog only grows.
    let receiver = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/api/v1/write", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("status.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nstatus_history_step = \"150ms\"\n[[scrape]]\njob = \"edge\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\", \"{dead}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{receiver}\"\nmax_backoff = \"200ms\"\n",
            pd.display(),
            dir.path().join("data").display(),
            live.url("/metrics"),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrape_failures_total{job=\"edge\"}", 1.0);
    m.wait_for("magpie_scrapes_total{job=\"edge\"}", 4.0);
    // Wait until the backlog sparkline has a few points (a point every 150 ms).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = http_get(&m.addr, "/").unwrap();
        if polylines(hist_cell(&page, "backlog")).concat().len() >= 6 {
            break;
        }
        assert!(Instant::now() < deadline, "no backlog history:\n{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
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

    // Sparklines: inline SVG with a line through the recorded points.
    assert!(dom.matches("<svg class=\"spark\"").count() >= 7, "{dom}");
    for cell in ["fill", "samples", "duration", "backlog", "oldest"] {
        let c = hist_cell(&dom, cell);
        assert!(c.contains("<svg"), "{cell}: {c}");
        let pts = polylines(c).concat();
        assert!(pts.len() >= 2, "{cell}: {c}");
    }
    // The backlog only grows, so its line never goes down (y grows downwards) and ends
    // higher than it starts; the newest point is at the right edge.
    let backlog = polylines(hist_cell(&dom, "backlog")).concat();
    assert!(backlog.windows(2).all(|w| w[1].1 <= w[0].1), "{backlog:?}");
    assert!(backlog.last().unwrap().1 < backlog[0].1, "{backlog:?}");
    assert_eq!(backlog.last().unwrap().0, 120.0, "{backlog:?}");
    // The dead target scrapes no sample: a flat line, and its hover text says so.
    let dead_samples = hist_cell(&d, "samples");
    assert!(
        polylines(dead_samples).concat().iter().all(|p| p.1 == 12.0),
        "{dead_samples}"
    );
    assert!(
        dead_samples.contains("samples per scrape: 0 to 0, now 0"),
        "{dead_samples}"
    );
    assert!(m.terminate().success());
}
