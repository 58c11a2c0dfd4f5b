//! `magpie-ingest`: data pushed to the gateway rather than scraped, with the same promise as
//! scraping: what was accepted is in the WAL.
//!
//! - [`Source`] is one `[[ingest]]` section at run time: its name, limits, and the decoder
//!   plugins that turn its messages into samples ([`Decoder`], a supervised
//!   `magpie_host::Runner` of a plugin with the decoder role).
//! - [`Source::accept`] is the one path every message takes: the decoder emits samples into a
//!   bounded buffer, every label set is checked, then the whole message is appended to the WAL
//!   and flushed to the file (and synced when `fsync_ack` is set) before `accept` returns. An
//!   HTTP source answers 2xx and an MQTT source sends PUBACK only after that, so an
//!   acknowledged message survives a SIGKILL of the collector (and, with `fsync_ack`, a power
//!   cut).
//! - [`status::SourceStatus`]: what a source did (messages, samples, refusals per reason, per
//!   decoder) and where its listener or subscription stands, read as a
//!   [`status::SourceSnapshot`]; [`metrics::IngestMetrics`] hands statuses to the sources and
//!   draws the `magpie_ingest_*` families and the status page's table from their snapshots.
//! - [`http::serve`] answers the conventional push paths (OTLP/HTTP's `/v1/metrics` with the
//!   answers [`otlp`] shapes); [`mqtt::run`] subscribes with a
//!   persistent session and acknowledges by hand.
//! - [`auth::Credentials`]: who may push to an HTTP source (basic auth, bearer tokens), compared
//!   in constant time; HTTPS with optional client certificates is [`http::serve`]'s `tls`.
//! - [`encoding`]: gzip bodies on Influx and Pushgateway paths, inflated up to `max_body_bytes`.
//!
//! # Invariants
//! - A message is written whole or not at all: a decoder error, a label set the WAL refuses, or
//!   more samples than `sample_limit` reject it before the WAL is touched.
//! - A rejected message is counted per reason ([`Reason`]) and logged with the source, the
//!   context (topic or path) and the decoder's own reason; the source keeps running.
//! - Samples without a timestamp get the time the message was received.
//!
//! # Example
//!
//! Two sources as `[[ingest]]` sections configure them; the binary turns each into a task
//! (`http::serve` or `mqtt::run`) around a [`Source`]:
//!
//! ```toml
//! [[ingest]]
//! name = "sensors"                  # names the source in logs and on /metrics
//! source = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topics = ["zigbee2mqtt/+"]
//! qos = 1                           # persistent session, PUBACK after the WAL append
//! plugin = "json"
//! max_messages_per_second = 200
//!
//! [[ingest]]
//! name = "lan"
//! source = "http"                   # /api/v1/write, /metrics/job/..., /write, /api/v2/write
//! listen = "127.0.0.1:9091"
//! max_body_bytes = "4MiB"
//! ```

pub mod auth;
pub mod encoding;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod otlp;
pub mod rate;
pub mod recent;
mod source;
pub mod status;

pub use source::{Accepted, Decoder, Message, Reason, Reject, Source, SourceLimits};
