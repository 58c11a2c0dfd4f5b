//! MQTT 3.1.1 publishing with broker acknowledgement, on rumqttc.
//!
//! # Design
//! [`MqttClient::start`] spawns a driver task that owns one rumqttc event loop per connection
//! and polls it without ever cancelling a poll. Callers publish through
//! [`MqttClient::publish`], which queues the message with the connection's rumqttc client and
//! registers a waiter in the connection's table (`mqtt/track.rs`) under the same lock, so the
//! table's order is the order rumqttc writes publishes in. The driver resolves waiters from the event
//! loop's `Outgoing::Publish(pkid)` and `Incoming::PubAck(pkid)` events.
//!
//! - **Acknowledgement**: QoS 1 resolves on PUBACK, QoS 0 once written to the connection.
//! - **Window**: at most `max_inflight` publishes are unresolved at a time; more wait for a slot.
//! - **Loss**: when a connection ends, every unresolved publish resolves as failed and the event
//!   loop is dropped with rumqttc's own replay queue, so nothing is resent behind the caller's
//!   back: the caller retries what failed (at-least-once, never silently lost).
//! - **Reconnect**: with exponential backoff and jitter ([`RetryPolicy`]); each failure is
//!   logged once per attempt naming the broker, never a busy loop. Publishing while the broker
//!   is unreachable fails at once with the last connection error.
//! - **Status**: with a status topic the broker holds a retained last will `offline` and the
//!   driver publishes a retained `online` after each CONNACK; [`MqttClient::close`] publishes
//!   `offline` itself before disconnecting.
//! - **Kept messages**: [`MqttClient::keep_retained`] keeps a retained message current on the
//!   broker (published after each CONNACK and at each change; `mqtt/kept.rs`), such as a
//!   state document beside the status topic.
//! - **Following**: [`RetainedFollower`] subscribes to one retained topic with the same
//!   settings and reports every message there, again after each reconnect.

mod driver;
mod kept;
mod retained;
mod track;
mod url;

pub use retained::{Retained, RetainedFollower};
pub use track::Qos;
pub use url::BrokerUrl;

use crate::delivery::RetryPolicy;
use crate::{Error, TlsOptions};
use bytes::Bytes;
use parking_lot::Mutex;
use rumqttc::AsyncClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use track::Tracker;

/// Payload of the retained status message while connected.
pub const STATUS_ONLINE: &str = "online";
/// Payload of the status last will, and of the status message on a clean shutdown.
pub const STATUS_OFFLINE: &str = "offline";

/// How long [`MqttClient::close`] waits for the `offline` status to be acknowledged.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How to reach a broker and what to tell it.
#[derive(Clone)]
pub struct MqttSettings {
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    /// The MQTT client id.
    pub client_id: String,
    /// User name and password (read from a file by the caller).
    pub credentials: Option<(String, String)>,
    /// CA roots for `mqtts://`.
    pub tls: TlsOptions,
    /// Keep-alive interval; zero turns pings off, otherwise at least one second.
    pub keep_alive: Duration,
    /// Start each connection with a clean session (MQTT `CleanSession`).
    pub clean_session: bool,
    /// Retained `online` / last will `offline` go here when set.
    pub status_topic: Option<String>,
    /// Most publishes waiting for their acknowledgement at once (at least 1).
    pub max_inflight: u16,
    /// Delays between connection attempts.
    pub reconnect: RetryPolicy,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .field("keep_alive", &self.keep_alive)
            .field("clean_session", &self.clean_session)
            .field("status_topic", &self.status_topic)
            .field("max_inflight", &self.max_inflight)
            .finish_non_exhaustive()
    }
}

/// Resolves one caller; holds its slot of the in-flight window until then.
struct Waiter {
    tx: oneshot::Sender<Result<(), String>>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Waiter {
    fn resolve(self, r: Result<(), String>) {
        // The caller may have stopped waiting (a timeout); nothing to do then.
        let _ = self.tx.send(r);
    }
}

/// A queued publish; [`Ack::wait`] resolves like [`MqttClient::publish`].
#[derive(Debug)]
pub struct Ack {
    rx: oneshot::Receiver<Result<(), String>>,
    url: String,
}

impl Ack {
    /// Waits for the broker's acknowledgement (QoS 1) or the write (QoS 0). Cancel-safe.
    ///
    /// # Errors
    /// As [`MqttClient::publish`].
    pub async fn wait(self) -> Result<(), Error> {
        let reason = match self.rx.await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(reason)) => reason,
            Err(_) => "the publisher stopped".into(),
        };
        Err(Error::Broker {
            url: self.url,
            reason,
        })
    }
}

