//! One ingest source and the path of a message into the WAL ([`Source::accept`]).

use crate::rate::TokenBucket;
use crate::status::{Route, SourceStatus};
use magpie_host::{PluginError, Runner, SampleSink};
use magpie_sdk::abi::{DecodeRequest, EmitStatus, SampleBatch};
use magpie_wal::SeriesKey;
use magpie_wal::owner::{Durability, OwnedSample, WalHandle};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Why a message was refused, as counted on /metrics (`reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The decoder refused it, or a label set is invalid.
    Malformed,
    /// Larger than `max_body_bytes`.
    TooLarge,
    /// More samples than `sample_limit`.
    TooManySamples,
    /// A path, method or content the source does not take.
    Unsupported,
    /// Missing or wrong credentials.
    Unauthorized,
    /// The decoder faulted on the message (trap, CPU or memory limit, ABI violation).
    DecoderFault,
    /// The decoder is in backoff or quarantine after faults; the message was not tried.
    DecoderUnavailable,
    /// The WAL append, flush or sync failed.
    Wal,
    /// Over `max_messages_per_second` (HTTP; MQTT waits instead).
    RateLimited,
    /// A `Content-Encoding` the path does not take (HTTP 415).
    UnsupportedEncoding,
    /// A connection that failed the TLS handshake: no client certificate or an untrusted one
    /// under `client_ca_file`, or not TLS at all.
    TlsHandshake,
}

impl Reason {
    /// Every reason, in the order /metrics and the status page list them.
    pub const ALL: [Self; 11] = [
        Self::Malformed,
        Self::TooLarge,
        Self::TooManySamples,
        Self::Unsupported,
        Self::Unauthorized,
        Self::DecoderFault,
        Self::DecoderUnavailable,
        Self::Wal,
        Self::RateLimited,
        Self::UnsupportedEncoding,
        Self::TlsHandshake,
    ];

    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The `reason` label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::TooManySamples => "too_many_samples",
            Self::Unsupported => "unsupported",
            Self::Unauthorized => "unauthorized",
            Self::DecoderFault => "decoder_fault",
            Self::DecoderUnavailable => "decoder_unavailable",
            Self::Wal => "wal",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::TlsHandshake => "tls_handshake",
        }
    }
}

/// A refused message: the reason class and the detail for the log and the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct Reject {
    /// The class, counted on /metrics.
    pub reason: Reason,
    /// What was wrong, in words.
    pub detail: String,
}

impl Reject {
    /// A reject of class `reason`.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// Whether the sender may succeed by sending the same message again later.
    #[must_use]
    pub const fn retryable(&self) -> bool {
        matches!(
            self.reason,
            Reason::Wal | Reason::DecoderUnavailable | Reason::RateLimited
        )
    }
}

/// What an accepted message added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Samples appended.
    pub samples: usize,
}

/// Limits of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// Largest message body in bytes.
    pub max_body_bytes: u64,
    /// Most samples per message (0 = unlimited).
    pub sample_limit: u32,
    /// Answer only once the appended samples are synced to the disk, not only written to the
    /// file.
    pub fsync_ack: bool,
    /// Most messages per second, with a burst of one second's worth (0 = unlimited).
    pub max_messages_per_second: u32,
}

/// A decoder plugin instance, supervised (backoff, quarantine). Calls are serialised.
#[derive(Debug)]
pub struct Decoder {
    route: Route,
    runner: tokio::sync::Mutex<Runner>,
}

impl Decoder {
    /// Wraps a runner of a plugin with the decoder role, serving `route`.
    #[must_use]
    pub fn new(route: Route, runner: Runner) -> Self {
        Self {
            route,
            runner: tokio::sync::Mutex::new(runner),
        }
    }
}

/// One pushed message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// MQTT topic or HTTP path.
    pub context: &'a str,
    /// `Content-Type`, empty when none.
    pub content_type: &'a str,
    /// Headers passed to the decoder (lower-case names).
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// One `[[ingest]]` source at run time.
pub struct Source {
    name: String,
    limits: SourceLimits,
    /// Labels set on every sample that has no label of that name (`job` for MQTT).
    defaults: Vec<(String, String)>,
    wal: WalHandle,
    wake: Arc<Notify>,
    status: Arc<SourceStatus>,
    bucket: Option<parking_lot::Mutex<TokenBucket>>,
    /// The series seen within the staleness window, when counted (`magpie_series_active`).
    recent: Option<Arc<crate::recent::RecentSeries>>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Collects what a decoder emits, up to the sample limit.
#[derive(Default)]
struct Collected {
    limit: usize,
    exceeded: bool,
    samples: Vec<Decoded>,
}

struct Collect(Arc<Mutex<Collected>>);

struct Decoded {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    t_ms: Option<i64>,
}

impl SampleSink for Collect {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut c = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (s, labels) in batch.iter() {
            if c.samples.len() >= c.limit {
                c.exceeded = true;
                return EmitStatus::Stop;
            }
            c.samples.push(Decoded {
                name: s.name.to_string(),
                labels: labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.value,
                t_ms: s.timestamp_ms,
            });
        }
        EmitStatus::Continue
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Source {
    /// A source appending to `wal` and counting in `status` (whose name it takes); `wake` is
    /// notified after each append (the exporters wait on it).
    #[must_use]
    pub fn new(
        status: Arc<SourceStatus>,
        limits: SourceLimits,
        defaults: Vec<(String, String)>,
        wal: WalHandle,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            name: status.name().into(),
            limits,
            defaults,
            wal,
            wake,
            status,
            bucket: (limits.max_messages_per_second > 0).then(|| {
                parking_lot::Mutex::new(TokenBucket::new(
                    limits.max_messages_per_second,
                    Instant::now(),
                ))
            }),
            recent: None,
        }
    }

    /// Counts the series this source sees within the staleness window in `account`
    /// (`magpie_series_active`, `magpie_series_bytes`).
    #[must_use]
    pub fn with_series(mut self, account: &Arc<magpie_metrics::memory::SeriesAccount>) -> Self {
        let recent = Arc::new(crate::recent::RecentSeries::new(account.share()));
        let weak: std::sync::Weak<dyn magpie_metrics::memory::Refresh> =
            Arc::downgrade(&(Arc::clone(&recent) as Arc<dyn magpie_metrics::memory::Refresh>));
        account.on_refresh(weak);
        self.recent = Some(recent);
        self
    }

    /// Takes one message's place under `max_messages_per_second`.
    ///
    /// # Errors
    /// How long until there is room for a message.
    pub fn admit(&self) -> Result<(), Duration> {
        self.bucket
            .as_ref()
            .map_or(Ok(()), |b| b.lock().take(Instant::now()))
    }

    /// The source's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its counters and state, which its listener or subscription also updates.
    #[must_use]
    pub fn status(&self) -> &SourceStatus {
        &self.status
    }

    /// Its limits.
    #[must_use]
    pub const fn limits(&self) -> SourceLimits {
        self.limits
    }

    /// Counts and logs a refusal that happened before decoding (size, path, credentials).
    pub fn refuse(&self, context: &str, reject: Reject) -> Reject {
        self.status.refused(reject.reason);
        log::warn!(
            "ingest message refused; source={} context={context} reason={} error={}",
            self.name,
            reject.reason.as_str(),
            reject.detail
        );
        reject
    }

    /// Decodes `msg` with `decoder` and appends its samples to the WAL, whole or not at all.
    /// Returns once the samples are written to the WAL's file (synced with `fsync_ack`).
    ///
    /// # Errors
    /// A [`Reject`] naming what was wrong; it is already counted and logged.
    pub async fn accept(&self, decoder: &Decoder, msg: Message<'_>) -> Result<Accepted, Reject> {
        match self.try_accept(decoder, msg).await {
            Ok(a) => {
                self.status.accepted(decoder.route, a.samples, now_ms());
                Ok(a)
            }
            Err(r) => Err(self.refuse(msg.context, r)),
        }
    }

    async fn try_accept(&self, decoder: &Decoder, msg: Message<'_>) -> Result<Accepted, Reject> {
        if msg.body.len() as u64 > self.limits.max_body_bytes {
            return Err(Reject::new(
                Reason::TooLarge,
                format!(
                    "body of {} bytes is larger than max_body_bytes {}",
                    msg.body.len(),
                    self.limits.max_body_bytes
                ),
            ));
        }
        let received = now_ms();
        let req = DecodeRequest::V1 {
            source: Cow::Borrowed(&self.name),
            context: Cow::Borrowed(msg.context),
            content_type: Cow::Borrowed(msg.content_type),
            headers: msg
                .headers
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                .collect(),
            body: Cow::Borrowed(msg.body),
            receive_time_ms: received,
            sample_limit: self.limits.sample_limit,
        };
        let limit = match self.limits.sample_limit {
            0 => usize::MAX,
            n => n as usize,
        };
        let shared = Arc::new(Mutex::new(Collected {
            limit,
            ..Collected::default()
        }));
        let sink = Box::new(Collect(Arc::clone(&shared)));
        let (sink, result) = decoder.runner.lock().await.decode(&req, sink).await;
        drop((req, sink));
        let collected = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
        if collected.exceeded {
            return Err(Reject::new(
                Reason::TooManySamples,
                format!(
                    "more than sample_limit {} samples",
                    self.limits.sample_limit
                ),
            ));
        }
        match result {
            Ok(()) => {}
            Err(PluginError::Failed { plugin, reason }) => {
                return Err(Reject::new(
                    Reason::Malformed,
                    format!("decoder {plugin}: {reason}"),
                ));
            }
            Err(e @ (PluginError::Backoff { .. } | PluginError::Quarantined { .. })) => {
                return Err(Reject::new(Reason::DecoderUnavailable, e.to_string()));
            }
            Err(e) => return Err(Reject::new(Reason::DecoderFault, e.to_string())),
        }
        let keys = self.keys(&collected.samples)?;
        let n = keys.len();
        let fingerprints: Vec<u64> = match &self.recent {
            Some(_) => keys.iter().map(SeriesKey::fingerprint).collect(),
            None => Vec::new(),
        };
        let durability = if self.limits.fsync_ack {
            Durability::Synced
        } else {
            Durability::Flushed
        };
        let samples = keys
            .into_iter()
            .zip(collected.samples)
            .map(|(key, s)| OwnedSample {
                key,
                t_ms: s.t_ms.unwrap_or(received),
                value: s.value,
            })
            .collect();
        // Waits for the owner thread (and, with `fsync_ack`, for the group sync covering this
        // message); the runtime thread is free meanwhile.
        if let Err(e) = self.wal.append(samples, durability).await {
            log::error!(
                "WAL append for an ingest message failed; it was not acknowledged. source={} context={} error={e}",
                self.name,
                msg.context
            );
            return Err(Reject::new(Reason::Wal, format!("WAL: {e}")));
        }
        self.wake.notify_waiters();
        if let Some(r) = &self.recent {
            r.seen(fingerprints, received);
        }
        Ok(Accepted { samples: n })
    }

    /// The final label set of every sample, checked by the WAL's rules before anything is
    /// appended: `__name__`, the decoder's labels, then the source's defaults where absent.
    fn keys(&self, samples: &[Decoded]) -> Result<Vec<SeriesKey>, Reject> {
        let mut keys = Vec::with_capacity(samples.len());
        let mut set: Vec<(&str, &str)> = Vec::new();
        for s in samples {
            set.clear();
            set.push(("__name__", s.name.as_str()));
            set.extend(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            for (n, v) in &self.defaults {
                if !set.iter().any(|(k, _)| k == n) {
                    set.push((n, v));
                }
            }
            // Empty values mean "no label", as in Prometheus.
            set.retain(|(_, v)| !v.is_empty());
            set.sort_unstable();
            if set.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(Reject::new(
                    Reason::Malformed,
                    format!("sample `{}` has a label twice: {set:?}", s.name),
                ));
            }
            if !is_metric_name(&s.name) {
                return Err(Reject::new(
                    Reason::Malformed,
                    format!("`{}` is not a metric name", s.name),
                ));
            }
            let key = SeriesKey::new(&set)
                .map_err(|e| Reject::new(Reason::Malformed, format!("sample `{}`: {e}", s.name)))?;
            keys.push(key);
        }
        Ok(keys)
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}
