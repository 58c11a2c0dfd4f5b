use std::path::PathBuf;
use std::time::Duration;

/// Why a module could not be loaded. Each names the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Neither `<dir>/<name>.cwasm` nor `<dir>/<name>.wasm` exists.
    #[error(
        "no plugin `{plugin}`: neither {dir}/{plugin}.cwasm nor {dir}/{plugin}.wasm exists \
         (plugins are found as <plugin_dir>/<name>.cwasm, precompiled, or <plugin_dir>/<name>.wasm)"
    )]
    NotFound {
        /// Plugin name.
        plugin: String,
        /// The plugin directory.
        dir: PathBuf,
    },
    /// The file could not be read.
    #[error("plugin `{plugin}`: cannot read {path}: {cause}")]
    Io {
        /// Plugin name.
        plugin: String,
        /// The module file.
        path: PathBuf,
        /// The cause (shown in the message, so not chained again).
        cause: std::io::Error,
    },
    /// wasmtime refused the bytes (not wasm, invalid, or precompiled for another engine).
    #[error("plugin `{plugin}`: {path} is not a loadable module: {reason}")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// The module file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
    /// The module breaks the plugin contract (imports, exports, ABI version).
    #[error("plugin `{plugin}`: refused {path}: {reason}")]
    Refused {
        /// Plugin name.
        plugin: String,
        /// The module file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A failed plugin call. The plugin is named; the host and other plugins are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access, ...).
    #[error("plugin `{plugin}` trapped: {reason}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The panic message or trap description.
        reason: String,
    },
    /// The guest used more CPU time, or the call more wall time, than allowed.
    #[error("plugin `{plugin}` exceeded its {what} limit of {limit:?}")]
    Timeout {
        /// Plugin name.
        plugin: String,
        /// `"CPU time"` or `"wall time"`.
        what: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The guest tried to grow its memory past its cap.
    #[error("plugin `{plugin}` hit its memory limit of {limit} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The cap in bytes.
        limit: u64,
    },
    /// The guest broke the calling convention (bad message, missing export).
    #[error("plugin `{plugin}` broke the ABI: {reason}")]
    Abi {
        /// Plugin name.
        plugin: String,
        /// What was wrong.
        reason: String,
    },
    /// The guest ran fine and reported a failure (bad config, unreachable target, parse error).
    #[error("plugin `{plugin}` failed: {reason}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// The plugin's message.
        reason: String,
    },
    /// After repeated faults the plugin is not run until the time given.
    #[error("plugin `{plugin}` is quarantined for {remaining:?} after {faults} faults in a row")]
    Quarantined {
        /// Plugin name.
        plugin: String,
        /// Consecutive faults that led here.
        faults: u32,
        /// Time until it is tried again.
        remaining: Duration,
    },
    /// The instance is being recreated after a fault; the call was not attempted.
    #[error("plugin `{plugin}` is restarting after a fault; next attempt in {remaining:?}")]
    Backoff {
        /// Plugin name.
        plugin: String,
        /// Time until it is tried again.
        remaining: Duration,
    },
}

impl PluginError {
    /// Whether this is a fault of the sandboxed code (as opposed to a reported failure or a
    /// refusal to run): faults recreate the instance.
    #[must_use]
    pub const fn is_fault(&self) -> bool {
        matches!(
            self,
            Self::Trap { .. } | Self::Timeout { .. } | Self::MemoryLimit { .. } | Self::Abi { .. }
        )
    }

    /// A short label for metrics: `trap`, `timeout`, `memory_limit`, `abi`, `failed`,
    /// `quarantined`, `backoff`.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Trap { .. } => "trap",
            Self::Timeout { .. } => "timeout",
            Self::MemoryLimit { .. } => "memory_limit",
            Self::Abi { .. } => "abi",
            Self::Failed { .. } => "failed",
            Self::Quarantined { .. } => "quarantined",
            Self::Backoff { .. } => "backoff",
        }
    }
}
