//! `magpie bundle publish`: puts a built bundle's envelope ([`crate::envelope`]) on the fleet
//! topic as a retained QoS 1 message, through the transport's MQTT client, so operators need
//! no other MQTT tool and reach the broker with the same settings devices use.
//!
//! The broker settings come from flags or from a small TOML file (`--mqtt-config FILE`) with
//! the keys an `[[export]]` MQTT URL takes:
//!
//! ```toml
//! url = "mqtts://broker.lan:8883/site-a/manifest"
//! basic_auth = { username = "ops", password_file = "/etc/magpie/ops.pass" }
//! tls = { ca_file = "/etc/magpie/broker-ca.pem" }
//! ```
//!
//! Flags given win over the file's keys. The command returns once the broker acknowledged the
//! message (PUBACK), or fails naming the broker and why.

use crate::envelope::Envelope;
use crate::manifest::Manifest;
use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use magpie_config::{BasicAuth, Tls};
use magpie_transport::delivery::RetryPolicy;
use magpie_transport::mqtt::{MqttClient, MqttSettings, Qos};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long connecting and the acknowledgement may take together.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to publish: `--mqtt-config FILE`, then the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `mqtt://host[:port]/topic` or `mqtts://…`.
    pub url: Option<String>,
    /// The broker's user name and password file.
    pub basic_auth: Option<BasicAuth>,
    /// For `mqtts://`: CA, and client certificate and key.
    pub tls: Option<Tls>,
    /// The MQTT client id; default `magpie-bundle-<pid>`.
    pub client_id: Option<String>,
}

impl Target {
    /// Reads `--mqtt-config FILE`.
    ///
    /// # Errors
    /// An unreadable file or unknown keys, naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    /// Applies the flags: each given one replaces the file's.
    pub fn with_flags(mut self, f: Flags) -> Self {
        self.url = f.url.or(self.url);
        if let Some(username) = f.username {
            let password_file = f
                .password_file
                .clone()
                .or_else(|| self.basic_auth.as_ref().map(|b| b.password_file.clone()))
                .unwrap_or_default();
            self.basic_auth = Some(BasicAuth {
                username,
                password_file,
            });
        } else if let (Some(p), Some(b)) = (f.password_file, self.basic_auth.as_mut()) {
            b.password_file = p;
        }
        if f.ca_file.is_some() || f.cert_file.is_some() || f.key_file.is_some() {
            let t = self.tls.get_or_insert(Tls {
                ca_file: None,
                cert_file: None,
                key_file: None,
                server_name: None,
            });
            t.ca_file = f.ca_file.or(t.ca_file.take());
            t.cert_file = f.cert_file.or(t.cert_file.take());
            t.key_file = f.key_file.or(t.key_file.take());
        }
        self.client_id = f.client_id.or(self.client_id);
        self
    }
}

/// The broker flags of `bundle publish`.
#[derive(Debug, Default)]
pub struct Flags {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_id: Option<String>,
}

/// Publishes the envelope of the bundle built in `dir` as the retained message of the target's
/// topic. Returns a line saying what was published.
///
/// # Errors
/// A bad target or bundle, an unreadable password or certificate file, a broker that cannot
/// be reached, refuses the connection or does not acknowledge in time.
pub fn publish(dir: &Path, base_url: Option<&str>, target: &Target) -> Result<String> {
    let url = target.url.as_deref().context(
        "bundle publish needs --mqtt mqtt://broker[:port]/topic (or url in --mqtt-config)",
    )?;
    let Some((broker, topic)) = magpie_config::mqtt_topic(url) else {
        bail!("--mqtt `{url}`: not an mqtt:// or mqtts:// URL");
    };
    if topic.is_empty() || topic.contains(['+', '#']) {
        bail!("--mqtt `{url}` names no topic (mqtt://broker:port/topic/name; no wildcards)");
    }
    if target.tls.is_some() && !broker.starts_with("mqtts://") {
        bail!("--mqtt `{url}`: TLS settings need an mqtts:// URL");
    }
    let envelope = Envelope::of_dir(dir, base_url).map_err(anyhow::Error::msg)?;
    let version = Manifest::parse(envelope.manifest.as_bytes())
        .map(|m| m.version)
        .unwrap_or_default();
    let credentials = match &target.basic_auth {
        Some(b) => match magpie_transport::Auth::basic(&b.username, &b.password_file)
            .with_context(|| format!("basic_auth: {}", b.password_file.display()))?
        {
            magpie_transport::Auth::Basic { username, password } => Some((username, password)),
            _ => None,
        },
        None => None,
    };
    let settings = MqttSettings {
        url: broker.clone(),
        client_id: target
            .client_id
            .clone()
            .unwrap_or_else(|| format!("magpie-bundle-{}", std::process::id())),
        credentials,
        tls: Tls::options(target.tls.as_ref()),
        keep_alive: Duration::from_secs(30),
        clean_session: true,
        status_topic: None,
        max_inflight: 1,
        reconnect: RetryPolicy {
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        },
    };
    let json = envelope.to_json();
    let size = json.len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = MqttClient::start(settings)?;
        let sent = tokio::time::timeout(
            PUBLISH_TIMEOUT,
            client.publish_retained(&topic, Bytes::from(json), Qos::AtLeastOnce),
        )
        .await;
        client.close().await;
        match sent {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(_) => bail!("{broker}: no acknowledgement within {PUBLISH_TIMEOUT:?}"),
        }
    })
    .with_context(|| format!("publishing to {url}"))?;
    Ok(format!(
        "{url}: bundle {version} published (retained, QoS 1, {size} bytes; files from {})",
        envelope.base_url
    ))
}
