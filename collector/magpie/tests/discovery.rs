//! Target relabeling and service discovery end to end: the real binary and the prom-scrape
//! plugin against real HTTP targets, samples read back from the WAL on disk.

mod common;

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

/// Debian's `dnsmasq` answering only for its command-line records, on a loopback port.
struct Dnsmasq {
    child: std::process::Child,
    addr: String,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Self {
        // A free port: bound, noted, released; dnsmasq binds it next.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = std::process::Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        if rustix::process::getuid().is_root() {
            // Otherwise it drops to `nobody`, which may not exist in a container.
            cmd.arg("--user=root");
        }
        let child = cmd
            .spawn()
            .expect("dnsmasq runs (ci/setup.sh installs dnsmasq-base)");
        let addr = format!("127.0.0.1:{port}");
        // Ready once it answers over TCP.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dnsmasq did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, addr }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dns_sd_finds_srv_a_and_aaaa_targets_and_keeps_them_when_dns_fails() {
    let srv = serve("/metrics");
    let a = serve("/metrics");
    let srv_port = srv.addr().rsplit_once(':').unwrap().1.to_string();
    let a_port = a.addr().rsplit_once(':').unwrap().1.to_string();
    let mut dns = Dnsmasq::start(&[
        format!("--srv-host=_metrics._tcp.magpie.test,localhost,{srv_port}"),
        "--host-record=a.magpie.test,127.0.0.1".into(),
        "--host-record=v6.magpie.test,::1".into(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let server = dns.addr.clone();
    let extra = format!(
        r#"
[[scrape.dns_sd_configs]]
names = ["_metrics._tcp.magpie.test"]
server = "{server}"
refresh_interval = "500ms"
[[scrape.dns_sd_configs]]
names = ["a.magpie.test"]
type = "A"
port = {a_port}
server = "{server}"
refresh_interval = "500ms"
[[scrape.dns_sd_configs]]
names = ["v6.magpie.test"]
type = "AAAA"
port = 1
server = "{server}"
refresh_interval = "500ms"
[[scrape.relabel_configs]]
source_labels = ["__meta_dns_name"]
target_label = "dns_name"
[[scrape.relabel_configs]]
source_labels = ["__meta_dns_srv_record_target", "__meta_dns_srv_record_port"]
target_label = "srv"
"#
    );
    let cfg = config(dir.path(), "dns", &extra);
    let m = Magpie::start(&cfg);
    let srv_instance = format!("localhost:{srv_port}");
    m.wait_for(&up("dns", &srv_instance), 1.0);
    m.wait_for(&up("dns", a.addr()), 1.0);
    // Nothing listens on [::1]:1: the target is found, and down.
    m.wait_for("magpie_scrape_failures_total{job=\"dns\"}", 1.0);
    assert!(
        m.metrics().contains(&up("dns", "[::1]:1")),
        "{}",
        m.metrics()
    );
    // The server goes away: names cannot be resolved, targets stay.
    let _ = dns.child.kill();
    let _ = dns.child.wait();
    wait_log(&m, "could not resolve `a.magpie.test`");
    let before = magpie_testkit::sample_value(&m.metrics(), "magpie_scrapes_total{job=\"dns\"}")
        .unwrap_or(0.0);
    m.wait_for("magpie_scrapes_total{job=\"dns\"}", before + 6.0);
    let log = m.log_text();
    assert!(!log.contains("removed"), "a target went away:\n{log}");
    assert!(m.terminate().success());
    let mut found: Vec<(String, String, String)> = temp_series(dir.path())
        .iter()
        .map(|l| {
            let get = |n| label(l, n).unwrap_or("").to_string();
            (get("instance"), get("dns_name"), get("srv"))
        })
        .collect();
    found.sort();
    let mut want = vec![
        (
            srv_instance.clone(),
            "_metrics._tcp.magpie.test".to_string(),
            format!("localhost.;{srv_port}"),
        ),
        (
            a.addr().to_string(),
            "a.magpie.test".to_string(),
            ";".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(found, want);
}

/// A loopback stand-in for the Kubernetes API server: each path's list, then watches that
/// stay open with no events.
fn kubernetes_api(lists: Vec<(&'static str, String)>) -> String {
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut head = Vec::new();
            let mut b = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let line = String::from_utf8_lossy(&head).to_string();
            let target = line.split(' ').nth(1).unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            match lists.iter().find(|(p, _)| *p == path) {
                Some(_) if query.contains("watch=true") => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                    open.push(s);
                }
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                None => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    addr
}

/// A list response, in the shape of the Kubernetes API reference.
fn k8s_list(kind: &str, items: &str) -> String {
    format!(
        r#"{{"kind": "{kind}", "apiVersion": "v1", "metadata": {{"resourceVersion": "7"}}, "items": [{items}]}}"#
    )
}

/// Pods as the Kubernetes API reference shapes them: `sensor-1` at 127.0.0.1 with its
/// metrics port `port` (and a `debug` port 2 if `debug`), and `batch-1` with port 1 (where
/// nothing listens).
fn k8s_pods(port: &str, debug: bool) -> String {
    let debug = if debug {
        r#", {"name": "debug", "containerPort": 2, "protocol": "TCP"}"#
    } else {
        ""
    };
    k8s_list(
        "PodList",
        &format!(
            r#"
  {{"metadata": {{"name": "sensor-1", "namespace": "edge", "uid": "u1", "labels": {{"app": "sensor"}}}},
    "spec": {{"nodeName": "gw-7", "containers": [{{"name": "app", "image": "sensor:1",
      "ports": [{{"name": "metrics", "containerPort": {port}, "protocol": "TCP"}}{debug}]}}]}},
    "status": {{"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
      "conditions": [{{"type": "Ready", "status": "True"}}]}}}},
  {{"metadata": {{"name": "batch-1", "namespace": "edge", "uid": "u2", "labels": {{"app": "batch"}}}},
    "spec": {{"containers": [{{"name": "job", "image": "batch:1",
      "ports": [{{"containerPort": 1, "protocol": "TCP"}}]}}]}},
    "status": {{"phase": "Running", "podIP": "127.0.0.1"}}}}"#
        ),
    )
}

#[test]
fn kubernetes_sd_pods_are_scraped_with_their_labels() {
    let target = serve("/metrics");
    let port = target.addr().rsplit_once(':').unwrap().1.to_string();
    let api = kubernetes_api(vec![(
        "/api/v1/namespaces/edge/pods",
        k8s_pods(&port, false),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[scrape.kubernetes_sd_configs]]
role = "pod"
api_server = "http://{api}"
namespaces = {{ names = ["edge"] }}
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_pod_label_app"]
regex = "sensor"
action = "keep"
[[scrape.relabel_configs]]
action = "labelmap"
regex = "__meta_kubernetes_pod_(name|node_name|ready)"
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_namespace"]
target_label = "namespace"
"#
    );
    let cfg = config(dir.path(), "k8s", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("k8s", target.addr()), 1.0);
    let body = m.wait_for("magpie_scrapes_total{job=\"k8s\"}", 3.0);
    assert!(m.terminate().success());
    assert!(
        !body.contains("127.0.0.1:1\""),
        "the dropped pod is scraped:\n{body}"
    );
    let series = temp_series(dir.path());
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("instance", target.addr()),
        ("job", "k8s"),
        ("name", "sensor-1"),
        ("namespace", "edge"),
        ("node_name", "gw-7"),
        ("ready", "true"),
        ("room", "a"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(series, BTreeSet::from([want]));
}

#[test]
fn kubernetes_sd_endpoints_are_scraped_with_service_and_pod_labels() {
    let target = serve("/metrics");
    let port = target.addr().rsplit_once(':').unwrap().1.to_string();
    let endpoints = k8s_list(
        "EndpointsList",
        &format!(
            r#"{{"metadata": {{"name": "sensor", "namespace": "edge"}},
  "subsets": [{{"addresses": [{{"ip": "127.0.0.1", "nodeName": "gw-7",
      "targetRef": {{"kind": "Pod", "namespace": "edge", "name": "sensor-1"}}}}],
    "ports": [{{"name": "metrics", "port": {port}, "protocol": "TCP"}}]}}]}}"#
        ),
    );
    let services = k8s_list(
        "ServiceList",
        r#"{"metadata": {"name": "sensor", "namespace": "edge", "labels": {"tier": "edge"}},
  "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.10",
    "ports": [{"name": "metrics", "port": 80, "protocol": "TCP"}]}}"#,
    );
    let api = kubernetes_api(vec![
        ("/api/v1/namespaces/edge/endpoints", endpoints),
        ("/api/v1/namespaces/edge/services", services),
        ("/api/v1/namespaces/edge/pods", k8s_pods(&port, true)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    // The pod's debug port (2), not an endpoint port, is a target of its own without
    // `endpoint_ready`: kept out by the first rule.
    let extra = format!(
        r#"
[[scrape.kubernetes_sd_configs]]
role = "endpoints"
api_server = "http://{api}"
namespaces = {{ names = ["edge"] }}
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_endpoint_ready"]
regex = "true"
action = "keep"
[[scrape.relabel_configs]]
action = "labelmap"
regex = "__meta_kubernetes_(service_label_tier|pod_name|endpoint_port_name|pod_container_name)"
"#
    );
    let cfg = config(dir.path(), "k8s", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("k8s", target.addr()), 1.0);
    let body = m.wait_for("magpie_scrapes_total{job=\"k8s\"}", 3.0);
    assert!(m.terminate().success());
    assert!(
        !body.contains("127.0.0.1:2\""),
        "the uncovered container port is scraped:\n{body}"
    );
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("endpoint_port_name", "metrics"),
        ("instance", target.addr()),
        ("job", "k8s"),
        ("pod_container_name", "app"),
        ("pod_name", "sensor-1"),
        ("room", "a"),
        ("service_label_tier", "edge"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(temp_series(dir.path()), BTreeSet::from([want]));
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
