//! Loading a module: compile (or deserialize a precompiled one), then check it against the
//! plugin contract before anything runs: imports only from the allowlist with the exact
//! signatures, the required exports, one role, and the ABI version.
//!
//! In a plugin directory, plugin `name` is `<dir>/<name>.cwasm` (precompiled by `magpie plugin
//! compile`) or `<dir>/<name>.wasm`, looked up in that order ([`candidates`]). A build with the
//! compiler falls back to the `.wasm` when the `.cwasm` was made for another build (an older
//! magpie, another target); a build without it loads only the `.cwasm`.

use crate::error::LoadError;
use magpie_sdk::abi::{self, Role};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::{Engine, ExternType, FuncType, Module, ValType};

/// Largest module file accepted.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// Extension of modules precompiled by `magpie plugin compile`.
pub const PRECOMPILED_EXT: &str = "cwasm";

/// The files plugin `name` is looked for in `dir`, in order: the precompiled module, then the
/// WebAssembly one.
#[must_use]
pub fn candidates(dir: &Path, name: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{name}.{PRECOMPILED_EXT}")),
        dir.join(format!("{name}.wasm")),
    ]
}

/// What `magpie plugin inspect` shows about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// ABI version the module reports.
    pub abi_version: u32,
    /// Scraper, exporter or decoder.
    pub role: Role,
    /// Imports as `module::name`.
    pub imports: Vec<String>,
    /// Exported function names.
    pub exports: Vec<String>,
    /// File size in bytes.
    pub size: u64,
    /// Whether the file was precompiled (`magpie plugin compile`).
    pub precompiled: bool,
}

impl std::fmt::Display for PluginInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "abi version: {}", self.abi_version)?;
        writeln!(f, "role:        {}", self.role)?;
        writeln!(
            f,
            "size:        {} bytes{}",
            self.size,
            if self.precompiled {
                " (precompiled)"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "imports:     {}",
            if self.imports.is_empty() {
                "(none)".into()
            } else {
                self.imports.join(", ")
            }
        )?;
        writeln!(f, "exports:     {}", self.exports.join(", "))?;
        let caps = self.capabilities();
        write!(
            f,
            "capabilities: {}",
            if caps.is_empty() {
                "(none)".into()
            } else {
                caps.join(", ")
            }
        )
    }
}

impl PluginInfo {
    /// What the module's imports let it reach, in the order `http`, `files`, `tcp`, `udp`,
    /// `serial`; grants still decide which targets and paths.
    #[must_use]
    pub fn capabilities(&self) -> Vec<&'static str> {
        let has: Vec<&str> = self
            .imports
            .iter()
            .filter_map(|i| abi::capability(i.strip_prefix("magpie::").unwrap_or(i)))
            .collect();
        ["http", "files", "tcp", "udp", "serial"]
            .into_iter()
            .filter(|c| has.contains(c))
            .collect()
    }
}

/// A loaded, validated module. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub(crate) name: Arc<str>,
    pub(crate) path: PathBuf,
    pub(crate) module: Module,
    pub(crate) info: PluginInfo,
}

