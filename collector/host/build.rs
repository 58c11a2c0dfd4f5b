//! Records the triple this crate is built for, so a build without a compiler can tell the
//! operator which `--target` to precompile plugins with.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=MAGPIE_BUILD_TARGET={target}");
}
