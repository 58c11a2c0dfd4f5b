//! A bundle's manifest: its version, every file with its SHA-256 and size (and, for a
//! precompiled `.cwasm`, the target it was compiled for), and who should take it.
//!
//! The manifest is what is signed (`manifest.json.sig`, the same detached signature format as
//! plugins); every other file is trusted through its hash in the manifest. File paths are
//! relative to the manifest's URL and sit under a directory named after the version, so a
//! server can hold the next version's files before `manifest.json` is replaced:
//!
//! ```text
//! manifest.json  manifest.json.sig  2/magpie.toml  2/plugins/prom-scrape.cwasm ...
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The manifest format this build reads and writes.
pub const FORMAT: u32 = 1;
/// The manifest's file name, beside its signature `manifest.json.sig`.
pub const MANIFEST: &str = "manifest.json";
/// The bundle's configuration file, under the version's directory.
pub const CONFIG: &str = "magpie.toml";

/// What `manifest.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The bundle's version: letters, digits, `.`, `_`, `-`.
    pub version: String,
    /// The configuration (`<version>/magpie.toml`).
    pub config: FileEntry,
    /// The plugin files (`<version>/plugins/<file>`), with their signatures if any.
    #[serde(default)]
    pub plugins: Vec<FileEntry>,
    /// Which devices take it; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The HTTP(S) directory the files are fetched from (ending in `/`), signed with the rest.
    /// Absent: beside the manifest over HTTP, the envelope's `base_url` over MQTT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the manifest.
    pub path: String,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its length in bytes.
    pub size: u64,
    /// For a precompiled `.cwasm`: the target triple it was compiled for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Which devices take a bundle: all conditions present must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Device ids; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Labels the device must have (`[fleet] labels`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The share of devices, by [`bucket`] of their id: a device takes the bundle when its
    /// bucket is below `percent`. The same devices come first in every rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
}

impl Rollout {
    /// Whether a device with this id and these labels takes the bundle.
    #[must_use]
    pub fn selects(&self, device: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.devices.is_empty() || self.devices.iter().any(|d| d == device))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.percent.is_none_or(|p| bucket(device) < p)
    }
}

/// A device's rollout bucket, 0 to 99: the first 8 bytes of SHA-256 over its id, modulo 100.
#[must_use]
pub fn bucket(device: &str) -> u8 {
    let d = ring::digest::digest(&ring::digest::SHA256, device.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&d.as_ref()[..8]);
    u8::try_from(u64::from_be_bytes(first) % 100).unwrap_or(0)
}

/// Lower-case hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether `url` is an `http://` or `https://` URL.
#[must_use]
pub fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// `url` ending in `/`, so relative paths join under it.
#[must_use]
pub fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

/// Whether `v` is a usable version (it names a directory).
#[must_use]
pub fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl Manifest {
    /// Parses and checks a manifest: format, version, and that every path is under the
    /// version's directory (no `..`, nothing absolute).
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
        if m.format != FORMAT {
            return Err(format!(
                "manifest format {} is not {FORMAT}, the one this magpie reads",
                m.format
            ));
        }
        if !valid_version(&m.version) {
            return Err(format!("`{}` is not a valid bundle version", m.version));
        }
        if m.config.path != format!("{}/{CONFIG}", m.version) {
            return Err(format!(
                "the configuration is at `{}`, not `{}/{CONFIG}`",
                m.config.path, m.version
            ));
        }
        let prefix = format!("{}/plugins/", m.version);
        for p in &m.plugins {
            let name = p.path.strip_prefix(&prefix).unwrap_or_default();
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!(
                    "plugin file `{}` is not a file name under `{prefix}`",
                    p.path
                ));
            }
        }
        if let Some(b) = &m.base_url
            && !is_http(b)
        {
            return Err(format!("base_url `{b}` is not an http:// or https:// URL"));
        }
        if m.rollout
            .as_ref()
            .and_then(|r| r.percent)
            .is_some_and(|p| p > 100)
        {
            return Err("rollout percent is over 100".into());
        }
        Ok(m)
    }

    /// The directory the bundle's files are fetched from: the signed `base_url` when the
    /// manifest has one, else `envelope` (the `base_url` of the MQTT message the manifest came
    /// in), else `beside` (the directory the manifest was fetched from).
    ///
    /// # Errors
    /// An envelope whose `base_url` is not the signed one: it was changed after signing.
    pub fn files_base(&self, beside: &str, envelope: Option<&str>) -> Result<String, String> {
        match (&self.base_url, envelope) {
            (Some(signed), Some(given))
                if signed.trim_end_matches('/') != given.trim_end_matches('/') =>
            {
                Err(format!(
                    "the envelope's base_url `{given}` is not `{signed}`, the one signed in the manifest (changed after signing)"
                ))
            }
            (Some(signed), _) => Ok(with_slash(signed)),
            (None, Some(given)) => Ok(with_slash(given)),
            (None, None) => Ok(with_slash(beside)),
        }
    }

    /// Every file of the bundle, the configuration first.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        std::iter::once(&self.config).chain(&self.plugins)
    }

    /// Whether this device takes the bundle.
    #[must_use]
    pub fn selects(&self, device: &str, labels: &BTreeMap<String, String>) -> bool {
        self.rollout
            .as_ref()
            .is_none_or(|r| r.selects(device, labels))
    }
}

