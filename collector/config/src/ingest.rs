//! One `[[ingest]]`: a source of pushed data (an MQTT subscription or an HTTP listener), the
//! decoder plugins that read it, and its limits.

use super::{BasicAuth, ByteSize, Dur, Scrape, Tls, table_value};
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
    /// MQTT: user name and password file.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// MQTT: TLS settings for `mqtts://`.
    #[serde(default)]
    pub tls: Option<Tls>,
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
    /// `pushgateway`, `remote_write`, `influx`.
    #[must_use]
    pub fn decoder_plugins(&self) -> Vec<(&'static str, Spanned<String>)> {
        match self.kind() {
            Some(SourceKind::Mqtt) => self.plugin.iter().map(|p| ("mqtt", p.clone())).collect(),
            Some(SourceKind::Http) => match &self.decoders {
                Some(d) => [
                    ("pushgateway", &d.pushgateway),
                    ("remote_write", &d.remote_write),
                    ("influx", &d.influx),
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
                foreign(self.tls.is_some(), "tls", &mut err);
                foreign(self.basic_auth.is_some(), "basic_auth", &mut err);
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
