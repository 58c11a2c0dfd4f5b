//! The `magpie` binary as users run it: real processes, real files, real signals.

mod common;

use common::{BIN, Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{guest, http_get, sample_value};
use std::path::Path;
use std::process::Command;

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
    assert!(
        text.contains(&format!("abi version: {}", magpie_sdk::abi::ABI_VERSION)),
        "{text}"
    );
    assert!(text.contains("role:        scraper"), "{text}");
    assert!(text.contains("magpie::emit"), "{text}");
    assert!(text.contains("capabilities: (none)"), "{text}");

    // The device links a plugin imports are listed as capabilities.
    let out = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(guest("modbus"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("capabilities: tcp, serial"), "{text}");

    let out = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(guest("bad-abi"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ABI version 999"));
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
    let m = Magpie::start(&cfg);
    assert_eq!(http_get(&m.addr, "/-/healthy").unwrap().0, 200);
    assert_eq!(http_get(&m.addr, "/-/ready").unwrap().0, 200);
    let body = m.wait_for("magpie_scrapes_total{job=\"hello\"}", 3.0);
    assert_eq!(
        sample_value(&body, "magpie_scrape_failures_total{job=\"hello\"}"),
        Some(0.0)
    );
    assert!(
        sample_value(&body, "magpie_wal_samples_appended_total").unwrap() >= 12.0,
        "{body}"
    );
    let status = m.terminate();
    assert!(status.success(), "{status:?}");

    let out = Command::new(BIN)
        .args(["wal", "inspect"])
        .arg(data.join("wal"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("series"), "{report}");
    let samples = read_wal(&data.join("wal"));
    let hello: Vec<_> = samples
        .iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("hello_world"))
        .collect();
    assert!(hello.len() >= 3, "{samples:?}");
    for (l, _, v) in &hello {
        assert_eq!(*v, 1.0);
        assert_eq!(label(l, "job"), Some("hello"));
        assert_eq!(label(l, "greeting"), Some("hello"));
    }
}

#[test]
fn the_shipped_configs_parse() {
    let root = magpie_testkit::workspace_root();
    let f = "targets/raspberry-pi/magpie.toml";
    let l = magpie::config::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e:?}"));
    assert_eq!(l.config.scrape.len(), 2, "{f}");
    assert_eq!(l.config.export.len(), 1, "{f}");
}
