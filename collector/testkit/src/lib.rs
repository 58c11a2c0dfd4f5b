//! Test support shared by magpie's crates: building plugin guests for wasm32 from source, and
//! locating the workspace. Never shipped.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root.
#[must_use]
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the plugin crate `package` for `wasm32-unknown-unknown` (release profile) and returns
/// the path of its `.wasm`. Built once per test process; cargo's own lock serialises builds
/// across processes. Guests live in a target directory of their own so the build never waits
/// on the lock of the `cargo test` that runs this.
///
/// # Panics
/// When the build fails: a test cannot go on without its guest.
#[must_use]
pub fn guest(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = workspace_root();
    let target_dir = root.join("target").join("guests");
    let artifact = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                package,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .status()
            .expect("cannot run cargo to build a wasm guest");
        assert!(
            status.success(),
            "building guest `{package}` for wasm32 failed (is the wasm32-unknown-unknown target installed?)"
        );
        built.push(package.into());
    }
    assert!(
        artifact.exists(),
        "guest `{package}` built but {} is missing",
        artifact.display()
    );
    artifact
}
