//! One `[[ingest]]`: a source of pushed data (an MQTT subscription or an HTTP listener), the
//! decoder plugins that read it, and its limits.

use super::{ByteSize, Dur, Scrape, table_value};
use magpie_sdk::abi::Value;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// One `[[ingest]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    /// Names the source in logs, /metrics and the status page; MQTT samples without a `job`
    /// label get `job="<name>"`.
    pub name: Spanned<String>,
    /// `"mqtt"` or `"http"`.
    pub source: Spanned<String>,
    /// MQTT: the broker, `mqtt://host[:port]` or `mqtts://host[:port]` (with `tls`).
    #[serde(default)]
    pub url: Option<String>,
    /// MQTT: topic filters to subscribe to (`+` and `#` wildcards, `$share/<group>/…`).
    #[serde(default)]
    pub topics: Vec<String>,
    /// MQTT: subscription QoS, 0 or 1. With 1 the broker keeps messages for the persistent
    /// session while magpie is away and a message is acknowledged once it is in the WAL.
    #[serde(default = "Ingest::default_qos")]
    pub qos: u8,
    /// MQTT: the client id of the persistent session (default `magpie-ingest-<name>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT: the decoder plugin.
    #[serde(default)]
    pub plugin: Option<Spanned<String>>,
    /// HTTP: the address to listen on, e.g. `127.0.0.1:9091`.
    #[serde(default)]
    pub listen: Option<String>,
    /// HTTP: decoder plugins per kind of path. Absent: `prom-text` for Pushgateway paths,
    /// `remote-write-in` for `/api/v1/write` and `influx` for `/write` and `/api/v2/write`
    /// (that one only when the plugin directory holds it, so a plugin directory from before
    /// it shipped keeps working); a kind left out of the table is answered 404.
    #[serde(default)]
    pub decoders: Option<HttpDecoders>,
    /// HTTP: a file holding the bearer token pushers must send.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// MQTT: the user name and password file magpie logs in with. HTTP: the credentials
    /// pushers must send (`username` with `password_file`, and/or a `users_file`).
    #[serde(default)]
    pub basic_auth: Option<IngestBasicAuth>,
    /// MQTT: TLS settings for `mqtts://` (`ca_file`, `cert_file`, `key_file`). HTTP: serve
    /// HTTPS (`cert_file`, `key_file`), and with `client_ca_file` require client certificates.
    #[serde(default)]
    pub tls: Option<IngestTls>,
    /// Largest message body; larger HTTP bodies get 413, larger MQTT payloads are refused.
    #[serde(default = "Ingest::default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Most samples per message (0 = unlimited); more refuse the whole message.
    #[serde(default = "Ingest::default_sample_limit")]
    pub sample_limit: u32,
    /// Most messages per second (0 = unlimited), with a burst of one second's worth. Over it
    /// an HTTP source answers 429 with `Retry-After`; an MQTT source waits before reading the
    /// next message, so the broker holds the backlog and nothing is dropped.
    #[serde(default)]
    pub max_messages_per_second: u32,
    /// Acknowledge (HTTP 2xx, MQTT PUBACK) only once the samples are synced to the disk, not
    /// only written to the WAL's file. Survives power cuts, costs an fsync per message.
    #[serde(default)]
    pub fsync_ack: bool,
    /// The decoders' linear memory cap.
    #[serde(default = "Scrape::default_memory_limit")]
    pub memory_limit: ByteSize,
    /// CPU time a decoder may spend on one message.
    #[serde(default = "Scrape::default_cpu_limit")]
    pub cpu_limit: Dur,
    /// Table handed to the decoder plugins.
    #[serde(default)]
    pub config: Option<toml::Table>,
}

/// `[ingest.decoders]` of an HTTP source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDecoders {
    /// `PUT|POST /metrics/job/<job>{/<label>/<value>}`.
    pub pushgateway: Option<Spanned<String>>,
    /// `POST /api/v1/write`.
    pub remote_write: Option<Spanned<String>>,
    /// `POST /write`, `POST /api/v2/write`.
    pub influx: Option<Spanned<String>>,
    /// `POST /v1/metrics` (OTLP/HTTP), usually the `otlp` plugin.
    pub otlp: Option<Spanned<String>>,
}

