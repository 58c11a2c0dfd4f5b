//! Secrets end to end: credentials read from files (and from systemd's credentials directory)
//! reach the receivers (and scrape targets) but never a log line, `/metrics`, the status page or `magpie check`'s
//! output; a receiver whose certificate is not trusted gets nothing, and the data waits in
//! the WAL until it is.

mod common;

use common::{Magpie, magpie, plugin_dir, read_wal};
use magpie_testkit::{Behavior, Prometheus, TargetServer, TestCerts, http_get, sample_value};
use std::io::{Read, Write};

const EXPOSITION: &str = "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\nroom_temp_celsius{room=\"b\"} 19.25\n";

/// The receiver's password, and its bcrypt hash for Prometheus' `basic_auth_users` (cost 4,
/// so each request costs the receiver little).
const PASSWORD: &str = "magpie-marker-password-5d1c9e7a";
const PASSWORD_BCRYPT: &str = "$2b$04$f1/SD37a0LrFLDrMAVC9l.YjL0GGu5ZeaC.I9Z9DKvwNiUFlC0w/S";
/// `central:PASSWORD`, base64, for the test's own queries.
const QUERY_AUTH: &str = "Y2VudHJhbDptYWdwaWUtbWFya2VyLXBhc3N3b3JkLTVkMWM5ZTdh";
const TOKEN: &str = "magpie-marker-token-93b0f4d2";
const WRONG: &str = "magpie-marker-wrong-password-c47e1a08";
const MARKERS: [&str; 3] = [PASSWORD, TOKEN, WRONG];

fn rooms_target() -> TargetServer {
    TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )])
}

/// A query to a Prometheus that requires basic auth, as the test's own client.
fn query_with_auth(addr: &str, query: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/v1/query?query={query} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {QUERY_AUTH}\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw
}

fn assert_no_marker(what: &str, text: &str) {
    for m in MARKERS {
        assert!(!text.contains(m), "{what} shows a secret ({m}):\n{text}");
    }
}

