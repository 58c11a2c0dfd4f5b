//! Running as a service: systemd's notify protocol and SIGHUP reloads.

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::sample_value;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

fn hello_config(dir: &Path, pd: &Path, jobs: &[&str], extra: &str) -> String {
    let mut c = format!(
        "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n",
        pd.display(),
        dir.join("data").display()
    );
    for j in jobs {
        c.push_str(&format!(
            "[[scrape]]\njob = \"{j}\"\nplugin = \"hello\"\ninterval = \"200ms\"\n"
        ));
    }
    c + extra
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, hello_config(dir.path(), &pd, &["a"], "")).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let m = Magpie::start_with_env(
        &cfg,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen
        .iter()
        .filter(|s: &&String| s.as_str() == "WATCHDOG=1")
        .count()
        < 3
    {
        let n = sock.recv(&mut buf).expect("a notification");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(seen[0].starts_with("READY=1"), "{seen:?}");
    assert!(m.terminate().success());
    let mut rest = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if rest.last().is_some_and(|s| s == "STOPPING=1") {
            break;
        }
    }
    assert_eq!(
        rest.last().map(String::as_str),
        Some("STOPPING=1"),
        "{rest:?}"
    );
}

#[test]
fn sighup_reloads_a_good_config_and_refuses_a_bad_one_without_losing_data() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, hello_config(dir.path(), &pd, &["a"], "")).unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_scrapes_total{job=\"a\"}", 2.0);

    std::fs::write(&cfg, hello_config(dir.path(), &pd, &["a", "b"], "")).unwrap();
    m.signal(rustix::process::Signal::HUP);
    m.wait_for("magpie_scrapes_total{job=\"b\"}", 2.0);

    std::fs::write(
        &cfg,
        hello_config(dir.path(), &pd, &["a", "c"], "bogus = 1\n"),
    )
    .unwrap();
    m.signal(rustix::process::Signal::HUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !m.log_text().contains("reload refused") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        m.log_text().contains("unknown field `bogus`"),
        "{}",
        m.log_text()
    );
    // The running configuration goes on: job b keeps scraping, c never starts.
    let before = sample_value(&m.metrics(), "magpie_scrapes_total{job=\"b\"}").unwrap();
    let body = m.wait_for("magpie_scrapes_total{job=\"b\"}", before + 2.0);
    assert_eq!(sample_value(&body, "magpie_scrapes_total{job=\"c\"}"), None);
    assert!(m.terminate().success());

    let samples = read_wal(&dir.path().join("data/wal"));
    let jobs: std::collections::BTreeSet<_> = samples
        .iter()
        .filter_map(|(l, _, _)| label(l, "job").map(str::to_string))
        .collect();
    assert_eq!(
        jobs,
        ["a".to_string(), "b".to_string()].into_iter().collect()
    );
    let a = samples
        .iter()
        .filter(|(l, _, _)| {
            label(l, "job") == Some("a") && label(l, "__name__") == Some("hello_world")
        })
        .count();
    assert!(
        a >= 4,
        "job a's samples from before and after the reload: {a}"
    );
}
