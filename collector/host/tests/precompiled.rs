//! Precompiled modules (`magpie plugin compile`): a module compiled for this machine loads and
//! scrapes through the deserialize path the device build uses (same `engine::config`), the
//! plugin directory prefers `<name>.cwasm`, and artifacts made for another target, another
//! wasmtime version or another engine configuration are refused with an error naming the file
//! and the command that rebuilds it.
#![cfg(feature = "compiler")]

mod support;

use magpie_host::engine::{self, BUILD_TARGET};
use magpie_host::{Host, InstanceSpec, LoadError, candidates};
use magpie_testkit::guest;
use std::path::{Path, PathBuf};
use support::{request, sink};

/// Writes `hello` into a fresh plugin directory as `hello.cwasm` (these bytes) and/or
/// `hello.wasm`.
fn plugin_dir(cwasm: Option<&[u8]>, wasm: bool) -> (tempfile::TempDir, [PathBuf; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let files = candidates(dir.path(), "hello");
    if let Some(bytes) = cwasm {
        std::fs::write(&files[0], bytes).unwrap();
    }
    if wasm {
        std::fs::copy(guest("hello"), &files[1]).unwrap();
    }
    (dir, files)
}

fn hello_for(triple: &str) -> Vec<u8> {
    let wasm = std::fs::read(guest("hello")).unwrap();
    engine::precompile(triple, &wasm).unwrap()
}

async fn refusal(bytes: &[u8]) -> (String, PathBuf) {
    let (_dir, [cwasm, _]) = plugin_dir(Some(bytes), false);
    match Host::new().unwrap().load("hello", &cwasm).await {
        Err(e @ LoadError::Invalid { .. }) => (e.to_string(), cwasm),
        other => panic!("expected the artifact to be refused, got {other:?}"),
    }
}

fn assert_clear(msg: &str, file: &Path) {
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("plugin `hello`"), "{msg}");
    assert!(
        msg.contains(&format!("magpie plugin compile --target {BUILD_TARGET}")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_module_precompiled_for_this_machine_loads_and_scrapes() {
    let (dir, [cwasm, _]) = plugin_dir(Some(&hello_for(BUILD_TARGET)), false);
    let host = Host::new().unwrap();
    let plugin = host.load_from_dir(dir.path(), "hello").await.unwrap();
    assert!(plugin.info().precompiled);
    assert_eq!(plugin.path(), cwasm);
    let mut instance = host
        .instantiate(&plugin, &InstanceSpec::new("pre"))
        .await
        .unwrap();
    let (s, seen) = sink(None);
    let (_, r) = instance.scrape(&request("", 0, 0), s).await;
    r.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].name, "hello_world");
    assert_eq!(seen[0].value.to_bits(), 1.0f64.to_bits());
}

#[tokio::test]
async fn the_precompiled_module_is_preferred_to_the_wasm_beside_it() {
    let (dir, [cwasm, _]) = plugin_dir(Some(&hello_for(BUILD_TARGET)), true);
    let plugin = Host::new()
        .unwrap()
        .load_from_dir(dir.path(), "hello")
        .await
        .unwrap();
    assert_eq!(plugin.path(), cwasm);
    assert!(plugin.info().precompiled);
}

#[tokio::test]
async fn a_stale_precompiled_module_gives_way_to_the_wasm_when_there_is_a_compiler() {
    let other = if BUILD_TARGET.starts_with("x86_64") {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    // Another architecture where this build can make it, else Pulley: either way not this
    // machine's engine.
    let target = if engine::can_precompile_for(other) {
        other
    } else {
        "pulley64"
    };
    let (dir, [_, wasm]) = plugin_dir(Some(&hello_for(target)), true);
    let plugin = Host::new()
        .unwrap()
        .load_from_dir(dir.path(), "hello")
        .await
        .unwrap();
    assert_eq!(plugin.path(), wasm);
    assert!(!plugin.info().precompiled);
}

#[tokio::test]
async fn a_missing_plugin_names_both_files() {
    let (dir, _) = plugin_dir(None, false);
    let err = Host::new()
        .unwrap()
        .load_from_dir(dir.path(), "hello")
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("hello.cwasm") && msg.contains("hello.wasm"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_artifact_for_another_target_is_refused_naming_the_file() {
    // The interpreter's bytecode is not this machine's code (on 32-bit ARM, where magpie runs
    // Pulley itself, 64-bit Pulley is still another target).
    let (msg, file) = refusal(&hello_for("pulley64")).await;
    assert_clear(&msg, &file);
    assert!(msg.contains("compiled for"), "{msg}");
}

/// `hello` compiled by an engine made from magpie's config, then changed by `change`.
fn hello_from(change: impl FnOnce(&mut wasmtime::Config)) -> Vec<u8> {
    let mut config = engine::config(None).unwrap();
    change(&mut config);
    let wasm = std::fs::read(guest("hello")).unwrap();
    wasmtime::Engine::new(&config)
        .unwrap()
        .precompile_module(&wasm)
        .unwrap()
}

#[tokio::test]
async fn an_artifact_from_another_wasmtime_version_is_refused() {
    // What wasmtime records and compares: its major version, here set as another one's.
    let bytes = hello_from(|c| {
        c.module_version(wasmtime::ModuleVersionStrategy::Custom("47".into()))
            .unwrap();
    });
    let (msg, file) = refusal(&bytes).await;
    assert_clear(&msg, &file);
    assert!(msg.contains("incompatible version '47'"), "{msg}");
}

#[tokio::test]
async fn an_artifact_from_an_engine_configured_otherwise_is_refused() {
    // The same wasmtime and target, without epoch interruption: its code would never yield,
    // so magpie's CPU budget could not stop it.
    let bytes = hello_from(|c| {
        c.epoch_interruption(false);
    });
    let (msg, file) = refusal(&bytes).await;
    assert_clear(&msg, &file);
    assert!(msg.contains("epoch"), "{msg}");
}

#[test]
fn cross_compiling_needs_the_feature_and_says_so() {
    let wasm = std::fs::read(guest("hello")).unwrap();
    // Pulley (what 32-bit ARM devices run) is always available.
    assert!(engine::precompile("armv7-unknown-linux-gnueabihf", &wasm).is_ok());
    let other = if BUILD_TARGET.starts_with("x86_64") {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    let r = engine::precompile(other, &wasm);
    assert_eq!(r.is_ok(), engine::can_precompile_for(other));
    if let Err(e) = r {
        assert!(e.to_string().contains("--features cross-compile"), "{e:#}");
    }
}
