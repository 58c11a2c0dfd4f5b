//! The configuration file (TOML). The key names are a contract with users' files; new keys
//! may be added, none renamed. Unknown keys are errors naming the file, line and key.
//!
//! ```toml
//! [collector]
//! data_dir = "/var/lib/magpie"
//! listen = "127.0.0.1:9464"
//! plugin_dir = "/usr/lib/magpie/plugins"
//! external_labels = { site = "pi-07" }
//!
//! [wal]
//! max_bytes = "64MiB"
//! segment_bytes = "4MiB"
//! fsync = "1s"
//!
//! [[scrape]]
//! job = "node"
//! plugin = "prom-scrape"
//! interval = "15s"
//! timeout = "10s"
//! targets = ["http://127.0.0.1:9100/metrics"]
//! ```
//!
//! This crate reads and checks it, and translates a Prometheus `prometheus.yml` into it
//! ([`prometheus`]); the `magpie` binary, `magpie check` and the fleet agent share it, so a file
//! is judged the same way wherever it comes from.
//!
//! # Example
//! ```
//! use std::path::Path;
//! // A configuration is checked whole, and every problem names the file, line and key.
//! let loaded = magpie_config::parse(Path::new("magpie.toml"), "[[scrape]]\njob = \"node\"\nplugin = \"node\"\n").unwrap();
//! assert_eq!(loaded.config.scrape[0].get_ref().job.get_ref(), "node");
//! let errors = magpie_config::parse(Path::new("magpie.toml"), "[[scrape]]\njob = 3\n").unwrap_err();
//! assert!(errors[0].to_string().contains("magpie.toml"), "{}", errors[0]);
//! ```

use magpie_sdk::abi::Value;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

mod export;
mod fleet;
mod ingest;
mod mqtt;
pub mod prometheus;
mod scrape_client;
mod targets;
mod validate;

pub use export::{BasicAuth, Export, ExportMetadata, Tls};
pub use fleet::{Fleet, mqtt_topic};
pub use ingest::{HttpDecoders, Ingest, SourceKind};
pub use magpie_scrape::units::{ByteSize, Dur};
pub use mqtt::{MqttExport, is_mqtt_url};
pub use targets::StaticConfig;

/// The plugin directory a packaged install uses.
pub const SYSTEM_PLUGIN_DIR: &str = "/usr/lib/magpie/plugins";
/// Where `ci/build-plugins.sh` puts plugins in a source checkout.
pub const BUILD_PLUGIN_DIR: &str = "target/plugins";

/// A whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    #[serde(default)]
    pub collector: Collector,
    /// The write-ahead log.
    #[serde(default)]
    pub wal: WalConfig,
    /// Scrape jobs.
    #[serde(default)]
    pub scrape: Vec<Spanned<Scrape>>,
    /// Exporters.
    #[serde(default)]
    pub export: Vec<Spanned<Export>>,
    /// Sources of pushed data (MQTT subscriptions, HTTP listeners).
    #[serde(default)]
    pub ingest: Vec<Spanned<Ingest>>,
    /// Which plugin signatures are accepted.
    #[serde(default)]
    pub trust: Trust,
    /// Signed configuration bundles from a fleet server (`magpie-fleet`).
    #[serde(default)]
    pub fleet: Option<Fleet>,
}

/// `[trust]`: the keys whose signatures (`<plugin file>.sig`, made by `magpie plugin sign`)
/// are accepted. A plugin with a `.sig` loads only when it verifies against one of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Public key files (`magpie key generate` writes them as `<name>.pub`).
    #[serde(default)]
    pub keys: Vec<Spanned<PathBuf>>,
    /// Refuse unsigned plugins (`true`) or load them (`false`). Unset: unsigned `.cwasm`
    /// (native code) is refused and unsigned `.wasm` (validated by wasmtime) loads.
    #[serde(default)]
    pub require_signed_plugins: Option<bool>,
}

