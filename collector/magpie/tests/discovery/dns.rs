//! DNS service discovery against a real dnsmasq.

use super::*;

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
