//! The parts of a `prometheus.yml` magpie reads, typed, with Prometheus 2.42's defaults
//! (`config/config.go`): `scrape_interval` 1m, `scrape_timeout` 10s (never above the
//! interval), `metrics_path` `/metrics`, `scheme` `http`, file discovery refreshed every 5m,
//! remote write with a 30s timeout, 500 samples per send and backoff from 30ms to 5s, HTTP
//! discovery every 60s, DNS discovery of SRV records every 30s. Keys
//! are checked beforehand (`keys.rs`), so unknown ones never reach these types.

use magpie_scrape::relabel::RelabelConfig;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// A Prometheus duration: `1y2w3d4h5m6s7ms` with any part left out, or `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PromDuration(pub Duration);

impl PromDuration {
    /// Parses as Prometheus' `model.ParseDuration`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        let bad =
            || format!("`{s}` is not a Prometheus duration like \"15s\", \"1m30s\" or \"1d\"");
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut rest = s;
        let mut next_unit = 0;
        let mut ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = if rest.starts_with("ms") { 2 } else { 1 };
            let unit = rest.get(..unit_len).ok_or_else(bad)?;
            let at = UNITS[next_unit..]
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(bad)?;
            next_unit += at + 1;
            ms = n
                .checked_mul(UNITS[next_unit - 1].1)
                .and_then(|v| ms.checked_add(v))
                .ok_or_else(bad)?;
            rest = &rest[unit_len..];
        }
        Ok(Self(Duration::from_millis(ms)))
    }

    /// As magpie's TOML writes it.
    pub(crate) fn to_toml(self) -> String {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed inside the visitor, so an error carries the value's own line.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PromDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration like \"15s\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PromDuration, E> {
                PromDuration::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A whole `prometheus.yml`, as far as magpie reads it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PromConfig {
    #[serde(default)]
    pub global: Global,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    #[serde(default)]
    pub remote_write: Vec<RemoteWrite>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Global {
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub metrics_path: Option<String>,
    pub scheme: Option<String>,
    #[serde(default)]
    pub honor_labels: bool,
    pub honor_timestamps: Option<bool>,
    pub bearer_token_file: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub sample_limit: u32,
    #[serde(default)]
    pub target_limit: u32,
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub label_limit: u32,
    #[serde(default)]
    pub label_name_length_limit: u32,
    #[serde(default)]
    pub label_value_length_limit: u32,
    pub body_size_limit: Option<String>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub http_sd_configs: Vec<HttpSdConfig>,
    #[serde(default)]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
}

/// The HTTP client settings of a discovery mechanism that magpie carries over.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SdClient {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Option<PromDuration>,
    #[serde(flatten)]
    pub client: SdClient,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DnsSdConfig {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub port: Option<u16>,
    pub refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KubernetesSdConfig {
    pub role: String,
    pub api_server: Option<String>,
    #[serde(default)]
    pub namespaces: K8sNamespaces,
    #[serde(default)]
    pub selectors: Vec<K8sSelector>,
    #[serde(flatten)]
    pub client: SdClient,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct K8sNamespaces {
    #[serde(default)]
    pub own_namespace: bool,
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct K8sSelector {
    pub role: String,
    pub label: Option<String>,
    pub field: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FileSdConfig {
    #[serde(default)]
    pub files: Vec<String>,
    pub refresh_interval: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoteWrite {
    pub url: String,
    pub name: Option<String>,
    pub remote_timeout: Option<PromDuration>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub queue_config: QueueConfig,
    /// `io.prometheus.write.v2.Request` for remote write 2.0.
    pub protobuf_message: Option<String>,
    #[serde(default)]
    pub metadata_config: MetadataConfig,
    #[serde(default)]
    pub send_exemplars: bool,
}

/// `metadata_config` (`DefaultMetadataConfig`: send, every minute, 500 per request).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MetadataConfig {
    pub send: Option<bool>,
    pub send_interval: Option<PromDuration>,
    pub max_samples_per_send: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BasicAuth {
    pub username: String,
    pub password_file: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Authorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueConfig {
    pub max_samples_per_send: Option<usize>,
    pub min_backoff: Option<PromDuration>,
    pub max_backoff: Option<PromDuration>,
}

/// Prometheus' global defaults.
pub(crate) const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// `file_sd_configs` refresh.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(300);
/// `http_sd_configs` refresh (`DefaultSDConfig` in `discovery/http`).
pub(crate) const DEFAULT_HTTP_SD_REFRESH: Duration = Duration::from_secs(60);
/// `dns_sd_configs` refresh and record type (`DefaultSDConfig` in `discovery/dns`).
pub(crate) const DEFAULT_DNS_SD_REFRESH: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_DNS_SD_TYPE: &str = "SRV";
/// Remote write defaults (`DefaultRemoteWriteConfig`, `DefaultQueueConfig`).
pub(crate) const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_MAX_SAMPLES_PER_SEND: usize = 500;
pub(crate) const DEFAULT_METADATA_SEND_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const DEFAULT_METADATA_PER_SEND: usize = 500;
pub(crate) const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(30);
pub(crate) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The global interval and timeout in effect, or why they do not fit.
pub(crate) fn global_times(g: &Global) -> Result<(Duration, Duration), String> {
    let interval = g.scrape_interval.map_or(DEFAULT_SCRAPE_INTERVAL, |d| d.0);
    match g.scrape_timeout {
        Some(t) if t.0 > interval => Err(format!(
            "global.scrape_timeout ({}) is greater than global.scrape_interval ({}), which Prometheus refuses too",
            t.to_toml(),
            PromDuration(interval).to_toml()
        )),
        Some(t) => Ok((interval, t.0)),
        None => Ok((interval, DEFAULT_SCRAPE_TIMEOUT.min(interval))),
    }
}

/// A job's interval and timeout from its own and the global ones, as Prometheus'
/// `ScrapeConfig.Validate` does.
pub(crate) fn job_times(
    job: &ScrapeConfig,
    global: (Duration, Duration),
) -> Result<(Duration, Duration), String> {
    let interval = job.scrape_interval.map_or(global.0, |d| d.0);
    match job.scrape_timeout {
        Some(t) if t.0 > interval => Err(format!(
            "scrape_timeout ({}) is greater than scrape_interval ({}) for job `{}`, which Prometheus refuses too",
            t.to_toml(),
            PromDuration(interval).to_toml(),
            job.job_name
        )),
        Some(t) => Ok((interval, t.0)),
        None => Ok((interval, global.1.min(interval))),
    }
}

/// A Prometheus size (`units.Base2Bytes`): `10MB` is 10 MiB; `B`, `KB`/`KiB`, `MB`/`MiB`,
/// `GB`/`GiB`, `TB`/`TiB`, all powers of 1024.
pub(crate) fn base2_bytes(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a size like \"10MB\" (units are powers of 1024)");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}
