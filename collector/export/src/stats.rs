//! An exporter's counters: bumped by its loop as it delivers, read as [`ExporterCounters`]
//! when the WAL sync loop publishes a snapshot for `/metrics` and the status page.

use magpie_transport::clock::now_ms;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters of one exporter, shared between its loop and the collector's self-metrics.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub(crate) sent: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) too_old: AtomicU64,
    pub(crate) failed_sends: AtomicU64,
    /// Samples of batches the plugin could not encode in `ENCODE_ATTEMPTS` attempts.
    pub(crate) poisoned_samples: AtomicU64,
    pub(crate) last_success_ms: AtomicU64,
    /// The receiver refused the plugin's encoding; its fallback is sent.
    pub(crate) fallback: AtomicBool,
    /// The last failure (ms since the epoch, what happened); cleared by a delivery.
    last_error: Mutex<Option<(i64, String)>>,
    /// When a failed send was last logged (ms since the epoch; 0 for never).
    last_warned_ms: AtomicU64,
}

/// Failed sends of one run of failures logged at most this often after the first (an outage
/// retried every second would otherwise write a line a second).
pub(crate) const WARN_EVERY_MS: u64 = 60_000;

/// One exporter's counters, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterCounters {
    pub sent: u64,
    pub retries: u64,
    pub rejected: u64,
    pub too_old: u64,
    pub failed_sends: u64,
    /// Samples of batches the exporter plugin could not encode, dropped.
    pub poisoned: u64,
    /// Milliseconds since the epoch; 0 before the first delivery.
    pub last_success_ms: u64,
    /// The receiver refused the plugin's encoding (remote write 2.0), so the exporter sends
    /// the plugin's fallback (1.0).
    pub fallback: bool,
    /// The last failure (ms since the epoch, what happened); cleared by a delivery.
    pub last_error: Option<(i64, String)>,
}

impl ExportStats {
    pub(crate) fn set_error(&self, e: Option<String>) {
        *self.last_error.lock() = e.map(|e| (now_ms(), e));
    }

    /// Whether a failed send at `now_ms` is logged: the first of a run of failures (`first`)
    /// always, later ones once per [`WARN_EVERY_MS`].
    pub(crate) fn warn_due(&self, first: bool, now_ms: u64) -> bool {
        let last = self.last_warned_ms.load(Ordering::Relaxed);
        let due = first || last == 0 || now_ms.saturating_sub(last) >= WARN_EVERY_MS;
        if due {
            self.last_warned_ms.store(now_ms.max(1), Ordering::Relaxed);
        }
        due
    }

    /// A payload of `samples` samples was accepted.
    pub(crate) fn delivered(&self, samples: u32) {
        self.set_error(None);
        self.sent.fetch_add(u64::from(samples), Ordering::Relaxed);
        self.last_success_ms
            .store(u64::try_from(now_ms()).unwrap_or(0), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counters(&self) -> ExporterCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExporterCounters {
            sent: get(&self.sent),
            retries: get(&self.retries),
            rejected: get(&self.rejected),
            too_old: get(&self.too_old),
            failed_sends: get(&self.failed_sends),
            poisoned: get(&self.poisoned_samples),
            last_success_ms: get(&self.last_success_ms),
            fallback: self.fallback.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_sends_are_logged_first_then_once_a_minute() {
        let s = ExportStats::default();
        assert!(s.warn_due(false, 1_000));
        assert!(!s.warn_due(false, 2_000));
        assert!(!s.warn_due(false, 60_999));
        assert!(s.warn_due(false, 61_000));
        // A new run of failures is logged at once.
        assert!(s.warn_due(true, 61_500));
    }
}
