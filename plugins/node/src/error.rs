//! Why a collector failed, and the per-collection [`Report`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::config::Collector;
use crate::fs::FsError;

/// Why one collector produced no (or incomplete) data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectError {
    /// A file or directory the collector needs could not be read.
    Fs {
        /// The path that failed.
        path: String,
        /// How it failed; [`FsError::Denied`] means the host did not grant it.
        error: FsError,
    },
    /// A file was read but its content is not what the kernel writes.
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// The data source does not exist on this host (node_exporter's `ErrNoData`), e.g. no
    /// `/sys/class/hwmon`.
    NoData,
    /// The sink took no more samples before this collector's turn, so it did not run.
    Stopped,
}

impl CollectError {
    pub(crate) fn fs(path: &str, error: FsError) -> Self {
        CollectError::Fs {
            path: path.into(),
            error,
        }
    }

    pub(crate) fn parse(path: &str, reason: &'static str) -> Self {
        CollectError::Parse {
            path: path.into(),
            reason,
        }
    }

    /// True if the host refused access to something the collector needed.
    pub fn is_denied(&self) -> bool {
        matches!(
            self,
            CollectError::Fs {
                error: FsError::Denied,
                ..
            }
        )
    }
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectError::Fs { path, error } => write!(f, "{path}: {error}"),
            CollectError::Parse { path, reason } => write!(f, "{path}: {reason}"),
            CollectError::NoData => f.write_str("no data on this host"),
            CollectError::Stopped => f.write_str("not run: the sink took no more samples"),
        }
    }
}

impl core::error::Error for CollectError {}

/// What one [`collect`](crate::collect) call achieved, collector by collector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Each collector that ran, in order, with its outcome. A failed collector may still have
    /// emitted part of its samples (e.g. the filesystems before a broken one).
    pub outcomes: Vec<(Collector, Result<(), CollectError>)>,
}

impl Report {
    /// The outcome of `collector`, or `None` if it was not enabled.
    pub fn outcome(&self, collector: Collector) -> Option<&Result<(), CollectError>> {
        self.outcomes
            .iter()
            .find(|(c, _)| *c == collector)
            .map(|(_, r)| r)
    }

    /// True if `collector` ran and succeeded.
    pub fn succeeded(&self, collector: Collector) -> bool {
        matches!(self.outcome(collector), Some(Ok(())))
    }

    /// The collectors that ran and failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (Collector, &CollectError)> {
        self.outcomes
            .iter()
            .filter_map(|(c, r)| r.as_ref().err().map(|e| (*c, e)))
    }
}
