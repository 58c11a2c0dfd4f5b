//! `magpie_series_active` and `magpie_series_bytes` end to end: the real binary scrapes a
//! target whose exposition grows from 100 to 1000 series and back, then a reload replaces
//! the target; the gauges follow, and memory held for series that went away is given back.
//! Pushed series count once each however often they are pushed (their 5-minute window is
//! unit-tested in `magpie_ingest::recent`, where time is an argument).

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, TargetServer, http_get, sample_value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Series every scrape adds besides the target's own: `up`, `scrape_duration_seconds`,
/// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`.
const SYNTHETIC: usize = 5;

/// An exposition of `n` series shaped like node_exporter's CPU counters.
fn exposition(n: usize) -> String {
    let mut s = String::from(
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n",
    );
    for i in 0..n {
        let (cpu, mode) = (
            i / 8,
            [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ][i % 8],
        );
        s.push_str(&format!(
            "node_cpu_seconds_total{{cpu=\"{cpu}\",mode=\"{mode}\"}} {i}.5\n"
        ));
    }
    s
}

fn write_config(cfg: &Path, dir: &Path, plugins: &Path, job: &str, target: &str) {
    std::fs::write(
        cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"{job}\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\ntargets = [\"{target}\"]\n",
            plugins.display(),
            dir.join("data").display(),
        ),
    )
    .unwrap();
}

/// (active, bytes, bytes of the WAL series table) once `magpie_series_active` is `active`.
fn settle(m: &Magpie, active: usize) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = m.metrics();
        let v = |name| sample_value(&body, name);
        #[allow(clippy::cast_precision_loss)]
        if v("magpie_series_active") == Some(active as f64) {
            return (
                active as f64,
                v("magpie_series_bytes").unwrap(),
                v("magpie_wal_series_bytes").unwrap(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "magpie_series_active did not reach {active}:\n{body}\nlog:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn active_series_and_their_memory_follow_the_target_and_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let file = dir.path().join("exposition.txt");
    std::fs::write(&file, exposition(100)).unwrap();
    let growing = TargetServer::start(vec![("/metrics".into(), Behavior::File(file.clone()))]);
    let small = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: exposition(10),
        },
    )]);
    let cfg = dir.path().join("magpie.toml");
    write_config(&cfg, dir.path(), &pd, "grow", &growing.url("/metrics"));
    let m = Magpie::start(&cfg);

    let (_, bytes_100, wal_100) = settle(&m, 100 + SYNTHETIC);
    let page = http_get(&m.addr, "/").unwrap().1;
    assert!(
        page.contains(&format!(
            "<p id=\"series\">Live series {}, holding ",
            100 + SYNTHETIC
        )),
        "{page}"
    );

    std::fs::write(&file, exposition(1000)).unwrap();
    let (_, bytes_1000, wal_1000) = settle(&m, 1000 + SYNTHETIC);
    // What the scrape side holds (cache, keys, metadata) besides the WAL's table.
    let (own_100, own_1000) = (bytes_100 - wal_100, bytes_1000 - wal_1000);
    println!(
        "bytes: {bytes_100} ({own_100} besides the WAL table) at 100 series, {bytes_1000} ({own_1000}) at 1000"
    );
    assert!(bytes_1000 > bytes_100, "{bytes_100} then {bytes_1000}");
    assert!(own_1000 > 5.0 * own_100, "{own_100} then {own_1000}");

    std::fs::write(&file, exposition(100)).unwrap();
    let (_, bytes_back, wal_back) = settle(&m, 100 + SYNTHETIC);
    let own_back = bytes_back - wal_back;
    println!("bytes: {bytes_back} ({own_back} besides the WAL table) back at 100 series");
    // The WAL ring keeps the 900 gone series until their segments drop; the scrape cache
    // gives its memory back at once.
    assert!(bytes_back < bytes_1000, "{bytes_1000} then {bytes_back}");
    assert!(own_back < own_1000 / 4.0, "{own_1000} then {own_back}");

    // A reload replaces the target: the removed one's series are released.
    write_config(&cfg, dir.path(), &pd, "small", &small.url("/metrics"));
    m.signal(rustix::process::Signal::HUP);
    let (_, bytes_reloaded, wal_reloaded) = settle(&m, 10 + SYNTHETIC);
    let own_reloaded = bytes_reloaded - wal_reloaded;
    println!(
        "bytes: {bytes_reloaded} ({own_reloaded} besides the WAL table) after the reload, 10 series"
    );
    assert!(own_reloaded < own_back, "{own_back} then {own_reloaded}");
}

/// `PUT` of a text exposition on a Pushgateway path; the HTTP status.
fn push(base: &str, job: &str, body: &str) -> u16 {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
        .args([
            "-H",
            "Content-Type: text/plain; version=0.0.4",
            "--data-binary",
            body,
        ])
        .arg(format!("{base}/metrics/job/{job}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn gauges(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("pushed_level{{tank=\"{i}\"}} {i}\n"))
        .collect()
}

#[test]
fn pushed_series_count_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-text", "remote-write-in"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[ingest]]\nname = \"lan\"\nsource = \"http\"\nlisten = \"127.0.0.1:{port}\"\n",
            pd.display(),
            dir.path().join("data").display(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(push(&base, "tanks", &gauges(0, 50)), 200);
    let (_, bytes_50, wal_50) = settle(&m, 50);
    // The same series again are not new; 20 others are.
    assert_eq!(push(&base, "tanks", &gauges(0, 50)), 200);
    assert_eq!(push(&base, "tanks", &gauges(50, 20)), 200);
    let (_, bytes_70, wal_70) = settle(&m, 70);
    println!(
        "bytes: {bytes_50} (WAL table {wal_50}) at 50 pushed series, {bytes_70} ({wal_70}) at 70"
    );
    assert!(
        bytes_50 > wal_50,
        "the recent map counts: {bytes_50} vs {wal_50}"
    );
    assert!(bytes_70 > bytes_50);
}
