//! The series a push source has seen within the staleness window, for `magpie_series_active`.
//!
//! A pushed series has no scrape that ends it: it is live while messages keep naming it, and
//! counts as gone once none did for [`STALENESS_MS`] (Prometheus' lookback delta, after which a
//! query no longer sees it). Each series costs one map entry (its key's 64-bit hash and when
//! it was last seen); a message updates one entry per sample. Entries older than the window
//! are dropped at most every [`PRUNE_EVERY_MS`], on a message or when the figures are read, so
//! the walk over the map is paid twice a minute, not per message; the map shrinks once less
//! than a quarter of it is used.

use magpie_metrics::memory::{Refresh, Share, map_bytes, shrink_sparse};
use parking_lot::Mutex;
use std::collections::HashMap;

/// How long a pushed series counts as live after the last message that named it.
pub const STALENESS_MS: i64 = 5 * 60 * 1000;
/// How often entries older than the window are dropped.
pub const PRUNE_EVERY_MS: i64 = 30 * 1000;

/// Series hash → when a message last named it (ms since the epoch).
#[derive(Debug, Default)]
struct Seen {
    last: HashMap<u64, i64>,
    pruned_ms: i64,
}

impl Seen {
    fn prune(&mut self, now_ms: i64, force: bool) {
        if !force && now_ms - self.pruned_ms < PRUNE_EVERY_MS {
            return;
        }
        self.pruned_ms = now_ms;
        let oldest = now_ms - STALENESS_MS;
        self.last.retain(|_, &mut t| t >= oldest);
        shrink_sparse(&mut self.last);
    }
}

/// A source's recently seen series and its share of the series account.
#[derive(Debug)]
pub struct RecentSeries {
    inner: Mutex<(Seen, Share)>,
}

impl RecentSeries {
    /// An empty set counting in `share`.
    #[must_use]
    pub fn new(share: Share) -> Self {
        Self {
            inner: Mutex::new((Seen::default(), share)),
        }
    }

    /// Notes the series of an accepted message.
    pub fn seen(&self, fingerprints: impl IntoIterator<Item = u64>, now_ms: i64) {
        let mut g = self.inner.lock();
        let (seen, share) = &mut *g;
        for f in fingerprints {
            seen.last.insert(f, now_ms);
        }
        seen.prune(now_ms, false);
        share.set(seen.last.len(), map_bytes(&seen.last));
    }

    /// Series seen within the window, as of the last message or refresh.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().0.last.len()
    }

    /// Whether none was.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the set.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        map_bytes(&self.inner.lock().0.last)
    }
}

impl Refresh for RecentSeries {
    fn refresh(&self, now_ms: i64) {
        let mut g = self.inner.lock();
        let (seen, share) = &mut *g;
        seen.prune(now_ms, false);
        share.set(seen.last.len(), map_bytes(&seen.last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_metrics::memory::SeriesAccount;
    use magpie_wal::SeriesKey;

    fn keys(from: usize, n: usize) -> Vec<u64> {
        (from..from + n)
            .map(|i| {
                let v = i.to_string();
                SeriesKey::new(&[("__name__", "pushed"), ("id", v.as_str())])
                    .unwrap()
                    .fingerprint()
            })
            .collect()
    }

    #[test]
    fn series_leave_after_the_window_and_memory_follows() {
        let account = SeriesAccount::new();
        let r = RecentSeries::new(account.share());
        let t0 = 1_000_000_000;
        r.seen(keys(0, 1000), t0);
        assert_eq!((account.active(), r.len()), (1000, 1000));
        let big = account.bytes();
        assert!(big >= 1000 * 17, "{big}");
        // The same series again: no new ones.
        r.seen(keys(0, 1000), t0 + 1000);
        assert_eq!(account.active(), 1000);
        // 100 keep coming; the other 900 fall silent past the window.
        let later = t0 + 1000 + STALENESS_MS + 1;
        r.seen(keys(0, 100), later - PRUNE_EVERY_MS);
        r.refresh(later);
        assert_eq!(account.active(), 100);
        assert!(account.bytes() < big / 4, "{} of {big}", account.bytes());
        // No message at all: the rest go too, on a read.
        r.refresh(later + STALENESS_MS);
        assert_eq!(account.active(), 0);
        drop(r);
        assert_eq!((account.active(), account.bytes()), (0, 0));
    }

    #[test]
    fn pruning_waits_for_its_period() {
        let r = RecentSeries::new(Share::detached());
        let t0 = 1_000_000_000;
        r.seen(keys(0, 10), t0);
        let t1 = t0 + STALENESS_MS - PRUNE_EVERY_MS / 2;
        r.seen(keys(10, 5), t1);
        // The first 10 are past the window, but the last walk is under a period old.
        r.refresh(t0 + STALENESS_MS + 1);
        assert_eq!(r.len(), 15);
        r.refresh(t1 + PRUNE_EVERY_MS);
        assert_eq!(r.len(), 5);
    }
}
