//! The delivery state machine, without I/O: given how a send went and the time, decide
//! whether the payload is done, retried later, or dropped. Drivers do the sending and the
//! sleeping; this module is tested with a fake clock.
//!
//! Semantics follow Prometheus remote write: success acknowledges; a retryable failure (5xx,
//! 429, a network error or timeout) is retried with exponential backoff from `min_backoff` to
//! `max_backoff`, with jitter so a fleet of gateways does not retry in step, and a server's
//! `Retry-After` (up to [`MAX_RETRY_AFTER`]) replaces the computed delay; a refusal (other 4xx)
//! drops the payload, which the driver counts.
//!
//! Above the per-payload [`Delivery`] machine:
//! - [`batch`]: the state of one batch (which payloads go next, when) and the [`Pacer`] for
//!   `max_samples_per_second`; sans-IO as well.
//! - [`deliver`]: the one driver, generic over a [`Link`]: [`HttpLink`] (one POST a round,
//!   answers read by a [`Judge`]) and, with the `mqtt` feature, `MqttLink` (a pipelined round,
//!   acknowledged by PUBACKs). It reports to a [`Report`] as it goes and returns when every
//!   payload is accepted or refused.
//! - [`retry_after`]: `Retry-After` in both of its forms.

pub mod batch;
mod drive;
mod http;
#[cfg(feature = "mqtt")]
mod mqtt;
pub mod retry_after;

pub use batch::{BatchState, Next, Pacer, Retry};
pub use drive::{Attempt, Ended, Link, Payload, Report, RoundFailed, deliver, deliver_until};
pub use http::{ByStatus, HttpLink, Judge, Verdict};
#[cfg(feature = "mqtt")]
pub use mqtt::{FALLBACK_TOPIC, MqttLink};

use std::time::{Duration, Instant};

/// Longest `Retry-After` honoured; a larger value is clamped so a misconfigured receiver
/// cannot park the exporter for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First delay.
    pub min_backoff: Duration,
    /// Largest computed delay.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Prometheus' defaults: 30 ms to 5 s.
    pub const DEFAULT: Self = Self {
        min_backoff: Duration::from_millis(30),
        max_backoff: Duration::from_secs(5),
    };
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How one send went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Success,
    /// Try again; `retry_after` when the server said when.
    Retryable {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Refused for good.
    Rejected,
    /// Nothing listens at the receiver's address: the connection was refused. Tried again as
    /// a retryable failure, but within [`REFUSED_RETRY`] at most: looking again costs the
    /// receiver a TCP reset, not a request, and a receiver back from a restart or an outage
    /// gets its backlog within a second instead of after a backoff of up to `max_backoff`.
    NotListening,
}

/// Longest wait before a refused connection is tried again (spread over its upper half, so
/// gateways that lost the same receiver do not come back in step).
pub const REFUSED_RETRY: Duration = Duration::from_secs(1);

/// What to do next with the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Delivered: move on (and acknowledge when the batch is complete).
    Done,
    /// Send it again at this instant.
    RetryAt(Instant),
    /// Drop it and count its samples.
    Drop,
}

/// The retry state of one payload in flight.
#[derive(Debug, Clone)]
pub struct Delivery {
    policy: RetryPolicy,
    attempt: u32,
}

impl Delivery {
    /// A fresh payload.
    #[must_use]
    pub const fn new(policy: RetryPolicy) -> Self {
        Self { policy, attempt: 0 }
    }

