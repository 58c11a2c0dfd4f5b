//! Why the exporter refused its configuration or a batch.

/// An error of the `mqtt` exporter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The `[export.config]` table is not usable; names the key at fault.
    #[error("{0}")]
    Config(#[from] magpie_sdk::abi::ConfigError),
    /// The remote write encoding refused the batch.
    #[error("remote write encoding: {0}")]
    RemoteWrite(#[from] remote_write::Error),
    /// A count the ABI holds in a `u32` would overflow.
    #[error("too many samples in one message (more than {})", u32::MAX)]
    TooLarge,
}
