//! Records a lower bound of the wall clock for the clock policy (`src/clock.rs`): no sample
//! can be taken before this crate was built. `SOURCE_DATE_EPOCH` (reproducible builds, Debian
//! packaging) wins; else the time of the last commit; else none (0). A stale value only makes
//! the bound looser, never wrong, so the script does not rerun on every commit.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| {
            let out = Command::new("git")
                .args(["log", "-1", "--format=%ct"])
                .output()
                .ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=MAGPIE_BUILD_EPOCH={epoch}");
}
