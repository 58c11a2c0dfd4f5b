//! `tls.server_name` (Prometheus' `tls_config.server_name`): a scrape target and a remote-write
//! receiver reached by IP, whose certificates are valid only for a DNS name. Debian's nginx
//! serves both with that certificate and answers 421 unless the SNI it received is that name
//! (the receiver is a recording endpoint behind nginx's `proxy_pass`). With `server_name` the
//! scrape gives `up` 1 and the export delivers; without it, or with another name, `up` is 0,
//! the export fails, and the log and the status page name the mismatch.

mod common;

use common::{Magpie, Stored, label, magpie, plugin_dir, read_wal};
use magpie_testkit::{Nginx, ScriptedReceiver, TestCerts, http_get};
use std::path::Path;
use std::time::{Duration, Instant};

const NAME: &str = "metrics.magpie.test";
const OTHER: &str = "other.magpie.test";

fn q(p: &Path) -> String {
    p.display().to_string()
}

/// nginx directives: the certificate for `NAME` alone, and a 421 for any other SNI.
fn named_server(certs: &TestCerts, location: &str) -> String {
    format!(
        "    ssl_certificate {};\n    ssl_certificate_key {};\n    location / {{\n      if ($ssl_server_name != \"{NAME}\") {{ return 421; }}\n{location}\n    }}",
        q(&certs.path("named.pem")),
        q(&certs.path("named.key"))
    )
}

/// The last `up` of job `name` in the WAL, and whether `room_temp_celsius` was stored for it.
fn outcome(stored: &[Stored], name: &str) -> (Option<f64>, bool) {
    let of = |metric: &'static str| {
        stored.iter().filter(move |(l, _, _)| {
            label(l, "job") == Some(name) && label(l, "__name__") == Some(metric)
        })
    };
    (
        of("up").next_back().map(|s| s.2),
        of("room_temp_celsius").next().is_some(),
    )
}

#[test]
fn a_server_reached_by_ip_is_verified_against_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = TestCerts::generate();
    certs.server_named("named", NAME);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("metrics"),
        "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\n",
    )
    .unwrap();
    let target = Nginx::start_with(
        &root,
        true,
        &named_server(&certs, "      default_type \"text/plain; version=0.0.4\";"),
    );
    let receiver = ScriptedReceiver::start(Vec::new());
    let backend = receiver.url().trim_end_matches("/api/v1/write").to_string();
    let proxy = Nginx::start_with(
        &root,
        true,
        &named_server(&certs, &format!("      proxy_pass {backend};")),
    );

    let ca = format!("ca_file = \"{}\"", q(&certs.path("ca.pem")));
    let pd = plugin_dir(d, &["prom-scrape", "remote-write"]);
    let data = d.join("data");
    let mut cfg = format!(
        "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
        q(&pd),
        q(&data)
    );
    let jobs = [
        (
            "named",
            format!("tls = {{ {ca}, server_name = \"{NAME}\" }}"),
        ),
        ("unnamed", format!("tls = {{ {ca} }}")),
        (
            "misnamed",
            format!("tls = {{ {ca}, server_name = \"{OTHER}\" }}"),
        ),
    ];
    for (name, tls) in &jobs {
        cfg.push_str(&format!(
            "\n[[scrape]]\njob = \"{name}\"\nplugin = \"prom-scrape\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\ntargets = [\"{}metrics\"]\n{tls}\n",
            target.url()
        ));
    }
    let write_url = format!("{}api/v1/write", proxy.url());
    for (name, tls) in &jobs {
        cfg.push_str(&format!(
            "\n[[export]]\nname = \"{name}\"\nplugin = \"remote-write\"\nurl = \"{write_url}\"\nmax_backoff = \"300ms\"\n{tls}\n"
        ));
    }
    let cfg_path = d.join("magpie.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();
    let check = magpie().arg("check").arg(&cfg_path).output().unwrap();
    assert!(check.status.success(), "{check:?}");

    let m = Magpie::start(&cfg_path);
    let mismatch = |log: &str, what: &str, name: &str, expected: &str| {
        log.lines()
            .find(|l| {
                l.contains(what)
                    && l.contains(&format!("={name} "))
                    && l.contains("not valid for name")
                    && l.contains(expected)
            })
            .map(str::to_string)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = m.log_text();
        let scrapes = mismatch(&log, "scrape failed", "unnamed", "127.0.0.1").is_some()
            && mismatch(&log, "scrape failed", "misnamed", OTHER).is_some();
        if scrapes {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the name mismatches were not logged:\n{log}\nnginx: {}",
            target.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    m.wait_for("magpie_scrapes_total{job=\"named\"}", 2.0);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"named\"}",
        1.0,
    );
    m.wait_for(
        "magpie_exporter_failed_sends_total{exporter=\"unnamed\"}",
        1.0,
    );
    let body = m.wait_for(
        "magpie_exporter_failed_sends_total{exporter=\"misnamed\"}",
        1.0,
    );
    for exporter in ["unnamed", "misnamed"] {
        assert!(
            !body.contains(&format!(
                "magpie_exporter_sent_samples_total{{exporter=\"{exporter}\"}} 1"
            )),
            "{body}"
        );
    }
    let (_, page) = http_get(&m.addr, "/").unwrap();
    for (name, expected) in [("unnamed", "127.0.0.1"), ("misnamed", OTHER)] {
        let row = page
            .split("<tr>")
            .find(|r| r.contains(&format!(">{name}<")))
            .unwrap_or_else(|| panic!("no status row for {name}:\n{page}"));
        assert!(
            row.contains("not valid for name") && row.contains(expected),
            "{name}: {row}"
        );
    }
    let log = m.log_text();
    assert!(m.terminate().success());
    // Every request that reached the receiver came through nginx, so carried the right SNI.
    assert!(!receiver.received().is_empty(), "{log}");
    assert!(
        receiver.received().iter().all(|r| r.status == 200),
        "{:?}",
        receiver.received()
    );

    let stored = read_wal(&data.join("wal"));
    assert_eq!(outcome(&stored, "named"), (Some(1.0), true));
    assert_eq!(outcome(&stored, "unnamed"), (Some(0.0), false));
    assert_eq!(outcome(&stored, "misnamed"), (Some(0.0), false));
}

#[test]
fn check_names_the_exporter_and_the_bad_server_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pd = plugin_dir(d, &["remote-write"]);
    let cfg = d.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\n\
             [[export]]\nname = \"odd\"\nplugin = \"remote-write\"\nurl = \"https://10.0.0.9/w\"\ntls = {{ server_name = \"no such name\" }}\n\
             [[export]]\nname = \"broker\"\nplugin = \"remote-write\"\nurl = \"mqtts://10.0.0.9:8883\"\ntopic = \"m\"\ntls = {{ server_name = \"{NAME}\" }}\n",
            q(&pd),
            q(&d.join("data")),
        ),
    )
    .unwrap();
    let out = magpie().arg("check").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{text}"))
            .to_string()
    };
    let odd = line("exporter `odd`");
    assert!(odd.contains("server_name `no such name`"), "{odd}");
    assert!(odd.contains("magpie.toml:"), "{odd}");
    let broker = line("exporter `broker`");
    assert!(
        broker.contains(NAME) && broker.contains("not supported for MQTT"),
        "{broker}"
    );
}
