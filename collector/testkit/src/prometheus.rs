//! A real Prometheus (Debian's `prometheus` package) as remote-write receiver on loopback, or a
//! VictoriaMetrics single node (Debian's `victoria-metrics`), which speaks the same write and
//! query APIs.

use crate::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A series as queried: sorted labels and `(t_ms, value)` points.
pub type Series = (Vec<(String, String)>, Vec<(i64, f64)>);

/// A running (or stopped) Prometheus with its own data directory.
#[derive(Debug)]
pub struct Prometheus {
    victoria: bool,
    /// Prometheus `--web.config.file` (TLS or basic auth); readiness is then a TCP connect.
    web_config: Option<PathBuf>,
    child: Option<Child>,
    addr: String,
    dir: tempfile::TempDir,
    /// `host:port` this Prometheus scrapes every second (job `scraped`, labels honoured).
    scrape: Option<String>,
    /// Started with `--enable-feature=exemplar-storage`.
    exemplar_storage: bool,
}

impl Prometheus {
    /// Starts a receiver on an ephemeral loopback port.
    ///
    /// # Panics
    /// When the binary is missing or does not become ready.
    #[must_use]
    pub fn start() -> Self {
        Self::launch(false, tempfile::tempdir().expect("temp dir"), None)
    }

    /// Starts a VictoriaMetrics single node instead, on an ephemeral loopback port.
    ///
    /// # Panics
    /// When the binary is missing or does not become ready.
    #[must_use]
    pub fn start_victoria_metrics() -> Self {
        Self::launch(true, tempfile::tempdir().expect("temp dir"), None)
    }