/// `[collector]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collector {
    /// Directory of the WAL and the exporters' cursors.
    #[serde(default = "Collector::default_data_dir")]
    pub data_dir: PathBuf,
    /// Address of `/metrics`, `/-/healthy`, `/-/ready` and the status page.
    #[serde(default = "Collector::default_listen")]
    pub listen: String,
    /// Where plugins are found, as `<plugin_dir>/<name>.cwasm` (precompiled by `magpie plugin
    /// compile`) or `<plugin_dir>/<name>.wasm`. Default: `/usr/lib/magpie/plugins`
    /// when it exists, else `target/plugins` (a source checkout).
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// Labels added to every sample on export.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Time between two points of the status page's sparklines, which keep 120 points: the
    /// default 30 s shows the last hour.
    #[serde(default = "Collector::default_history_step")]
    pub status_history_step: Dur,
    /// A `prometheus.yml` whose scrape jobs, remote writes and external labels are added to
    /// this file's (relative to this file's directory), so an unchanged Prometheus file can
    /// sit beside magpie's own settings.
    #[serde(default)]
    pub prometheus_config: Option<Spanned<PathBuf>>,
}

impl Collector {
    fn default_data_dir() -> PathBuf {
        PathBuf::from("magpie-data")
    }

    fn default_listen() -> String {
        "127.0.0.1:9464".into()
    }

    const fn default_history_step() -> Dur {
        Dur(Duration::from_secs(30))
    }

    /// The plugin directory in effect.
    #[must_use]
    pub fn plugin_dir(&self) -> PathBuf {
        self.plugin_dir.clone().unwrap_or_else(|| {
            if Path::new(SYSTEM_PLUGIN_DIR).is_dir() {
                PathBuf::from(SYSTEM_PLUGIN_DIR)
            } else {
                PathBuf::from(BUILD_PLUGIN_DIR)
            }
        })
    }
}

impl Default for Collector {
    fn default() -> Self {
        Self {
            data_dir: Self::default_data_dir(),
            listen: Self::default_listen(),
            plugin_dir: None,
            external_labels: BTreeMap::new(),
            status_history_step: Self::default_history_step(),
            prometheus_config: None,
        }
    }
}

/// `[wal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalConfig {
    /// Most bytes the ring may take on disk; the oldest segment goes first.
    #[serde(default = "WalConfig::default_max_bytes")]
    pub max_bytes: ByteSize,
    /// Size of one segment file.
    #[serde(default = "WalConfig::default_segment_bytes")]
    pub segment_bytes: ByteSize,
    /// How often buffered samples are written and synced; a power cut loses at most this much.
    #[serde(default = "WalConfig::default_fsync")]
    pub fsync: Dur,
    /// How long appends or syncs may fail without a break before `/-/healthy` answers 503
    /// with the cause (a full or read-only disk); it answers 200 again once they succeed.
    #[serde(default = "WalConfig::default_unhealthy_after")]
    pub unhealthy_after: Dur,
}

impl WalConfig {
    const fn default_max_bytes() -> ByteSize {
        ByteSize(magpie_wal::Options::default_max_bytes())
    }

    const fn default_segment_bytes() -> ByteSize {
        ByteSize(magpie_wal::Options::default_segment_bytes())
    }

    const fn default_fsync() -> Dur {
        Dur(magpie_wal::Options::default_fsync_interval())
    }

    const fn default_unhealthy_after() -> Dur {
        Dur(magpie_wal::health::DEFAULT_UNHEALTHY_AFTER)
    }

    /// The WAL options these settings make.
    #[must_use]
    pub fn options(&self) -> magpie_wal::Options {
        magpie_wal::Options {
            max_bytes: self.max_bytes.0,
            segment_bytes: self.segment_bytes.0,
            fsync_interval: self.fsync.0,
            ..magpie_wal::Options::default()
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            max_bytes: Self::default_max_bytes(),
            segment_bytes: Self::default_segment_bytes(),
            fsync: Self::default_fsync(),
            unhealthy_after: Self::default_unhealthy_after(),
        }
    }
}

