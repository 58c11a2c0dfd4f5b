//! The delivery driver: runs a batch's [`BatchState`] over a [`Link`] until every payload is
//! accepted or refused, sleeping (on tokio's clock, so tests pause it) between rounds.
//!
//! The driver owns the policy, the link owns the wire: [`super::HttpLink`] POSTs one payload a
//! round and has a [`super::Judge`] read the answer; `MqttLink` publishes a whole round
//! pipelined and waits for the acknowledgements. What happens is told to a [`Report`] as it
//! happens, so counters and logs stay live while a batch is stuck. The future is cancel-safe
//! in the sense that matters: dropping it (on shutdown) leaves nothing half-acknowledged,
//! because only its completion lets the caller acknowledge the batch.

use super::batch::{BatchState, Next, Pacer};
use super::{Outcome, RetryPolicy};
use crate::clock;
use bytes::Bytes;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// One encoded payload of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Payload {
    /// The bytes on the wire.
    pub body: Bytes,
    /// Samples it carries, for the counters.
    pub samples: u32,
    /// HTTP headers of this payload (`Content-Type`, `Content-Encoding`, ...).
    pub headers: Vec<(String, String)>,
    /// MQTT topic.
    pub topic: Option<String>,
}

/// How one payload of a round went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Index into the batch.
    pub index: usize,
    /// The outcome.
    pub outcome: Outcome,
    /// Why it failed or was refused (for logs and the status page).
    pub reason: Option<String>,
    /// It did not reach the receiver (network error, timeout, no acknowledgement).
    pub unreached: bool,
}

impl Attempt {
    /// Accepted.
    #[must_use]
    pub const fn accepted(index: usize) -> Self {
        Self {
            index,
            outcome: Outcome::Success,
            reason: None,
            unreached: false,
        }
    }
}

/// One way to the receiver.
pub trait Link {
    /// Payloads one round may carry.
    fn window(&self) -> usize;
    /// Sends `payloads[i]` for each `i` of `round`; one [`Attempt`] per index, any order.
    fn send(&mut self, payloads: &[Payload], round: &[usize])
    -> impl Future<Output = Vec<Attempt>>;
}

/// A round that failed in part, as told to a [`Report`].
#[derive(Debug, Clone, Copy)]
pub struct RoundFailed<'a> {
    /// Payloads of the round that failed.
    pub failed: usize,
    /// Of these, how many never reached the receiver.
    pub unreached: usize,
    /// Payloads in the batch.
    pub of: usize,
    /// The wait before they go again.
    pub wait: Duration,
    /// The first failure's reason.
    pub reason: &'a str,
}

/// What the driver tells as it goes.
pub trait Report {
    /// A payload was accepted.
    fn accepted(&mut self, payload: &Payload);
    /// A payload was refused for good; it is dropped.
    fn refused(&mut self, payload: &Payload, reason: &str);
    /// Some payloads of a round failed and will go again after `wait`.
    fn retrying(&mut self, round: &RoundFailed<'_>);
}

/// How [`deliver_until`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every payload was accepted or refused: the caller acknowledges the batch.
    Finished,
    /// Stopped first: the batch must not be acknowledged.
    Stopped,
}

/// Delivers `payloads` over `link`: paced by `pacer`, retried by `policy`, until each is
/// accepted or refused. Returns then; the caller acknowledges the batch.
pub async fn deliver<L: Link, R: Report>(
    link: &mut L,
    payloads: &[Payload],
    policy: RetryPolicy,
    pacer: &mut Pacer,
    report: &mut R,
) {
    let (_keep, mut never) = watch::channel(false);
    deliver_until(
        link,
        payloads,
        policy,
        pacer,
        report,
        &mut never,
        Duration::ZERO,
    )
    .await;
}

