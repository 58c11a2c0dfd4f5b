//! `magpie-host`: runs untrusted WebAssembly plugins safely on a small device.
//!
//! - [`Host`] owns the wasmtime engine (configured by [`engine::config`], the one function
//!   every magpie engine is built from, so precompiled modules stay compatible) and the linker
//!   with magpie's imports.
//! - [`Host::load`] compiles or deserializes a module and checks it against the contract in
//!   `magpie_sdk::abi`: imports only from the allowlist, required exports, one role, matching
//!   ABI version. A refused module gets a [`LoadError`] naming the plugin and the reason.
//! - [`Host::instantiate`] makes an [`Instance`]: one store, reused across calls, with a memory
//!   cap, a CPU budget counted in epoch ticks (the guest yields to the async runtime at every
//!   tick, so it never blocks the collector), and a wall-time limit.
//! - [`Runner`] supervises an instance: a trap, timeout, memory-limit hit or ABI violation is a
//!   [`PluginError`] value naming the plugin; the instance is recreated with backoff and
//!   quarantined after repeated faults.
//!
//! With feature `metrics`, [`metrics`] encodes the `magpie_plugin_*` self-metrics families.
//!
//! Plugins have no ambient authority: no WASI, no sockets, no files. They reach the URLs and
//! path prefixes in their [`Grants`], through host calls that check every pointer and path.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use magpie_host::{Host, InstanceSpec, Runner};
//! let host = Host::new()?;
//! let plugin = host.load("hello", "target/plugins/hello.wasm".as_ref()).await?;
//! let mut runner = Runner::new(host, plugin, InstanceSpec::new("demo"));
//! # Ok(()) }
//! ```

#[cfg(feature = "compiler")]
pub mod child_compile;
mod device;
mod device_imports;
pub mod engine;
mod error;
mod export_request;
mod grants;
mod imports;
mod instance;
mod io;
#[cfg(feature = "metrics")]
pub mod metrics;
mod plugin;
mod runner;
mod state;

pub use error::{LoadError, PluginError};
pub use grants::Grants;
pub use instance::{Instance, Limits};
pub use io::{
    BoxFuture, ByteStream, Fetch, FetchError, FetchRequest, FetchResponse, MemFetch, SampleSink,
};
pub use magpie_sdk::abi::raw::{NotUtf8, RawLabels, RawSample, RawSampleBatch};
pub use plugin::{MAX_MODULE_BYTES, PRECOMPILED_EXT, Plugin, PluginInfo, candidates};
pub use runner::{
    BACKOFF_BASE, BACKOFF_MAX, PluginStats, QUARANTINE_AFTER, QUARANTINE_FOR, Runner,
};

use magpie_sdk::abi::{self, Init, Role, Value};
use state::{Call, Limits as StoreLimits, State};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::{Engine, Linker, Store};

/// How to run one instance of a plugin.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// The job or exporter name.
    pub name: String,
    /// The plugin's configuration table.
    pub config: Value,
    /// What it may reach.
    pub grants: Arc<Grants>,
    /// Its limits.
    pub limits: Limits,
}

impl InstanceSpec {
    /// No config, no grants, default limits.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            config: Value::default(),
            grants: Arc::default(),
            limits: Limits::DEFAULT,
        }
    }
}

/// The plugin host: engine, linker and the HTTP fetcher scrapers use.
#[derive(Clone)]
pub struct Host {
    engine: Engine,
    ticker: Arc<engine::Ticker>,
    linker: Arc<Linker<State>>,
    fetcher: Option<Arc<dyn Fetch>>,
    /// The magpie binary that compiles `.wasm` modules in a child process, if any.
    compile_process: Option<PathBuf>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("fetcher", &self.fetcher.is_some())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host for this machine.
    ///
    /// # Errors
    /// When wasmtime cannot be set up here.
    pub fn new() -> wasmtime::Result<Self> {
        Self::for_target(None)
    }

    /// A host whose engine runs code for wasmtime target `target` (`None` for this machine).
    /// `Some("pulley64")` runs guests in the Pulley interpreter on a 64-bit machine, as a
    /// 32-bit ARM device would.
    ///
    /// # Errors
    /// When wasmtime cannot run that target here.
    pub fn for_target(target: Option<&str>) -> wasmtime::Result<Self> {
        let (engine, ticker) = engine::new_engine(target)?;
        let mut linker = Linker::new(&engine);
        imports::define(&mut linker)?;
        Ok(Self {
            engine,
            ticker,
            linker: Arc::new(linker),
            fetcher: None,
            compile_process: None,
        })
    }

