//! Scrape targets behind credentials and TLS: Debian's nginx serves one exposition behind
//! `auth_basic` (an `openssl passwd -apr1` htpasswd), behind a bearer-token check, behind TLS
//! with a CA made here, and behind mutual TLS (`ssl_verify_client on`). The right credentials
//! give `up` 1 and the samples in the WAL; wrong or missing ones give `up` 0 and the reason in
//! the log and on the status page, naming job and target. The secrets (marker strings) never
//! show in the log, `/metrics`, the status page or `magpie check`. A password file rotated
//! and picked up by SIGHUP turns its job's `up` to 1. `honor_timestamps = false` stamps
//! samples with the scrape's time instead of the exposed one.

mod common;

use common::{Magpie, Stored, label, magpie, plugin_dir, read_wal};
use magpie_testkit::{Nginx, TestCerts, http_get};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PASSWORD: &str = "magpie-scrape-marker-password-6b2f";
const TOKEN: &str = "magpie-scrape-marker-token-1e9d";
const WRONG: &str = "magpie-scrape-marker-wrong-77c3";
const MARKERS: [&str; 3] = [PASSWORD, TOKEN, WRONG];

fn assert_no_marker(what: &str, text: &str) {
    for m in MARKERS {
        assert!(!text.contains(m), "{what} shows a secret ({m}):\n{text}");
    }
}

/// `openssl passwd -apr1`, as an htpasswd line for `user`.
fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{out:?}");
    format!("{user}:{}", String::from_utf8(out.stdout).unwrap().trim())
}

/// The exposition every nginx serves, with one sample exposing its own timestamp.
fn exposition(stamp_ms: i64) -> String {
    format!(
        "# TYPE room_temp_celsius gauge\nroom_temp_celsius{{room=\"a\"}} 21.5\n# TYPE stamped gauge\nstamped 3 {stamp_ms}\n"
    )
}

fn location(extra: &str) -> String {
    format!("    location / {{\n      default_type \"text/plain; version=0.0.4\";\n{extra}\n    }}")
}

fn job(name: &str, target: &str, extra: &str) -> String {
    format!(
        "\n[[scrape]]\njob = \"{name}\"\nplugin = \"prom-scrape\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\ntargets = [\"{target}metrics\"]\n{extra}\n"
    )
}