/// As [`deliver`], until `stop` turns true. A wait (pacing, backoff) ends at once then; a
/// round already on the wire gets up to `grace` more to be answered, so a receiver that
/// stored a payload is not sent it again after a restart (Prometheus refuses a request
/// whose older samples it has already stored, and with them the new ones). When that round
/// completes the batch, the delivery is [`Ended::Finished`].
pub async fn deliver_until<L: Link, R: Report>(
    link: &mut L,
    payloads: &[Payload],
    policy: RetryPolicy,
    pacer: &mut Pacer,
    report: &mut R,
    stop: &mut watch::Receiver<bool>,
    grace: Duration,
) -> Ended {
    let samples = payloads.iter().map(|p| p.samples as usize).sum();
    let start = pacer.admit(samples, Instant::now().into_std());
    tokio::select! {
        () = tokio::time::sleep_until(Instant::from_std(start)) => {}
        () = stopped(stop) => return Ended::Stopped,
    }
    let mut state = BatchState::new(payloads.len(), link.window(), policy);
    loop {
        let round = match state.next(Instant::now().into_std()) {
            Next::Finished => return Ended::Finished,
            _ if *stop.borrow() => return Ended::Stopped,
            Next::WaitUntil(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(Instant::from_std(at)) => continue,
                    () = stopped(stop) => return Ended::Stopped,
                }
            }
            Next::Send(round) => round,
        };
        let attempts = tokio::select! {
            a = link.send(payloads, &round) => a,
            () = async {
                stopped(stop).await;
                tokio::time::sleep(grace).await;
            } => return Ended::Stopped,
        };
        let mut outcomes = Vec::with_capacity(attempts.len());
        let mut reason = None;
        let mut unreached = 0;
        for a in &attempts {
            let Some(p) = payloads.get(a.index) else {
                continue;
            };
            let why = a.reason.as_deref().unwrap_or("no reason given");
            match a.outcome {
                Outcome::Success => report.accepted(p),
                Outcome::Rejected => report.refused(p, why),
                Outcome::Retryable { .. } | Outcome::NotListening => {
                    reason.get_or_insert(why);
                    unreached += usize::from(a.unreached);
                }
            }
            outcomes.push((a.index, a.outcome));
        }
        let now = Instant::now().into_std();
        if let Some(retry) = state.record(&outcomes, now, clock::random()) {
            report.retrying(&RoundFailed {
                failed: retry.failed,
                unreached,
                of: payloads.len(),
                wait: retry.at.saturating_duration_since(now),
                reason: reason.unwrap_or("no reason given"),
            });
        }
    }
}

