//! The engine: one shared function makes the wasmtime [`Config`], because precompiled modules
//! load only into an engine configured identically, with the same wasmtime version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine};

/// How often the engine's epoch advances while guest code runs. A guest's CPU budget is counted
/// in these ticks, and a running guest yields to the async runtime at every tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Virtual address space reserved per linear memory on 32-bit targets. Small on purpose: 32-bit
/// devices have 3 GiB of address space in all. Memories growing past it move; bounds checks
/// are explicit.
pub const MEMORY_RESERVATION: u64 = 32 << 20;
/// Guard region after each memory on 32-bit targets.
pub const MEMORY_GUARD: u64 = 64 << 10;
/// Reservation per linear memory on 64-bit targets: all of a 32-bit memory's index space, so
/// compiled code needs no bounds checks (an out-of-bounds access faults in the reservation).
/// It is address space only (`PROT_NONE`, not committed or charged to overcommit); pages
/// count once touched, as with the small reservation.
pub const MEMORY_RESERVATION_64: u64 = 4 << 30;
/// Guard region after each memory on 64-bit targets: covers static offsets of loads and
/// stores, so those need no bounds checks either.
pub const MEMORY_GUARD_64: u64 = 32 << 20;
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
    let target = target.or(native_engine_target());
    let (reservation, guard) = if is_64_bit(target) {
        (MEMORY_RESERVATION_64, MEMORY_GUARD_64)
    } else {
        (MEMORY_RESERVATION, MEMORY_GUARD)
    };
    let mut c = Config::new();
    c.epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .memory_reservation(reservation)
        .memory_guard_size(guard)
        .memory_reservation_for_growth(MEMORY_GROWTH_RESERVATION)
        .memory_may_move(true);
    if let Some(t) = target {
        c.target(t)?;
    }
    Ok(c)
}

/// Whether a wasmtime target (`None`: this machine) has a 64-bit address space, which the
/// large memory reservation needs.
#[must_use]
pub fn is_64_bit(target: Option<&str>) -> bool {
    target.map_or(cfg!(target_pointer_width = "64"), |t| {
        ["x86_64", "aarch64", "riscv64", "s390x", "pulley64"]
            .iter()
            .any(|p| t.starts_with(p))
    })
}

/// Advances an engine's epoch every [`EPOCH_TICK`] while guest code may be running, and sleeps
/// otherwise: an idle collector does not wake up a hundred times a second for nothing. Guest
/// code runs only under a [`Running`] guard.
#[derive(Debug)]
pub struct Ticker {
    running: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

/// Keeps the epoch advancing while it lives.
#[derive(Debug)]
pub struct Running(Arc<Ticker>);

impl Ticker {
    /// Marks guest code as running until the guard drops.
    #[must_use]
    pub fn run(self: &Arc<Self>) -> Running {
        if self.running.fetch_add(1, Ordering::SeqCst) == 0 {
            self.thread.unpark();
        }
        Running(Arc::clone(self))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Builds the engine for this machine and starts its epoch ticker. The ticker thread ends when
/// the ticker or the engine is dropped.
///
/// # Errors
/// When wasmtime rejects the configuration on this machine.
pub fn new_engine(target: Option<&str>) -> wasmtime::Result<(Engine, Arc<Ticker>)> {
    let engine = Engine::new(&config(target)?)?;
    let weak = engine.weak();
    let running = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (r, s) = (Arc::clone(&running), Arc::clone(&stop));
    let handle = std::thread::Builder::new()
        .name("magpie-epoch".into())
        .stack_size(64 << 10)
        .spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if r.load(Ordering::SeqCst) == 0 {
                    // A `run` after the check leaves the unpark token: this returns at once.
                    std::thread::park();
                    continue;
                }
                // The first tick of a call comes a full tick after it started, as it would
                // on average with a free-running ticker.
                std::thread::sleep(EPOCH_TICK);
                let Some(engine) = weak.upgrade() else { break };
                engine.increment_epoch();
            }
        })
        .map_err(|e| wasmtime::format_err!("cannot start the epoch thread: {e}"))?;
    let ticker = Ticker {
        running,
        stop,
        thread: handle.thread().clone(),
    };
    Ok((engine, Arc::new(ticker)))
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

/// Compiles a module for this machine with the engine settings of [`crate::Host::new`]: what
/// a child process of [`crate::child_compile`] prints.
///
/// # Errors
/// When the module does not compile.
#[cfg(feature = "compiler")]
pub fn precompile_native(wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    Engine::new(&config(None)?)?.precompile_module(wasm)
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

    #[test]
    fn only_64_bit_targets_get_the_large_reservation() {
        assert!(is_64_bit(Some("aarch64-unknown-linux-gnu")));
        assert!(is_64_bit(Some("x86_64-unknown-linux-gnu")));
        assert!(is_64_bit(Some("pulley64")));
        assert!(!is_64_bit(Some("pulley32")));
        assert!(!is_64_bit(Some(engine_target(
            "armv7-unknown-linux-gnueabihf"
        ))));
        assert_eq!(is_64_bit(None), cfg!(target_pointer_width = "64"));
    }
}
