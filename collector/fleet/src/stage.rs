//! Writing downloaded bundles to disk: each file synced, the whole directory renamed into
//! place, so a crash never leaves a half-written bundle under a version's name (and the
//! last-known-good bundle, under its own name, is not touched).

use super::manifest::MANIFEST;
use crate::trust;
use std::path::Path;

pub async fn remove_dir(dir: &Path) {
    let d = dir.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(d)).await;
}

pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes a downloaded bundle to `dir` (through a staging directory renamed into place), laid
/// out as the server has it, so that it verifies again at start.
pub fn stage(
    dir: &Path,
    manifest: &[u8],
    sig: &[u8],
    files: &[(String, Vec<u8>)],
) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let parent = dir.parent().unwrap_or(Path::new("."));
    let mut tmp_name = std::ffi::OsString::from(".staging-");
    tmp_name.push(dir.file_name().unwrap_or_default());
    let tmp = parent.join(tmp_name);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let m = tmp.join(MANIFEST);
    write_synced(&m, manifest).map_err(|e| io(&m, e))?;
    let s = trust::signature_path(&m);
    write_synced(&s, sig).map_err(|e| io(&s, e))?;
    for (rel, bytes) in files {
        let p = tmp.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        write_synced(&p, bytes).map_err(|e| io(&p, e))?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir).map_err(|e| io(dir, e))?;
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(parent, e))
}