/// The connection as publishers see it.
enum Link {
    /// A connection attempt is under way; publishers wait for its outcome.
    Connecting,
    /// Connected: publish through this client, track in this table.
    Up {
        client: AsyncClient,
        tracker: Tracker<Waiter>,
    },
    /// The last attempt failed for this reason; the next one comes after a backoff.
    Down(String),
    /// Closed for good.
    Closed,
}

struct Shared {
    link: Mutex<Link>,
    /// Bumped at every change of `link`, so waiting publishers look again.
    changed: watch::Sender<u64>,
    /// Retained messages published at every connection (`mqtt/kept.rs`); locked after `link`.
    kept: Mutex<Vec<kept::Kept>>,
}

impl Shared {
    fn set(&self, link: Link) -> Option<Tracker<Waiter>> {
        let old = std::mem::replace(&mut *self.link.lock(), link);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        match old {
            Link::Up { tracker, .. } => Some(tracker),
            _ => None,
        }
    }

    fn with_tracker<R>(&self, f: impl FnOnce(&mut Tracker<Waiter>) -> R) -> Option<R> {
        match &mut *self.link.lock() {
            Link::Up { tracker, .. } => Some(f(tracker)),
            _ => None,
        }
    }
}

/// A publisher to one broker. Dropping it stops the driver without a clean disconnect (the
/// broker then publishes the last will); [`MqttClient::close`] disconnects cleanly.
pub struct MqttClient {
    url: String,
    status_topic: Option<String>,
    shared: Arc<Shared>,
    window: Arc<Semaphore>,
    driver: JoinHandle<()>,
    /// The tasks following kept messages' changes.
    keepers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MqttClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.driver.abort();
        for k in self.keepers.lock().drain(..) {
            k.abort();
        }
    }
}