    /// Starts a Prometheus that serves HTTPS only and requires a client certificate signed
    /// by the CA of `certs`.
    ///
    /// # Panics
    /// When the binary is missing or does not start listening.
    #[must_use]
    pub fn start_tls(certs: &crate::TestCerts) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let web = dir.path().join("web.yml");
        std::fs::write(
            &web,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
                certs.path("server.pem").display(),
                certs.path("server.key").display(),
                certs.path("ca.pem").display()
            ),
        )
        .expect("write web.yml");
        Self::launch(false, dir, Some(web))
    }

    /// Starts a plain-HTTP Prometheus that requires basic auth as `username` with the password
    /// whose bcrypt hash is `bcrypt_hash` (for every endpoint, queries included).
    ///
    /// # Panics
    /// When the binary is missing or does not start listening.
    #[must_use]
    pub fn start_basic_auth(username: &str, bcrypt_hash: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let web = dir.path().join("web.yml");
        std::fs::write(
            &web,
            format!("basic_auth_users:\n  {username}: '{bcrypt_hash}'\n"),
        )
        .expect("write web.yml");
        Self::launch(false, dir, Some(web))
    }

    /// Starts a Prometheus that also scrapes `target` (`host:port`, path `/metrics`) every
    /// second, as job `scraped` with `honor_labels`, so the target's own labels stay.
    ///
    /// # Panics
    /// When the binary is missing or does not become ready.
    #[must_use]
    pub fn start_scraping(target: &str) -> Self {
        Self::launch_with(
            false,
            tempfile::tempdir().expect("temp dir"),
            None,
            Some(target.to_string()),
        )
    }

    /// Starts a receiver that also stores exemplars (`--enable-feature=exemplar-storage`),
    /// on an ephemeral loopback port; [`Prometheus::exemplars`] reads them back.
    ///
    /// # Panics
    /// When the binary is missing or does not become ready.
    #[must_use]
    pub fn start_with_exemplar_storage() -> Self {
        let mut p = Self {
            victoria: false,
            web_config: None,
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            dir: tempfile::tempdir().expect("temp dir"),
            scrape: None,
            exemplar_storage: true,
        };
        p.resume();
        p
    }

    /// Starts a receiver on an ephemeral loopback port with its data in `dir`.
    fn launch(victoria: bool, dir: tempfile::TempDir, web_config: Option<PathBuf>) -> Self {
        Self::launch_with(victoria, dir, web_config, None)
    }

    fn launch_with(
        victoria: bool,
        dir: tempfile::TempDir,
        web_config: Option<PathBuf>,
        scrape: Option<String>,
    ) -> Self {
        let mut p = Self {
            victoria,
            web_config,
            child: None,
            addr: format!("127.0.0.1:{}", free_port()),
            dir,
            scrape,
            exemplar_storage: false,
        };
        p.resume();
        p
    }

    /// `host:port`.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The remote-write URL.
    #[must_use]
    pub fn write_url(&self) -> String {
        let https = self.web_config.as_ref().is_some_and(|w| {
            std::fs::read_to_string(w).is_ok_and(|t| t.contains("tls_server_config"))
        });
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{}/api/v1/write", self.addr)
    }

    /// Stops it (SIGTERM, then wait), keeping its data for [`Prometheus::resume`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    ///
    /// # Panics
    /// When the binary is missing or does not become ready.
    pub fn resume(&mut self) {
        if self.victoria {
            self.resume_victoria();
            return;
        }
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: install Debian's prometheus (ci/setup.sh does)"
        );
        let cfg: PathBuf = self.dir.path().join("prometheus.yml");
        let mut yml = String::from("global:\n  scrape_interval: 1h\n");
        if let Some(t) = &self.scrape {
            yml.push_str(&format!(
                "scrape_configs:\n  - job_name: scraped\n    scrape_interval: 1s\n    honor_labels: true\n    static_configs:\n      - targets: [\"{t}\"]\n"
            ));
        }
        std::fs::write(&cfg, yml).expect("write prometheus.yml");
        let mut cmd = Command::new(bin);
        if let Some(web) = &self.web_config {
            cmd.arg(format!("--web.config.file={}", web.display()));
        }
        if self.exemplar_storage {
            cmd.arg("--enable-feature=exemplar-storage");
        }
        let child = cmd
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--web.enable-remote-write-receiver")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        self.child = Some(child);
        self.wait_ready("/-/ready");
    }

    fn resume_victoria(&mut self) {
        let bin = std::env::var("VICTORIA_METRICS_BIN")
            .unwrap_or_else(|_| "/usr/bin/victoria-metrics".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: install Debian's victoria-metrics (ci/setup.sh does)"
        );
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr={}", self.addr))
            .arg(format!(
                "-storageDataPath={}",
                self.dir.path().join("vm").display()
            ))
            // Queries see the newest samples at once, not 30 s later.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        self.child = Some(child);
        self.wait_ready("/health");
    }

    fn wait_ready(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = if self.web_config.is_some() {
                std::net::TcpStream::connect(&self.addr).is_ok()
            } else {
                crate::http_get(&self.addr, path).is_ok_and(|(s, _)| s == 200)
            };
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not become ready on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The scrape targets as `(scrapeUrl, health, lastError)`, from `/api/v1/targets`.
    ///
    /// # Panics
    /// When the request fails.
    #[must_use]
    pub fn targets(&self) -> Vec<(String, String, String)> {
        let (status, body) = crate::http_get(&self.addr, "/api/v1/targets").expect("targets");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let field = |t: &serde_json::Value, k: &str| t[k].as_str().unwrap_or_default().to_string();
        v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    field(t, "scrapeUrl"),
                    field(t, "health"),
                    field(t, "lastError"),
                )
            })
            .collect()
    }

    /// Raw samples of every series matching `selector` over the last `range` (PromQL range
    /// selector at the present), as `(labels, [(t_ms, value)])`, sorted.
    ///
    /// # Panics
    /// When the query fails.
    #[must_use]
    pub fn samples(&self, selector: &str, range: &str) -> Vec<Series> {
        if self.victoria {
            // Make buffered rows searchable.
            let _ = crate::http_get(&self.addr, "/internal/force_flush");
        }
        let q = format!("{selector}[{range}]");
        // An explicit evaluation time a minute ahead: receivers may round "now" down, which
        // would hide the newest samples.
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 60;
        let (status, body) = crate::http_get(
            &self.addr,
            &format!("/api/v1/query?query={}&time={at}", encode(&q)),
        )
        .expect("query");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let mut out = Vec::new();
        for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let mut labels: Vec<(String, String)> = s["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            labels.sort();
            let points = s["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            #[allow(clippy::cast_possible_truncation)]
                            let t = (p[0].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                            let v = p[1]
                                .as_str()
                                .and_then(|s| s.parse().ok())
                                .unwrap_or(f64::NAN);
                            (t, v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((labels, points));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Percent-encodes a query parameter.
pub(crate) fn encode(s: &str) -> String {
    let mut o = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}
