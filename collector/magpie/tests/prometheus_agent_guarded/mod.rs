//! The guarded targets of the differential test: Debian's nginx serving a small exposition
//! behind basic auth (an `openssl passwd -apr1` htpasswd), a bearer-token check, mutual TLS,
//! and TLS with a certificate valid only for [`NAME`] (a 421 for any other SNI), plus a plain
//! one serving an exposition with explicit timestamps an hour old. [`Guarded::jobs`] gives the
//! `scrape_configs` entries for both agents; [`Guarded::assert_delivered`] checks each job left
//! its mark, so agreement between the two is not agreement on nothing.

use magpie_testkit::{LabelSet, Nginx, Prometheus, TestCerts};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const PASSWORD: &str = "agent-diff-password";
const TOKEN: &str = "agent-diff-token";
/// The only name the `named` target's certificate is valid for.
pub const NAME: &str = "metrics.magpie.test";

/// The running servers and their files.
pub struct Guarded {
    dir: tempfile::TempDir,
    certs: TestCerts,
    plain: Nginx,
    basic: Nginx,
    bearer: Nginx,
    mtls: Nginx,
    named: Nginx,
    /// The timestamp (ms) the `stamped` exposition carries.
    stamp_ms: i64,
    /// When the servers started (ms): scrape times are later.
    start_ms: i64,
}

fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

fn q(p: &Path) -> String {
    p.display().to_string()
}

fn location(extra: &str) -> String {
    format!("    location / {{\n      default_type \"text/plain; version=0.0.4\";\n{extra}\n    }}")
}

fn tls(certs: &TestCerts, stem: &str) -> String {
    format!(
        "    ssl_certificate {};\n    ssl_certificate_key {};\n",
        q(&certs.path(&format!("{stem}.pem"))),
        q(&certs.path(&format!("{stem}.key")))
    )
}

impl Guarded {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let start_ms = now_ms();
        let stamp_ms = start_ms - 3_600_000;
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(
            root.join("metrics"),
            "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\",floor=\"2\"} 21.5\n",
        )
        .unwrap();
        std::fs::write(
            root.join("stamped"),
            format!("# TYPE stamped_value gauge\nstamped_value{{room=\"a\"}} 3 {stamp_ms}\n"),
        )
        .unwrap();
        let out = Command::new("openssl")
            .args(["passwd", "-apr1", PASSWORD])
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{out:?}");
        let hash = String::from_utf8(out.stdout).unwrap();
        std::fs::write(d.join("htpasswd"), format!("scraper:{}", hash.trim())).unwrap();
        // No trailing newline: both agents trim one, but this keeps the files out of question.
        std::fs::write(d.join("password"), PASSWORD).unwrap();
        std::fs::write(d.join("token"), TOKEN).unwrap();
        let certs = TestCerts::generate();
        certs.server_named("named", NAME);
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
        let mtls = Nginx::start_with(
            &root,
            true,
            &format!(
                "{}    ssl_client_certificate {};\n    ssl_verify_client on;\n{}",
                tls(&certs, "server"),
                q(&certs.path("ca.pem")),
                location("")
            ),
        );
        let named = Nginx::start_with(
            &root,
            true,
            &format!(
                "{}{}",
                tls(&certs, "named"),
                location(&format!(
                    "      if ($ssl_server_name != \"{NAME}\") {{ return 421; }}"
                ))
            ),
        );
        Self {
            dir,
            certs,
            plain,
            basic,
            bearer,
            mtls,
            named,
            stamp_ms,
            start_ms,
        }
    }

    /// Six `scrape_configs` entries, the same for both agents (absolute paths).
    pub fn jobs(&self) -> String {
        let d = self.dir.path();
        let ca = q(&self.certs.path("ca.pem"));
        format!(
            r#"  - job_name: basic
    basic_auth: {{username: scraper, password_file: '{password}'}}
    static_configs: [{{targets: ['{basic}']}}]
  - job_name: bearer
    authorization: {{credentials_file: '{token}'}}
    static_configs: [{{targets: ['{bearer}']}}]
  - job_name: mtls
    scheme: https
    tls_config: {{ca_file: '{ca}', cert_file: '{cert}', key_file: '{key}'}}
    static_configs: [{{targets: ['{mtls}']}}]
  - job_name: named
    scheme: https
    tls_config: {{ca_file: '{ca}', server_name: {NAME}}}
    static_configs: [{{targets: ['{named}']}}]
  - job_name: stamped
    honor_timestamps: false
    metrics_path: /stamped
    static_configs: [{{targets: ['{plain}']}}]
  - job_name: honored_static
    honor_labels: true
    static_configs: [{{targets: ['{plain}'], labels: {{room: ours, wing: west}}}}]"#,
            password = q(&d.join("password")),
            token = q(&d.join("token")),
            cert = q(&self.certs.path("client.pem")),
            key = q(&self.certs.path("client.key")),
            basic = self.basic.addr(),
            bearer = self.bearer.addr(),
            mtls = self.mtls.addr(),
            named = self.named.addr(),
            plain = self.plain.addr(),
        )
    }

    /// Each guarded job delivered its samples to every receiver in `receivers` (the series
    /// sets were found equal before): the exposed series behind each credential, exposed
    /// labels kept over conflicting target labels, and scrape-time stamps on `stamped`.
    pub fn assert_delivered(&self, series: &BTreeSet<LabelSet>, receivers: &[&Prometheus]) {
        let get = |l: &LabelSet, n: &str| l.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let of = |job: &str, name: &str| {
            series
                .iter()
                .filter(|l| {
                    get(l, "job").as_deref() == Some(job)
                        && get(l, "__name__").as_deref() == Some(name)
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        for job in ["basic", "bearer", "mtls", "named"] {
            let got = of(job, "room_temp_celsius");
            assert!(
                got.len() == 1 && get(&got[0], "floor").as_deref() == Some("2"),
                "{job}: {got:?}"
            );
        }
        let honored = of("honored_static", "room_temp_celsius");
        assert!(
            honored.len() == 1
                && get(&honored[0], "room").as_deref() == Some("a")
                && get(&honored[0], "wing").as_deref() == Some("west")
                && get(&honored[0], "exported_room").is_none(),
            "honor_labels: {honored:?}"
        );
        assert_eq!(of("stamped", "stamped_value").len(), 1);
        // The exposed stamp is an hour old; a window of two hours would show it if kept.
        for r in receivers {
            let samples = r.samples("stamped_value", "2h");
            assert_eq!(samples.len(), 1, "{samples:?}");
            let stamps: Vec<i64> = samples[0].1.iter().map(|s| s.0).collect();
            assert!(
                !stamps.is_empty() && stamps.iter().all(|&t| t >= self.start_ms),
                "honor_timestamps: false: the exposed stamp {} in {stamps:?}",
                self.stamp_ms
            );
        }
    }
}