/// One `[[scrape]]` job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrape {
    /// The job name, the `job` label of its samples.
    pub job: Spanned<String>,
    /// The scraper plugin, found as `<plugin_dir>/<plugin>.cwasm` (precompiled)
    /// or `<plugin_dir>/<plugin>.wasm`.
    pub plugin: Spanned<String>,
    /// Time between scrapes of a target.
    #[serde(default = "Scrape::default_interval")]
    pub interval: Dur,
    /// Budget of one scrape; at most the interval. Default: 10 s, or the interval when that
    /// is shorter (as Prometheus does).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// URLs to scrape; each is granted to the plugin. A job without targets (a host collector
    /// such as `node`) is scraped once per interval with an empty target.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Targets as `host:port` with labels, as Prometheus' `static_configs`.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Path prefixes the plugin may read. Default: `["/proc", "/sys"]` for the `node` plugin,
    /// nothing for others.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
    /// Keep labels of scraped samples that clash with `job`/`instance` (else they are renamed
    /// `exported_job`/`exported_instance`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Keep the timestamps targets expose (the default). `false` stamps every sample with
    /// the scrape's own time, as Prometheus' `honor_timestamps: false`.
    #[serde(default = "Scrape::default_honor_timestamps")]
    pub honor_timestamps: bool,
    /// HTTP basic auth sent to every target of the job, the password read from
    /// `password_file` (as `[[export]]`'s). The collector adds the header to the plugin's
    /// requests; the plugin never sees it. Credentials in target URLs are refused.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token sent to every target (`Authorization: Bearer …`); a bare
    /// file name is read from `$CREDENTIALS_DIRECTORY` when that is set.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings for `https://` targets: the CA to trust, a client certificate and key
    /// (mutual TLS). Server certificates are always verified.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Scrapes with more samples than this fail (0 = no limit).
    #[serde(default)]
    pub sample_limit: u32,
    /// Most targets (static and discovered) the job may have (0 = no limit); over it, every
    /// target's scrape fails (`up` 0) until the count drops, as in Prometheus.
    #[serde(default)]
    pub target_limit: u32,
    /// Scrapes with a series of more labels than this fail (0 = no limit); after
    /// `metric_relabel_configs`, `__name__` included, as in Prometheus.
    #[serde(default)]
    pub label_limit: u32,
    /// Scrapes with a label name longer than this (bytes) fail (0 = no limit).
    #[serde(default)]
    pub label_name_length_limit: u32,
    /// Scrapes with a label value longer than this (bytes) fail (0 = no limit).
    #[serde(default)]
    pub label_value_length_limit: u32,
    /// Bodies larger than this fail the scrape (0 = no limit).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// The plugin's linear memory cap.
    #[serde(default = "Scrape::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// Rules applied to every scraped sample after `job` and `instance` are attached, with
    /// Prometheus' semantics; a sample a rule drops never reaches the WAL.
    #[serde(default)]
    pub metric_relabel_configs: Vec<magpie_scrape::relabel::RelabelConfig>,
    /// Targets read from files (JSON or YAML target groups), re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<magpie_scrape::discovery::FileSdConfig>,
    /// Targets from HTTP endpoints answering JSON target groups, asked every
    /// `refresh_interval` (default 60s); a failed answer keeps the last good targets.
    #[serde(default)]
    pub http_sd_configs: Vec<magpie_scrape::discovery::http::HttpSdConfig>,
    /// Targets from DNS SRV, A or AAAA records, resolved every `refresh_interval` (default
    /// 30s); a name that cannot be resolved keeps its last targets.
    #[serde(default)]
    pub dns_sd_configs: Vec<magpie_scrape::discovery::dns::DnsSdConfig>,
    /// Targets from the Kubernetes API (roles `node`, `pod`, `service`, `endpoints`,
    /// `endpointslice`, `ingress`), listed and watched.
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<magpie_scrape::discovery::kubernetes::KubernetesSdConfig>,
    /// Rules applied to every target (static or discovered) before it is scraped, with
    /// Prometheus' semantics: they see `__address__`, `__scheme__`, `__metrics_path__`,
    /// `__param_*`, `__meta_*` and may rewrite or drop the target.
    #[serde(default)]
    pub relabel_configs: Vec<magpie_scrape::relabel::RelabelConfig>,
    /// Scheme of discovered targets (`__scheme__`).
    #[serde(default = "Scrape::default_scheme")]
    pub scheme: String,
    /// Query parameters added to the URL of every target, static or discovered (as
    /// Prometheus' `params`, seen by `relabel_configs` as `__param_<name>`):
    /// `params = { module = ["if_mib"] }`.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// Path of discovered targets (`__metrics_path__`).
    #[serde(default = "Scrape::default_metrics_path")]
    pub metrics_path: String,
    /// CPU time the plugin may spend in one scrape (raise it on 32-bit ARM, where plugins run
    /// in the Pulley interpreter).
    #[serde(default = "Scrape::default_cpu_limit")]
    pub cpu_limit: Dur,
    /// Table handed to the plugin.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