impl MqttClient {
    /// Checks the settings and starts connecting in the background. Must be called within a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a bad URL, [`Error::Tls`] for an unusable CA file, and
    /// [`Error::Broker`] for settings the protocol cannot carry.
    pub fn start(settings: MqttSettings) -> Result<Self, Error> {
        let options = driver::options(&settings)?;
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            link: Mutex::new(Link::Connecting),
            changed,
            kept: Mutex::new(Vec::new()),
        });
        let window = Arc::new(Semaphore::new(usize::from(settings.max_inflight.max(1))));
        let driver = tokio::spawn(driver::drive(
            options,
            settings.clone(),
            Arc::clone(&shared),
            Arc::clone(&window),
        ));
        Ok(Self {
            url: settings.url,
            status_topic: settings.status_topic,
            shared,
            window,
            driver,
            keepers: Mutex::new(Vec::new()),
        })
    }

    /// The broker URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a connection is up (CONNACK received and not lost since).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        matches!(&*self.shared.link.lock(), Link::Up { .. })
    }

    /// Publishes one message and resolves when the broker acknowledged it (QoS 1) or it was
    /// written to the connection (QoS 0). Waits for a slot in the in-flight window, and for a
    /// connection attempt under way.
    ///
    /// # Errors
    /// [`Error::Broker`] naming the broker when it is unreachable, refused the connection, or
    /// the connection was lost before the acknowledgement: the message may or may not have
    /// arrived, and the caller should publish it again.
    pub async fn publish(&self, topic: &str, payload: Bytes, qos: Qos) -> Result<(), Error> {
        self.submit(topic, payload, qos).await?.wait().await
    }

    /// Publishes one retained message (the broker keeps it for every later subscriber; an
    /// empty payload clears it) and resolves as [`MqttClient::publish`] does.
    ///
    /// # Errors
    /// As [`MqttClient::publish`].
    pub async fn publish_retained(
        &self,
        topic: &str,
        payload: Bytes,
        qos: Qos,
    ) -> Result<(), Error> {
        let slot = Arc::clone(&self.window)
            .acquire_owned()
            .await
            .map_err(|_| self.broker_err("the publisher is closed".into()))?;
        let rx = self.enqueue(topic, payload, qos, true, Some(slot)).await?;
        Ack {
            rx,
            url: self.url.clone(),
        }
        .wait()
        .await
    }

    /// Keeps `value`'s latest payload as the retained message of `topic` for as long as this
    /// client lives: published (QoS 1) now when connected, after every later CONNACK, and at
    /// every change of `value`. Must be called within a tokio runtime.
    pub fn keep_retained(&self, topic: &str, value: watch::Receiver<Bytes>) {
        self.shared.keep(topic, &value);
        let task = tokio::spawn(kept::follow(
            Arc::clone(&self.shared),
            topic.to_string(),
            value,
        ));
        self.keepers.lock().push(task);
    }

    /// Queues one message once a slot of the in-flight window is free, and returns without
    /// waiting for its acknowledgement: submitting several and then waiting on each pipelines
    /// them. Messages go out in submission order.
    ///
    /// # Errors
    /// As [`MqttClient::publish`], for failures before the message was queued.
    pub async fn submit(&self, topic: &str, payload: Bytes, qos: Qos) -> Result<Ack, Error> {
        let slot = Arc::clone(&self.window)
            .acquire_owned()
            .await
            .map_err(|_| self.broker_err("the publisher is closed".into()))?;
        let rx = self.enqueue(topic, payload, qos, false, Some(slot)).await?;
        Ok(Ack {
            rx,
            url: self.url.clone(),
        })
    }

    async fn enqueue(
        &self,
        topic: &str,
        payload: Bytes,
        qos: Qos,
        retain: bool,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<oneshot::Receiver<Result<(), String>>, Error> {
        let mut changed = self.shared.changed.subscribe();
        let mut slot = slot;
        loop {
            {
                let mut link = self.shared.link.lock();
                match &mut *link {
                    Link::Up { client, tracker } => {
                        let (tx, rx) = oneshot::channel();
                        client
                            .try_publish(topic, rumqtt_qos(qos), retain, payload.to_vec())
                            .map_err(|e| {
                                self.broker_err(format!("queueing a publish failed: {e}"))
                            })?;
                        tracker.queued(
                            qos,
                            Some(Waiter {
                                tx,
                                _slot: slot.take(),
                            }),
                        );
                        return Ok(rx);
                    }
                    Link::Down(reason) => {
                        return Err(self.broker_err(format!("not connected: {reason}")));
                    }
                    Link::Closed => return Err(self.broker_err("the publisher is closed".into())),
                    Link::Connecting => {}
                }
            }
            if changed.changed().await.is_err() {
                return Err(self.broker_err("the publisher stopped".into()));
            }
        }
    }

    /// Publishes the retained `offline` status (when configured), disconnects, and stops.
    pub async fn close(self) {
        if let Some(topic) = &self.status_topic {
            // Only when connected: a shutdown does not wait for a connection attempt.
            if self.is_connected() {
                let sent = self
                    .enqueue(
                        topic,
                        Bytes::from_static(STATUS_OFFLINE.as_bytes()),
                        Qos::AtLeastOnce,
                        true,
                        None,
                    )
                    .await;
                if let Ok(rx) = sent {
                    let _ = tokio::time::timeout(CLOSE_WAIT, rx).await;
                }
            }
        }
        let client = match &*self.shared.link.lock() {
            Link::Up { client, .. } => Some(client.clone()),
            _ => None,
        };
        if let Some(client) = client {
            let _ = client.try_disconnect();
            // The driver ends after writing the DISCONNECT.
            let _ = tokio::time::timeout(
                CLOSE_WAIT,
                self.shared
                    .changed
                    .subscribe()
                    .wait_for(|_| matches!(&*self.shared.link.lock(), Link::Closed)),
            )
            .await;
        }
    }

    fn broker_err(&self, reason: String) -> Error {
        Error::Broker {
            url: self.url.clone(),
            reason,
        }
    }
}

const fn rumqtt_qos(q: Qos) -> rumqttc::QoS {
    match q {
        Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
        Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
    }
}
