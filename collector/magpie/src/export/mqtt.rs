//! MQTT delivery of one batch: publish every payload on its topic, pipelined up to the
//! client's in-flight window, then wait for each acknowledgement (PUBACK for QoS 1, the write
//! for QoS 0). Payloads that failed (broker unreachable, connection lost before the PUBACK, no
//! answer within `timeout`) are published again after a backoff from the exporter's
//! [`Delivery`] machine, until all are acknowledged; only then does the caller acknowledge the
//! batch in the WAL. A broker never refuses a payload for good, so nothing is dropped here.

use super::{ExportStats, Exporter, Sink, Step, pause, random};
use bytes::Bytes;
use magpie_sdk::abi::Payload;
use magpie_transport::delivery::{Decision, Delivery, Outcome};
use magpie_transport::mqtt::{MqttClient, Qos};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// Topic for a payload the plugin left without one (the `mqtt` plugin always sets one).
const FALLBACK_TOPIC: &str = "magpie/metrics";

impl Exporter {
    /// Publishes `payloads` until the broker acknowledged all of them.
    pub(super) async fn publish(
        &mut self,
        payloads: &[Payload<'static>],
        stop: &mut watch::Receiver<bool>,
    ) -> Step {
        let Sink::Mqtt { client, qos } = &self.sink else {
            return Step::Continue;
        };
        let mut todo: Vec<usize> = (0..payloads.len()).collect();
        let mut delivery = Delivery::new(self.policy);
        loop {
            let round = Round {
                client,
                qos: *qos,
                timeout: self.timeout,
                stats: &self.stats,
            };
            let (failed, error) = tokio::select! {
                r = round.run(payloads, &todo) => r,
                _ = stop.changed() => return Step::Stop,
            };
            if failed.is_empty() {
                return Step::Continue;
            }
            self.stats
                .failed_sends
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            let wait = match delivery.decide(
                Outcome::Retryable { retry_after: None },
                std::time::Instant::now(),
                random(),
            ) {
                Decision::RetryAt(at) => at.saturating_duration_since(std::time::Instant::now()),
                Decision::Done | Decision::Drop => self.policy.min_backoff,
            };
            let error = error.unwrap_or_default();
            log::warn!(
                "exporter `{}`: {} of {} messages were not acknowledged by the broker; retrying in {wait:?}. error={error}",
                self.name,
                failed.len(),
                payloads.len(),
            );
            self.stats.set_error(Some(format!(
                "{} of {} messages not acknowledged: {error}",
                failed.len(),
                payloads.len()
            )));
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.recovering = true;
            if pause(wait, stop).await {
                return Step::Stop;
            }
            todo = failed;
        }
    }
}

/// One attempt at publishing a set of payloads.
struct Round<'a> {
    client: &'a MqttClient,
    qos: Qos,
    timeout: Duration,
    stats: &'a ExportStats,
}

impl Round<'_> {
    /// Publishes `payloads[i]` for each `i` in `todo`; returns the indexes that failed, in
    /// order, and the first error.
    async fn run(
        &self,
        payloads: &[Payload<'static>],
        todo: &[usize],
    ) -> (Vec<usize>, Option<String>) {
        let mut acks = Vec::with_capacity(todo.len());
        let mut failed = Vec::new();
        let mut error = None;
        for (n, &i) in todo.iter().enumerate() {
            let p = &payloads[i];
            let topic = p.topic.as_deref().unwrap_or(FALLBACK_TOPIC);
            let body = Bytes::copy_from_slice(&p.body);
            match tokio::time::timeout(self.timeout, self.client.submit(topic, body, self.qos))
                .await
            {
                Ok(Ok(ack)) => acks.push((i, ack)),
                res => {
                    error = Some(match res {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!(
                            "MQTT broker {}: no free in-flight slot within the timeout",
                            self.client.url()
                        ),
                    });
                    // The broker is unreachable: the rest would fail the same way.
                    failed.extend_from_slice(&todo[n..]);
                    break;
                }
            }
        }
        for (i, ack) in acks {
            match tokio::time::timeout(self.timeout, ack.wait()).await {
                Ok(Ok(())) => self.stats.delivered(payloads[i].samples),
                res => {
                    error.get_or_insert_with(|| match res {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!(
                            "MQTT broker {}: no acknowledgement within the timeout",
                            self.client.url()
                        ),
                    });
                    failed.push(i);
                }
            }
        }
        failed.sort_unstable();
        (failed, error)
    }
}