impl Scrape {
    const fn default_honor_timestamps() -> bool {
        true
    }

    fn default_scheme() -> String {
        "http".into()
    }

    fn default_metrics_path() -> String {
        "/metrics".into()
    }

    const fn default_cpu_limit() -> Dur {
        Dur(Duration::from_secs(2))
    }

    const fn default_interval() -> Dur {
        Dur(Duration::from_secs(15))
    }

    /// The scrape timeout in effect.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or_else(|| self.interval.0.min(Duration::from_secs(10)), |t| t.0)
    }

    const fn default_memory_limit() -> ByteSize {
        ByteSize(16 << 20)
    }

    /// The file grants in effect.
    #[must_use]
    pub fn file_grants(&self) -> Vec<PathBuf> {
        self.files.clone().unwrap_or_else(|| {
            if *self.plugin.get_ref() == "node" {
                vec![PathBuf::from("/proc"), PathBuf::from("/sys")]
            } else {
                Vec::new()
            }
        })
    }

    /// The plugin's configuration as the ABI carries it.
    #[must_use]
    pub fn plugin_config(&self) -> Value {
        self.config
            .as_ref()
            .map_or_else(Value::default, table_value)
    }
}

pub(crate) fn table_value(t: &toml::Table) -> Value {
    Value::Table(t.iter().map(|(k, v)| (k.clone(), toml_value(v))).collect())
}

fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::List(a.iter().map(toml_value).collect()),
        toml::Value::Table(t) => table_value(t),
    }
}

/// A configuration error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (`<built-in>` for the default).
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub col: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// A configuration with where it came from, so later checks can point at lines.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The parsed configuration.
    pub config: Config,
    /// The file it came from.
    pub file: PathBuf,
    text: String,
}

impl Loaded {
    /// The text it was parsed from.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// An error at byte offset `at` of the source.
    #[must_use]
    pub fn error_at(&self, at: usize, message: impl Into<String>) -> ConfigError {
        let (line, col) = line_col(&self.text, at);
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }
}

fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    (line, col)
}

/// The configuration `magpie run` uses without a file: the `node` plugin on this host every
/// 15 s, the WAL under `./magpie-data`, the status page on 127.0.0.1:9464.
pub const BUILTIN: &str = r#"
[[scrape]]
job = "node"
plugin = "node"
interval = "15s"
"#;

/// The built-in default plus a remote-write exporter named `remote-write` to `url`.
///
/// # Errors
/// When `url` is not an http(s) URL.
pub fn builtin_with_remote_write(url: &str) -> Result<Loaded, Vec<ConfigError>> {
    // A JSON string is a valid TOML basic string: this quotes and escapes the URL.
    let url = serde_json::to_string(url).unwrap_or_default();
    let text = format!(
        "{BUILTIN}\n[[export]]\nname = \"remote-write\"\nplugin = \"remote-write\"\nurl = {url}\n"
    );
    parse(Path::new("<built-in>"), &text)
}

/// Parses and validates configuration text; `file` names it in errors.
///
/// # Errors
/// Every problem found, each naming file, line and key.
pub fn parse(file: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((0, 0), |s| line_col(text, s.start));
        vec![ConfigError {
            file: file.into(),
            line,
            col,
            message: e.message().trim().to_string(),
        }]
    })?;
    let loaded = Loaded {
        config,
        file: file.into(),
        text: text.into(),
    };
    let errors = validate::validate(&loaded);
    if errors.is_empty() {
        prometheus::include(loaded)
    } else {
        Err(errors)
    }
}

/// Reads and parses a configuration file.
///
/// # Errors
/// An unreadable file, or every problem found in it.
pub fn load(file: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![ConfigError {
            file: file.into(),
            line: 0,
            col: 0,
            message: format!("cannot read: {e}"),
        }]
    })?;
    if prometheus::is_prometheus_yaml(file, &text) {
        return prometheus::load(file, &text);
    }
    parse(file, &text)
}

/// The built-in default configuration.
///
/// # Panics
/// Never: the built-in text is tested to parse.
#[must_use]
pub fn builtin() -> Loaded {
    parse(Path::new("<built-in>"), BUILTIN)
        .unwrap_or_else(|e| panic!("built-in config is invalid: {e:?}"))
}

#[cfg(test)]
mod tests;
