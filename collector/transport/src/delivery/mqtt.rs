//! The MQTT link: publish a whole round pipelined (the client's in-flight window throttles),
//! then wait for each acknowledgement (PUBACK for QoS 1, the write for QoS 0). A broker never
//! refuses a payload for good, so every failure (unreachable, connection lost before the
//! PUBACK, nothing within `timeout`) is retried.

use super::Outcome;
use super::drive::{Attempt, Link, Payload};
use crate::mqtt::{MqttClient, Qos};
use std::time::Duration;

/// Topic for a payload without one.
pub const FALLBACK_TOPIC: &str = "magpie/metrics";

/// Publishes payloads to one broker.
#[derive(Debug)]
pub struct MqttLink<'a> {
    /// The client.
    pub client: &'a MqttClient,
    /// Quality of service.
    pub qos: Qos,
    /// Bounds the wait for a window slot and for each acknowledgement.
    pub timeout: Duration,
}

fn failed(index: usize, reason: String) -> Attempt {
    Attempt {
        index,
        outcome: Outcome::Retryable { retry_after: None },
        reason: Some(reason),
        unreached: true,
    }
}

impl Link for MqttLink<'_> {
    fn window(&self) -> usize {
        usize::MAX
    }

    async fn send(&mut self, payloads: &[Payload], round: &[usize]) -> Vec<Attempt> {
        let mut out = Vec::with_capacity(round.len());
        let mut acks = Vec::with_capacity(round.len());
        for (n, &i) in round.iter().enumerate() {
            let Some(p) = payloads.get(i) else { continue };
            let topic = p.topic.as_deref().unwrap_or(FALLBACK_TOPIC);
            match tokio::time::timeout(
                self.timeout,
                self.client.submit(topic, p.body.clone(), self.qos),
            )
            .await
            {
                Ok(Ok(ack)) => acks.push((i, ack)),
                res => {
                    let reason = match res {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!(
                            "MQTT broker {}: no free in-flight slot within the timeout",
                            self.client.url()
                        ),
                    };
                    // The broker is unreachable: the rest would fail the same way.
                    out.extend(round[n..].iter().map(|&j| failed(j, reason.clone())));
                    break;
                }
            }
        }
        for (i, ack) in acks {
            out.push(match tokio::time::timeout(self.timeout, ack.wait()).await {
                Ok(Ok(())) => Attempt::accepted(i),
                Ok(Err(e)) => failed(i, e.to_string()),
                Err(_) => failed(
                    i,
                    format!(
                        "MQTT broker {}: no acknowledgement within the timeout",
                        self.client.url()
                    ),
                ),
            });
        }
        out
    }
}
