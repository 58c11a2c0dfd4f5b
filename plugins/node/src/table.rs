//! The plugin's `[scrape.config]` table, read into a [`Config`] when the plugin is initialised,
//! so that a typo or a wrong type fails `magpie check` instead of being ignored.
//!
//! Every key is optional; an absent key keeps the [`Config::default`] value, and a list
//! replaces the default list rather than extending it.
//!
//! ```toml
//! [scrape.config]
//! collectors = ["cpu", "meminfo", "loadavg", "filesystem"]   # default: all
//! procfs = "/proc"
//! sysfs = "/sys"
//! rootfs = "/"
//! udev_data = "/run/udev/data"
//! mount_points_exclude = ["/dev", "/dev/*", "/proc", "/proc/*", "/sys", "/sys/*"]
//! fs_types_exclude = ["proc", "sysfs", "tmpfs"]
//! disk_devices_exclude = ["loop#", "ram#"]
//! net_devices_exclude = ["lo", "veth*"]
//! rpi_get_throttled = "devices/platform/soc/soc:firmware/get_throttled"
//! ```

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use magpie_sdk::abi::Value;

use crate::config::{Collector, Config};

/// The keys the table may hold.
pub const CONFIG_KEYS: &[&str] = &[
    "collectors",
    "procfs",
    "sysfs",
    "rootfs",
    "udev_data",
    "mount_points_exclude",
    "fs_types_exclude",
    "disk_devices_exclude",
    "net_devices_exclude",
    "rpi_get_throttled",
];

pub use magpie_sdk::abi::ConfigError;

fn absolute_path(key: &str, v: &Value) -> Result<String, ConfigError> {
    let s = v.expect_str(key)?;
    if !s.starts_with('/') {
        return Err(ConfigError::new(
            key,
            format!("{s:?} is not an absolute path"),
        ));
    }
    Ok(s.into())
}

fn collectors(key: &str, v: &Value) -> Result<Vec<Collector>, ConfigError> {
    let mut out = Vec::new();
    for name in v.expect_strings(key)? {
        let c = Collector::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
            ConfigError::new(
                key,
                format!(
                    "unknown collector {name:?}; the collectors are {}",
                    known.join(", ")
                ),
            )
        })?;
        // Listing one twice is harmless; it still runs once.
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

impl Config {
    /// Reads the plugin's `[scrape.config]` table; absent keys keep their defaults.
    ///
    /// # Errors
    /// An unknown key, a value of the wrong type, an unknown collector name, or a relative
    /// path where an absolute one is needed.
    pub fn from_table(table: &Value) -> Result<Config, ConfigError> {
        table.expect_table(CONFIG_KEYS)?;
        let mut cfg = Config::default();
        let owned = |list: Vec<&str>| list.into_iter().map(ToString::to_string).collect();
        for key in CONFIG_KEYS {
            let Some(v) = table.get(key) else { continue };
            match *key {
                "collectors" => cfg.collectors = collectors(key, v)?,
                "procfs" => cfg.procfs = absolute_path(key, v)?,
                "sysfs" => cfg.sysfs = absolute_path(key, v)?,
                "rootfs" => cfg.rootfs = absolute_path(key, v)?,
                "udev_data" => cfg.udev_data = absolute_path(key, v)?,
                "mount_points_exclude" => cfg.mount_points_exclude = owned(v.expect_strings(key)?),
                "fs_types_exclude" => cfg.fs_types_exclude = owned(v.expect_strings(key)?),
                "disk_devices_exclude" => cfg.disk_devices_exclude = owned(v.expect_strings(key)?),
                "net_devices_exclude" => cfg.net_devices_exclude = owned(v.expect_strings(key)?),
                "rpi_get_throttled" => cfg.rpi_get_throttled = v.expect_str(key)?.into(),
                // CONFIG_KEYS and this match list the same keys.
                _ => {}
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::Str((*s).into())).collect())
    }

    #[test]
    fn empty_table_gives_the_defaults() {
        assert_eq!(Config::from_table(&Value::default()), Ok(Config::default()));
    }

    #[test]
    fn every_key_is_read() {
        let cfg = Config::from_table(&Value::table([
            ("collectors", list(&["loadavg", "cpu", "loadavg"])),
            ("procfs", Value::Str("/host/proc".into())),
            ("sysfs", Value::Str("/host/sys".into())),
            ("rootfs", Value::Str("/host".into())),
            ("udev_data", Value::Str("/host/run/udev/data".into())),
            ("mount_points_exclude", list(&["/boot"])),
            ("fs_types_exclude", list(&[])),
            ("disk_devices_exclude", list(&["sd[a-z]"])),
            ("net_devices_exclude", list(&["veth*", "lo"])),
            (
                "rpi_get_throttled",
                Value::Str("firmware/get_throttled".into()),
            ),
        ]))
        .unwrap();
        assert_eq!(
            cfg,
            Config {
                collectors: vec![Collector::Loadavg, Collector::Cpu],
                procfs: "/host/proc".into(),
                sysfs: "/host/sys".into(),
                rootfs: "/host".into(),
                udev_data: "/host/run/udev/data".into(),
                mount_points_exclude: vec!["/boot".into()],
                fs_types_exclude: vec![],
                disk_devices_exclude: vec!["sd[a-z]".into()],
                net_devices_exclude: vec!["veth*".into(), "lo".into()],
                rpi_get_throttled: "firmware/get_throttled".into(),
            }
        );
    }

    fn rejected(entries: &[(&str, Value)]) -> ConfigError {
        Config::from_table(&Value::table(entries.iter().cloned())).unwrap_err()
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = rejected(&[("collector", list(&["cpu"]))]);
        assert_eq!(e.key, "collector");
        let msg = e.to_string();
        assert!(
            msg.starts_with("config key `collector`: unknown key"),
            "{msg}"
        );
        assert!(msg.contains("collectors"), "{msg}");
    }

    #[test]
    fn wrong_values_are_named_with_their_key() {
        for (key, value, needle) in [
            ("collectors", Value::Str("cpu".into()), "found a string"),
            (
                "collectors",
                list(&["cpu", "gpu"]),
                "unknown collector \"gpu\"",
            ),
            (
                "collectors",
                Value::List(vec![Value::Int(1)]),
                "element 0: expected a string, found an integer",
            ),
            (
                "procfs",
                Value::Bool(true),
                "expected a string, found a boolean",
            ),
            (
                "sysfs",
                Value::Str("sys".into()),
                "\"sys\" is not an absolute path",
            ),
            (
                "net_devices_exclude",
                Value::Str("lo".into()),
                "array of strings",
            ),
            ("rpi_get_throttled", Value::Int(3), "expected a string"),
        ] {
            let e = rejected(&[(key, value)]);
            assert_eq!(e.key, key);
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("config key `{key}`: ")), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
    }
}
