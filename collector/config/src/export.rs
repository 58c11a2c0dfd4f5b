//! One `[[export]]`: where an exporter delivers, with which plugin, credentials and TLS, and
//! how it paces and retries.

use super::{ByteSize, Dur, MqttExport, Scrape, is_mqtt_url, table_value};
use magpie_sdk::abi::Value;
use magpie_transport::Auth;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// One `[[export]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// The exporter's name; its WAL cursor is kept under it.
    pub name: Spanned<String>,
    /// The exporter plugin, found as `<plugin_dir>/<plugin>.cwasm` (precompiled)
    /// or `<plugin_dir>/<plugin>.wasm`.
    pub plugin: Spanned<String>,
    /// Where to deliver: `http(s)://…` or `mqtt(s)://…`.
    pub url: Spanned<String>,
    /// MQTT topic template, `{label}` placeholders expanded per series from its labels
    /// (external labels included), e.g. `magpie/{site}/{job}`. Only for `mqtt(s)://` URLs;
    /// the host hands it to the plugin as its config key `topic`.
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
    /// After an outage or a restart, send new samples first and the backlog behind them,
    /// instead of oldest first. Only for receivers that accept out-of-order samples
    /// (Prometheus with `out_of_order_time_window`, VictoriaMetrics).
    #[serde(default)]
    pub newest_first: bool,
    /// Hand the plugin the exemplars scraped with the samples (OpenMetrics `# {…}` on
    /// counters and histogram buckets), as Prometheus' `send_exemplars`. Off by default: a
    /// receiver stores them only with its exemplar storage enabled.
    #[serde(default)]
    pub send_exemplars: bool,
    /// Budget of one send.
    #[serde(default = "Export::default_timeout")]
    pub timeout: Dur,
    /// First retry delay.
    #[serde(default = "Export::default_min_backoff")]
    pub min_backoff: Dur,
    /// Largest retry delay.
    #[serde(default = "Export::default_max_backoff")]
    pub max_backoff: Dur,
    /// HTTP basic auth, or the MQTT user name and password; the password is read from
    /// `password_file`. Credentials in `url` (`https://user:pass@…`) are refused: they would
    /// show in logs and errors.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token. A bare file name is read from `$CREDENTIALS_DIRECTORY`
    /// when that is set (see [`BasicAuth::password_file`]).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Extra HTTP headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS settings (`https://`, `mqtts://`); verification is always on.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// MQTT connection settings (`qos`, `client_id`, `keep_alive`, `clean_session`,
    /// `status_topic`, `max_inflight`); only for `mqtt(s)://` URLs. Defaults apply when absent.
    #[serde(default)]
    pub mqtt: Option<MqttExport>,
    /// Rules applied to each series on its way out (external labels included), as
    /// Prometheus' remote write `write_relabel_configs`: a series they drop is not sent to this
    /// exporter, and others still get it.
    #[serde(default)]
    pub write_relabel_configs: Vec<magpie_scrape::relabel::RelabelConfig>,
    /// Send the scraped metric metadata (`TYPE`, `HELP`, `UNIT`) in requests of its own, as
    /// Prometheus' remote write `metadata_config`:
    /// `metadata = { send = true, send_interval = "1m", max_samples_per_send = 500 }`.
    /// Absent: no metadata is sent. Only exporter plugins that encode metadata use it
    /// (`remote-write` with protocol 1.0).
    #[serde(default)]
    pub metadata: Option<ExportMetadata>,
    /// Table handed to the plugin.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

/// `metadata = { send = true, send_interval = "1m", max_samples_per_send = 500 }`, with
/// Prometheus' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMetadata {
    /// Whether metadata is sent.
    #[serde(default = "ExportMetadata::default_send")]
    pub send: bool,
    /// Time between two sends of all metadata.
    #[serde(default = "ExportMetadata::default_send_interval")]
    pub send_interval: Dur,
    /// Most metric families per request.
    #[serde(default = "ExportMetadata::default_max_samples_per_send")]
    pub max_samples_per_send: usize,
}

impl ExportMetadata {
    const fn default_send() -> bool {
        true
    }

