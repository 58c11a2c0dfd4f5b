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

use magpie_sdk::abi::Value;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

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
    /// Where plugins are found, as `<plugin_dir>/<name>.wasm`. Default: `/usr/lib/magpie/plugins`
    /// when it exists, else `target/plugins` (a source checkout).
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    /// Labels added to every sample on export.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
}

impl Collector {
    fn default_data_dir() -> PathBuf {
        PathBuf::from("magpie-data")
    }

    fn default_listen() -> String {
        "127.0.0.1:9464".into()
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
        }
    }
}

/// One `[[scrape]]` job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrape {
    /// The job name, the `job` label of its samples.
    pub job: Spanned<String>,
    /// The scraper plugin, found as `<plugin_dir>/<plugin>.wasm`.
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
    /// Path prefixes the plugin may read. Default: `["/proc", "/sys"]` for the `node` plugin,
    /// nothing for others.
    #[serde(default)]
    pub files: Option<Vec<PathBuf>>,
    /// Keep labels of scraped samples that clash with `job`/`instance` (else they are renamed
    /// `exported_job`/`exported_instance`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Scrapes with more samples than this fail (0 = no limit).
    #[serde(default)]
    pub sample_limit: u32,
    /// Bodies larger than this fail the scrape (0 = no limit).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// The plugin's linear memory cap.
    #[serde(default = "Scrape::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// Rules applied to every scraped sample after `job` and `instance` are attached, with
    /// Prometheus' semantics; a sample a rule drops never reaches the WAL.
    #[serde(default)]
    pub metric_relabel_configs: Vec<crate::relabel::RelabelConfig>,
    /// Targets read from files (JSON or YAML target groups), re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<crate::discovery::FileSdConfig>,
    /// Scheme of targets from `file_sd_configs`.
    #[serde(default = "Scrape::default_scheme")]
    pub scheme: String,
    /// Path of targets from `file_sd_configs`.
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

/// One `[[export]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// The exporter's name; its WAL cursor is kept under it.
    pub name: Spanned<String>,
    /// The exporter plugin, found as `<plugin_dir>/<plugin>.wasm`.
    pub plugin: Spanned<String>,
    /// Where to deliver: `http(s)://…` or `mqtt(s)://…`.
    pub url: Spanned<String>,
    /// MQTT topic template.
    #[serde(default)]
    pub topic: Option<String>,
    /// The plugin's linear memory cap.
    #[serde(default = "Scrape::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// CPU time the plugin may spend encoding one batch.
    #[serde(default = "Scrape::default_cpu_limit")]
    pub cpu_limit: Dur,
    /// Most samples read from the WAL and encoded per batch.
    #[serde(default = "Export::default_max_samples_per_send")]
    pub max_samples_per_send: usize,
    /// Drain rate cap in samples per second while a backlog is sent (0 = no cap).
    #[serde(default)]
    pub max_samples_per_second: u64,
    /// Samples older than this when read for sending are dropped and counted (unset = none).
    #[serde(default)]
    pub sample_age_limit: Option<Dur>,
    /// Budget of one send.
    #[serde(default = "Export::default_timeout")]
    pub timeout: Dur,
    /// First retry delay.
    #[serde(default = "Export::default_min_backoff")]
    pub min_backoff: Dur,
    /// Largest retry delay.
    #[serde(default = "Export::default_max_backoff")]
    pub max_backoff: Dur,
    /// HTTP basic auth; the password is read from `password_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings; verification is always on.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Table handed to the plugin.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

/// `basic_auth = { username = "...", password_file = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file holding the password.
    pub password_file: PathBuf,
}

/// `tls = { ca_file = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl Export {
    const fn default_max_samples_per_send() -> usize {
        2000
    }

    const fn default_timeout() -> Dur {
        Dur(Duration::from_secs(30))
    }

    const fn default_min_backoff() -> Dur {
        Dur(Duration::from_millis(30))
    }

    const fn default_max_backoff() -> Dur {
        Dur(Duration::from_secs(5))
    }

    /// The plugin's configuration as the ABI carries it.
    #[must_use]
    pub fn plugin_config(&self) -> Value {
        self.config
            .as_ref()
            .map_or_else(Value::default, table_value)
    }
}

fn table_value(t: &toml::Table) -> Value {
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

/// A duration written as `15s`, `1m30s`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration like \"15s\" or \"1m30s\": {e}"
            ))
        })
    }
}