impl FileEntry {
    /// Describes `bytes` found at `path`.
    #[must_use]
    pub fn of(path: String, bytes: &[u8], target: Option<String>) -> Self {
        Self {
            path,
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            target,
        }
    }

    /// Checks downloaded bytes against the entry.
    ///
    /// # Errors
    /// A size or hash mismatch, naming the file.
    pub fn check(&self, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() as u64 != self.size {
            return Err(format!(
                "{}: {} bytes, the manifest says {}",
                self.path,
                bytes.len(),
                self.size
            ));
        }
        let got = sha256_hex(bytes);
        if got != self.sha256 {
            return Err(format!(
                "{}: SHA-256 {got} does not match the manifest's {} (the file changed after the bundle was signed)",
                self.path, self.sha256
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT,
            version: "2".into(),
            config: FileEntry::of("2/magpie.toml".into(), b"x", None),
            plugins: vec![FileEntry::of(
                "2/plugins/a.cwasm".into(),
                b"yy",
                Some("x86_64-unknown-linux-gnu".into()),
            )],
            rollout: None,
            base_url: None,
        }
    }

    #[test]
    fn a_manifest_round_trips_and_paths_stay_under_the_version() {
        let m = manifest();
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        for bad in [
            "2/plugins/../x",
            "3/plugins/a.wasm",
            "2/plugins/",
            "/etc/passwd",
        ] {
            let mut m = manifest();
            m.plugins[0].path = bad.into();
            let e = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let mut m = manifest();
        m.version = "../2".into();
        assert!(Manifest::parse(&serde_json::to_vec(&m).unwrap()).is_err());
    }

    #[test]
    fn a_signed_base_url_decides_where_files_come_from() {
        let mut m = manifest();
        // Old manifests: beside the manifest over HTTP, the envelope's over MQTT.
        assert_eq!(m.files_base("http://a/x", None).unwrap(), "http://a/x/");
        assert_eq!(
            m.files_base("mqtt://b/t", Some("http://cdn/y")).unwrap(),
            "http://cdn/y/"
        );
        m.base_url = Some("https://cdn/site-a/".into());
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap(), m);
        assert_eq!(
            m.files_base("http://a/x/", None).unwrap(),
            "https://cdn/site-a/"
        );
        assert_eq!(
            m.files_base("mqtt://b/t", Some("https://cdn/site-a"))
                .unwrap(),
            "https://cdn/site-a/"
        );
        let e = m
            .files_base("mqtt://b/t", Some("https://evil/site-a/"))
            .unwrap_err();
        assert!(
            e.contains("https://evil/site-a/") && e.contains("signed"),
            "{e}"
        );
        m.base_url = Some("ftp://cdn/".into());
        let e = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(e.contains("ftp://cdn/"), "{e}");
        // A manifest without the field encodes as before, byte for byte.
        m.base_url = None;
        assert!(
            !String::from_utf8(serde_json::to_vec(&m).unwrap())
                .unwrap()
                .contains("base_url")
        );
    }

    #[test]
    fn files_are_checked_by_size_and_hash() {
        let e = FileEntry::of("2/magpie.toml".into(), b"abc", None);
        assert!(e.check(b"abc").is_ok());
        assert!(e.check(b"abd").unwrap_err().contains("SHA-256"));
        assert!(e.check(b"abcd").unwrap_err().contains("4 bytes"));
        // SHA-256 of "abc" (FIPS 180-2 example).
        assert_eq!(
            e.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn rollouts_select_by_id_label_and_share() {
        let labels: BTreeMap<String, String> = [("site".into(), "a".into())].into();
        let r = Rollout {
            devices: vec!["gw-1".into()],
            ..Rollout::default()
        };
        assert!(r.selects("gw-1", &labels) && !r.selects("gw-2", &labels));
        let r = Rollout {
            labels: [("site".into(), "b".into())].into(),
            ..Rollout::default()
        };
        assert!(!r.selects("gw-1", &labels));
        let ids: Vec<String> = (0..1000).map(|i| format!("gw-{i}")).collect();
        let share = |p| {
            let r = Rollout {
                percent: Some(p),
                ..Rollout::default()
            };
            ids.iter().filter(|d| r.selects(d, &labels)).count()
        };
        assert_eq!(share(0), 0);
        assert_eq!(share(100), 1000);
        let ten = share(10);
        assert!((60..=140).contains(&ten), "{ten} of 1000 at 10 %");
        // Every device in the 10 % is in the 50 %.
        let r10 = Rollout {
            percent: Some(10),
            ..Rollout::default()
        };
        let r50 = Rollout {
            percent: Some(50),
            ..Rollout::default()
        };
        assert!(
            ids.iter()
                .all(|d| !r10.selects(d, &labels) || r50.selects(d, &labels))
        );
    }
}
