//! Why the exporter refused its configuration or a batch.

/// An error of the `mqtt` exporter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The `[export.config]` table (or the `topic` the host put in it) is not usable.
    #[error("config key `{key}`: {reason}")]
    Config {
        /// The key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is not a table at all.
    #[error("the exporter's config must be a table, found {kind}")]
    ConfigNotTable {
        /// The kind of value found instead.
        kind: &'static str,
    },
    /// The remote write encoding refused the batch.
    #[error("remote write encoding: {0}")]
    RemoteWrite(#[from] remote_write::Error),
    /// A count the ABI holds in a `u32` would overflow.
    #[error("too many samples in one message (more than {})", u32::MAX)]
    TooLarge,
}

impl From<magpie_sdk::abi::ConfigError> for Error {
    fn from(e: magpie_sdk::abi::ConfigError) -> Self {
        Self::Config {
            key: e.key,
            reason: e.reason,
        }
    }
}
