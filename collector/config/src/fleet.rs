//! `[fleet]`: where this device fetches signed configuration bundles, and how it judges them.
//! It stays in the local file, with `[collector]`, `[wal]` and `[trust]`, so no bundle can
//! move the data directory, change the keys it is checked against or point the device at
//! another fleet.
//!
//! `url` is either an HTTP(S) directory polled for `manifest.json`, or an MQTT topic
//! (`mqtt://broker:1883/site-a/manifest`, `mqtts://…`) whose retained message carries the
//! manifest, its signature and where its files are (`crate::fleet::envelope`).

use super::{BasicAuth, Dur, Tls};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// `mqtt://host:port/topic/name` (or `mqtts://`) as the broker URL and the topic; `None` for
/// other schemes. The topic may be empty.
#[must_use]
pub fn mqtt_topic(url: &str) -> Option<(String, String)> {
    let scheme = ["mqtt://", "mqtts://"]
        .into_iter()
        .find(|s| url.starts_with(s))?;
    let rest = &url[scheme.len()..];
    let (host, topic) = rest.split_once('/').unwrap_or((rest, ""));
    Some((format!("{scheme}{host}"), topic.to_string()))
}

/// `[fleet]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The directory URL serving `manifest.json` and `manifest.json.sig` (`http://` or
    /// `https://`), as `magpie bundle build` writes them; or a broker and topic
    /// (`mqtt://host:port/topic/name`, `mqtts://…`) holding the retained envelope that
    /// `magpie bundle envelope` writes.
    pub url: Spanned<String>,
    /// For an MQTT `url`: the broker's user name and password file, as `[[export]]` takes it.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// For an `mqtts://` `url`: CA (and client certificate), as `[[export]]` takes it.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// How often the manifest is asked for (conditionally: unchanged costs one 304).
    #[serde(default = "Fleet::default_poll")]
    pub poll: Dur,
    /// How long a new bundle has to show itself healthy (its targets scraped, its exporters
    /// delivering, no plugin quarantined) before it is rolled back and marked bad.
    #[serde(default = "Fleet::default_health_window")]
    pub health_window: Dur,
    /// This device's id for rollout selectors. Default: the host name.
    #[serde(default)]
    pub device_id: Option<String>,
    /// This device's labels for rollout selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Fleet {
    const fn default_poll() -> Dur {
        Dur(Duration::from_secs(60))
    }

    const fn default_health_window() -> Dur {
        Dur(Duration::from_secs(120))
    }

    /// The device id in effect: `device_id`, else the host name, else `unknown`.
    #[must_use]
    pub fn device_id(&self) -> String {
        self.device_id.clone().unwrap_or_else(|| {
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .iter()
                .find_map(|p| {
                    std::fs::read_to_string(p)
                        .ok()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                })
                .unwrap_or_else(|| "unknown".into())
        })
    }

    /// For an MQTT `url`: the broker URL and the topic.
    #[must_use]
    pub fn mqtt_topic(&self) -> Option<(String, String)> {
        mqtt_topic(self.url.get_ref())
    }

    /// Problems with the settings, each naming the key.
    #[must_use]
    pub fn problems(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let url = self.url.get_ref();
        if let Some((broker, topic)) = self.mqtt_topic() {
            let at = self.url.span().start;
            #[cfg(not(feature = "mqtt"))]
            {
                let _ = &broker;
                out.push((
                    at,
                    format!(
                        "fleet.url: `{url}`: this build has no MQTT support (cargo feature `mqtt`)"
                    ),
                ));
            }
            #[cfg(feature = "mqtt")]
            if let Err(e) = magpie_transport::mqtt::BrokerUrl::parse(&broker) {
                out.push((at, format!("fleet.url: {e}")));
            }
            if topic.is_empty() || topic.contains(['+', '#']) {
                out.push((
                    at,
                    format!("fleet.url: `{url}` names no topic (mqtt://broker:port/topic/name; no wildcards)"),
                ));
            }
        } else if !(url.starts_with("http://") || url.starts_with("https://")) {
            out.push((
                self.url.span().start,
                format!("fleet.url: `{url}` is not an http://, https://, mqtt:// or mqtts:// URL"),
            ));
        } else if self.basic_auth.is_some() || self.tls.is_some() {
            out.push((
                self.url.span().start,
                "fleet.basic_auth, fleet.tls: only for an mqtt:// or mqtts:// url".into(),
            ));
        }
        if self.poll.0 < Duration::from_millis(100) {
            out.push((0, "fleet.poll: must be 100ms or longer".into()));
        }
        if self.health_window.0 < Duration::from_millis(100) {
            out.push((0, "fleet.health_window: must be 100ms or longer".into()));
        }
        out
    }
}