fn q(p: &Path) -> String {
    p.display().to_string()
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
fn credentials_and_client_certificates_are_sent_by_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let stamp = now_ms - 3_600_000;
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("metrics"), exposition(stamp)).unwrap();
    std::fs::write(d.join("htpasswd"), htpasswd("scraper", PASSWORD)).unwrap();
    let certs = TestCerts::generate();
    let server_tls = format!(
        "    ssl_certificate {};\n    ssl_certificate_key {};\n",
        q(&certs.path("server.pem")),
        q(&certs.path("server.key"))
    );
    let plain = Nginx::start_with(&root, false, &location(""));
    let basic = Nginx::start_with(
        &root,
        false,
        &location(&format!(
            "      auth_basic \"metrics\";\n      auth_basic_user_file {};",
            q(&d.join("htpasswd"))
        )),
    );
    let bearer = Nginx::start_with(
        &root,
        false,
        &location(&format!(
            "      if ($http_authorization != \"Bearer {TOKEN}\") {{ return 401; }}"
        )),
    );
    let tls = Nginx::start_with(&root, true, &format!("{server_tls}{}", location("")));
    let mtls = Nginx::start_with(
        &root,
        true,
        &format!(
            "{server_tls}    ssl_client_certificate {};\n    ssl_verify_client on;\n{}",
            q(&certs.path("ca.pem")),
            location("")
        ),
    );

    for (name, secret) in [
        ("right.pass", PASSWORD),
        ("wrong.pass", WRONG),
        ("rotated.pass", WRONG),
        ("token", TOKEN),
        ("wrong.token", WRONG),
    ] {
        std::fs::write(d.join(name), format!("{secret}\n")).unwrap();
    }
    let basic_auth = |file: &str| {
        format!(
            "basic_auth = {{ username = \"scraper\", password_file = \"{}\" }}",
            q(&d.join(file))
        )
    };
    let ca = format!("ca_file = \"{}\"", q(&certs.path("ca.pem")));
    let client_cert = format!(
        "{ca}, cert_file = \"{}\", key_file = \"{}\"",
        q(&certs.path("client.pem")),
        q(&certs.path("client.key"))
    );
    let pd = plugin_dir(d, &["prom-scrape"]);
    let data = d.join("data");
    let mut cfg = format!(
        "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n",
        q(&pd),
        q(&data)
    );
    let jobs = [
        ("basic-right", basic.url(), basic_auth("right.pass")),
        ("basic-wrong", basic.url(), basic_auth("wrong.pass")),
        ("basic-none", basic.url(), String::new()),
        ("basic-rotated", basic.url(), basic_auth("rotated.pass")),
        (
            "bearer-right",
            bearer.url(),
            format!("bearer_token_file = \"{}\"", q(&d.join("token"))),
        ),
        (
            "bearer-wrong",
            bearer.url(),
            format!("bearer_token_file = \"{}\"", q(&d.join("wrong.token"))),
        ),
        ("tls-right", tls.url(), format!("tls = {{ {ca} }}")),
        ("tls-untrusted", tls.url(), String::new()),
        (
            "mtls-right",
            mtls.url(),
            format!("tls = {{ {client_cert} }}"),
        ),
        ("mtls-nocert", mtls.url(), format!("tls = {{ {ca} }}")),
        ("stamped-kept", plain.url(), String::new()),
        (
            "stamped-scrape",
            plain.url(),
            "honor_timestamps = false".into(),
        ),
    ];
    for (name, url, extra) in &jobs {
        cfg.push_str(&job(name, url, extra));
    }
    let cfg_path = d.join("magpie.toml");
    std::fs::write(&cfg_path, &cfg).unwrap();

    let check = magpie().arg("check").arg(&cfg_path).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_no_marker("magpie check", &String::from_utf8_lossy(&check.stdout));
    assert_no_marker("magpie check", &String::from_utf8_lossy(&check.stderr));

    let m = Magpie::start(&cfg_path);
    let failing = [
        ("basic-wrong", "401"),
        ("basic-none", "401"),
        ("basic-rotated", "401"),
        ("bearer-wrong", "401"),
        ("tls-untrusted", "certificate"),
        ("mtls-nocert", "400"),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let failure_line = |log: &str, name: &str, why: &str| {
        log.lines()
            .find(|l| {
                l.contains("scrape failed")
                    && l.contains(&format!("job={name} "))
                    && l.contains(why)
            })
            .map(str::to_string)
    };
    loop {
        let log = m.log_text();
        if failing
            .iter()
            .all(|(name, why)| failure_line(&log, name, why).is_some())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every expected failure was logged:\n{log}\nnginx (mtls): {}",
            mtls.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = m.log_text();
    for (name, why) in failing {
        let line = failure_line(&log, name, why).unwrap();
        let target = jobs.iter().find(|j| j.0 == name).unwrap().1.clone();
        assert!(line.contains(&format!("target={target}metrics")), "{line}");
    }
    m.wait_for("magpie_scrapes_total{job=\"mtls-right\"}", 2.0);
    let body = m.wait_for("magpie_scrapes_total{job=\"stamped-scrape\"}", 3.0);
    let (_, page) = http_get(&m.addr, "/").unwrap();
    for (name, why) in failing {
        let row = page
            .split("<tr>")
            .find(|r| r.contains(&format!(">{name}<")))
            .unwrap_or_else(|| panic!("no status row for {name}:\n{page}"));
        assert!(row.contains(why), "{name}: {row}");
    }
    assert_no_marker("/metrics", &body);
    assert_no_marker("the status page", &page);

    // A rotated password is read again on SIGHUP.
    std::fs::write(d.join("rotated.pass"), PASSWORD).unwrap();
    m.signal(rustix::process::Signal::HUP);
    let addr = basic.addr().to_string();
    m.wait_for(
        &format!("magpie_target_up{{job=\"basic-rotated\",instance=\"{addr}\"}}"),
        1.0,
    );
    let log = m.log_text();
    assert!(m.terminate().success());
    assert_no_marker("the log", &log);

    let stored = read_wal(&data.join("wal"));
    for name in [
        "basic-right",
        "bearer-right",
        "tls-right",
        "mtls-right",
        "basic-rotated",
    ] {
        assert_eq!(outcome(&stored, name), (Some(1.0), true), "{name}");
    }
    for (name, _) in failing.iter().filter(|(n, _)| *n != "basic-rotated") {
        assert_eq!(outcome(&stored, name), (Some(0.0), false), "{name}");
    }

    // Exposed timestamps: kept by default, replaced by the scrape's with honor_timestamps off.
    let stamped = |name: &str| -> Vec<i64> {
        stored
            .iter()
            .filter(|(l, _, v)| {
                // Staleness markers (NaN) carry the scrape's time in both jobs.
                label(l, "job") == Some(name)
                    && label(l, "__name__") == Some("stamped")
                    && !v.is_nan()
            })
            .map(|s| s.1)
            .collect()
    };
    let kept = stamped("stamped-kept");
    assert!(
        !kept.is_empty() && kept.iter().all(|&t| t == stamp),
        "{kept:?}"
    );
    let replaced = stamped("stamped-scrape");
    assert!(
        replaced.len() >= 3 && replaced.iter().all(|&t| t >= now_ms),
        "{replaced:?}"
    );
    assert!(replaced.windows(2).all(|w| w[0] < w[1]), "{replaced:?}");
}

#[test]
fn check_names_the_job_and_the_missing_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pd = plugin_dir(d, &["prom-scrape"]);
    let cfg = d.join("magpie.toml");
    let missing = d.join("nope.pass");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\n{}{}",
            q(&pd),
            q(&d.join("data")),
            job(
                "guarded",
                "http://127.0.0.1:9/",
                &format!(
                    "basic_auth = {{ username = \"u\", password_file = \"{}\" }}",
                    q(&missing)
                )
            ),
            job(
                "pinned",
                "https://127.0.0.1:9/",
                &format!("tls = {{ ca_file = \"{}\" }}", q(&d.join("ca.pem")))
            ),
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
    let guarded = line("scrape job `guarded`");
    assert!(guarded.contains(&q(&missing)), "{guarded}");
    assert!(guarded.contains("magpie.toml:"), "{guarded}");
    let pinned = line("scrape job `pinned`");
    assert!(pinned.contains("ca.pem"), "{pinned}");
}
