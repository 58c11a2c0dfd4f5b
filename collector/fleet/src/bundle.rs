//! Bundles on disk: building one (`magpie bundle build`), checking one (`magpie bundle verify`,
//! and the agent at start for its last-known-good), and turning a bundle's configuration
//! plus the local file into the configuration that runs.

use super::manifest::{
    CONFIG, FileEntry, MANIFEST, Manifest, Rollout, is_http, valid_version, with_slash,
};
use crate::trust::{self, PublicKey};
use anyhow::{Context as _, Result, bail};
use magpie_config::{self as config, Loaded};
use std::path::{Path, PathBuf};

/// The sections a bundle's configuration may hold; the local file keeps the rest.
pub const BUNDLE_SECTIONS: [&str; 3] = ["scrape", "export", "ingest"];

/// Checks that a bundle's configuration text holds only `[[scrape]]`, `[[export]]` and
/// `[[ingest]]`.
///
/// # Errors
/// The first other key, naming `file`.
pub fn check_sections(file: &str, text: &str) -> Result<(), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    for key in table.keys() {
        if !BUNDLE_SECTIONS.contains(&key.as_str()) {
            return Err(format!(
                "{file}: `{key}` cannot come from a bundle: a bundle holds [[scrape]], \
                 [[export]] and [[ingest]]; [collector], [wal], [trust] and [fleet] stay in the local file"
            ));
        }
    }
    Ok(())
}

/// The configuration that runs with a bundle staged at `dir`: the bundle's `[[scrape]]` and
/// `[[export]]` with the local file's sections, plugins from `dir/plugins`. Lines in errors
/// are the bundle file's (its text comes first).
///
/// # Errors
/// Every problem found, as text.
pub fn compose(local: &Loaded, dir: &Path) -> Result<Loaded, String> {
    let file = dir.join(CONFIG);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    check_sections(&file.display().to_string(), &text)?;
    let combined = format!("{text}\n{}", local.text());
    let mut loaded = config::parse(&file, &combined).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    loaded.config.collector.plugin_dir = Some(dir.join("plugins"));
    Ok(loaded)
}

/// Checks the bundle in `dir` (as `bundle build` wrote it, or as the agent staged it): the
/// manifest's signature by one of `keys`, then every file's size and hash. Returns the
/// manifest.
///
/// # Errors
/// Why not, naming the file.
pub fn verify_dir(dir: &Path, keys: &[PublicKey]) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let sig_path = trust::signature_path(&path);
    let sig = std::fs::read_to_string(&sig_path)
        .map_err(|e| format!("missing signature: cannot read {}: {e}", sig_path.display()))?;
    trust::verify(keys, &sig_path, &sig, &bytes)?;
    let m = Manifest::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    for f in m.files() {
        let p = dir.join(&f.path);
        let b = std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        f.check(&b)?;
    }
    Ok(m)
}

/// What `magpie bundle build` is asked for.
#[derive(Debug, Default)]
pub struct BuildArgs {
    /// The private key signing the manifest.
    pub key: PathBuf,
    /// The bundle's configuration (`[[scrape]]` and `[[export]]` only).
    pub config: PathBuf,
    /// A directory whose files (plugins and their `.sig`) go into the bundle.
    pub plugins: Option<PathBuf>,
    /// The bundle's version.
    pub version: String,
    /// Where to write it; other versions already there stay.
    pub out: PathBuf,
    /// The target triple the `.cwasm` files were compiled for.
    pub target: Option<String>,
    /// Which devices take it.
    pub rollout: Option<Rollout>,
    /// Where devices fetch the files, signed into the manifest (`--base-url`).
    pub base_url: Option<String>,
}

/// Writes a bundle: `<out>/<version>/` with the files, then `manifest.json.sig` and
/// `manifest.json` (each written beside and renamed, so a server never serves half a file).
/// Returns the manifest.
///
/// # Errors
/// A bad version, a configuration with sections a bundle may not carry or that does not
/// parse, a `.cwasm` without `target`, unreadable files.
pub fn build(a: &BuildArgs) -> Result<Manifest> {
    if !valid_version(&a.version) {
        bail!(
            "--version `{}`: use letters, digits, `.`, `_` and `-` (it names a directory)",
            a.version
        );
    }
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("reading {}", a.config.display()))?;
    check_sections(&a.config.display().to_string(), &text).map_err(anyhow::Error::msg)?;
    if let Err(errs) = config::parse(&a.config, &text) {
        let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
        bail!("{}", list.join("\n"));
    }
    if let Some(b) = &a.base_url
        && !is_http(b)
    {
        bail!("--base-url `{b}`: not an http:// or https:// URL");
    }
    let key = trust::read_private(&a.key)?;
    let vdir = a.out.join(&a.version);
    let pdir = vdir.join("plugins");
    std::fs::create_dir_all(&pdir).with_context(|| format!("creating {}", pdir.display()))?;
    let config = FileEntry::of(format!("{}/{CONFIG}", a.version), text.as_bytes(), None);
    write(&vdir.join(CONFIG), text.as_bytes())?;
    let mut plugins = Vec::new();
    if let Some(dir) = &a.plugins {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 file name", p.display()))?;
            let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            let native = p
                .extension()
                .is_some_and(|x| x == magpie_host::PRECOMPILED_EXT);
            let target = if native {
                Some(a.target.clone().with_context(|| {
                    format!(
                        "{} is precompiled: name its target with --target TRIPLE",
                        p.display()
                    )
                })?)
            } else {
                None
            };
            write(&pdir.join(name), &bytes)?;
            plugins.push(FileEntry::of(
                format!("{}/plugins/{name}", a.version),
                &bytes,
                target,
            ));
        }
    }
    let m = Manifest {
        format: super::manifest::FORMAT,
        version: a.version.clone(),
        config,
        plugins,
        rollout: a.rollout.clone(),
        base_url: a.base_url.as_deref().map(with_slash),
    };
    let mut json = serde_json::to_vec_pretty(&m).context("encoding the manifest")?;
    json.push(b'\n');
    let path = a.out.join(MANIFEST);
    write(
        &trust::signature_path(&path),
        trust::sign(&key, &json).as_bytes(),
    )?;
    write(&path, &json)?;
    Ok(m)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_configuration_holds_only_scrape_export_and_ingest() {
        assert!(
            check_sections(
                "b.toml",
                "[[scrape]]\njob = \"a\"\n[[export]]\nname = \"x\"\n[[ingest]]\nname = \"i\"\n"
            )
            .is_ok()
        );
        for (text, key) in [
            ("[collector]\ndata_dir = \"/\"\n", "collector"),
            ("[wal]\n", "wal"),
            ("[trust]\n", "trust"),
            ("[fleet]\nurl = \"http://x/\"\n", "fleet"),
        ] {
            let e = check_sections("b.toml", text).unwrap_err();
            assert!(
                e.contains(&format!("`{key}`")) && e.contains("b.toml"),
                "{e}"
            );
        }
    }
}
