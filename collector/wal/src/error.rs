//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the WAL. Each variant carries enough context (file, offset,
/// operation) to be logged as one sentence without further wrapping.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation that failed (`"fdatasync"`, `"write"`, `"open"`, ...).
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Stored bytes failed validation and the recovery mode does not allow skipping them.
    #[error("corrupt WAL segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// Sequence number of the damaged segment.
        segment: u64,
        /// Byte offset inside the segment file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The series log failed validation and the recovery mode does not allow skipping it.
    #[error("corrupt WAL series log {path} at offset {offset}: {reason}")]
    CorruptSeriesLog {
        /// The series log file.
        path: PathBuf,
        /// Byte offset inside it.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The options are inconsistent.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
    /// A consumer name is not usable as a file name.
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumer {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A consumer id that this WAL did not hand out.
    #[error("unknown consumer id {0}")]
    UnknownConsumer(usize),
    /// An acknowledged position is behind the last acknowledgement or ahead of what was read.
    #[error("consumer {consumer:?}: cannot acknowledge {position}: {reason}")]
    InvalidPosition {
        /// The consumer's name.
        consumer: String,
        /// The position offered.
        position: crate::Position,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A sample's label set cannot be stored (empty, or too large for one segment).
    #[error("invalid label set: {0}")]
    InvalidLabels(&'static str),
    /// The file system is full and dropping old segments could not make room. `rejected` samples
    /// of the failing call were not stored; the WAL remains readable and writable once space
    /// returns.
    #[error("disk full under {path}: {rejected} samples rejected")]
    DiskFull {
        /// The WAL directory.
        path: PathBuf,
        /// Samples of the call that were not stored.
        rejected: u64,
    },
    /// Another process holds the directory lock.
    #[error("WAL directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The WAL's owner thread is gone (closed, or its last handle dropped).
    #[error("the WAL is closed")]
    Closed,
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt_log(path: &std::path::Path, offset: u64, reason: &str) -> Self {
        Error::CorruptSeriesLog {
            path: path.to_owned(),
            offset,
            reason: reason.to_owned(),
        }
    }

    pub(crate) fn corrupt(segment: u64, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            segment,
            offset,
            reason: reason.into(),
        }
    }

    /// True when the error is the file system running out of space (`ENOSPC`/`EDQUOT`).
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::DiskFull { .. } => true,
            Error::Io { source, .. } => is_enospc(source),
            _ => false,
        }
    }
}

pub(crate) fn is_enospc(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(c) if c == rustix::io::Errno::NOSPC.raw_os_error()
            || c == rustix::io::Errno::DQUOT.raw_os_error()
    ) || e.kind() == io::ErrorKind::StorageFull
}