/// A size written as an integer of bytes or a string such as `64MiB`, `512KiB`, `1GB`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `64MiB`, `4 MiB`, `1GB`, `100`.
    ///
    /// # Errors
    /// A message saying what is accepted.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size like \"64MiB\""))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => {
                return Err(format!(
                    "`{s}`: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Str(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
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
    let errors = validate(&loaded);
    if errors.is_empty() {
        Ok(loaded)
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

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate(l: &Loaded) -> Vec<ConfigError> {
    let c = &l.config;
    let mut errs = Vec::new();
    for name in c.collector.external_labels.keys() {
        if !is_label_name(name) || name.starts_with("__") {
            errs.push(ConfigError {
                file: l.file.clone(),
                line: 0,
                col: 0,
                message: format!("collector.external_labels: `{name}` is not a valid label name"),
            });
        }
    }
    let wal = c.wal.options();
    if let Err(e) = wal.validate() {
        errs.push(ConfigError {
            file: l.file.clone(),
            line: 0,
            col: 0,
            message: format!("wal: {e}"),
        });
    }
    let mut jobs = HashSet::new();
    for s in &c.scrape {
        let at = s.span().start;
        let s = s.get_ref();
        let job = s.job.get_ref();
        if job.is_empty() {
            errs.push(l.error_at(s.job.span().start, "job: must not be empty"));
        } else if !jobs.insert(job.clone()) {
            errs.push(l.error_at(s.job.span().start, format!("job: `{job}` is defined twice")));
        }
        if s.interval.0.is_zero() {
            errs.push(l.error_at(
                at,
                format!("scrape job `{job}`: interval must be longer than 0s"),
            ));
        }
        if s.timeout() > s.interval.0 {
            errs.push(l.error_at(
                at,
                format!(
                    "scrape job `{job}`: timeout ({:?}) must not exceed interval ({:?})",
                    s.timeout(),
                    s.interval.0
                ),
            ));
        }
        if let Err(e) = crate::relabel::compile(&s.metric_relabel_configs) {
            errs.push(l.error_at(
                at,
                format!("scrape job `{job}`: metric_relabel_configs: {e}"),
            ));
        }
        for sd in &s.file_sd_configs {
            if let Err(list) = sd.validate() {
                for e in list {
                    errs.push(l.error_at(at, format!("scrape job `{job}`: file_sd_configs: {e}")));
                }
            }
        }
        if !matches!(s.scheme.as_str(), "http" | "https") {
            errs.push(l.error_at(
                at,
                format!(
                    "scrape job `{job}`: scheme: `{}` is not http or https",
                    s.scheme
                ),
            ));
        }
        let mut targets = HashSet::new();
        for t in &s.targets {
            if !(t.starts_with("http://") || t.starts_with("https://")) {
                errs.push(l.error_at(
                    at,
                    format!("scrape job `{job}`: targets: `{t}` is not an http:// or https:// URL"),
                ));
            }
            if !targets.insert(t) {
                errs.push(l.error_at(
                    at,
                    format!("scrape job `{job}`: targets: `{t}` is listed twice"),
                ));
            }
        }
        for f in s.file_grants() {
            if !f.is_absolute() || f.components().any(|c| c == std::path::Component::ParentDir) {
                errs.push(l.error_at(
                    at,
                    format!(
                        "scrape job `{job}`: files: `{}` must be an absolute path without `..`",
                        f.display()
                    ),
                ));
            }
        }
    }
    let mut names = HashSet::new();
    for e in &c.export {
        let e = e.get_ref();
        let name = e.name.get_ref();
        if !names.insert(name.clone()) {
            errs.push(l.error_at(
                e.name.span().start,
                format!("name: exporter `{name}` is defined twice"),
            ));
        }
        if e.max_samples_per_send == 0 {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: max_samples_per_send must be at least 1"),
            ));
        }
        if e.min_backoff.0 > e.max_backoff.0 {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: min_backoff must not exceed max_backoff"),
            ));
        }
        if e.basic_auth.is_some() && e.bearer_token_file.is_some() {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: basic_auth and bearer_token_file are exclusive"),
            ));
        }
        let url = e.url.get_ref();
        if !["http://", "https://", "mqtt://", "mqtts://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            errs.push(l.error_at(
                e.url.span().start,
                format!("url: `{url}` is not an http(s):// or mqtt(s):// URL"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("m.toml"), text)
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn builtin_parses_to_the_documented_default() {
        let l = builtin();
        assert_eq!(l.config.collector.data_dir, PathBuf::from("magpie-data"));
        assert_eq!(l.config.collector.listen, "127.0.0.1:9464");
        assert_eq!(l.config.scrape.len(), 1);
        let s = l.config.scrape[0].get_ref();
        assert_eq!(s.plugin.get_ref(), "node");
        assert_eq!(s.interval.0, Duration::from_secs(15));
        assert_eq!(s.timeout(), Duration::from_secs(10));
        let l = parse(
            Path::new("t.toml"),
            "[[scrape]]\njob = \"n\"\nplugin = \"node\"\ninterval = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(
            l.config.scrape[0].get_ref().timeout(),
            Duration::from_secs(2)
        );
        assert_eq!(
            s.file_grants(),
            [PathBuf::from("/proc"), PathBuf::from("/sys")]
        );
    }

    #[test]
    fn design_example_parses() {
        let text = r#"
[collector]
data_dir = "/var/lib/magpie"
listen = "127.0.0.1:9464"
plugin_dir = "/usr/lib/magpie/plugins"
external_labels = { site = "pi-07" }

[wal]
max_bytes = "64MiB"
segment_bytes = "4MiB"
fsync = "1s"

[[scrape]]
job = "node"
plugin = "prom-scrape"
interval = "15s"
timeout = "10s"
targets = ["http://127.0.0.1:9100/metrics"]

[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:9090/api/v1/write"

[[scrape]]
job = "host"
plugin = "node"
interval = "15s"

[[export]]
name = "broker"
plugin = "mqtt"
url = "mqtt://127.0.0.1:1883"
topic = "magpie/{site}/metrics"
[export.config]
encoding = "json"
"#;
        let l = parse(Path::new("d.toml"), text).unwrap();
        assert_eq!(l.config.wal.max_bytes, ByteSize(64 << 20));
        assert_eq!(l.config.scrape.len(), 2);
        assert_eq!(
            l.config.export[1]
                .get_ref()
                .plugin_config()
                .get("encoding")
                .and_then(Value::as_str),
            Some("json")
        );
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let e = errors("[collector]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("m.toml:3:1: "), "{}", e[0]);
        assert!(e[0].contains("unknown field `listn`"), "{}", e[0]);
        let e = errors(
            "[[scrape]]\njob = \"a\"\nplugin = \"node\"\n\n[[scrape]]\njob = \"b\"\nplugin = \"node\"\nintervl = \"5s\"\n",
        );
        assert!(
            e[0].starts_with("m.toml:8:1: ") && e[0].contains("`intervl`"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn bad_values_name_the_line() {
        let e = errors("[wal]\nfsync = \"soon\"\n");
        assert!(
            e[0].starts_with("m.toml:2:9: ") && e[0].contains("`soon` is not a duration"),
            "{}",
            e[0]
        );
        let e = errors("[wal]\nmax_bytes = \"64 parsecs\"\n");
        assert!(
            e[0].starts_with("m.toml:2:") && e[0].contains("unknown unit"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn semantic_errors_point_at_the_job() {
        let e = errors(
            "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\ninterval = \"5s\"\ntimeout = \"10s\"\ntargets = [\"ftp://x\"]\n\n[[scrape]]\njob = \"a\"\nplugin = \"node\"\n",
        );
        assert!(
            e.iter().any(|m| m.starts_with("m.toml:1:")
                && m.contains("timeout (10s) must not exceed interval (5s)")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("`ftp://x` is not an http")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("m.toml:9:") && m.contains("`a` is defined twice")),
            "{e:?}"
        );
    }

    #[test]
    fn relabel_rules_and_file_sd_are_checked_at_load() {
        let ok = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.metric_relabel_configs]]\nsource_labels = [\"__name__\"]\nregex = \"go_.*\"\naction = \"drop\"\n[[scrape.file_sd_configs]]\nfiles = [\"targets/*.json\"]\n";
        assert!(errors(ok).is_empty(), "{:?}", errors(ok));
        let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.metric_relabel_configs]]\nsource_labels = [\"x\"]\nregex = \"(\"\n";
        let e = errors(bad);
        assert!(
            e[0].starts_with("m.toml:1:")
                && e[0].contains("metric_relabel_configs: relabel rule #1"),
            "{e:?}"
        );
        let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.file_sd_configs]]\nfiles = [\"t.txt\"]\n";
        assert!(
            errors(bad)[0].contains("file_sd_configs"),
            "{:?}",
            errors(bad)
        );
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
        assert_eq!(ByteSize::parse("4 MiB"), Ok(ByteSize(4 << 20)));
        assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1_000_000_000)));
        assert_eq!(ByteSize::parse("512"), Ok(ByteSize(512)));
        assert!(ByteSize::parse("MiB").is_err());
        assert!(ByteSize::parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn plugin_tables_become_abi_values() {
        let l = parse(Path::new("p.toml"), "[[scrape]]\njob = \"h\"\nplugin = \"hello\"\n[scrape.config]\na = 1\nb = [true, \"x\"]\n").unwrap();
        let v = l.config.scrape[0].get_ref().plugin_config();
        assert_eq!(v.get("a"), Some(&Value::Int(1)));
        assert_eq!(
            v.get("b"),
            Some(&Value::List(vec![
                Value::Bool(true),
                Value::Str("x".into())
            ]))
        );
    }
}
