//! The wall clock and the jitter source, in one place so every retry and every timestamp of
//! the collector reads them the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it, `i64::MAX` past year 292 million).
#[must_use]
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A cheap random number for jitter: no cryptographic quality, only spread, so a fleet of
/// gateways that failed together does not retry together. Nanoseconds of the clock mixed with
/// a per-process counter (two calls in the same nanosecond still differ), then scrambled by a
/// 64-bit finaliser (splitmix64).
#[must_use]
pub fn random() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = u64::try_from(t & u128::from(u64::MAX)).unwrap_or(0)
        ^ CALLS
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_spread_over_the_range() {
        let v: Vec<u64> = (0..64).map(|_| random()).collect();
        let distinct: std::collections::BTreeSet<_> = v.iter().collect();
        assert_eq!(distinct.len(), v.len());
        // Both halves of the range are hit: the high bit is not stuck.
        assert!(v.iter().any(|x| x >> 63 == 1) && v.iter().any(|x| x >> 63 == 0));
    }

    #[test]
    fn now_ms_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
