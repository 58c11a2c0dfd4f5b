//! Which publish a broker acknowledged: the sans-IO half of the MQTT publisher.
//!
//! rumqttc assigns packet ids itself and reports them only as events: `Outgoing::Publish(pkid)`
//! when a publish is written, in the order the requests were queued, and `Incoming::PubAck(pkid)`
//! when the broker acknowledges one. The tracker keeps the waiters of queued publishes in
//! queue order, binds the front one to the packet id of the next outgoing publish, and hands it
//! back when that id is acknowledged (QoS 1) or at once (QoS 0, done when written).
//!
//! Packet ids are only meaningful within one connection: when it ends, every waiter is handed
//! back as failed ([`Tracker::fail_all`]) and the next connection starts a fresh tracker, so a
//! reused id can never resolve the wrong publish.

use std::collections::{HashMap, VecDeque};

/// Delivery guarantee of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// Fire and forget: done when written to the connection.
    AtMostOnce,
    /// Done when the broker answers PUBACK.
    AtLeastOnce,
}

/// Waiters of the publishes of one connection. `W` is whatever resolves a caller (a channel in
/// the client, a plain value in tests); `None` marks a publish nobody waits for (the status).
#[derive(Debug)]
pub(crate) struct Tracker<W> {
    queued: VecDeque<(Qos, Option<W>)>,
    unacked: HashMap<u16, Option<W>>,
}

impl<W> Default for Tracker<W> {
    fn default() -> Self {
        Self {
            queued: VecDeque::new(),
            unacked: HashMap::new(),
        }
    }
}

impl<W> Tracker<W> {
    /// A publish was queued with the client, after all earlier ones.
    pub(crate) fn queued(&mut self, qos: Qos, waiter: Option<W>) {
        self.queued.push_back((qos, waiter));
    }

    /// The event loop wrote the next queued publish with packet id `pkid` (0 for QoS 0).
    /// Returns the waiter to resolve now, if the publish needs no acknowledgement.
    pub(crate) fn written(&mut self, pkid: u16) -> Option<W> {
        let (qos, waiter) = self.queued.pop_front()?;
        match qos {
            Qos::AtMostOnce => waiter,
            Qos::AtLeastOnce => {
                if let Some(old) = self.unacked.insert(pkid, waiter) {
                    // The id was reused while still unacknowledged: rumqttc prevents that, but
                    // if it ever happened the older waiter must not hang.
                    drop(old);
                }
                None
            }
        }
    }

    /// The broker acknowledged `pkid`. Returns its waiter; `None` for an unknown id.
    pub(crate) fn acked(&mut self, pkid: u16) -> Option<W> {
        self.unacked.remove(&pkid).flatten()
    }

    /// Publishes queued or written but not acknowledged.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.queued.len() + self.unacked.len()
    }

    /// The connection ended: every waiter, to be resolved as failed.
    pub(crate) fn fail_all(&mut self) -> Vec<W> {
        let mut out: Vec<W> = self.queued.drain(..).filter_map(|(_, w)| w).collect();
        out.extend(self.unacked.drain().filter_map(|(_, w)| w));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos1_resolves_on_its_own_ack_in_any_order() {
        let mut t = Tracker::default();
        t.queued(Qos::AtLeastOnce, Some("a"));
        t.queued(Qos::AtLeastOnce, Some("b"));
        t.queued(Qos::AtLeastOnce, Some("c"));
        assert_eq!(t.written(1), None);
        assert_eq!(t.written(2), None);
        assert_eq!(t.written(3), None);
        assert_eq!(t.pending(), 3);
        assert_eq!(t.acked(2), Some("b"));
        assert_eq!(t.acked(1), Some("a"));
        assert_eq!(t.acked(1), None, "a second ack for an id resolves nothing");
        assert_eq!(t.acked(3), Some("c"));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn qos0_resolves_when_written() {
        let mut t = Tracker::default();
        t.queued(Qos::AtMostOnce, Some(1));
        t.queued(Qos::AtLeastOnce, Some(2));
        t.queued(Qos::AtMostOnce, Some(3));
        assert_eq!(t.written(0), Some(1));
        assert_eq!(t.written(7), None);
        assert_eq!(t.written(0), Some(3));
        assert_eq!(t.acked(7), Some(2));
    }

    #[test]
    fn untracked_publishes_keep_the_order() {
        // The `online` status goes between two payloads and nobody waits for it.
        let mut t = Tracker::default();
        t.queued(Qos::AtLeastOnce, Some("x"));
        t.queued(Qos::AtLeastOnce, None);
        t.queued(Qos::AtLeastOnce, Some("y"));
        for pkid in 1..=3 {
            assert_eq!(t.written(pkid), None);
        }
        assert_eq!(t.acked(2), None);
        assert_eq!(t.acked(3), Some("y"));
        assert_eq!(t.acked(1), Some("x"));
    }

    #[test]
    fn a_lost_connection_fails_queued_and_unacked() {
        let mut t = Tracker::default();
        t.queued(Qos::AtLeastOnce, Some(1));
        t.queued(Qos::AtLeastOnce, Some(2));
        t.queued(Qos::AtLeastOnce, None);
        t.queued(Qos::AtLeastOnce, Some(3));
        assert_eq!(t.written(1), None);
        assert_eq!(t.acked(1), Some(1));
        assert_eq!(t.written(2), None);
        let mut failed = t.fail_all();
        failed.sort_unstable();
        assert_eq!(failed, vec![2, 3]);
        assert_eq!(t.pending(), 0);
        assert_eq!(
            t.acked(2),
            None,
            "ids of the old connection resolve nothing"
        );
    }

    #[test]
    fn a_write_event_without_a_queued_publish_is_ignored() {
        let mut t: Tracker<u8> = Tracker::default();
        assert_eq!(t.written(5), None);
        assert_eq!(t.pending(), 0);
    }
}