    /// Gives scrapers an HTTP client. Without one, `http_fetch` is denied.
    #[must_use]
    pub fn with_fetcher(mut self, fetcher: Arc<dyn Fetch>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Compiles `.wasm` modules by running `exe plugin compile` (the magpie binary) in a child
    /// process, falling back to compiling in process when that fails; see [`child_compile`].
    /// Only for a host of this machine ([`Host::new`]): the child uses this machine's engine
    /// settings.
    #[cfg(feature = "compiler")]
    #[must_use]
    pub fn with_compile_process(mut self, exe: PathBuf) -> Self {
        self.compile_process = Some(exe);
        self
    }

    /// The wasmtime engine.
    #[must_use]
    pub const fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads and validates the module at `path` as plugin `name`, running it once to read its
    /// ABI version.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin, its file and the reason.
    pub async fn load(&self, name: &str, path: &Path) -> Result<Plugin, LoadError> {
        let bytes = plugin::read(name, path)?;
        self.load_bytes(name, path, &bytes).await
    }

    /// As [`Host::load`], from the bytes of the module already read from `path` (which names
    /// the file in errors): the bytes checked by a caller are the bytes loaded.
    ///
    /// # Errors
    /// A [`LoadError`] naming the plugin, its file and the reason.
    pub async fn load_bytes(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Plugin, LoadError> {
        let (module, mut info) = plugin::compile(
            &self.engine,
            self.compile_process.as_deref(),
            name,
            path,
            bytes,
        )?;
        let plugin = Plugin {
            name: name.into(),
            path: path.into(),
            module,
            info: info.clone(),
        };
        let spec = InstanceSpec::new("load");
        let (mut store, instance) =
            self.new_store(&plugin, &spec)
                .await
                .map_err(|e| LoadError::Refused {
                    plugin: name.into(),
                    path: path.into(),
                    reason: format!("cannot instantiate: {e}"),
                })?;
        let version = abi_version(&mut store, &instance)
            .await
            .map_err(|e| LoadError::Refused {
                plugin: name.into(),
                path: path.into(),
                reason: e,
            })?;
        if !(abi::OLDEST_ABI_VERSION..=abi::ABI_VERSION).contains(&version) {
            return Err(LoadError::Refused {
                plugin: name.into(),
                path: path.into(),
                reason: format!(
                    "built for plugin ABI version {version}, this magpie speaks versions {} to {}; rebuild it with a matching magpie-sdk",
                    abi::OLDEST_ABI_VERSION,
                    abi::ABI_VERSION
                ),
            });
        }
        info.abi_version = version;
        Ok(Plugin { info, ..plugin })
    }

    /// Loads plugin `name` from a plugin directory: `<dir>/<name>.cwasm` when it exists, else
    /// `<dir>/<name>.wasm` ([`candidates`]). With the compiler, a `.cwasm` made for another
    /// build (wasmtime version, target or settings) is passed over, with a warning, for the
    /// `.wasm` beside it; without the compiler, a `.wasm` alone is refused with the command
    /// that precompiles it.
    ///
    /// # Errors
    /// [`LoadError::NotFound`] when neither file exists; otherwise as [`Host::load`].
    pub async fn load_from_dir(&self, dir: &Path, name: &str) -> Result<Plugin, LoadError> {
        self.load_from_dir_checked(dir, name, |_, _| Ok(())).await
    }

    /// As [`Host::load_from_dir`], with `check` run on each file's bytes (and path) after they
    /// are read and before they are compiled; a file it refuses (the reason given) is not
    /// loaded, and is not passed over for the `.wasm` beside it either.
    ///
    /// # Errors
    /// As [`Host::load_from_dir`], and [`LoadError::Refused`] with `check`'s reason.
    pub async fn load_from_dir_checked(
        &self,
        dir: &Path,
        name: &str,
        check: impl Fn(&Path, &[u8]) -> Result<(), String>,
    ) -> Result<Plugin, LoadError> {
        let load = async |path: &Path| {
            let bytes = plugin::read(name, path)?;
            check(path, &bytes).map_err(|reason| LoadError::Refused {
                plugin: name.into(),
                path: path.into(),
                reason,
            })?;
            self.load_bytes(name, path, &bytes).await
        };
        let [cwasm, wasm] = candidates(dir, name);
        if cwasm.exists() {
            match load(&cwasm).await {
                Err(e @ LoadError::Invalid { .. }) if engine::HAS_COMPILER && wasm.exists() => {
                    log::warn!("{e}; loading {} instead", wasm.display());
                }
                other => return other,
            }
        } else if !wasm.exists() {
            return Err(LoadError::NotFound {
                plugin: name.into(),
                dir: dir.into(),
            });
        }
        load(&wasm).await
    }

    async fn new_store(
        &self,
        plugin: &Plugin,
        spec: &InstanceSpec,
    ) -> Result<(Store<State>, wasmtime::Instance), String> {
        let state = State {
            plugin: format!("{}:{}", plugin.name, spec.name).into(),
            memory: None,
            limits: StoreLimits {
                memory_bytes: spec.limits.memory_bytes,
                hit: false,
            },
            grants: Arc::clone(&spec.grants),
            fetcher: self.fetcher.clone(),
            ticks: 0,
            tick_budget: instance::ticks(spec.limits.cpu),
            ticker: Arc::clone(&self.ticker),
            call: Call::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        instance::install_deadline(&mut store);
        store.set_epoch_deadline(1);
        let running = self.ticker.run();
        let instance = tokio::time::timeout(
            spec.limits.wall,
            self.linker.instantiate_async(&mut store, &plugin.module),
        )
        .await
        .map_err(|_| "instantiation took longer than the wall time limit".to_string())?
        .map_err(|e| {
            if store.data().limits.hit {
                format!("memory limit of {} bytes hit", spec.limits.memory_bytes)
            } else {
                format!("{e:#}")
            }
        })?;
        drop(running);
        let memory = instance
            .get_memory(&mut store, abi::EXPORT_MEMORY)
            .ok_or_else(|| "exports no memory".to_string())?;
        store.data_mut().memory = Some(memory);
        Ok((store, instance))
    }

    /// Instantiates and initialises a plugin with its configuration.
    ///
    /// # Errors
    /// A [`PluginError`]: `Failed` when the plugin rejects its configuration.
    pub async fn instantiate(
        &self,
        plugin: &Plugin,
        spec: &InstanceSpec,
    ) -> Result<Instance, PluginError> {
        let name = format!("{}:{}", plugin.name, spec.name);
        let abi_err = |reason: String| PluginError::Abi {
            plugin: name.clone(),
            reason,
        };
        let (mut store, inst) =
            self.new_store(plugin, spec)
                .await
                .map_err(|reason| PluginError::Trap {
                    plugin: name.clone(),
                    reason,
                })?;
        let func = |store: &mut Store<State>, n: &str| {
            inst.get_typed_func::<(), i32>(store, n)
                .map_err(|e| abi_err(format!("{n}: {e}")))
        };
        let init = func(&mut store, abi::EXPORT_INIT)?;
        let role_fn = func(
            &mut store,
            match plugin.info.role {
                Role::Scraper => abi::EXPORT_SCRAPE,
                Role::Exporter => abi::EXPORT_EXPORT,
                Role::Decoder => abi::EXPORT_DECODE,
            },
        )?;
        let outcome_fn = inst
            .get_typed_func::<(), i32>(&mut store, abi::EXPORT_OUTCOME)
            .ok();
        let metadata_fn = inst
            .get_typed_func::<(), i32>(&mut store, abi::EXPORT_METADATA)
            .ok();
        let msg = Init::V1 {
            name: spec.name.as_str().into(),
            role: plugin.info.role,
            config: spec.config.clone(),
        };
        let input = abi::encode(&msg).map_err(|e| abi_err(e.to_string()))?;
        instance::call(&mut store, &init, input, spec.limits).await?;
        Ok(Instance {
            store,
            role_fn,
            outcome_fn,
            metadata_fn,
            limits: spec.limits,
            abi_version: plugin.info.abi_version,
        })
    }
}

async fn abi_version(
    store: &mut Store<State>,
    instance: &wasmtime::Instance,
) -> Result<u32, String> {
    let f = instance
        .get_typed_func::<(), i32>(&mut *store, abi::EXPORT_ABI_VERSION)
        .map_err(|e| format!("{}: {e}", abi::EXPORT_ABI_VERSION))?;
    store.data_mut().tick_budget = instance::ticks(std::time::Duration::from_millis(100));
    store.set_epoch_deadline(1);
    let running = store.data().ticker.run();
    let v = f
        .call_async(&mut *store, ())
        .await
        .map_err(|e| format!("{} trapped: {e}", abi::EXPORT_ABI_VERSION))?;
    drop(running);
    u32::try_from(v).map_err(|_| format!("reports a negative ABI version {v}"))
}
