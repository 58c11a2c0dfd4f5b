//! `max_messages_per_second`: a token bucket per source, sans-IO (the caller passes the
//! time), so it is tested without clocks.
//!
//! The bucket holds up to one second of messages (`rate` tokens) and refills continuously. An
//! HTTP source answers a message that finds it empty with 429 and `Retry-After`; an MQTT source
//! waits the returned time before it reads on, so the broker holds the backlog (back-pressure)
//! and no acknowledged message is dropped.
//!
//! Twenty lines here against `governor` 0.10 (GCRA; 15 direct dependencies, `dashmap`,
//! `quanta`, `rand` and `futures-timer` among them with its default features): one bucket per
//! source behind the source's own lock needs none of its keyed or lock-free machinery.

use std::time::{Duration, Instant};

/// A token bucket of `rate` tokens per second, holding at most `rate` tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` (≥ 1) messages per second, as of `now`.
    #[must_use]
    pub fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    ///
    /// # Errors
    /// The wait until the next token.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer in whole milliseconds (the bucket counts in floating point).
    fn ms(r: Result<(), Duration>) -> Result<(), u128> {
        r.map_err(|d| (d.as_secs_f64() * 1000.0).round() as u128)
    }

    #[test]
    fn a_burst_of_one_second_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(4, t0);
        for _ in 0..4 {
            assert_eq!(ms(b.take(t0)), Ok(()));
        }
        assert_eq!(ms(b.take(t0)), Err(250));
        // A quarter second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(ms(b.take(t1)), Ok(()));
        assert!(b.take(t1).is_err());
        // A long pause refills to one second's worth, not more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(ms(b.take(t2)), Ok(()));
        }
        assert_eq!(ms(b.take(t2)), Err(250));
        // A clock read out of order takes nothing back.
        assert!(b.take(t0).is_err());
    }

    #[test]
    fn a_slow_rate_waits_whole_seconds() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1, t0);
        assert_eq!(ms(b.take(t0)), Ok(()));
        assert_eq!(ms(b.take(t0)), Err(1000));
        assert_eq!(ms(b.take(t0 + Duration::from_millis(400))), Err(600));
        assert_eq!(ms(b.take(t0 + Duration::from_secs(1))), Ok(()));
    }
}
