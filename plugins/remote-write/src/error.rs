//! Why the exporter refused its configuration or a batch.

/// An error of the `remote-write` exporter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The `[export.config]` table is not usable; names the key at fault.
    #[error("{0}")]
    Config(#[from] magpie_sdk::abi::ConfigError),
    /// The batch's series heads do not add up to its label and point lists, so some samples
    /// would be left out of every payload.
    #[error(
        "inconsistent batch: the series heads do not add up to {labels} labels and {points} points"
    )]
    InconsistentBatch {
        /// Labels in the batch.
        labels: usize,
        /// Points in the batch.
        points: usize,
    },
    /// A series' labels cannot be sent as a valid label set. The host hands labels sorted and
    /// unique, so this means a broken producer, not a receiver problem.
    #[error("series {series} (`{name}`): {reason}")]
    InvalidSeries {
        /// Index of the series in the batch.
        series: usize,
        /// Its `__name__`, empty when it has none.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A count the wire format or the ABI holds in a `u32` would overflow.
    #[error("too many {what} (more than {})", u32::MAX)]
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
    /// Snappy refused the body (only for bodies beyond its 4 GiB input limit).
    #[error("snappy compression failed: {0}")]
    Compress(String),
}
