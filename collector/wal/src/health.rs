//! Whether the WAL is keeping what is scraped, for `/-/healthy` and the status page.
//!
//! A WAL append or sync can fail for a moment (one `EIO`, a disk full until the ring drops
//! an old segment) and recover by itself: the WAL starts a new segment after a failed sync and
//! retries the next append. So a failure alone is not unhealthy; failing **continuously** for
//! longer than `unhealthy_after` is: samples are then being lost, and an operator must act
//! (free the disk, remount it writable, replace the card). `/-/healthy` answers 503 with the
//! cause from then until an append or sync succeeds again.
//!
//! Appends and syncs are tracked apart: appends are buffered, so an append can succeed while
//! every sync fails, and the reverse after a failed sync left nothing to sync. Each clears
//! only its own failure. The systemd watchdog is not tied to this: it means "the process is
//! alive", and restarting magpie would not fix a full or read-only disk.
//!
//! Sans-IO: callers pass the outcome and the time; [`WalHealth::verdict`] decides.

use std::time::{Duration, Instant};

/// How long the WAL may fail continuously before magpie reports itself unhealthy, unless
/// `[wal] unhealthy_after` says otherwise: 30 polls of the default 1 s sync, long enough for
/// the WAL to drop an old segment or start a new one and retry, short enough that a
/// supervisor (or a person) hears of a broken disk within a minute.
pub const DEFAULT_UNHEALTHY_AFTER: Duration = Duration::from_secs(30);

/// A WAL operation whose outcome is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalOp {
    /// Appending a scrape's samples.
    Append,
    /// Writing out and `fdatasync`ing buffered samples.
    Sync,
    /// Persisting an exporter's cursor after a delivery.
    Cursor,
    /// Finding room on the file system: failing while the ring drops old segments below its
    /// budget because the disk is full.
    Space,
}

impl WalOp {
    const fn name(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Sync => "sync",
            Self::Cursor => "cursor write",
            Self::Space => "disk space",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Failing {
    since: Option<Instant>,
    error: String,
}

/// The failure state of WAL appends and syncs.
#[derive(Debug, Clone)]
pub struct WalHealth {
    unhealthy_after: Duration,
    append: Failing,
    sync: Failing,
    cursor: Failing,
    space: Failing,
}

/// What [`WalHealth::verdict`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Appends and syncs succeed (or failed for less than the threshold).
    Healthy,
    /// The WAL has been failing for longer than the threshold.
    Unhealthy {
        /// A sentence naming the operation, for how long, and the last error.
        cause: String,
    },
}

impl WalHealth {
    /// Healthy, with `unhealthy_after` as the threshold.
    #[must_use]
    pub fn new(unhealthy_after: Duration) -> Self {
        Self {
            unhealthy_after,
            append: Failing::default(),
            sync: Failing::default(),
            cursor: Failing::default(),
            space: Failing::default(),
        }
    }

    fn slot(&mut self, op: WalOp) -> &mut Failing {
        match op {
            WalOp::Append => &mut self.append,
            WalOp::Sync => &mut self.sync,
            WalOp::Cursor => &mut self.cursor,
            WalOp::Space => &mut self.space,
        }
    }

    /// Records a failed `op` at `now`; the failure started at its first report.
    pub fn failed(&mut self, op: WalOp, now: Instant, error: &str) {
        let f = self.slot(op);
        f.since.get_or_insert(now);
        error.clone_into(&mut f.error);
    }

    /// Records a successful `op`, ending its failure.
    pub fn succeeded(&mut self, op: WalOp) {
        *self.slot(op) = Failing::default();
    }

    /// Healthy, or why not at `now`.
    #[must_use]
    pub fn verdict(&self, now: Instant) -> Verdict {
        let ops = [
            (WalOp::Append, &self.append),
            (WalOp::Sync, &self.sync),
            (WalOp::Cursor, &self.cursor),
            (WalOp::Space, &self.space),
        ];
        for (op, f) in ops {
            if let Some(since) = f.since {
                let failing = now.saturating_duration_since(since);
                if failing >= self.unhealthy_after {
                    return Verdict::Unhealthy {
                        cause: format!(
                            "WAL {} failing for {}s: {}",
                            op.name(),
                            failing.as_secs(),
                            f.error
                        ),
                    };
                }
            }
        }
        Verdict::Healthy
    }
}

impl Default for WalHealth {
    fn default() -> Self {
        Self::new(DEFAULT_UNHEALTHY_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn only_a_failure_lasting_the_threshold_is_unhealthy() {
        let t0 = Instant::now();
        let mut h = WalHealth::new(30 * S);
        assert_eq!(h.verdict(t0), Verdict::Healthy);
        h.failed(WalOp::Append, t0, "first");
        h.failed(WalOp::Append, t0 + 10 * S, "disk full");
        assert_eq!(h.verdict(t0 + 29 * S), Verdict::Healthy);
        let Verdict::Unhealthy { cause } = h.verdict(t0 + 31 * S) else {
            panic!("still healthy after 31 s of failing appends")
        };
        assert_eq!(cause, "WAL append failing for 31s: disk full");
        h.succeeded(WalOp::Append);
        assert_eq!(h.verdict(t0 + 32 * S), Verdict::Healthy);
    }

    #[test]
    fn a_ring_short_of_disk_space_is_a_failure_appends_do_not_clear() {
        let t0 = Instant::now();
        let mut h = WalHealth::new(5 * S);
        h.failed(WalOp::Space, t0, "the file system is full");
        h.succeeded(WalOp::Append);
        h.succeeded(WalOp::Sync);
        let Verdict::Unhealthy { cause } = h.verdict(t0 + 6 * S) else {
            panic!("healthy while the ring is short of space")
        };
        assert_eq!(
            cause,
            "WAL disk space failing for 6s: the file system is full"
        );
        h.succeeded(WalOp::Space);
        assert_eq!(h.verdict(t0 + 7 * S), Verdict::Healthy);
    }

    #[test]
    fn a_success_of_one_operation_does_not_clear_the_other() {
        let t0 = Instant::now();
        let mut h = WalHealth::new(5 * S);
        h.failed(WalOp::Sync, t0, "EIO");
        h.succeeded(WalOp::Append);
        assert!(matches!(
            h.verdict(t0 + 6 * S),
            Verdict::Unhealthy { cause } if cause.starts_with("WAL sync failing")
        ));
        h.succeeded(WalOp::Sync);
        assert_eq!(h.verdict(t0 + 6 * S), Verdict::Healthy);
    }

    #[test]
    fn failing_cursor_writes_count_like_failing_appends() {
        let t0 = Instant::now();
        let mut h = WalHealth::new(5 * S);
        h.failed(WalOp::Cursor, t0, "No space left on device");
        h.succeeded(WalOp::Append);
        h.succeeded(WalOp::Sync);
        let Verdict::Unhealthy { cause } = h.verdict(t0 + 6 * S) else {
            panic!("healthy while cursors cannot be written")
        };
        assert_eq!(
            cause,
            "WAL cursor write failing for 6s: No space left on device"
        );
        h.succeeded(WalOp::Cursor);
        assert_eq!(h.verdict(t0 + 7 * S), Verdict::Healthy);
    }

    #[test]
    fn a_short_blip_then_recovery_never_counts_towards_a_later_failure() {
        let t0 = Instant::now();
        let mut h = WalHealth::new(5 * S);
        h.failed(WalOp::Append, t0, "blip");
        h.succeeded(WalOp::Append);
        h.failed(WalOp::Append, t0 + 10 * S, "again");
        assert_eq!(h.verdict(t0 + 12 * S), Verdict::Healthy);
    }
}