/// `basic_auth` of an `[[ingest]]`. Every file given as a bare name is read from
/// `$CREDENTIALS_DIRECTORY` when that is set (systemd `LoadCredential=`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestBasicAuth {
    /// The user name (MQTT: the one magpie logs in with; HTTP: one accepted user).
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding `username`'s password (one line; a trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// HTTP: a file of accepted users, one `user:password` a line (htpasswd's plain form;
    /// `#` comments and blank lines skipped). Hashed entries are refused: the file is the
    /// secret, so keep it readable by magpie alone.
    #[serde(default)]
    pub users_file: Option<PathBuf>,
}

/// `tls` of an `[[ingest]]`. Each file given as a bare name is read from
/// `$CREDENTIALS_DIRECTORY` when that is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestTls {
    /// MQTT: PEM CA certificates to trust for the broker instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// MQTT: a client certificate for the broker. HTTP: the server's certificate (chain).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// HTTP: PEM CA certificates; when set, a pusher must present a certificate signed by
    /// one of them (mutual TLS), else the handshake is refused.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl IngestTls {
    /// The MQTT client's view of these settings.
    #[must_use]
    pub fn client_options(tls: Option<&Self>) -> magpie_transport::TlsOptions {
        tls.map_or_else(magpie_transport::TlsOptions::default, |t| {
            magpie_transport::TlsOptions {
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                server_name: None,
            }
        })
    }

    /// The HTTP listener's view of these settings, `None` without `cert_file` or `key_file`.
    #[must_use]
    pub fn server_options(&self) -> Option<magpie_transport::ServerTlsOptions> {
        Some(magpie_transport::ServerTlsOptions {
            cert_file: self.cert_file.clone()?,
            key_file: self.key_file.clone()?,
            client_ca_file: self.client_ca_file.clone(),
        })
    }
}

/// The kind of an `[[ingest]]` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An MQTT subscription.
    Mqtt,
    /// An HTTP listener.
    Http,
}

impl Ingest {
    const fn default_qos() -> u8 {
        1
    }

    const fn default_max_body_bytes() -> ByteSize {
        ByteSize(4 << 20)
    }

    const fn default_sample_limit() -> u32 {
        100_000
    }

    /// The source kind, `None` for an unknown `source`.
    #[must_use]
    pub fn kind(&self) -> Option<SourceKind> {
        match self.source.get_ref().as_str() {
            "mqtt" => Some(SourceKind::Mqtt),
            "http" => Some(SourceKind::Http),
            _ => None,
        }
    }

    /// The decoder plugins of the source, as `(route, plugin name)`; routes are `mqtt`,
    /// `pushgateway`, `remote_write`, `influx`, `otlp`.
    #[must_use]
    pub fn decoder_plugins(&self) -> Vec<(&'static str, Spanned<String>)> {
        match self.kind() {
            Some(SourceKind::Mqtt) => self.plugin.iter().map(|p| ("mqtt", p.clone())).collect(),
            Some(SourceKind::Http) => match &self.decoders {
                Some(d) => [
                    ("pushgateway", &d.pushgateway),
                    ("remote_write", &d.remote_write),
                    ("influx", &d.influx),
                    ("otlp", &d.otlp),
                ]
                .into_iter()
                .filter_map(|(r, p)| p.clone().map(|p| (r, p)))
                .collect(),
                None => {
                    let at = self.source.span();
                    vec![
                        ("pushgateway", Spanned::new(at.clone(), "prom-text".into())),
                        (
                            "remote_write",
                            Spanned::new(at.clone(), "remote-write-in".into()),
                        ),
                        ("influx", Spanned::new(at, "influx".into())),
                    ]
                }
            },
            None => Vec::new(),
        }
    }

    /// Whether the decoder of `route` is a default left out when its plugin is not
    /// installed (`influx` without `[ingest.decoders]`).
    #[must_use]
    pub fn optional_decoder(&self, route: &str) -> bool {
        self.decoders.is_none() && route == "influx"
    }

