//! The engine: one shared function makes the wasmtime [`Config`], because precompiled modules
//! load only into an engine configured identically, with the same wasmtime version.

use std::time::Duration;
use wasmtime::{Config, Engine};

/// How often the engine's epoch advances. A guest's CPU budget is counted in these ticks, and a
/// running guest yields to the async runtime at every tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Virtual address space reserved per linear memory. Small on purpose: 32-bit devices have 3 GiB
/// of address space in all, and devices with strict overcommit refuse large reservations.
/// Memories growing past it move; bounds checks are explicit.
pub const MEMORY_RESERVATION: u64 = 32 << 20;
/// Guard region after each memory.
pub const MEMORY_GUARD: u64 = 64 << 10;
/// Extra reservation made when a memory grows, so it moves rarely.
pub const MEMORY_GROWTH_RESERVATION: u64 = 2 << 20;
/// Most wasm stack a guest may use.
pub const MAX_WASM_STACK: usize = 256 << 10;
/// Stack of the fiber a guest call runs on (wasm stack plus host frames).
pub const ASYNC_STACK: usize = 1 << 20;

/// The triple this binary was built for: what `magpie plugin compile --target` needs to make
/// modules this build can load.
pub const BUILD_TARGET: &str = env!("MAGPIE_BUILD_TARGET");

/// Whether this build can compile `.wasm` itself (the `compiler` feature). Without it, only
/// modules precompiled by `magpie plugin compile` load.
pub const HAS_COMPILER: bool = cfg!(feature = "compiler");

/// The wasmtime target a device triple runs plugins with: Cranelift where it has a backend,
/// otherwise the Pulley interpreter.
#[must_use]
pub fn engine_target(triple: &str) -> &str {
    let no_cranelift = ["armv7", "arm-", "i686", "riscv32"];
    if no_cranelift.iter().any(|p| triple.starts_with(p)) {
        "pulley32"
    } else {
        triple
    }
}

/// The engine target for the machine this binary runs on.
#[must_use]
pub const fn native_engine_target() -> Option<&'static str> {
    if cfg!(target_arch = "arm") {
        Some("pulley32")
    } else {
        None
    }
}

/// The one [`Config`] every magpie engine uses; `target` is a wasmtime target (a triple, or
/// `pulley32`/`pulley64`), `None` for this machine.
///
/// # Errors
/// When wasmtime does not know the target.
pub fn config(target: Option<&str>) -> wasmtime::Result<Config> {
    let mut c = Config::new();
    c.epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .memory_reservation(MEMORY_RESERVATION)
        .memory_guard_size(MEMORY_GUARD)
        .memory_reservation_for_growth(MEMORY_GROWTH_RESERVATION)
        .memory_may_move(true);
    if let Some(t) = target.or(native_engine_target()) {
        c.target(t)?;
    }
    Ok(c)
}

/// Builds the engine for this machine and starts its epoch ticker. The ticker thread ends when
/// the last clone of the engine is dropped.
///
/// # Errors
/// When wasmtime rejects the configuration on this machine.
pub fn new_engine(target: Option<&str>) -> wasmtime::Result<Engine> {
    let engine = Engine::new(&config(target)?)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("magpie-epoch".into())
        .stack_size(64 << 10)
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| wasmtime::format_err!("cannot start the epoch thread: {e}"))?;
    Ok(engine)
}

/// Compiles a module for another machine (`magpie plugin compile`).
///
/// # Errors
/// When the target is unknown, this build has no Cranelift backend for it (see
/// [`can_precompile_for`]), or the module does not compile.
#[cfg(feature = "compiler")]
pub fn precompile(triple: &str, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let target = engine_target(triple);
    if !can_precompile_for(target) {
        wasmtime::bail!(
            "this build compiles only for {BUILD_TARGET} and Pulley (32-bit ARM); build magpie \
             with `--features cross-compile` to precompile for {triple}"
        );
    }
    let engine = Engine::new(&config(Some(target))?)?;
    engine.precompile_module(wasm)
}

/// Whether `plugin compile` can make modules for wasmtime target `target` in this build: the
/// Pulley targets and this machine always, other architectures with `cross-compile`.
#[must_use]
pub fn can_precompile_for(target: &str) -> bool {
    let arch = |t: &str| t.split('-').next().unwrap_or_default().to_owned();
    cfg!(feature = "cross-compile")
        || target.starts_with("pulley")
        || arch(target) == arch(BUILD_TARGET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm32_runs_pulley_and_others_compile_natively() {
        assert_eq!(engine_target("armv7-unknown-linux-gnueabihf"), "pulley32");
        assert_eq!(
            engine_target("aarch64-unknown-linux-gnu"),
            "aarch64-unknown-linux-gnu"
        );
        assert_eq!(
            engine_target("x86_64-unknown-linux-gnu"),
            "x86_64-unknown-linux-gnu"
        );
    }

    #[test]
    fn the_build_target_is_a_triple_for_this_machine() {
        assert!(
            BUILD_TARGET.starts_with(std::env::consts::ARCH)
                || (cfg!(target_arch = "arm") && BUILD_TARGET.starts_with("arm")),
            "{BUILD_TARGET}"
        );
        assert!(BUILD_TARGET.contains("-linux-"), "{BUILD_TARGET}");
    }
}
