//! `[export.mqtt]`: how an `mqtt://` or `mqtts://` exporter talks to its broker.
//!
//! ```toml
//! [[export]]
//! name = "broker"
//! plugin = "mqtt"
//! url = "mqtts://broker.lan:8883"
//! topic = "magpie/{site}/{job}"          # expanded per series; handed to the plugin
//! basic_auth = { username = "gw7", password_file = "/etc/magpie/mqtt.pass" }
//! tls = { ca_file = "/etc/magpie/broker-ca.pem" }
//! [export.mqtt]
//! qos = 1                                # 0 or 1
//! client_id = "magpie-gw7-broker"        # default magpie-<hostname>-<export name>
//! keep_alive = "30s"
//! clean_session = true
//! status_topic = "magpie/status/gw7"     # default magpie/status/<client_id>
//! max_inflight = 32
//! [export.config]
//! encoding = "json"                      # json | influx | remote-write
//! ```

use super::Dur;
use serde::Deserialize;
use std::num::NonZeroU16;
use std::time::Duration;

/// `[export.mqtt]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttExport {
    /// Quality of service of the payloads: 1 (default) waits for the broker's PUBACK before a
    /// batch is acknowledged in the WAL; 0 only for the message to be written to the socket,
    /// so a connection loss can lose what was written.
    #[serde(default = "MqttExport::default_qos")]
    pub qos: u8,
    /// MQTT client id. Default: `magpie-<hostname>-<export name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Keep-alive interval; `0s` turns pings off, otherwise at least 1 s. Default 30 s.
    #[serde(default = "MqttExport::default_keep_alive")]
    pub keep_alive: Dur,
    /// Ask the broker for a clean session at each connection (default true). With `false`
    /// the broker keeps the session across reconnects.
    #[serde(default = "MqttExport::default_clean_session")]
    pub clean_session: bool,
    /// Where the retained `online` (at each connect) and the last will `offline` go.
    /// Default: `magpie/status/<client_id>`.
    #[serde(default)]
    pub status_topic: Option<String>,
    /// Most messages waiting for the broker's acknowledgement at once. Default 32.
    #[serde(default = "MqttExport::default_max_inflight")]
    pub max_inflight: NonZeroU16,
}

impl MqttExport {
    const fn default_qos() -> u8 {
        1
    }

    const fn default_keep_alive() -> Dur {
        Dur(Duration::from_secs(30))
    }

    const fn default_clean_session() -> bool {
        true
    }

    const fn default_max_inflight() -> NonZeroU16 {
        NonZeroU16::new(32).unwrap()
    }
}

impl Default for MqttExport {
    fn default() -> Self {
        Self {
            qos: Self::default_qos(),
            client_id: None,
            keep_alive: Self::default_keep_alive(),
            clean_session: Self::default_clean_session(),
            status_topic: None,
            max_inflight: Self::default_max_inflight(),
        }
    }
}

/// Whether `url` is delivered over MQTT.
#[must_use]
pub fn is_mqtt_url(url: &str) -> bool {
    url.starts_with("mqtt://") || url.starts_with("mqtts://")
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use magpie_sdk::abi::Value;
    use std::path::Path;

    const BASE: &str = "[[export]]\nname = \"b\"\nplugin = \"mqtt\"\n";

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("m.toml"), text)
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn keys_and_defaults() {
        let l = parse(
            Path::new("m.toml"),
            &format!(
                "{BASE}url = \"mqtts://h:8883\"\ntopic = \"m/{{job}}\"\n[export.mqtt]\nqos = 0\nclient_id = \"c\"\nkeep_alive = \"10s\"\nclean_session = false\nstatus_topic = \"s/c\"\nmax_inflight = 4\n[export.config]\nencoding = \"influx\"\n"
            ),
        )
        .unwrap();
        let e = l.config.export[0].get_ref();
        let m = e.mqtt_settings();
        assert_eq!(m.qos, 0);
        assert_eq!(m.client_id.as_deref(), Some("c"));
        assert_eq!(m.keep_alive.0, Duration::from_secs(10));
        assert!(!m.clean_session);
        assert_eq!(m.status_topic.as_deref(), Some("s/c"));
        assert_eq!(m.max_inflight.get(), 4);
        // The host hands the topic to the plugin with its own table.
        let Value::Table(t) = e.plugin_config() else {
            panic!("not a table")
        };
        assert!(t.contains(&("topic".into(), Value::Str("m/{job}".into()))));
        assert!(t.contains(&("encoding".into(), Value::Str("influx".into()))));

        let l = parse(Path::new("m.toml"), &format!("{BASE}url = \"mqtt://h\"\n")).unwrap();
        assert_eq!(
            l.config.export[0].get_ref().mqtt_settings(),
            MqttExport::default()
        );
        assert_eq!(MqttExport::default().qos, 1);
    }

    #[test]
    fn mistakes_are_named() {
        for (extra, want) in [
            (
                "url = \"mqtt://h\"\n[export.mqtt]\nqos = 2\n",
                "qos must be 0 or 1",
            ),
            (
                "url = \"mqtt://h\"\n[export.mqtt]\nkeep_alive = \"500ms\"\n",
                "keep_alive",
            ),
            ("url = \"mqtt://h\"\n[export.mqtt]\nqoss = 1\n", "qoss"),
            ("url = \"mqtt://h\"\ntopic = \"a/#\"\n", "wildcards"),
            (
                "url = \"mqtt://h\"\n[export.config]\ntopic = \"a\"\n",
                "not in [export.config]",
            ),
            (
                "url = \"mqtt://h\"\nbearer_token_file = \"/t\"\n",
                "basic_auth",
            ),
            ("url = \"mqtt://h:0\"\n", "port"),
            ("url = \"mqtt://h/x\"\n", "path"),
            (
                "url = \"http://h/\"\ntopic = \"a\"\n",
                "mqtt:// and mqtts:// URLs only",
            ),
        ] {
            let errs = errors(&format!("{BASE}{extra}"));
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{extra}: expected `{want}` in {errs:?}"
            );
        }
        assert!(
            errors(&format!(
                "{BASE}url = \"mqtt://127.0.0.1:1883\"\ntopic = \"m/{{site}}\"\n"
            ))
            .is_empty()
        );
    }

    #[test]
    fn mqtt_urls() {
        assert!(is_mqtt_url("mqtt://h"));
        assert!(is_mqtt_url("mqtts://h"));
        assert!(!is_mqtt_url("https://h"));
    }
}
