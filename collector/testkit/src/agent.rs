//! The Prometheus agent (Debian's `prometheus` with `--enable-feature=agent`) running a given
//! `prometheus.yml`: the incumbent magpie is compared with, scrape for scrape.

use crate::free_port;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A label set, sorted by name.
pub type LabelSet = Vec<(String, String)>;

/// A running Prometheus agent; stopped when dropped.
#[derive(Debug)]
pub struct PrometheusAgent {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl PrometheusAgent {
    /// Starts the agent on an ephemeral loopback port with `config` as its `prometheus.yml`
    /// (relative paths in it are taken from `config`'s directory).
    ///
    /// # Panics
    /// When the binary is missing, refuses the configuration or does not become ready.
    #[must_use]
    pub fn start(config: &std::path::Path) -> Self {
        Self::start_with_features(config, "agent")
    }

    /// As [`PrometheusAgent::start`], with `--enable-feature=<features>` (which must name
    /// `agent`), for example `agent,exemplar-storage`.
    ///
    /// # Panics
    /// As [`PrometheusAgent::start`].
    #[must_use]
    pub fn start_with_features(config: &std::path::Path, features: &str) -> Self {
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "/usr/bin/prometheus".into());
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: install Debian's prometheus (ci/setup.sh does)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin)
            .arg(format!("--enable-feature={features}"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.agent.path={}", dir.path().display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the prometheus agent");
        let mut a = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !crate::http_get(&a.addr, "/-/ready").is_ok_and(|(s, _)| s == 200) {
            if let Ok(Some(status)) = a.child.try_wait() {
                panic!(
                    "the prometheus agent exited with {status}: check {}",
                    config.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the prometheus agent did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        a
    }
}

impl Drop for PrometheusAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every series a Prometheus at `addr` holds, by label set, from `/api/v1/series`.
///
/// # Panics
/// When the request fails.
#[must_use]
pub fn series(addr: &str) -> BTreeSet<LabelSet> {
    let (status, body) = crate::http_get(
        addr,
        "/api/v1/series?match%5B%5D=%7B__name__%3D~%22.%2B%22%7D",
    )
    .expect("series request");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    v["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let mut l: LabelSet = s
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            l.sort();
            l
        })
        .collect()
}
