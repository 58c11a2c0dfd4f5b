//! Target relabeling and service discovery end to end: the real binary and the prom-scrape
//! plugin against real HTTP targets, samples read back from the WAL on disk.

#[path = "../common/mod.rs"]
mod common;
mod dns;
#[cfg(feature = "kubernetes")]
mod kubernetes;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{Behavior, TargetServer};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

const EXPOSITION: &str = "# TYPE temp_celsius gauge\ntemp_celsius{room=\"a\"} 21.5\n";

fn serve(path: &str) -> TargetServer {
    TargetServer::start(vec![(
        path.into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )])
}

/// A `[[scrape]]` job `job` without static targets, with `extra` appended to it.
fn config(dir: &Path, job: &str, extra: &str) -> PathBuf {
    let plugins = plugin_dir(dir, &["prom-scrape"]);
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"{job}\"\nplugin = \"prom-scrape\"\ninterval = \"1s\"\ntimeout = \"800ms\"\n{extra}",
            plugins.display(),
            dir.join("data").display(),
        ),
    )
    .unwrap();
    cfg
}

fn up(job: &str, instance: &str) -> String {
    format!("magpie_target_up{{job=\"{job}\",instance=\"{instance}\"}}")
}

/// `(instance, other labels)` of every stored `temp_celsius` sample.
fn temp_series(dir: &Path) -> BTreeSet<Vec<(String, String)>> {
    read_wal(&dir.join("data/wal"))
        .into_iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("temp_celsius"))
        .map(|(l, _, _)| l)
        .collect()
}

#[test]
fn relabel_configs_drop_one_target_and_rewrite_another() {
    // Served only at /custom: scraped only if the rules rewrite address and path.
    let real = serve("/custom");
    // Any connection to this one would mean a dropped target was scraped.
    let dropped = TcpListener::bind("127.0.0.1:0").unwrap();
    dropped.set_nonblocking(true).unwrap();
    let dropped_addr = dropped.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.json"),
        format!(
            r#"[{{"targets": ["placeholder.invalid:1"], "labels": {{"real_address": "{}"}}}},
               {{"targets": ["{dropped_addr}"], "labels": {{"role": "skip"}}}}]"#,
            real.addr()
        ),
    )
    .unwrap();
    let extra = r#"
[[scrape.file_sd_configs]]
files = ["targets.json"]
[[scrape.relabel_configs]]
source_labels = ["role"]
regex = "skip"
action = "drop"
[[scrape.relabel_configs]]
source_labels = ["real_address"]
regex = "(.+)"
target_label = "__address__"
[[scrape.relabel_configs]]
target_label = "__metrics_path__"
replacement = "/custom"
[[scrape.relabel_configs]]
regex = "real_address"
action = "labeldrop"
[[scrape.relabel_configs]]
source_labels = ["__meta_filepath"]
regex = ".*/(targets)\\.json"
target_label = "from"
"#;
    let cfg = config(dir.path(), "rl", extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("rl", real.addr()), 1.0);
    // Every target of the job starts at once; after several scrapes of the kept one, the
    // dropped one would have been scraped too.
    let body = m.wait_for("magpie_scrapes_total{job=\"rl\"}", 4.0);
    assert!(m.terminate().success());
    assert!(
        !body.contains(&dropped_addr),
        "the dropped target is known:\n{body}"
    );
    assert_eq!(
        dropped.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the dropped target was connected to"
    );
    let series = temp_series(dir.path());
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("from", "targets"),
        ("instance", real.addr()),
        ("job", "rl"),
        ("room", "a"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(series, BTreeSet::from([want]));
}

