//! What the collector holds in memory for live series: `magpie_series_active` and
//! `magpie_series_bytes`.
//!
//! Every structure that holds per-series state (a target's series cache, a push source's
//! recently seen series, the metadata store) owns a [`Share`] of one [`SeriesAccount`] and
//! sets its figures when it changes anyway (once per scrape, once per pushed message), from
//! counters and capacities it already has: no walk over its series. The account sums the
//! shares in two atomics, so `/metrics` reads them in two loads. Dropping a share takes its
//! figures out, so a target removed by a reload releases its series at once.
//!
//! Sizes are of the heap as allocated: capacities, not lengths. A `hashbrown` table (the
//! standard `HashMap`) of capacity `c` holds `buckets = c * 8 / 7` rounded up to a power of
//! two slots of `(K, V)` and one control byte per slot plus a group of 16;
//! [`hash_map_bytes`] computes that.
//!
//! # Example
//! ```
//! use magpie_metrics::memory::SeriesAccount;
//!
//! let account = SeriesAccount::new();
//! let mut target = account.share();
//! target.set(100, 25_000);
//! assert_eq!((account.active(), account.bytes()), (100, 25_000));
//! target.set(10, 4_000);
//! assert_eq!((account.active(), account.bytes()), (10, 4_000));
//! drop(target);
//! assert_eq!((account.active(), account.bytes()), (0, 0));
//! ```

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};

/// Work a holder does before its figures are read: a push source forgets series older than
/// its staleness window here too, so they drop out of the gauge while no message comes.
pub trait Refresh: Send + Sync {
    /// Brings the holder's figures up to `now_ms` (ms since the epoch).
    fn refresh(&self, now_ms: i64);
}

/// The sum of every [`Share`]'s figures.
#[derive(Debug, Default)]
pub struct SeriesAccount {
    active: AtomicI64,
    bytes: AtomicI64,
    refreshers: Mutex<Vec<Weak<dyn Refresh>>>,
}

