//! The MQTT form of a published bundle: one retained message holding the manifest, its
//! signature, and the HTTP(S) directory its files are fetched from.
//!
//! ```json
//! {"format": 1, "manifest": "<manifest.json, as signed>", "signature": "<manifest.json.sig>",
//!  "base_url": "https://cdn.example/fleet/"}
//! ```
//!
//! The manifest travels as the exact text `magpie bundle build` signed (a JSON string, not
//! re-encoded), so the signature covers the same bytes as over HTTP and the manifest format is
//! unchanged. Files stay on an HTTP(S) server and are checked against the manifest's hashes as
//! on the HTTP path: plugins run to megabytes, which brokers limit or refuse as messages and
//! would otherwise keep retained per version.
//!
//! The envelope's `base_url` is outside the signature. A bundle built with `--base-url` signs
//! it into the manifest too, and a device then refuses an envelope whose `base_url` differs
//! (changed after signing) before fetching anything. A manifest without it (built without
//! `--base-url`, or by an older magpie) takes the envelope's as it comes: whoever can change
//! it can only point devices at files that then fail their hashes, which publishing any other
//! message on the topic could do as well.

use super::manifest::{MANIFEST, Manifest, is_http, with_slash};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The envelope format this build reads and writes.
pub const FORMAT: u32 = 1;

/// The retained message's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`FORMAT`].
    pub format: u32,
    /// `manifest.json`'s text, byte for byte.
    pub manifest: String,
    /// `manifest.json.sig`'s text.
    pub signature: String,
    /// The HTTP(S) directory holding the bundle's files (the manifest's paths are relative to
    /// it).
    pub base_url: String,
}

impl Envelope {
    /// Reads a built bundle directory (`magpie bundle build --out DIR`). `base_url` may be left
    /// out when the manifest signs one; given, it must be that one.
    ///
    /// # Errors
    /// A missing or non-UTF-8 manifest or signature, a manifest that does not parse, no
    /// `base_url` from either side or two different ones, or one that is not HTTP(S).
    pub fn of_dir(dir: &Path, base_url: Option<&str>) -> Result<Self, String> {
        let read = |name: &str| {
            let p = dir.join(name);
            let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            String::from_utf8(b).map_err(|_| format!("{}: not UTF-8 text", p.display()))
        };
        let manifest = read(MANIFEST)?;
        let m = Manifest::parse(manifest.as_bytes())
            .map_err(|e| format!("{}: {e}", dir.join(MANIFEST).display()))?;
        let base_url = match (base_url, &m.base_url) {
            (None, None) => {
                return Err(format!(
                    "{}: the manifest signs no base_url: give the files' URL (--base-url)",
                    dir.join(MANIFEST).display()
                ));
            }
            (Some(given), _) => m.files_base("", Some(given))?,
            (None, Some(signed)) => with_slash(signed),
        };
        let e = Self {
            format: FORMAT,
            manifest,
            signature: read(&format!("{MANIFEST}.sig"))?,
            base_url,
        };
        e.check()?;
        Ok(e)
    }

    /// Parses a received message.
    ///
    /// # Errors
    /// Not an envelope, another format, or a `base_url` that is not HTTP(S).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let e: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("not a bundle envelope: {e}"))?;
        e.check()?;
        Ok(e)
    }

    fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "envelope format {} is not {FORMAT}, the one this magpie reads",
                self.format
            ));
        }
        if !is_http(&self.base_url) {
            return Err(format!(
                "base_url `{}` is not an http:// or https:// URL",
                self.base_url
            ));
        }
        Ok(())
    }

    /// The JSON to publish.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST_TEXT: &str = "{\n  \"format\": 1,\n  \"version\": \"2\",\n  \"config\": {\"path\": \"2/magpie.toml\", \"sha256\": \"00\", \"size\": 0}\n}";

    #[test]
    fn the_manifest_travels_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = MANIFEST_TEXT;
        std::fs::write(dir.path().join(MANIFEST), manifest).unwrap();
        std::fs::write(dir.path().join("manifest.json.sig"), "sig\n").unwrap();
        let err = Envelope::of_dir(dir.path(), None).unwrap_err();
        assert!(err.contains("--base-url"), "{err}");
        let e = Envelope::of_dir(dir.path(), Some("http://h/fleet")).unwrap();
        assert_eq!(e.base_url, "http://h/fleet/");
        let back = Envelope::parse(e.to_json().as_bytes()).unwrap();
        assert_eq!(back.manifest.as_bytes(), manifest.as_bytes());
        assert_eq!(back.signature, "sig\n");
        for (bad, why) in [
            (
                e.to_json().replace("\"format\":1", "\"format\":2"),
                "format 2",
            ),
            (e.to_json().replace("http://h", "ftp://h"), "base_url"),
            ("{}".to_string(), "not a bundle envelope"),
        ] {
            let err = Envelope::parse(bad.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let err = Envelope::of_dir(dir.path(), Some("mqtt://h/")).unwrap_err();
        assert!(err.contains("base_url"), "{err}");
    }

    #[test]
    fn a_signed_base_url_is_the_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = MANIFEST_TEXT.replace("\n}", ",\n  \"base_url\": \"https://cdn/a/\"\n}");
        std::fs::write(dir.path().join(MANIFEST), &manifest).unwrap();
        std::fs::write(dir.path().join("manifest.json.sig"), "sig\n").unwrap();
        assert_eq!(
            Envelope::of_dir(dir.path(), None).unwrap().base_url,
            "https://cdn/a/"
        );
        assert_eq!(
            Envelope::of_dir(dir.path(), Some("https://cdn/a"))
                .unwrap()
                .base_url,
            "https://cdn/a/"
        );
        let err = Envelope::of_dir(dir.path(), Some("https://cdn/b/")).unwrap_err();
        assert!(err.contains("signed"), "{err}");
    }
}