    /// Failed attempts so far.
    #[must_use]
    pub const fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The decision after `outcome` at `now`; `random` is any random value (it spreads the
    /// delay over the upper half of the backoff interval).
    pub fn decide(&mut self, outcome: Outcome, now: Instant, random: u64) -> Decision {
        match outcome {
            Outcome::Success => {
                self.attempt = 0;
                Decision::Done
            }
            Outcome::Rejected => {
                self.attempt = 0;
                Decision::Drop
            }
            Outcome::Retryable { retry_after } => {
                let delay =
                    retry_after.map_or_else(|| self.backoff(random), |d| d.min(MAX_RETRY_AFTER));
                self.attempt = self.attempt.saturating_add(1);
                Decision::RetryAt(now + delay)
            }
            Outcome::NotListening => {
                let delay = self.backoff(random).min(jittered(REFUSED_RETRY, random));
                self.attempt = self.attempt.saturating_add(1);
                Decision::RetryAt(now + delay)
            }
        }
    }

    fn backoff(&self, random: u64) -> Duration {
        let exp = self
            .policy
            .min_backoff
            .saturating_mul(1u32 << self.attempt.min(20));
        let full = exp
            .min(self.policy.max_backoff)
            .max(self.policy.min_backoff);
        jittered(full, random)
    }
}

/// A delay in the upper half of `full`, placed by `random`.
fn jittered(full: Duration, random: u64) -> Duration {
    let half = full / 2;
    let span = u64::try_from((full - half).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1);
    half + Duration::from_nanos(random % span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(d: &mut Delivery, now: Instant, random: u64) -> Duration {
        match d.decide(Outcome::Retryable { retry_after: None }, now, random) {
            Decision::RetryAt(at) => at - now,
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn a_refused_connection_waits_its_backoff_but_a_second_at_most() {
        let now = Instant::now();
        let mut d = Delivery::new(RetryPolicy::DEFAULT);
        let wait = |d: &mut Delivery, random| match d.decide(Outcome::NotListening, now, random) {
            Decision::RetryAt(at) => at - now,
            other => panic!("expected a retry, got {other:?}"),
        };
        // Early on, the backoff is shorter than the cap: it applies.
        assert!(wait(&mut d, 0) <= Duration::from_millis(30));
        for _ in 0..10 {
            wait(&mut d, 7);
        }
        // Where the backoff would be 2.5-5 s, a refused connection is looked at again within
        // a second, in the upper half of it.
        for r in [0, 1, 499_999_999, 12_345_678_901] {
            let w = wait(&mut d, r);
            assert!(w >= REFUSED_RETRY / 2 && w < REFUSED_RETRY, "{w:?}");
        }
        assert!(retry(&mut d, now, 0) >= Duration::from_millis(2500));
    }

    #[test]
    fn backoff_doubles_within_bounds_with_jitter_in_the_upper_half() {
        let now = Instant::now();
        let mut d = Delivery::new(RetryPolicy::DEFAULT);
        let mut expected = Duration::from_millis(30);
        for _ in 0..12 {
            let lo = retry(&mut d.clone(), now, 0);
            let hi = retry(&mut d.clone(), now, u64::MAX - 1);
            assert_eq!(lo, expected / 2);
            assert!(
                hi <= expected && hi > expected / 2,
                "{hi:?} vs {expected:?}"
            );
            retry(&mut d, now, 7);
            expected = (expected * 2).min(Duration::from_secs(5));
        }
        assert_eq!(d.attempts(), 12);
        assert_eq!(expected, Duration::from_secs(5));
    }

    #[test]
    fn retry_after_replaces_the_backoff_and_is_clamped() {
        let now = Instant::now();
        let mut d = Delivery::new(RetryPolicy::DEFAULT);
        let at = d.decide(
            Outcome::Retryable {
                retry_after: Some(Duration::from_secs(7)),
            },
            now,
            0,
        );
        assert_eq!(at, Decision::RetryAt(now + Duration::from_secs(7)));
        let at = d.decide(
            Outcome::Retryable {
                retry_after: Some(Duration::from_secs(86_400)),
            },
            now,
            0,
        );
        assert_eq!(at, Decision::RetryAt(now + MAX_RETRY_AFTER));
    }

    #[test]
    fn success_and_rejection_end_the_payload_and_reset_the_backoff() {
        let now = Instant::now();
        let mut d = Delivery::new(RetryPolicy::DEFAULT);
        retry(&mut d, now, 0);
        retry(&mut d, now, 0);
        assert_eq!(d.decide(Outcome::Success, now, 0), Decision::Done);
        assert_eq!(d.attempts(), 0);
        assert_eq!(retry(&mut d, now, 0), Duration::from_millis(15));
        assert_eq!(d.decide(Outcome::Rejected, now, 0), Decision::Drop);
        assert_eq!(d.attempts(), 0);
    }
}