impl SeriesAccount {
    /// An empty account, shared.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Live series over all shares.
    #[must_use]
    pub fn active(&self) -> u64 {
        u64::try_from(self.active.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Heap bytes over all shares.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        u64::try_from(self.bytes.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// A new share, at zero.
    #[must_use]
    pub fn share(self: &Arc<Self>) -> Share {
        Share {
            account: Arc::clone(self),
            active: 0,
            bytes: 0,
        }
    }

    /// Has `r` refreshed before every [`SeriesAccount::refresh`]; forgotten once dropped.
    pub fn on_refresh(&self, r: Weak<dyn Refresh>) {
        let mut v = self.refreshers.lock();
        v.retain(|w| w.strong_count() > 0);
        v.push(r);
    }

    /// Brings every registered holder up to `now_ms`; called before the figures are read.
    pub fn refresh(&self, now_ms: i64) {
        let live: Vec<Arc<dyn Refresh>> = {
            let mut v = self.refreshers.lock();
            v.retain(|w| w.strong_count() > 0);
            v.iter().filter_map(Weak::upgrade).collect()
        };
        for r in live {
            r.refresh(now_ms);
        }
    }
}

/// One holder's part of a [`SeriesAccount`].
#[derive(Debug)]
pub struct Share {
    account: Arc<SeriesAccount>,
    active: i64,
    bytes: i64,
}

impl Share {
    /// A share of an account nobody reads (for holders built outside a collector).
    #[must_use]
    pub fn detached() -> Self {
        SeriesAccount::new().share()
    }

    /// Sets this holder's live series and heap bytes.
    pub fn set(&mut self, active: usize, bytes: usize) {
        let active = i64::try_from(active).unwrap_or(i64::MAX);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.account
            .active
            .fetch_add(active - self.active, Ordering::Relaxed);
        self.account
            .bytes
            .fetch_add(bytes - self.bytes, Ordering::Relaxed);
        self.active = active;
        self.bytes = bytes;
    }

    /// The account this share adds to.
    #[must_use]
    pub fn account(&self) -> &Arc<SeriesAccount> {
        &self.account
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.set(0, 0);
    }
}

/// Slots of a `hashbrown` table that can hold `capacity` entries without growing.
#[must_use]
pub fn hash_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        // Small tables: 4 or 8 buckets, filled up to capacity 3 or 7.
        1..=3 => 4,
        4..=7 => 8,
        c => (c * 8).div_ceil(7).next_power_of_two(),
    }
}

/// Heap bytes of a `HashMap<K, V>` (or `HashSet<K>` with `V = ()`) of `capacity`: one
/// `(K, V)` and one control byte per bucket, plus a trailing group of 16 control bytes.
#[must_use]
pub fn hash_map_bytes<K, V>(capacity: usize) -> usize {
    let buckets = hash_buckets(capacity);
    if buckets == 0 {
        return 0;
    }
    buckets * (size_of::<(K, V)>() + 1) + 16
}

/// Heap bytes of `map`'s table (not of what its keys and values own).
#[must_use]
pub fn map_bytes<K, V, S>(map: &HashMap<K, V, S>) -> usize {
    hash_map_bytes::<K, V>(map.capacity())
}

/// Shrinks `map` when less than a quarter of its capacity is used, so a table that grew
/// for a burst of series gives the memory back once they are gone. Returns whether it did.
pub fn shrink_sparse<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &mut HashMap<K, V, S>,
) -> bool {
    if map.capacity() > 16 && map.len() < map.capacity() / 4 {
        map.shrink_to_fit();
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_leave_on_drop() {
        let a = SeriesAccount::new();
        let mut x = a.share();
        let mut y = a.share();
        x.set(5, 500);
        y.set(7, 700);
        assert_eq!((a.active(), a.bytes()), (12, 1200));
        x.set(1, 100);
        assert_eq!((a.active(), a.bytes()), (8, 800));
        drop(y);
        assert_eq!((a.active(), a.bytes()), (1, 100));
    }

    #[test]
    fn bucket_counts_match_the_standard_map() {
        // The capacity a map reports after growing is its buckets' usable share: the bucket
        // count derived from it must round-trip to that same capacity.
        for n in [1usize, 3, 4, 7, 8, 14, 15, 100, 1000, 100_000] {
            let mut m: HashMap<u64, u64> = HashMap::new();
            for i in 0..n as u64 {
                m.insert(i, i);
            }
            let cap = m.capacity();
            let b = hash_buckets(cap);
            let usable = if b < 8 { b - 1 } else { b / 8 * 7 };
            assert_eq!(usable, cap, "{n} entries: capacity {cap}, buckets {b}");
        }
        assert_eq!(hash_map_bytes::<u64, u64>(0), 0);
        assert_eq!(hash_map_bytes::<u64, u64>(14), 16 * 17 + 16);
    }

    #[test]
    fn sparse_maps_shrink_and_full_ones_do_not() {
        let mut m: HashMap<u64, u64> = (0..1000).map(|i| (i, i)).collect();
        let big = m.capacity();
        m.retain(|&k, _| k < 500);
        assert!(!shrink_sparse(&mut m), "500 of {big} is over a quarter");
        m.retain(|&k, _| k < 100);
        assert!(shrink_sparse(&mut m));
        assert!(m.capacity() < big / 4, "{} left", m.capacity());
    }

    struct Counted(Mutex<Vec<i64>>);
    impl Refresh for Counted {
        fn refresh(&self, now_ms: i64) {
            self.0.lock().push(now_ms);
        }
    }

    #[test]
    fn refreshers_run_until_dropped() {
        let a = SeriesAccount::new();
        let r = Arc::new(Counted(Mutex::default()));
        let weak: Weak<dyn Refresh> = Arc::downgrade(&(Arc::clone(&r) as Arc<dyn Refresh>));
        a.on_refresh(weak);
        a.refresh(7);
        assert_eq!(*r.0.lock(), [7]);
        drop(r);
        a.refresh(8);
        assert!(a.refreshers.lock().is_empty());
    }
}
