//! The fleet state that survives a restart (`<data_dir>/fleet/state.json`): the
//! last-known-good version and the versions rolled back. Written through a temporary file,
//! fsync and rename, so a crash leaves the old state or the new one.

use super::stage::write_synced;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What survives a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    /// The last version that proved healthy.
    pub good: Option<String>,
    /// Versions rolled back; never tried again.
    pub bad: Vec<String>,
}

pub(super) fn load_state(dir: &Path) -> State {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            log::error!(
                "the fleet state is unreadable, starting without a last-known-good bundle; file={} error={e}",
                path.display()
            );
            State::default()
        }),
        Err(_) => State::default(),
    }
}

pub(super) async fn save(dir: &Path, state: &State) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    let (dir, at) = (dir.to_path_buf(), dir.join("state.json"));
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        write_synced(&dir.join("state.json.tmp"), &json)?;
        std::fs::rename(dir.join("state.json.tmp"), dir.join("state.json"))?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{}: {e}", at.display()))
}
