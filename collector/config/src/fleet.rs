//! `[fleet]`: where this device fetches signed configuration bundles, and how it judges them.
//! It stays in the local file, with `[collector]`, `[wal]` and `[trust]`, so no bundle can
//! move the data directory, change the keys it is checked against or point the device at
//! another fleet.

use super::Dur;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// `[fleet]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The directory URL serving `manifest.json` and `manifest.json.sig` (`http://` or
    /// `https://`), as `magpie bundle build` writes them.
    pub url: Spanned<String>,
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

    /// Problems with the settings, each naming the key.
    #[must_use]
    pub fn problems(&self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        let url = self.url.get_ref();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            out.push((
                self.url.span().start,
                format!("fleet.url: `{url}` is not an http:// or https:// URL"),
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
