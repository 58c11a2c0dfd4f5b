//! The WAL sync loop: syncs the WAL when a sync is due, and publishes the WAL's statistics with
//! the exporters' counters read at the same moment, for `/metrics`, the status page and the
//! health verdict.
//!
//! It wakes once per `fsync_interval` (at most once a second, at least every 100 ms), not on a
//! fixed fast poll: an idle collector is woken by it more than by anything else, and a sync
//! (and a write of the exporters' cursors) is due only once per interval anyway. A tick passes
//! its own scheduled instant to the WAL's owner ([`WalHandle::tick`]), so two ticks one
//! interval apart always find the sync due: appended samples are synced within one
//! `fsync_interval`, as with a 100 ms poll. A request that wants a fresh snapshot (`/metrics`)
//! gets one at once, between ticks, dated at the last tick: it syncs only what that tick
//! would have.

use crate::telemetry::Telemetry;
use magpie_wal::owner::WalHandle;
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
    wal: WalHandle,
    telemetry: Arc<Telemetry>,
    fsync_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(poll_period(fsync_interval));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        let at = tokio::select! {
            at = tick.tick() => {
                last = at;
                at
            }
            () = telemetry.snapshot_wanted() => last,
            _ = stop.changed() => return,
        };
        // The owner syncs on its thread; this task only waits for the answer.
        let Ok(report) = wal.tick(at.into_std()).await else {
            return;
        };
        let exporters = telemetry.exporter_counters();
        // The owner writes the exporters' cursors; a failed write stays an error (and is
        // retried every tick) until one succeeds.
        let cursor_error = report.cursors.as_ref().err().map(ToString::to_string);
        telemetry.wal_outcome(crate::health::WalOp::Cursor, cursor_error.as_deref());
        // Appends succeed while the ring drops its oldest segments to make room on a full
        // disk; data is lost all the same, so that counts as failing too.
        telemetry.wal_outcome(
            crate::health::WalOp::Space,
            report.stats.disk_full.then_some(
                "the file system is full; the ring drops old segments below max_bytes to make room",
            ),
        );
        telemetry.publish(Arc::unwrap_or_clone(report.stats), exporters);
        let r = report.synced;
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
    use magpie_wal::{Options, SampleRef, Wal};

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

    async fn append(wal: &WalHandle, t_ms: i64) {
        wal.call(move |w| {
            let labels = [("__name__", "up")];
            w.append([SampleRef {
                labels: &labels,
                t_ms,
                value: 1.0,
            }])
        })
        .await
        .unwrap()
        .unwrap();
    }

    async fn unsynced(wal: &WalHandle) -> bool {
        wal.call(|w| w.stats().unsynced).await.unwrap()
    }

    /// Samples appended between ticks are synced by a later tick, and stopping ends the loop.
    #[tokio::test]
    async fn appended_samples_get_synced() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            fsync_interval: Duration::from_millis(100),
            ..Options::default()
        };
        let wal = magpie_wal::owner::spawn(Wal::open(dir.path(), opts).unwrap()).unwrap();
        let telemetry = Arc::new(Telemetry::default());
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(sync_loop(
            wal.clone(),
            Arc::clone(&telemetry),
            Duration::from_millis(100),
            stop,
        ));
        for t in 1..=3 {
            append(&wal, t).await;
            let deadline = Instant::now() + Duration::from_secs(30);
            while unsynced(&wal).await {
                assert!(Instant::now() < deadline, "never synced");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
    }
}