    const fn default_send_interval() -> Dur {
        Dur(Duration::from_secs(60))
    }

    const fn default_max_samples_per_send() -> usize {
        500
    }
}

/// `basic_auth = { username = "...", password_file = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// A file holding the password (one line; a trailing newline is ignored). A bare file
    /// name (`password_file = "central.pass"`) is read from `$CREDENTIALS_DIRECTORY` when
    /// that is set, which is where systemd's `LoadCredential=central.pass:/etc/magpie/…`
    /// puts it, readable by the service alone; a path with a directory is used as written.
    pub password_file: PathBuf,
}

/// `tls = { ca_file = "...", cert_file = "...", key_file = "..." }`. Server certificates are
/// always verified. Each file given as a bare name is read from `$CREDENTIALS_DIRECTORY` when
/// that is set (systemd `LoadCredential=`), like [`BasicAuth::password_file`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) for receivers that require one; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for, sent as SNI, instead of the
    /// URL's host (a DNS name or an IP address), as Prometheus' `tls_config.server_name`.
    /// For a target or receiver reached by IP whose certificate names it. HTTP(S) only.
    pub server_name: Option<String>,
}

impl Tls {
    /// The transport's view of these settings.
    #[must_use]
    pub fn options(tls: Option<&Self>) -> magpie_transport::TlsOptions {
        tls.map_or_else(magpie_transport::TlsOptions::default, |t| {
            magpie_transport::TlsOptions {
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                server_name: t.server_name.clone(),
            }
        })
    }

    /// What is wrong with `server_name` as written, for `what` (`scrape job `x``), or
    /// `None`. `mqtt` says the settings are for an MQTT broker, which cannot honour it.
    pub(crate) fn server_name_problem(
        tls: Option<&Self>,
        what: &str,
        mqtt: bool,
    ) -> Option<String> {
        let name = tls?.server_name.as_deref()?;
        if mqtt {
            return Some(format!(
                "{what}: tls.server_name `{name}` is not supported for MQTT brokers: connect by a name the broker's certificate holds"
            ));
        }
        magpie_transport::server_name(name)
            .err()
            .map(|e| format!("{what}: {e}"))
    }
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

    /// The plugin's configuration as the ABI carries it. For an MQTT export the host adds the
    /// export's `topic` as key `topic`, so the plugin can expand it per series (the ABI's
    /// `Init` stays as it is).
    #[must_use]
    pub fn plugin_config(&self) -> Value {
        let mut v = self
            .config
            .as_ref()
            .map_or_else(Value::default, table_value);
        if let (Some(topic), true, Value::Table(t)) =
            (&self.topic, is_mqtt_url(self.url.get_ref()), &mut v)
        {
            t.push(("topic".into(), Value::Str(topic.clone())));
        }
        v
    }

    /// The MQTT settings, defaults filled in.
    #[must_use]
    pub fn mqtt_settings(&self) -> MqttExport {
        self.mqtt.clone().unwrap_or_default()
    }

    /// The headers an exporter adds to every request: its configured ones and its credentials.
    ///
    /// # Errors
    /// An unreadable secret file.
    pub fn request_headers(&self) -> Result<Vec<(String, String)>, magpie_transport::Error> {
        let mut h: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let auth = match (&self.basic_auth, &self.bearer_token_file) {
            (Some(b), _) => Auth::basic(&b.username, &b.password_file)?,
            (None, Some(f)) => Auth::bearer(f)?,
            (None, None) => Auth::None,
        };
        h.extend(auth.header());
        Ok(h)
    }

    /// The user name and password of an MQTT exporter (`basic_auth`), read from the file.
    ///
    /// # Errors
    /// An unreadable or empty password file.
    #[cfg(feature = "mqtt")]
    pub fn mqtt_credentials(&self) -> Result<Option<(String, String)>, magpie_transport::Error> {
        self.basic_auth
            .as_ref()
            .map(|b| match Auth::basic(&b.username, &b.password_file)? {
                Auth::Basic { username, password } => Ok((username, password)),
                _ => unreachable!("Auth::basic gives basic credentials"),
            })
            .transpose()
    }
}