/// Resolves when `stop` is true; never when its sender is gone without stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A link answering from a script per payload index; once a payload's script is empty it
    /// is accepted. Records the virtual time of every send.
    struct Scripted {
        window: usize,
        script: Vec<VecDeque<Outcome>>,
        log: Vec<(Duration, usize)>,
        t0: Instant,
    }

    impl Scripted {
        fn new(window: usize, script: Vec<Vec<Outcome>>) -> Self {
            Self {
                window,
                script: script.into_iter().map(VecDeque::from).collect(),
                log: Vec::new(),
                t0: Instant::now(),
            }
        }
    }

    impl Link for Scripted {
        fn window(&self) -> usize {
            self.window
        }

        async fn send(&mut self, _payloads: &[Payload], round: &[usize]) -> Vec<Attempt> {
            round
                .iter()
                .map(|&i| {
                    self.log.push((self.t0.elapsed(), i));
                    let outcome = self.script[i].pop_front().unwrap_or(Outcome::Success);
                    Attempt {
                        index: i,
                        outcome,
                        reason: (outcome != Outcome::Success).then(|| format!("payload {i}")),
                        unreached: outcome == Outcome::Retryable { retry_after: None },
                    }
                })
                .collect()
        }
    }

    #[derive(Default)]
    struct Tally {
        accepted: Vec<u32>,
        refused: Vec<(u32, String)>,
        retries: Vec<(usize, usize, Duration, String)>,
    }

    impl Report for Tally {
        fn accepted(&mut self, p: &Payload) {
            self.accepted.push(p.samples);
        }
        fn refused(&mut self, p: &Payload, reason: &str) {
            self.refused.push((p.samples, reason.into()));
        }
        fn retrying(&mut self, r: &RoundFailed<'_>) {
            self.retries
                .push((r.failed, r.unreached, r.wait, r.reason.into()));
        }
    }

    fn payloads(n: u32) -> Vec<Payload> {
        (0..n)
            .map(|i| Payload {
                samples: 10 + i,
                ..Payload::default()
            })
            .collect()
    }

    const POLICY: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    };
    const RETRY: Outcome = Outcome::Retryable { retry_after: None };
    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    #[tokio::test(start_paused = true)]
    async fn http_style_retries_in_order_honours_retry_after_and_drops_refusals() {
        let after = Outcome::Retryable {
            retry_after: Some(Duration::from_secs(30)),
        };
        let mut link = Scripted::new(
            1,
            vec![vec![RETRY, RETRY, after], vec![Outcome::Rejected], vec![]],
        );
        let mut tally = Tally::default();
        let p = payloads(3);
        deliver(&mut link, &p, POLICY, &mut Pacer::new(0), &mut tally).await;
        assert_eq!(tally.accepted, [10, 12]);
        assert_eq!(tally.refused, [(11, "payload 1".to_string())]);
        assert_eq!(tally.retries.len(), 3);
        assert_eq!(tally.retries[2].2, Duration::from_secs(30));
        // Payload 0 four times (two backoffs within their jitter range, then Retry-After),
        // and only then payloads 1 and 2: nothing overtakes a failed payload.
        let sent: Vec<usize> = link.log.iter().map(|&(_, i)| i).collect();
        assert_eq!(sent, [0, 0, 0, 0, 1, 2]);
        let t = |k: usize| link.log[k].0;
        assert!((ms(50)..=ms(100)).contains(&t(1)), "{:?}", t(1));
        assert!(
            (ms(100)..=ms(200)).contains(&(t(2) - t(1))),
            "{:?}",
            t(2) - t(1)
        );
        assert_eq!(t(3) - t(2), Duration::from_secs(30));
        assert_eq!(t(4), t(3));
    }

    #[tokio::test(start_paused = true)]
    async fn mqtt_style_resends_only_the_failed_payloads_of_a_pipelined_round() {
        let mut link = Scripted::new(
            usize::MAX,
            vec![vec![], vec![RETRY, RETRY], vec![], vec![RETRY]],
        );
        let mut tally = Tally::default();
        deliver(
            &mut link,
            &payloads(4),
            POLICY,
            &mut Pacer::new(0),
            &mut tally,
        )
        .await;
        let sent: Vec<usize> = link.log.iter().map(|&(_, i)| i).collect();
        assert_eq!(sent, [0, 1, 2, 3, 1, 3, 1]);
        assert_eq!(tally.accepted, [10, 12, 13, 11]);
        let failed: Vec<(usize, usize)> = tally.retries.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(failed, [(2, 2), (1, 1)]);
        assert_eq!(tally.retries[0].3, "payload 1");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spreads_batches_over_time() {
        let mut pacer = Pacer::new(100);
        let t0 = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let mut link = Scripted::new(1, vec![vec![]]);
            let p = vec![Payload {
                samples: 50,
                ..Payload::default()
            }];
            deliver(&mut link, &p, POLICY, &mut pacer, &mut Tally::default()).await;
            starts.push(link.t0 - t0 + link.log[0].0);
        }
        assert_eq!(starts, [ms(0), ms(500), ms(1000)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_batch_finishes_at_once() {
        let mut link = Scripted::new(1, vec![]);
        let mut tally = Tally::default();
        deliver(&mut link, &[], POLICY, &mut Pacer::new(10), &mut tally).await;
        assert!(link.log.is_empty() && tally.accepted.is_empty());
    }

    /// A link whose answer takes `delay`, then accepts.
    struct Slow {
        delay: Duration,
        sent: usize,
    }

    impl Link for Slow {
        fn window(&self) -> usize {
            1
        }

        async fn send(&mut self, _payloads: &[Payload], round: &[usize]) -> Vec<Attempt> {
            self.sent += round.len();
            tokio::time::sleep(self.delay).await;
            round.iter().map(|&i| Attempt::accepted(i)).collect()
        }
    }

    /// Runs `deliver_until` over `link`, with `stop` turning true after `stop_after`.
    async fn stop_during<L: Link>(
        link: &mut L,
        n: u32,
        stop_after: Duration,
        grace: Duration,
    ) -> (Ended, Tally, Duration) {
        let (tx, mut rx) = watch::channel(false);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(stop_after).await;
            tx.send_replace(true);
            // Keep the sender: a dropped one is not a stop.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let mut tally = Tally::default();
        let t0 = Instant::now();
        let ended = deliver_until(
            link,
            &payloads(n),
            POLICY,
            &mut Pacer::new(0),
            &mut tally,
            &mut rx,
            grace,
        )
        .await;
        stopper.abort();
        (ended, tally, t0.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_on_the_wire_at_stop_is_answered_within_the_grace() {
        let mut link = Slow {
            delay: ms(300),
            sent: 0,
        };
        let (ended, tally, took) = stop_during(&mut link, 1, ms(100), ms(1000)).await;
        assert_eq!(ended, Ended::Finished);
        assert_eq!(tally.accepted, [10]);
        assert_eq!(took, ms(300));
        // Stopped between rounds: the next payload is not sent.
        let mut link = Slow {
            delay: ms(300),
            sent: 0,
        };
        let (ended, tally, _) = stop_during(&mut link, 3, ms(100), ms(1000)).await;
        assert_eq!(ended, Ended::Stopped);
        assert_eq!((link.sent, tally.accepted), (1, vec![10]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_slower_than_the_grace_and_a_backoff_end_at_stop() {
        let mut link = Slow {
            delay: ms(3000),
            sent: 0,
        };
        let (ended, tally, took) = stop_during(&mut link, 1, ms(100), ms(500)).await;
        assert_eq!(ended, Ended::Stopped);
        assert!(tally.accepted.is_empty());
        assert_eq!(took, ms(600));
        // Waiting out a 30 s Retry-After: the stop ends it at once.
        let after = Outcome::Retryable {
            retry_after: Some(Duration::from_secs(30)),
        };
        let mut link = Scripted::new(1, vec![vec![after]]);
        let (ended, _, took) = stop_during(&mut link, 1, ms(100), ms(500)).await;
        assert_eq!((ended, took), (Ended::Stopped, ms(100)));
    }
}
