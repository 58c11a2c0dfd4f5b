//! The WAL sync loop: syncs the WAL when a sync is due, and publishes the WAL's statistics with
//! the exporters' counters read at the same moment, for `/metrics`, the status page and the
//! health verdict.
//!
//! It wakes once per `fsync_interval` (at most once a second, at least every 100 ms), not on a
//! fixed fast poll: an idle collector is woken by it more than by anything else, and a sync is
//! due only once per interval anyway. A tick passes its own scheduled instant to
//! [`Wal::sync_if_due`], so two ticks one interval apart always find the sync due: appended
//! samples are synced within one `fsync_interval`, as with a 100 ms poll. A request that wants
//! a fresh snapshot (`/metrics`) gets one at once, between ticks, without a sync.

use crate::telemetry::Telemetry;
use magpie_wal::Wal;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// The shortest time between two ticks, for a very short (or zero) `fsync_interval`.
const MIN_POLL: Duration = Duration::from_millis(100);
/// The longest time between two ticks: the health verdict and the published statistics are
/// never older than this, whatever `fsync_interval` is.
const MAX_POLL: Duration = Duration::from_secs(1);

/// Time between two ticks of the sync loop for a WAL synced every `fsync_interval`.
pub(crate) fn poll_period(fsync_interval: Duration) -> Duration {
    fsync_interval.clamp(MIN_POLL, MAX_POLL)
}

/// Runs until `stop` turns true.
pub(crate) async fn sync_loop(
    wal: Arc<Mutex<Wal>>,
    telemetry: Arc<Telemetry>,
    fsync_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let period = poll_period(fsync_interval);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let at: Option<Instant> = tokio::select! {
            at = tick.tick() => Some(at),
            () = telemetry.snapshot_wanted() => None,
            _ = stop.changed() => return,
        };
        let (r, stats, exporters) = {
            let mut wal = wal.lock();
            let r = at.map_or(Ok(false), |at| wal.sync_if_due(at.into_std()));
            (r, wal.stats(), telemetry.exporter_counters())
        };
        let cursor_error = exporters.iter().find_map(|(name, c)| {
            c.cursor_error
                .as_ref()
                .map(|e| format!("exporter `{name}`: {e}"))
        });
        telemetry.wal_outcome(crate::health::WalOp::Cursor, cursor_error.as_deref());
        telemetry.publish(stats, exporters);
        match &r {
            Ok(true) => telemetry.wal_outcome(crate::health::WalOp::Sync, None),
            Ok(false) => {}
            Err(e) => telemetry.wal_outcome(crate::health::WalOp::Sync, Some(&e.to_string())),
        }
        if let Err(e) = r {
            telemetry.wal_sync_failed();
            log::error!(
                "WAL sync failed; samples since the last sync are at risk on power loss. error={e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_wal::{Options, SampleRef};

    #[test]
    fn the_period_follows_the_fsync_interval_within_bounds() {
        assert_eq!(poll_period(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            poll_period(Duration::from_millis(250)),
            Duration::from_millis(250)
        );
        assert_eq!(poll_period(Duration::ZERO), MIN_POLL);
        assert_eq!(poll_period(Duration::from_secs(30)), MAX_POLL);
    }

    fn append(wal: &Mutex<Wal>, t_ms: i64) {
        let labels = [("__name__", "up")];
        wal.lock()
            .append([SampleRef {
                labels: &labels,
                t_ms,
                value: 1.0,
            }])
            .unwrap();
    }

    /// On the runtime's paused clock: publications in a stretch of idle time (one per tick),
    /// and whether samples appended between two ticks are synced within one interval.
    #[tokio::test(start_paused = true)]
    async fn idle_ticks_once_per_interval_and_syncs_within_one() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            fsync_interval: Duration::from_secs(1),
            ..Options::default()
        };
        let wal = Arc::new(Mutex::new(Wal::open(dir.path(), opts).unwrap()));
        let telemetry = Arc::new(Telemetry::default());
        let mut published = telemetry.subscribe_delivery();
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(sync_loop(
            Arc::clone(&wal),
            Arc::clone(&telemetry),
            Duration::from_secs(1),
            stop,
        ));
        // Ten idle seconds after the first (immediate) tick.
        let start = Instant::now();
        let mut ticks = 0;
        while Instant::now() < start + Duration::from_millis(10_500) {
            tokio::select! {
                r = published.changed() => { r.unwrap(); ticks += 1; }
                () = tokio::time::sleep_until(start + Duration::from_millis(10_500)) => {}
            }
        }
        assert_eq!(ticks, 11, "one publication per tick, one tick per second");

        // Appended half-way between two ticks: synced at the next tick or the one after, never
        // later than one interval.
        append(&wal, 1);
        assert!(wal.lock().stats().unsynced);
        tokio::time::sleep(Duration::from_millis(501)).await;
        assert!(!wal.lock().stats().unsynced, "synced at the next tick");
        // Appended just after a tick that synced: the next tick, one interval later, syncs it.
        tokio::time::sleep(Duration::from_millis(10)).await;
        append(&wal, 2);
        tokio::time::sleep(Duration::from_millis(990)).await;
        assert!(!wal.lock().stats().unsynced, "synced one interval later");

        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }
}
