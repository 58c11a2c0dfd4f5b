//! Following one retained topic: the latest message published there, again after every
//! reconnect.
//!
//! A configuration channel (the fleet manifest) is a retained message: the broker hands the
//! current one to every new subscription, so a device that was away, or whose broker
//! restarted, learns the latest state at its next connection without any queue. Each
//! connection is a clean session that subscribes afresh (QoS 1); the broker's options,
//! credentials, TLS and reconnect backoff are those of [`MqttClient`](super::MqttClient), from
//! the same [`MqttSettings`]. Receivers see every delivery, duplicates included (the retained
//! copy at each reconnect): they compare contents.

use super::MqttSettings;
use super::driver::{connect_delay, describe, options};
use crate::Error;
use crate::delivery::Delivery;
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a TCP connect, TLS handshake and CONNACK may take.
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// What the follower reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// A message on the topic (retained or published live). Empty when the retained message
    /// was cleared.
    Message(Bytes),
    /// The broker could not be reached or the connection was lost; retried with backoff.
    Down(String),
    /// Connected and subscribed again.
    Up,
}

/// A follower of one topic; dropping it disconnects.
#[derive(Debug)]
pub struct RetainedFollower {
    rx: mpsc::Receiver<Retained>,
    task: JoinHandle<()>,
}

impl Drop for RetainedFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RetainedFollower {
    /// Starts following `topic`; messages larger than `max_bytes` end the connection (the
    /// broker is asked again after a backoff). `settings.status_topic` and `max_inflight` are
    /// not used. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// As [`MqttClient::start`](super::MqttClient::start), and for an empty topic or one
    /// with wildcards.
    pub fn start(settings: MqttSettings, topic: &str, max_bytes: usize) -> Result<Self, Error> {
        if topic.is_empty() || topic.contains(['+', '#']) {
            return Err(Error::Broker {
                url: settings.url,
                reason: format!("`{topic}` is not a topic name (empty, or with a wildcard)"),
            });
        }
        let mut o = options(&MqttSettings {
            status_topic: None,
            ..settings.clone()
        })?;
        o.set_max_packet_size(max_bytes.saturating_add(1024), 64 * 1024);
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(follow(o, settings, topic.to_string(), tx));
        Ok(Self { rx, task })
    }

    /// The next report; `None` once the follower stopped.
    pub async fn next(&mut self) -> Option<Retained> {
        self.rx.recv().await
    }
}

async fn follow(
    options: rumqttc::MqttOptions,
    settings: MqttSettings,
    topic: String,
    tx: mpsc::Sender<Retained>,
) {
    let url = settings.url.as_str();
    let mut backoff = Delivery::new(settings.reconnect);
    loop {
        let (client, mut events) = AsyncClient::new(options.clone(), 8);
        events
            .network_options
            .set_connection_timeout(CONNECT_TIMEOUT_SECS);
        let reason = loop {
            let event = match events.poll().await {
                Ok(e) => e,
                Err(e) => break describe(&e),
            };
            match event {
                Event::Incoming(Packet::ConnAck(ack)) => {
                    if ack.code != rumqttc::ConnectReturnCode::Success {
                        break describe(&rumqttc::ConnectionError::ConnectionRefused(ack.code));
                    }
                    if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                        break format!("subscribing to {topic}: {e}");
                    }
                }
                Event::Incoming(Packet::SubAck(ack)) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        break format!("the broker refused the subscription to {topic}");
                    }
                    backoff = Delivery::new(settings.reconnect);
                    log::info!("Following MQTT topic {topic} on {url}");
                    if tx.send(Retained::Up).await.is_err() {
                        return;
                    }
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == topic => {
                    let delivered = tx.send(Retained::Message(p.payload)).await;
                    if delivered.is_err() {
                        return;
                    }
                }
                _ => {}
            }
        };
        drop(events);
        let delay = connect_delay(&mut backoff, &settings);
        log::warn!(
            "MQTT broker {url} not reachable for topic {topic}; retrying in {delay:?} (attempt {}). error={reason}",
            backoff.attempts()
        );
        if tx.send(Retained::Down(reason)).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}
