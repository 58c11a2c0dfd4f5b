//! The `magpie` binary as users run it: real processes, real files, real signals.

use magpie_testkit::{guest, http_get, sample_value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_magpie");

fn plugin_dir(dir: &Path, plugins: &[&str]) -> std::path::PathBuf {
    let pd = dir.join("plugins");
    std::fs::create_dir_all(&pd).unwrap();
    for p in plugins {
        std::fs::copy(guest(p), pd.join(format!("{p}.wasm"))).unwrap();
    }
    pd
}

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(BIN).arg("check").arg(config).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn check_names_file_line_and_key_of_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(&cfg, "[collector]\nlisten = \"127.0.0.1:9464\"\n\n[[scrape]]\njob = \"n\"\nplugin = \"node\"\nintreval = \"15s\"\n").unwrap();
    let (ok, out) = check(&cfg);
    assert!(!ok);
    assert!(out.contains(&format!("{}:7:1:", cfg.display())), "{out}");
    assert!(out.contains("unknown field `intreval`"), "{out}");
}

#[test]
fn check_names_a_missing_plugin_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let cfg = dir.path().join("magpie.toml");
    std::fs::write(
        &cfg,
        format!("[collector]\nplugin_dir = \"{}\"\n\n[[scrape]]\njob = \"a\"\nplugin = \"hello\"\n\n[[scrape]]\njob = \"b\"\nplugin = \"nosuch\"\n", pd.display()),
    )
    .unwrap();
    let (ok, out) = check(&cfg);
    assert!(!ok);
    assert!(out.contains(&format!("{}:10:10:", cfg.display())), "{out}");
    assert!(out.contains("no plugin `nosuch`"), "{out}");
    assert!(out.contains("nosuch.wasm"), "{out}");
}

#[test]
fn check_accepts_a_valid_config_and_reports_plugins_that_reject_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello", "hostile"]);
    let cfg = dir.path().join("ok.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\n[[scrape]]\njob = \"h\"\nplugin = \"hello\"\n",
            pd.display()
        ),
    )
    .unwrap();
    let (ok, out) = check(&cfg);
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 scrape jobs, 0 exporters)"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("[collector]\nplugin_dir = \"{}\"\n[[scrape]]\njob = \"x\"\nplugin = \"hostile\"\n[scrape.config]\nbehavior = \"init-fail\"\n", pd.display()),
    )
    .unwrap();
    let (ok, out) = check(&bad);
    assert!(!ok);
    assert!(
        out.contains(":3:1:")
            && out.contains("scrape job `x`")
            && out.contains("config key `behavior`"),
        "{out}"
    );
}

#[test]
fn plugin_inspect_shows_the_contract() {
    let out = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(guest("hello"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("abi version: 1"), "{text}");
    assert!(text.contains("role:        scraper"), "{text}");
    assert!(text.contains("magpie::emit"), "{text}");

    let out = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(guest("bad-abi"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ABI version 999"));
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_scrapes_into_the_wal_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["hello"]);
    let data = dir.path().join("data");
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"hello\"\nplugin = \"hello\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n",
            pd.display(),
            data.display()
        ),
    )
    .unwrap();
    let mut child = Child(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("MAGPIE_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The log line that says magpie is running carries the address it listens on.
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline - Instant::now())
            .expect("magpie did not report it was running");
        if let Some(rest) = line.split("listen=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    assert_eq!(http_get(&addr, "/-/healthy").unwrap().0, 200);
    assert_eq!(http_get(&addr, "/-/ready").unwrap().0, 200);
    let mut scrapes = 0.0;
    while scrapes < 3.0 {
        assert!(
            Instant::now() < deadline,
            "fewer than 3 scrapes within the deadline"
        );
        std::thread::sleep(Duration::from_millis(100));
        let (_, body) = http_get(&addr, "/metrics").unwrap();
        scrapes = sample_value(&body, "magpie_scrapes_total{job=\"hello\"}").unwrap_or(0.0);
    }
    let (_, body) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(
        sample_value(&body, "magpie_scrape_failures_total{job=\"hello\"}"),
        Some(0.0)
    );
    assert!(
        sample_value(&body, "magpie_wal_samples_appended_total").unwrap() >= 12.0,
        "{body}"
    );

    let pid = rustix::process::Pid::from_raw(i32::try_from(child.0.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let out = Command::new(BIN)
        .args(["wal", "inspect"])
        .arg(data.join("wal"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("series"), "{report}");
}