impl Plugin {
    /// The plugin's name (its file stem in the plugin directory).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its role and contract details.
    #[must_use]
    pub const fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The file it was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn refused(name: &str, path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Refused {
        plugin: name.into(),
        path: path.into(),
        reason: reason.into(),
    }
}

/// Reads a module file whole, refusing one over [`MAX_MODULE_BYTES`] before reading it.
pub(crate) fn read(name: &str, path: &Path) -> Result<Vec<u8>, LoadError> {
    let io = |cause| LoadError::Io {
        plugin: name.into(),
        path: path.into(),
        cause,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_MODULE_BYTES {
        return Err(refused(
            name,
            path,
            format!("{size} bytes is larger than the {MAX_MODULE_BYTES} byte limit"),
        ));
    }
    std::fs::read(path).map_err(io)
}

/// Compiles (or deserializes) the bytes of a module read from `path`, then checks its shape.
/// The ABI version is checked by the caller, which has to run the module for it.
pub(crate) fn compile(
    engine: &Engine,
    compile_process: Option<&Path>,
    name: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<(Module, PluginInfo), LoadError> {
    let size = bytes.len() as u64;
    if size > MAX_MODULE_BYTES {
        return Err(refused(
            name,
            path,
            format!("{size} bytes is larger than the {MAX_MODULE_BYTES} byte limit"),
        ));
    }
    let precompiled = Engine::detect_precompiled(bytes).is_some();
    let module = if precompiled {
        deserialize(engine, bytes).map_err(|e| LoadError::Invalid {
            plugin: name.into(),
            path: path.into(),
            reason: deserialize_failure(&e, path),
        })?
    } else {
        from_wasm(engine, compile_process, name, path, bytes)?
    };
    let info = check_shape(name, path, &module, size, precompiled)?;
    Ok((module, info))
}

/// Compiles a `.wasm` module: in a child process when the host has one (and that works), else
/// in process. A module that does not compile is refused with the in-process compiler's
/// reason.
#[cfg(feature = "compiler")]
fn from_wasm(
    engine: &Engine,
    compile_process: Option<&Path>,
    name: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<Module, LoadError> {
    if let Some(exe) = compile_process {
        // A module the child cannot compile is invalid; compiling it again here gives the
        // reason, so every failure falls through to the in-process compiler.
        match crate::child_compile::compile_in_child(exe, bytes)
            .and_then(|art| deserialize(engine, &art).map_err(|e| format!("{e:#}")))
        {
            Ok(module) => {
                log::debug!(
                    "plugin `{name}`: compiled {} in a child process",
                    path.display()
                );
                return Ok(module);
            }
            Err(reason) => log::warn!(
                "plugin `{name}`: compiling {} in a child process failed; compiling it in process. reason={reason}",
                path.display()
            ),
        }
    }
    Module::new(engine, bytes).map_err(|e| LoadError::Invalid {
        plugin: name.into(),
        path: path.into(),
        reason: format!("{e:#}"),
    })
}

#[cfg(not(feature = "compiler"))]
fn from_wasm(
    _engine: &Engine,
    _compile_process: Option<&Path>,
    name: &str,
    path: &Path,
    _bytes: &[u8],
) -> Result<Module, LoadError> {
    Err(refused(
        name,
        path,
        format!(
            "this build has no compiler and loads only precompiled modules; precompile it on a \
             build host with `magpie plugin compile --target {} {} {}`",
            crate::engine::BUILD_TARGET,
            path.display(),
            path.with_extension(PRECOMPILED_EXT).display()
        ),
    ))
}

/// Why a precompiled module did not load, with what to do about it.
fn deserialize_failure(e: &wasmtime::Error, path: &Path) -> String {
    let cause = format!("{e:#}");
    if cause.contains("memory executable") {
        // Machine code needs pages turned executable (mprotect RW -> RX); a W^X policy such
        // as systemd's MemoryDenyWriteExecute=yes forbids it. Pulley bytecode does not.
        format!(
            "{cause}; native code needs executable memory: remove MemoryDenyWriteExecute=yes \
             (or another W^X policy) from the service"
        )
    } else if cause.contains("compiled") || cause.contains("engine section") {
        format!(
            "{cause}; a precompiled module loads only into a magpie built with the same \
             wasmtime version, target and engine settings: recompile it from its .wasm with \
             `magpie plugin compile --target {} IN.wasm {}`",
            crate::engine::BUILD_TARGET,
            path.display()
        )
    } else {
        cause
    }
}

/// Loads a module precompiled by `magpie plugin compile`.
///
/// # Safety contract
/// wasmtime runs precompiled machine code without verifying it, so the bytes must come from
/// wasmtime's own compiler. They do: the operator's plugin directory is trusted like the
/// binary itself (it is root-owned in the packages), a child compile's output comes from the
/// magpie binary itself (see [`crate::child_compile`]), and wasmtime refuses artifacts from
/// another wasmtime version or an engine configured differently.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Module> {
    // SAFETY: see the contract above: the bytes are a wasmtime compilation artifact from the
    // trusted plugin directory; version and configuration mismatches are rejected by wasmtime.
    unsafe { Module::deserialize(engine, bytes) }
}

fn sig_matches(ty: &FuncType, params: &str, results: &str) -> bool {
    fn letter(t: &ValType) -> char {
        match t {
            ValType::I32 => 'i',
            ValType::I64 => 'I',
            _ => '?',
        }
    }
    ty.params().map(|t| letter(&t)).eq(params.chars())
        && ty.results().map(|t| letter(&t)).eq(results.chars())
}

fn check_shape(
    name: &str,
    path: &Path,
    module: &Module,
    size: u64,
    precompiled: bool,
) -> Result<PluginInfo, LoadError> {
    let mut imports = Vec::new();
    for imp in module.imports() {
        let full = format!("{}::{}", imp.module(), imp.name());
        if imp.module() != abi::IMPORT_MODULE {
            return Err(refused(
                name,
                path,
                format!(
                    "imports `{full}`; plugins may import only from `{}` (no WASI)",
                    abi::IMPORT_MODULE
                ),
            ));
        }
        let Some(sig) = abi::IMPORTS.iter().find(|s| s.name == imp.name()) else {
            return Err(refused(
                name,
                path,
                format!("imports `{full}`, which magpie does not provide"),
            ));
        };
        let ExternType::Func(ty) = imp.ty() else {
            return Err(refused(
                name,
                path,
                format!("imports `{full}` as something other than a function"),
            ));
        };
        if !sig_matches(&ty, sig.params, sig.results) {
            return Err(refused(
                name,
                path,
                format!("imports `{full}` with the wrong signature {ty}"),
            ));
        }
        imports.push(full);
    }
    let mut exports = Vec::new();
    let mut has_memory = false;
    for exp in module.exports() {
        match exp.ty() {
            ExternType::Func(ty) => {
                let wanted = [
                    abi::EXPORT_ABI_VERSION,
                    abi::EXPORT_INIT,
                    abi::EXPORT_SCRAPE,
                    abi::EXPORT_EXPORT,
                    abi::EXPORT_DECODE,
                    abi::EXPORT_OUTCOME,
                    abi::EXPORT_METADATA,
                ];
                if wanted.contains(&exp.name()) && !sig_matches(&ty, "", "i") {
                    return Err(refused(
                        name,
                        path,
                        format!("exports `{}` with the wrong signature {ty}", exp.name()),
                    ));
                }
                exports.push(exp.name().to_string());
            }
            ExternType::Memory(_) if exp.name() == abi::EXPORT_MEMORY => has_memory = true,
            _ => {}
        }
    }
    if !has_memory {
        return Err(refused(name, path, "exports no `memory`"));
    }
    for required in [abi::EXPORT_ABI_VERSION, abi::EXPORT_INIT] {
        if !exports.iter().any(|e| e == required) {
            return Err(refused(
                name,
                path,
                format!("exports no `{required}`; build it with magpie-sdk's export macros"),
            ));
        }
    }
    let roles: Vec<(Role, &str)> = [
        (Role::Scraper, abi::EXPORT_SCRAPE),
        (Role::Exporter, abi::EXPORT_EXPORT),
        (Role::Decoder, abi::EXPORT_DECODE),
    ]
    .into_iter()
    .filter(|(_, f)| exports.iter().any(|e| e == f))
    .collect();
    let role = match roles.as_slice() {
        [(role, _)] => *role,
        [] => {
            return Err(refused(
                name,
                path,
                "exports none of `magpie_scrape`, `magpie_export` and `magpie_decode`",
            ));
        }
        many => {
            let names: Vec<String> = many.iter().map(|(_, f)| format!("`{f}`")).collect();
            return Err(refused(
                name,
                path,
                format!("exports {}; a plugin has one role", names.join(" and ")),
            ));
        }
    };
    Ok(PluginInfo {
        abi_version: 0,
        role,
        imports,
        exports,
        size,
        precompiled,
    })
}