#[test]
fn relabel_configs_apply_to_static_targets() {
    let kept = serve("/metrics");
    let other = serve("/metrics");
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"targets = ["{}", "{}"]
[[scrape.relabel_configs]]
source_labels = ["__address__"]
regex = "{}"
action = "keep"
[[scrape.relabel_configs]]
target_label = "instance"
replacement = "named"
"#,
        kept.url("/metrics"),
        other.url("/metrics"),
        kept.addr().replace('.', "\\\\.")
    );
    let cfg = config(dir.path(), "st", &extra);
    let m = Magpie::start(&cfg);
    let body = m.wait_for("magpie_scrapes_total{job=\"st\"}", 3.0);
    assert!(m.terminate().success());
    assert!(!body.contains(other.addr()), "{body}");
    let instances: BTreeSet<String> = temp_series(dir.path())
        .iter()
        .filter_map(|l| label(l, "instance").map(str::to_string))
        .collect();
    assert_eq!(instances, BTreeSet::from(["named".to_string()]));
}

/// `python3 -m http.server` serving a directory on an ephemeral loopback port.
struct StaticServer {
    child: std::process::Child,
    addr: String,
}

impl StaticServer {
    fn start(dir: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_string();
        Self {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the log holds `text`.
fn wait_log(m: &Magpie, text: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !m.log_text().contains(text) {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never said {text:?}:\n{}",
            m.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn http_sd_follows_the_endpoint_and_keeps_the_last_good_answer() {
    let first = serve("/metrics");
    let second = serve("/metrics");
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let answer = |targets: &[&str]| {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        // Written aside and renamed, so the server never sends half a file.
        let tmp = dir.path().join("next.json");
        std::fs::write(
            &tmp,
            format!(
                r#"[{{"targets": [{}], "labels": {{"rack": "r1"}}}}]"#,
                list.join(", ")
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, www.join("targets.json")).unwrap();
    };
    answer(&[first.addr()]);
    let server = StaticServer::start(&www);
    let url = format!("http://{}/targets.json", server.addr);
    let extra = format!(
        r#"
[[scrape.http_sd_configs]]
url = "{url}"
refresh_interval = "300ms"
[[scrape.relabel_configs]]
source_labels = ["__meta_url"]
target_label = "sd_url"
"#
    );
    let cfg = config(dir.path(), "http", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("http", first.addr()), 1.0);
    answer(&[first.addr(), second.addr()]);
    m.wait_for(&up("http", second.addr()), 1.0);
    // The endpoint fails: 404, then an answer that is no JSON. Both targets stay.
    std::fs::remove_file(www.join("targets.json")).unwrap();
    wait_log(&m, "server returned HTTP status 404");
    std::fs::write(www.join("targets.json"), "[{\"targets\": ").unwrap();
    wait_log(&m, "the answer is not target groups");
    let before = sample_scrapes(&m);
    m.wait_for("magpie_scrapes_total{job=\"http\"}", before + 4.0);
    let log = m.log_text();
    assert!(!log.contains("removed"), "a target went away:\n{log}");
    assert!(log.contains(&url), "errors name the endpoint:\n{log}");
    // A good answer again: the first target goes.
    answer(&[second.addr()]);
    wait_log(
        &m,
        &format!("target http://{}/metrics removed", first.addr()),
    );
    assert!(m.terminate().success());
    let series = temp_series(dir.path());
    let instances: BTreeSet<_> = series.iter().filter_map(|l| label(l, "instance")).collect();
    assert_eq!(instances, BTreeSet::from([first.addr(), second.addr()]));
    assert!(
        series
            .iter()
            .all(|l| label(l, "sd_url") == Some(url.as_str()) && label(l, "rack") == Some("r1")),
        "{series:?}"
    );
}

fn sample_scrapes(m: &Magpie) -> f64 {
    magpie_testkit::sample_value(&m.metrics(), "magpie_scrapes_total{job=\"http\"}").unwrap_or(0.0)
}

#[test]
fn a_hanging_discovery_endpoint_does_not_hold_up_a_stop() {
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[scrape.http_sd_configs]]\nurl = \"http://{}/targets.json\"\nrefresh_interval = \"10m\"\n",
        hang.local_addr().unwrap()
    );
    let cfg = config(dir.path(), "hang", &extra);
    let mut m = Magpie::start(&cfg);
    // The request is under way once it connects; it never gets an answer.
    let (_conn, _) = hang.accept().unwrap();
    m.signal(rustix::process::Signal::TERM);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = m.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "magpie did not stop while discovery waited:\n{}",
            m.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success());
}
