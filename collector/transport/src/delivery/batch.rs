//! The delivery of one batch, without I/O: which payloads go out next, when, and what a round
//! of outcomes changes. [`Pacer`] spreads batches over time for `max_samples_per_second`.
//!
//! A batch is a list of payloads. Each round sends the first `window` undelivered ones, in
//! order (HTTP: one at a time, so the receiver sees them oldest first; MQTT: all of them,
//! pipelined, the client's in-flight window throttling). Accepted and refused payloads leave
//! the batch; if any of a round failed, the batch waits one backoff (or the receiver's
//! `Retry-After`) and the failed ones go again. The batch is finished when no payload is left;
//! only then may the caller acknowledge it.

use super::{Decision, Delivery, Outcome, RetryPolicy};
use std::time::{Duration, Instant};

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send these payloads (indexes into the batch, ascending).
    Send(Vec<usize>),
    /// Nothing to send before this instant.
    WaitUntil(Instant),
    /// Every payload was accepted or refused.
    Finished,
}

/// A round that ended with failures: when the failed payloads go again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// When.
    pub at: Instant,
    /// How many payloads of the round failed.
    pub failed: usize,
}

/// The state of one batch in delivery.
#[derive(Debug, Clone)]
pub struct BatchState {
    /// Undelivered payloads, ascending.
    pending: Vec<usize>,
    window: usize,
    delivery: Delivery,
    resume_at: Option<Instant>,
}

impl BatchState {
    /// A batch of `payloads` payloads sent at most `window` per round (0 counts as 1).
    #[must_use]
    pub fn new(payloads: usize, window: usize, policy: RetryPolicy) -> Self {
        Self {
            pending: (0..payloads).collect(),
            window: window.max(1),
            delivery: Delivery::new(policy),
            resume_at: None,
        }
    }

    /// Payloads not yet accepted or refused.
    #[must_use]
    pub fn pending(&self) -> &[usize] {
        &self.pending
    }

    /// Consecutive failed rounds since the last accepted or refused payload.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.delivery.attempts()
    }

    /// What to do at `now`.
    #[must_use]
    pub fn next(&self, now: Instant) -> Next {
        if self.pending.is_empty() {
            return Next::Finished;
        }
        match self.resume_at {
            Some(at) if at > now => Next::WaitUntil(at),
            _ => Next::Send(self.pending.iter().take(self.window).copied().collect()),
        }
    }

    /// Books the outcomes of a round at `now`; `random` spreads the backoff. Returns when the
    /// failed payloads go again, if any failed. An outcome for a payload not pending is
    /// ignored.
    pub fn record(
        &mut self,
        outcomes: &[(usize, Outcome)],
        now: Instant,
        random: u64,
    ) -> Option<Retry> {
        let mut failed = 0;
        let mut retry_after: Option<Duration> = None;
        // Whether every failure of the round was a refused connection.
        let mut not_listening = true;
        for &(i, outcome) in outcomes {
            let Ok(at) = self.pending.binary_search(&i) else {
                continue;
            };
            match outcome {
                Outcome::Success | Outcome::Rejected => {
                    self.pending.remove(at);
                    // Progress: the next failure starts the backoff from the bottom again.
                    self.delivery.decide(outcome, now, random);
                }
                Outcome::NotListening => failed += 1,
                Outcome::Retryable { retry_after: r } => {
                    failed += 1;
                    not_listening = false;
                    // The longest wait a receiver asked for in the round.
                    if let Some(r) = r {
                        retry_after = Some(retry_after.map_or(r, |m| m.max(r)));
                    }
                }
            }
        }
        if failed == 0 {
            self.resume_at = None;
            return None;
        }
        let outcome = if not_listening {
            Outcome::NotListening
        } else {
            Outcome::Retryable { retry_after }
        };
        let at = match self.delivery.decide(outcome, now, random) {
            Decision::RetryAt(at) => at,
            Decision::Done | Decision::Drop => now,
        };
        self.resume_at = Some(at);
        Some(Retry { at, failed })
    }
}

/// Spreads delivery over time so draining a backlog does not starve the uplink: a batch of `n`
/// samples holds the next one back by `n / rate` seconds from its own start. The first batch,
/// and any after an idle spell longer than that, goes at once.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u64,
    free_at: Option<Instant>,
}

impl Pacer {
    /// At most `rate` samples per second on average; 0 means no limit.
    #[must_use]
    pub const fn new(rate: u64) -> Self {
        Self {
            rate,
            free_at: None,
        }
    }

    /// When a batch of `samples` may start if asked at `now`; books its share of the rate.
    pub fn admit(&mut self, samples: usize, now: Instant) -> Instant {
        if self.rate == 0 {
            return now;
        }
        let start = self.free_at.map_or(now, |f| f.max(now));
        #[allow(clippy::cast_precision_loss)]
        let cost = Duration::from_secs_f64(samples as f64 / self.rate as f64);
        self.free_at = Some(start + cost);
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::REFUSED_RETRY;

    const POLICY: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };
    const RETRY: Outcome = Outcome::Retryable { retry_after: None };

