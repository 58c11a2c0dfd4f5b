//! Tuning knobs of a [`crate::Wal`] and their validation.

use std::time::Duration;

use crate::error::Error;
use crate::frame::{FRAGMENT_HEADER, SEGMENT_HEADER};

/// What to do with damaged bytes found in the WAL.
///
/// The tail segment is validated when the WAL is opened; older segments are validated lazily,
/// when a consumer reads them, so that opening does not get slower as the ring grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Cut a torn or damaged tail at the last valid record. A damaged page in an older segment
    /// ends that segment for readers: the rest of it is skipped and counted as lost.
    #[default]
    TruncateTail,
    /// Like `TruncateTail` for the tail; in older segments only the damaged pages are skipped and
    /// reading resumes at the next page where a record starts.
    SkipCorrupt,
    /// Any damage, including a torn tail, is an [`Error::Corrupt`].
    Strict,
}

/// Options of a [`crate::Wal`]. Build with [`Options::default`] and override fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Upper bound of the bytes all segments occupy together. When a new segment would exceed
    /// it, the oldest segments are deleted first. Must hold at least two segments.
    pub max_bytes: u64,
    /// Size at which a segment is closed and a new one started. A multiple of `page_bytes`, at
    /// least 256 KiB.
    pub segment_bytes: u64,
    /// Size of a framing page: a power of two from 4 KiB to 64 KiB.
    pub page_bytes: u32,
    /// How long appended samples may stay unsynced. `Duration::ZERO` syncs on every append.
    /// A power cut loses at most this much data (plus the batch being appended).
    pub fsync_interval: Duration,
    /// How damaged data is handled.
    pub recovery: RecoveryMode,
}

impl Options {
    /// Default ring budget: 64 MiB.
    pub const fn default_max_bytes() -> u64 {
        64 << 20
    }
    /// Default segment size: 4 MiB.
    pub const fn default_segment_bytes() -> u64 {
        4 << 20
    }
    /// Default page size: 32 KiB.
    pub const fn default_page_bytes() -> u32 {
        32 << 10
    }
    /// Default sync interval: one second.
    pub const fn default_fsync_interval() -> Duration {
        Duration::from_secs(1)
    }
    /// Smallest accepted segment size.
    pub const MIN_SEGMENT_BYTES: u64 = 256 << 10;

    /// The defaults as a `const` value.
    pub const fn new() -> Self {
        Options {
            max_bytes: Self::default_max_bytes(),
            segment_bytes: Self::default_segment_bytes(),
            page_bytes: Self::default_page_bytes(),
            fsync_interval: Self::default_fsync_interval(),
            recovery: RecoveryMode::TruncateTail,
        }
    }

    /// Checks that the combination is usable.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] naming the offending field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |s: String| Err(Error::InvalidOptions(s));
        let page = u64::from(self.page_bytes);
        if !self.page_bytes.is_power_of_two() || !(4096..=65536).contains(&self.page_bytes) {
            return bad(format!(
                "page_bytes = {} must be a power of two from 4096 to 65536",
                self.page_bytes
            ));
        }
        if self.segment_bytes < Self::MIN_SEGMENT_BYTES || !self.segment_bytes.is_multiple_of(page)
        {
            return bad(format!(
                "segment_bytes = {} must be a multiple of page_bytes ({page}) and at least {}",
                self.segment_bytes,
                Self::MIN_SEGMENT_BYTES
            ));
        }
        if self.segment_bytes > 1 << 30 {
            return bad(format!(
                "segment_bytes = {} must be at most 1 GiB",
                self.segment_bytes
            ));
        }
        if self.max_bytes < 2 * self.segment_bytes {
            return bad(format!(
                "max_bytes = {} must hold at least two segments of {} bytes",
                self.max_bytes, self.segment_bytes
            ));
        }
        // The segment header and one fragment header must leave room for data in page 0.
        const { assert!(SEGMENT_HEADER + FRAGMENT_HEADER < 4096) };
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let o = Options::default();
        o.validate().unwrap();
        assert_eq!(o.max_bytes, 64 << 20);
        assert_eq!(o.segment_bytes, 4 << 20);
        assert_eq!(o.page_bytes, 32 << 10);
        assert_eq!(o.fsync_interval, Duration::from_secs(1));
        assert_eq!(o.recovery, RecoveryMode::TruncateTail);
    }

    #[test]
    fn rejects_bad_combinations() {
        let cases = [
            Options {
                page_bytes: 3000,
                ..Options::new()
            },
            Options {
                page_bytes: 128 << 10,
                ..Options::new()
            },
            Options {
                segment_bytes: 128 << 10,
                ..Options::new()
            },
            Options {
                segment_bytes: (4 << 20) + 4096,
                ..Options::new()
            },
            Options {
                max_bytes: 4 << 20,
                ..Options::new()
            },
        ];
        for o in cases {
            let e = o.validate().unwrap_err();
            assert!(matches!(e, Error::InvalidOptions(_)), "{o:?} gave {e}");
        }
    }
}