    /// The decoders' configuration as the ABI carries it.
    #[must_use]
    pub fn plugin_config(&self) -> Value {
        self.config
            .as_ref()
            .map_or_else(Value::default, table_value)
    }

    /// The problems of this section, in words (each names the source and the key).
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let name = self.name.get_ref();
        let mut errs = Vec::new();
        let mut err = |m: String| errs.push(format!("ingest `{name}`: {m}"));
        if name.is_empty() {
            err("name must not be empty".into());
        }
        let Some(kind) = self.kind() else {
            err(format!(
                "source: `{}` is not a source; use \"mqtt\" or \"http\"",
                self.source.get_ref()
            ));
            return errs;
        };
        let foreign = |set: bool, key: &str, err: &mut dyn FnMut(String)| {
            if set {
                err(format!(
                    "{key} does not apply to a {} source",
                    self.source.get_ref()
                ));
            }
        };
        match kind {
            SourceKind::Mqtt => {
                match &self.url {
                    None => err("url is required for an mqtt source".into()),
                    Some(u) => {
                        if let Err(e) = magpie_transport::mqtt::BrokerUrl::parse(u) {
                            err(format!("url: {e}"));
                        }
                    }
                }
                if self.topics.is_empty() {
                    err("topics must name at least one topic filter".into());
                }
                for t in &self.topics {
                    if t.is_empty() || t.contains('\0') {
                        err(format!("topics: `{t}` is not a topic filter"));
                    }
                }
                if self.qos > 1 {
                    err(format!("qos must be 0 or 1, found {}", self.qos));
                }
                if self.plugin.is_none() {
                    err("plugin (the decoder) is required for an mqtt source".into());
                }
                if self.client_id.as_deref() == Some("") {
                    err("client_id is empty".into());
                }
                foreign(self.listen.is_some(), "listen", &mut err);
                foreign(self.decoders.is_some(), "decoders", &mut err);
                foreign(
                    self.bearer_token_file.is_some(),
                    "bearer_token_file",
                    &mut err,
                );
                if let Some(b) = &self.basic_auth {
                    if b.username.is_none() || b.password_file.is_none() {
                        err(
                            "basic_auth needs username and password_file for an mqtt source".into(),
                        );
                    }
                    foreign(b.users_file.is_some(), "basic_auth.users_file", &mut err);
                }
                if let Some(t) = &self.tls {
                    foreign(t.client_ca_file.is_some(), "tls.client_ca_file", &mut err);
                }
            }
            SourceKind::Http => {
                match &self.listen {
                    None => err("listen is required for an http source".into()),
                    Some(l) => {
                        if l.parse::<std::net::SocketAddr>().is_err() {
                            err(format!(
                                "listen: `{l}` is not an address like 127.0.0.1:9091"
                            ));
                        }
                    }
                }
                foreign(self.url.is_some(), "url", &mut err);
                foreign(!self.topics.is_empty(), "topics", &mut err);
                foreign(self.client_id.is_some(), "client_id", &mut err);
                if let Some(b) = &self.basic_auth {
                    if b.username.is_some() != b.password_file.is_some() {
                        err("basic_auth: username and password_file go together".into());
                    }
                    if b.username.is_none() && b.users_file.is_none() {
                        err("basic_auth needs username with password_file, or users_file".into());
                    }
                    if b.username.as_deref() == Some("")
                        || b.username.as_deref().is_some_and(|u| u.contains(':'))
                    {
                        err("basic_auth.username must be non-empty and hold no `:`".into());
                    }
                }
                if let Some(t) = &self.tls {
                    foreign(
                        t.ca_file.is_some(),
                        "tls.ca_file (a server's CA; to require client certificates use client_ca_file)",
                        &mut err,
                    );
                    if t.cert_file.is_none() || t.key_file.is_none() {
                        err("tls needs cert_file and key_file to serve HTTPS".into());
                    }
                }
                if self.plugin.is_some() {
                    err("plugin does not apply to an http source; name decoders per path in [ingest.decoders]".into());
                }
                if self.decoder_plugins().is_empty() {
                    err("decoders names no decoder".into());
                }
            }
        }
        if self.max_body_bytes.0 == 0 {
            err("max_body_bytes must be at least 1".into());
        }
        errs
    }
}
