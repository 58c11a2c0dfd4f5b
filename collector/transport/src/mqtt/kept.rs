//! Retained messages a client keeps current on the broker: each is published (retained, QoS 1)
//! after every CONNACK, beside the `online` status, and again whenever its value changes while
//! connected. A broker that lost its retained messages (restarted without persistence) has
//! them back at the next connection, and a value changed while the link was down goes out when
//! it returns, once: only the latest value is sent.
//!
//! Publishing happens under the link's lock, as every publish does, so the table of waiters
//! stays in the order rumqttc writes in; a kept message has no waiter (nobody awaits it).

use super::track::{Qos, Tracker};
use super::{Link, Shared, Waiter};
use bytes::Bytes;
use rumqttc::AsyncClient;
use tokio::sync::watch;

/// One kept message: its topic and the value to publish.
pub(super) type Kept = (String, watch::Receiver<Bytes>);

/// Queues `payload` as the retained message of `topic`, logging when it cannot be queued.
fn queue(client: &AsyncClient, tracker: &mut Tracker<Waiter>, topic: &str, payload: &Bytes) {
    match client.try_publish(
        topic.to_string(),
        rumqttc::QoS::AtLeastOnce,
        true,
        payload.to_vec(),
    ) {
        Ok(()) => tracker.queued(Qos::AtLeastOnce, None),
        Err(e) => log::warn!(
            "a retained status message could not be queued; it goes out at the next change or connection. topic={topic} error={e}"
        ),
    }
}

impl Shared {
    /// Marks the link up after a CONNACK, publishing every kept message first; under the
    /// link's lock, so a message registered at the same time is published exactly once here
    /// or by [`Shared::keep`].
    pub(super) fn connected(&self, client: &AsyncClient, mut tracker: Tracker<Waiter>) {
        {
            let mut link = self.link.lock();
            for (topic, value) in self.kept.lock().iter() {
                let payload = value.borrow().clone();
                queue(client, &mut tracker, topic, &payload);
            }
            *link = Link::Up {
                client: client.clone(),
                tracker,
            };
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Registers a kept message and publishes it now when connected.
    pub(super) fn keep(&self, topic: &str, value: &watch::Receiver<Bytes>) {
        let mut link = self.link.lock();
        self.kept.lock().push((topic.to_string(), value.clone()));
        if let Link::Up { client, tracker } = &mut *link {
            let payload = value.borrow().clone();
            queue(client, tracker, topic, &payload);
        }
    }

    /// Publishes the latest value when connected; otherwise the next CONNACK does.
    fn changed_value(&self, topic: &str, value: &mut watch::Receiver<Bytes>) {
        let mut link = self.link.lock();
        let payload = value.borrow_and_update().clone();
        if let Link::Up { client, tracker } = &mut *link {
            queue(client, tracker, topic, &payload);
        }
    }
}

/// Follows one kept message's changes until its sender goes away.
pub(super) async fn follow(
    shared: std::sync::Arc<Shared>,
    topic: String,
    mut value: watch::Receiver<Bytes>,
) {
    value.mark_unchanged();
    while value.changed().await.is_ok() {
        shared.changed_value(&topic, &mut value);
    }
}
