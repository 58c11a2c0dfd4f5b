//! What one ingest source has done and where it stands, for `/metrics` and the status page.
//!
//! A [`SourceStatus`] is written by its source alone: counters are atomics bumped on the
//! message path ([`Source::accept`](crate::Source::accept) and the refusals before it), the
//! link state and last error sit behind a small lock the listener or subscriber takes when
//! they change. Readers never touch the source: they take a [`SourceSnapshot`], plain values
//! copied in a few loads, and both `/metrics` ([`crate::metrics`]) and the status page render
//! that one snapshot, so the page cannot show other figures than `/metrics`.
//!
//! A snapshot holds nothing secret: [`About`] has no field for a password, a token or URL
//! credentials (broker URLs with credentials are refused by the configuration check and are
//! shown as `scheme://host:port` only).

use crate::source::Reason;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The decoder slot a message went through: the MQTT subscription's decoder, or one of an
/// HTTP source's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// An MQTT source's one decoder.
    Mqtt,
    /// `PUT|POST /metrics/job/...`.
    Pushgateway,
    /// `POST /api/v1/write`.
    RemoteWrite,
    /// `POST /write`, `/api/v2/write`.
    Influx,
    /// `POST /v1/metrics`.
    Otlp,
}

impl Route {
    /// Every route, in the order the page lists them.
    pub const ALL: [Self; 5] = [
        Self::Mqtt,
        Self::Pushgateway,
        Self::RemoteWrite,
        Self::Influx,
        Self::Otlp,
    ];

    /// The name the configuration gives it (`[ingest.decoders]` keys, `mqtt`); the `route`
    /// label on /metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Pushgateway => "pushgateway",
            Self::RemoteWrite => "remote_write",
            Self::Influx => "influx",
            Self::Otlp => "otlp",
        }
    }

    /// The route of a configuration name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Where a source takes its messages from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An HTTP listener.
    Http {
        /// The listen address.
        listen: String,
        /// Whether pushers must send a bearer token.
        bearer_token: bool,
    },
    /// An MQTT subscription.
    Mqtt {
        /// `mqtt://host:port` or `mqtts://host:port`, never with credentials.
        broker: String,
        /// The topic filters.
        topics: Vec<String>,
        /// The subscription's QoS.
        qos: u8,
        /// Whether the source logs in with a user name and password.
        login: bool,
    },
}

/// A source's settings as the page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// Where messages come from.
    pub endpoint: Endpoint,
    /// The decoder plugin of each route the source serves.
    pub decoders: Vec<(Route, String)>,
    /// `max_messages_per_second` (0 = unlimited).
    pub max_messages_per_second: u32,
}

/// Where a source's listener or subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Not started yet, or connecting for the first time.
    Starting,
    /// An HTTP source accepting connections.
    Listening,
    /// An MQTT source connected to its broker.
    Connected,
    /// An MQTT source that lost or could not make its connection and is trying again.
    Reconnecting,
    /// Stopped: shut down, or unable to start (see the last error).
    Stopped,
}

impl Link {
    /// The word the page shows; the `state` label of `magpie_ingest_source_state`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Listening => "listening",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Stopped => "stopped",
        }
    }

    /// Whether the source can take messages now.
    #[must_use]
    pub const fn up(self) -> bool {
        matches!(self, Self::Listening | Self::Connected)
    }
}

#[derive(Debug)]
struct LinkState {
    link: Link,
    /// When, in ms since the epoch, and what.
    last_error: Option<(i64, String)>,
}

#[derive(Debug, Default)]
struct RouteCounts {
    messages: AtomicU64,
    samples: AtomicU64,
}

/// The live counters and state of one source, shared by the source and the readers.
#[derive(Debug)]
pub struct SourceStatus {
    name: String,
    about: Mutex<About>,
    state: Mutex<LinkState>,
    messages: AtomicU64,
    samples: AtomicU64,
    /// Indexed like [`Reason::ALL`].
    rejects: [AtomicU64; Reason::ALL.len()],
    /// 0 until a message is accepted.
    last_accepted_ms: AtomicI64,
    /// Indexed like [`Route::ALL`].
    routes: [RouteCounts; Route::ALL.len()],
}

/// A decoder's share of a source's accepted messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderCounts {
    pub route: Route,
    /// The decoder plugin.
    pub plugin: String,
    pub messages: u64,
    pub samples: u64,
}

/// One source read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSnapshot {
    pub name: String,
    pub about: About,
    pub link: Link,
    /// The latest failure of the listener or the connection, and when (ms since the epoch).
    pub last_error: Option<(i64, String)>,
    /// Messages accepted into the WAL.
    pub messages: u64,
    /// Their samples.
    pub samples: u64,
    /// Refused messages per reason, only the reasons that happened, in [`Reason::ALL`] order.
    pub rejects: Vec<(Reason, u64)>,
    /// When the latest message was accepted (ms since the epoch).
    pub last_accepted_ms: Option<i64>,
    /// Per configured decoder, in [`Route::ALL`] order.
    pub decoders: Vec<DecoderCounts>,
}

impl SourceSnapshot {
    /// Refused messages, all reasons.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.rejects.iter().map(|(_, n)| n).sum()
    }
}