#[test]
fn marker_secrets_reach_receivers_but_no_log_metric_or_page() {
    let with_auth = Prometheus::start_basic_auth("central", PASSWORD_BCRYPT);
    let open = Prometheus::start();
    let target = rooms_target();
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    // What systemd's LoadCredential= would make: the password under $CREDENTIALS_DIRECTORY,
    // named in the config by its bare name.
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("central.pass"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(creds.join("wrong.pass"), WRONG).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let cfg = dir.path().join("secrets.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n\
             [[scrape]]\njob = \"rooms-guarded\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\nbasic_auth = {{ username = \"scraper\", password_file = \"central.pass\" }}\n\
             [[scrape]]\njob = \"rooms-token\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\nbearer_token_file = \"{}\"\n\
             [[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{auth_url}\"\nbasic_auth = {{ username = \"central\", password_file = \"central.pass\" }}\n\
             [[export]]\nname = \"wrong\"\nplugin = \"remote-write\"\nurl = \"{auth_url}\"\nmax_backoff = \"200ms\"\nbasic_auth = {{ username = \"central\", password_file = \"wrong.pass\" }}\n\
             [[export]]\nname = \"bearer\"\nplugin = \"remote-write\"\nurl = \"{}\"\nbearer_token_file = \"{}\"\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            target.url("/metrics"),
            target.url("/metrics"),
            token.display(),
            open.write_url(),
            token.display(),
            auth_url = with_auth.write_url(),
        ),
    )
    .unwrap();
    let env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let check = magpie().arg("check").arg(&cfg).envs(env).output().unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_no_marker("magpie check", &String::from_utf8_lossy(&check.stdout));
    assert_no_marker("magpie check", &String::from_utf8_lossy(&check.stderr));

    let m = Magpie::start_with_env(&cfg, &env);
    for exporter in ["central", "bearer"] {
        m.wait_for(
            &format!("magpie_exporter_sent_samples_total{{exporter=\"{exporter}\"}}"),
            10.0,
        );
    }
    // The scrape jobs sent their credentials (the target takes any) several times.
    for job in ["rooms-guarded", "rooms-token"] {
        m.wait_for(
            &format!(
                "magpie_target_up{{job=\"{job}\",instance=\"{}\"}}",
                target.addr()
            ),
            1.0,
        );
        m.wait_for(&format!("magpie_scrapes_total{{job=\"{job}\"}}"), 3.0);
    }
    // Prometheus answers the wrong password with 401: refused, counted, logged.
    let body = m.wait_for(
        "magpie_exporter_rejected_samples_total{exporter=\"wrong\"}",
        1.0,
    );
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_sent_samples_total{exporter=\"wrong\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert_no_marker("/metrics", &body);
    for path in ["/", "/-/healthy", "/-/ready"] {
        let (_, page) = http_get(&m.addr, path).unwrap();
        assert_no_marker(path, &page);
    }
    let log = m.log_text();
    assert!(log.contains("exporter `wrong`"), "{log}");
    assert!(m.terminate().success());
    assert_no_marker("the log", &log);

    // The password was used: the receiver that requires it holds the samples.
    let got = query_with_auth(
        with_auth.addr(),
        "room_temp_celsius%7Bjob%3D%22rooms%22%2Croom%3D%22b%22%7D",
    );
    assert!(got.contains("\"19.25\""), "{got}");
}

#[test]
fn an_untrusted_https_receiver_gets_nothing_and_the_data_waits_in_the_wal() {
    // The receiver's certificate is signed by a CA made here, which the system does not trust.
    let certs = TestCerts::generate();
    let prom = Prometheus::start_tls(&certs);
    let target = rooms_target();
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let write = |name: &str, tls: &str| {
        let cfg = dir.path().join(name);
        std::fs::write(
            &cfg,
            format!(
                "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"200ms\"\n{tls}",
                pd.display(),
                dir.path().join("data").display(),
                target.url("/metrics"),
                prom.write_url(),
            ),
        )
        .unwrap();
        cfg
    };
    let m = Magpie::start(&write("untrusted.toml", ""));
    m.wait_for("magpie_scrapes_total{job=\"rooms\"}", 5.0);
    let body = m.wait_for(
        "magpie_exporter_failed_sends_total{exporter=\"central\"}",
        3.0,
    );
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_sent_samples_total{exporter=\"central\"}"
        ),
        Some(0.0),
        "{body}"
    );
    let log = m.log_text();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the log does not say the certificate is the problem:\n{log}"
    );
    assert!(m.terminate().success());
    let held = read_wal(&dir.path().join("data/wal"));
    assert!(held.len() >= 10, "the WAL holds {} samples", held.len());
    let first = held.iter().map(|s| s.1).min().unwrap();

    // Trusting the CA (and presenting the client certificate the receiver requires), the
    // same exporter delivers its backlog from the start.
    let tls = format!(
        "tls = {{ ca_file = \"{}\", cert_file = \"{}\", key_file = \"{}\" }}\n",
        certs.path("ca.pem").display(),
        certs.path("client.pem").display(),
        certs.path("client.key").display()
    );
    let m = Magpie::start(&write("trusted.toml", &tls));
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        f64::from(u32::try_from(held.len()).unwrap()),
    );
    assert!(m.terminate().success());
    let oldest = oldest_delivered(&prom, &certs);
    assert_eq!(
        oldest, first,
        "the oldest sample in the WAL was not delivered"
    );
}

/// Timestamp (ms) of the oldest `room_temp_celsius{room="a"}` sample the TLS receiver holds.
fn oldest_delivered(prom: &Prometheus, certs: &TestCerts) -> i64 {
    let tls = magpie_transport::TlsOptions {
        ca_file: Some(certs.path("ca.pem")),
        cert_file: Some(certs.path("client.pem")),
        key_file: Some(certs.path("client.key")),
        server_name: None,
    };
    let url = format!(
        "https://{}/api/v1/query?query=room_temp_celsius%7Broom%3D%22a%22%7D%5B1h%5D",
        prom.addr()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        let client = magpie_transport::HttpClient::new(&tls).unwrap();
        let mut resp = client
            .get(&url, &[], std::time::Duration::from_secs(10), 1 << 22)
            .await
            .unwrap();
        let mut body = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = resp.body.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(body).unwrap()
    });
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let values = v["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no samples: {body}"));
    values
        .iter()
        .map(|p| {
            let secs = p[0].as_f64().unwrap();
            #[allow(clippy::cast_possible_truncation)]
            let ms = (secs * 1000.0).round() as i64;
            ms
        })
        .min()
        .unwrap()
}