    fn send(s: &BatchState, now: Instant) -> Vec<usize> {
        match s.next(now) {
            Next::Send(v) => v,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn one_at_a_time_in_order_until_accepted_or_refused() {
        let t0 = Instant::now();
        let mut s = BatchState::new(3, 1, POLICY);
        assert_eq!(send(&s, t0), [0]);
        assert_eq!(s.record(&[(0, Outcome::Success)], t0, 0), None);
        assert_eq!(send(&s, t0), [1]);
        // A failure holds back the whole batch, so payload 2 cannot overtake payload 1.
        let r = s.record(&[(1, RETRY)], t0, 0).unwrap();
        assert_eq!(
            r,
            Retry {
                at: t0 + Duration::from_millis(50),
                failed: 1
            }
        );
        assert_eq!(s.next(t0), Next::WaitUntil(r.at));
        assert_eq!(send(&s, r.at), [1]);
        assert_eq!(s.record(&[(1, Outcome::Rejected)], r.at, 0), None);
        assert_eq!(send(&s, r.at), [2]);
        s.record(&[(2, Outcome::Success)], r.at, 0);
        assert_eq!(s.next(r.at), Next::Finished);
    }

    #[test]
    fn a_round_refused_by_nobody_listening_waits_a_second_at_most_unless_another_failed() {
        let t0 = Instant::now();
        let slow = RetryPolicy {
            min_backoff: Duration::from_secs(4),
            max_backoff: Duration::from_secs(8),
        };
        let mut s = BatchState::new(2, 2, slow);
        let refused = s.record(
            &[(0, Outcome::NotListening), (1, Outcome::NotListening)],
            t0,
            0,
        );
        assert_eq!(refused.map(|r| r.at - t0), Some(REFUSED_RETRY / 2));
        // One payload of the round reached a receiver that failed it: the backoff holds.
        let mixed = s.record(&[(0, Outcome::NotListening), (1, RETRY)], t0, 0);
        assert!(mixed.is_some_and(|r| r.at - t0 >= Duration::from_secs(4)));
    }

    #[test]
    fn the_backoff_grows_while_rounds_fail_and_restarts_after_progress() {
        let t0 = Instant::now();
        let mut s = BatchState::new(2, 1, POLICY);
        let waits: Vec<Duration> = (0..6)
            .map(|_| s.record(&[(0, RETRY)], t0, 0).unwrap().at - t0)
            .collect();
        // random = 0 gives the lower end of each jittered interval: half the full backoff.
        let ms = |m| Duration::from_millis(m);
        assert_eq!(waits, [ms(50), ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert_eq!(s.attempts(), 6);
        s.record(&[(0, Outcome::Success)], t0, 0);
        assert_eq!(s.attempts(), 0);
        assert_eq!(s.record(&[(1, RETRY)], t0, 0).unwrap().at - t0, ms(50));
    }

    #[test]
    fn a_pipelined_round_resends_only_the_failed_ones() {
        let t0 = Instant::now();
        let mut s = BatchState::new(5, usize::MAX, POLICY);
        assert_eq!(send(&s, t0), [0, 1, 2, 3, 4]);
        let r = s
            .record(
                &[
                    (0, Outcome::Success),
                    (1, RETRY),
                    (2, Outcome::Success),
                    (3, RETRY),
                    (4, Outcome::Success),
                ],
                t0,
                0,
            )
            .unwrap();
        assert_eq!(r.failed, 2);
        assert_eq!(s.pending(), [1, 3]);
        assert_eq!(send(&s, r.at), [1, 3]);
        s.record(&[(3, Outcome::Success), (1, Outcome::Success)], r.at, 0);
        assert_eq!(s.next(r.at), Next::Finished);
    }

    #[test]
    fn the_window_bounds_a_round() {
        let s = BatchState::new(5, 2, POLICY);
        assert_eq!(send(&s, Instant::now()), [0, 1]);
        assert_eq!(send(&BatchState::new(5, 0, POLICY), Instant::now()), [0]);
    }

    #[test]
    fn retry_after_wins_over_the_backoff_the_longest_of_a_round_and_clamped() {
        let t0 = Instant::now();
        let mut s = BatchState::new(3, 3, POLICY);
        let after = |s: u64| Outcome::Retryable {
            retry_after: Some(Duration::from_secs(s)),
        };
        let r = s
            .record(&[(0, after(3)), (1, after(7)), (2, RETRY)], t0, 0)
            .unwrap();
        assert_eq!(r.at - t0, Duration::from_secs(7));
        let r = s.record(&[(0, after(86_400))], t0, 0).unwrap();
        assert_eq!(r.at - t0, super::super::MAX_RETRY_AFTER);
    }

    #[test]
    fn an_empty_batch_is_finished_and_stray_outcomes_are_ignored() {
        let t0 = Instant::now();
        let s = BatchState::new(0, 1, POLICY);
        assert_eq!(s.next(t0), Next::Finished);
        let mut s = BatchState::new(1, 1, POLICY);
        assert_eq!(s.record(&[(7, RETRY)], t0, 0), None);
        assert_eq!(s.pending(), [0]);
    }

    #[test]
    fn the_pacer_holds_each_batch_back_by_the_previous_ones_share() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100);
        assert_eq!(p.admit(50, t0), t0);
        // 50 samples at 100/s take half a second.
        assert_eq!(p.admit(100, t0), t0 + Duration::from_millis(500));
        assert_eq!(
            p.admit(10, t0 + Duration::from_millis(600)),
            t0 + Duration::from_millis(1500)
        );
        // After an idle spell the next batch goes at once.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(p.admit(10, later), later);
        let mut unlimited = Pacer::new(0);
        assert_eq!(unlimited.admit(1_000_000, t0), t0);
        assert_eq!(unlimited.admit(1_000_000, t0), t0);
    }
}