impl SourceStatus {
    /// A source that has done nothing yet.
    #[must_use]
    pub fn new(name: &str, about: About) -> Self {
        Self {
            name: name.into(),
            about: Mutex::new(about),
            state: Mutex::new(LinkState {
                link: Link::Starting,
                last_error: None,
            }),
            messages: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            rejects: Default::default(),
            last_accepted_ms: AtomicI64::new(0),
            routes: Default::default(),
        }
    }

    /// The source's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A configuration reload gave the source new settings; its counters go on.
    pub fn restart(&self, about: About) {
        *self.about.lock() = about;
        self.state.lock().link = Link::Starting;
    }

    /// A message of `samples` samples through `route` is in the WAL, at `now_ms`.
    pub fn accepted(&self, route: Route, samples: usize, now_ms: i64) {
        let samples = samples as u64;
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(samples, Ordering::Relaxed);
        let r = &self.routes[route.index()];
        r.messages.fetch_add(1, Ordering::Relaxed);
        r.samples.fetch_add(samples, Ordering::Relaxed);
        self.last_accepted_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// A message was refused.
    pub fn refused(&self, reason: Reason) {
        self.rejects[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The listener or connection is now in `link`.
    pub fn set_link(&self, link: Link) {
        self.state.lock().link = link;
    }

    /// The listener or connection failed with `error` at `now_ms` and is now in `link`.
    pub fn failed(&self, link: Link, error: String, now_ms: i64) {
        let mut s = self.state.lock();
        s.link = link;
        s.last_error = Some((now_ms, error));
    }

    /// The counters and state now.
    #[must_use]
    pub fn snapshot(&self) -> SourceSnapshot {
        let about = self.about.lock().clone();
        let (link, last_error) = {
            let s = self.state.lock();
            (s.link, s.last_error.clone())
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut decoders: Vec<DecoderCounts> = about
            .decoders
            .iter()
            .map(|(route, plugin)| {
                let r = &self.routes[route.index()];
                DecoderCounts {
                    route: *route,
                    plugin: plugin.clone(),
                    messages: load(&r.messages),
                    samples: load(&r.samples),
                }
            })
            .collect();
        decoders.sort_by_key(|d| d.route);
        SourceSnapshot {
            name: self.name.clone(),
            link,
            last_error,
            messages: load(&self.messages),
            samples: load(&self.samples),
            rejects: Reason::ALL
                .iter()
                .zip(&self.rejects)
                .map(|(r, n)| (*r, load(n)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            last_accepted_ms: Some(self.last_accepted_ms.load(Ordering::Relaxed))
                .filter(|ms| *ms > 0),
            decoders,
            about,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> About {
        About {
            endpoint: Endpoint::Http {
                listen: "127.0.0.1:9091".into(),
                bearer_token: true,
            },
            decoders: vec![
                (Route::RemoteWrite, "remote-write-in".into()),
                (Route::Pushgateway, "prom-text".into()),
            ],
            max_messages_per_second: 0,
        }
    }

    #[test]
    fn a_snapshot_counts_per_source_reason_and_decoder() {
        let s = SourceStatus::new("lan", http());
        let empty = s.snapshot();
        assert_eq!(empty.link, Link::Starting);
        assert_eq!((empty.messages, empty.samples, empty.refused()), (0, 0, 0));
        assert_eq!(empty.last_accepted_ms, None);

        s.set_link(Link::Listening);
        s.accepted(Route::Pushgateway, 3, 1_000);
        s.accepted(Route::RemoteWrite, 10, 3_000);
        s.accepted(Route::Pushgateway, 2, 2_000);
        s.refused(Reason::Unauthorized);
        s.refused(Reason::Malformed);
        s.refused(Reason::Unauthorized);
        let v = s.snapshot();
        assert_eq!(v.link, Link::Listening);
        assert_eq!((v.messages, v.samples), (3, 15));
        // Only reasons that happened, in the order of `Reason::ALL`.
        assert_eq!(
            v.rejects,
            vec![(Reason::Malformed, 1), (Reason::Unauthorized, 2)]
        );
        assert_eq!(v.refused(), 3);
        // The latest time, even when a slower message finishes after a later one.
        assert_eq!(v.last_accepted_ms, Some(3_000));
        let per: Vec<_> = v
            .decoders
            .iter()
            .map(|d| (d.route, d.plugin.as_str(), d.messages, d.samples))
            .collect();
        assert_eq!(
            per,
            vec![
                (Route::Pushgateway, "prom-text", 2, 5),
                (Route::RemoteWrite, "remote-write-in", 1, 10),
            ]
        );
    }

    #[test]
    fn a_restart_keeps_the_counters_and_the_last_error() {
        let s = SourceStatus::new("plant", http());
        s.accepted(Route::Pushgateway, 4, 1_000);
        s.failed(Link::Reconnecting, "connection refused".into(), 5_000);
        assert_eq!(s.snapshot().link, Link::Reconnecting);
        let mut about = http();
        about.max_messages_per_second = 50;
        s.restart(about.clone());
        let v = s.snapshot();
        assert_eq!(v.link, Link::Starting);
        assert_eq!(v.about, about);
        assert_eq!((v.messages, v.samples), (1, 4));
        assert_eq!(v.last_error, Some((5_000, "connection refused".into())));
    }

    #[test]
    fn routes_are_named_as_in_the_configuration() {
        for r in Route::ALL {
            assert_eq!(Route::from_name(r.as_str()), Some(r));
        }
        assert_eq!(Route::from_name("remote_write"), Some(Route::RemoteWrite));
        assert_eq!(Route::from_name("graphite"), None);
    }
}
