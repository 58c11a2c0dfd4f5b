//! The `mqtt` exporter: sample batches to MQTT messages on topics templated from labels.
//!
//! Built for `wasm32-unknown-unknown`, the crate is the `mqtt` exporter plugin; the encoding
//! compiles natively too, for tests and benchmarks. The host publishes the messages (QoS 1 by
//! default) and acknowledges the WAL once the broker acknowledged all of a batch's messages.
//!
//! # Main types
//! - [`Mqtt`]: the exporter; [`Mqtt::export`] turns an [`ExportBatch`] into [`Payload`]s, each
//!   with its `topic`.
//! - [`Config`] and [`Encoding`]: the `[export.config]` table (see [`config`](Config) for keys).
//! - [`Error`]: why a configuration or a batch was refused.
//!
//! # Topics
//! The `[[export]] topic` template (`magpie/{site}/{job}`) is expanded per series from its
//! labels (see [`topic::Template`]). The host passes it as config key `topic`. A batch
//! produces at most `max_topics` distinct templated topics; series that would add another go
//! to `overflow_topic` (default `magpie/overflow`) instead of failing the batch, since a
//! failing batch would block the exporter for good.
//!
//! # Encodings
//! - `json` (default): one message per topic (split by size), UTF-8:
//!   ```json
//!   {"series":[{"labels":{"__name__":"up","job":"node"},"samples":[[1700000000000,1.0]]}]}
//!   ```
//!   Labels as an object (sorted by name), samples as `[t_ms, value]` pairs in time order.
//!   Finite values are JSON numbers in their shortest form that reads back bit for bit (`1.0`,
//!   `-0.0`, `1e300`); the others are strings: `"NaN"`, `"StaleNaN"` (Prometheus' staleness
//!   marker), `"+Inf"`, `"-Inf"`.
//! - `influx`: line protocol, one line per sample: measurement = `__name__` (`metric` when
//!   absent), tags = the other non-empty labels, one float field `value`, timestamp in ns.
//!   Commas and spaces are escaped in the measurement; commas, spaces and `=` in tag keys and
//!   values; a newline is written as `\n`. Line protocol has no NaN or infinity: such samples
//!   are left out (they still count as carried by the message, so the batch is acknowledged).
//! - `remote-write`: a Prometheus remote write 1.0 `WriteRequest`, snappy block compressed,
//!   written by the `remote-write` plugin's encoder.
//!
//! # Invariants
//! - Messages go topic by topic, in the order each topic first appears in the batch; within a
//!   topic, series and samples keep batch order. The `samples` counts of a batch's payloads add
//!   up to the batch's points.
//! - No message body exceeds `max_message_bytes`, unless one sample with its labels (JSON,
//!   Influx) or one series (remote write, which never splits a series) alone is larger.
//!
//! # Example
//! ```
//! use magpie_sdk::abi::{ExportBatchBuilder, Label, Value};
//! use mqtt::Mqtt;
//!
//! let mut b = ExportBatchBuilder::default();
//! b.series([Label::new("__name__", "up"), Label::new("job", "node")]);
//! b.point(1_700_000_000_000, 1.0);
//! let batch = b.finish();
//!
//! let config = Value::Table([("topic".to_string(), Value::Str("m/{job}".into()))].into());
//! let mut exporter = Mqtt::from_table(&config)?;
//! let payloads = exporter.export(&batch)?;
//! assert_eq!(payloads[0].topic.as_deref(), Some("m/node"));
//! assert_eq!(
//!     std::str::from_utf8(&payloads[0].body)?,
//!     r#"{"series":[{"labels":{"__name__":"up","job":"node"},"samples":[[1700000000000,1.0]]}]}"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod text;
pub mod topic;

#[cfg(target_arch = "wasm32")]
mod plugin;

use std::borrow::Cow;
use std::collections::HashMap;

use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, Payload, SeriesRef, Value};

pub use config::{
    Config, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_TOPICS, DEFAULT_OVERFLOW_TOPIC, DEFAULT_TOPIC,
    Encoding,
};
pub use error::Error;
pub use text::STALE_NAN;

use text::{Text, Writer};

/// The exporter.
#[derive(Debug)]
pub struct Mqtt {
    config: Config,
    remote_write: Option<remote_write::RemoteWrite>,
}

impl Mqtt {
    /// An exporter with these settings.
    #[must_use]
    pub fn new(config: Config) -> Self {
        let remote_write = (config.encoding == Encoding::RemoteWrite).then(|| {
            remote_write::RemoteWrite::new(remote_write::Config {
                protocol: remote_write::Protocol::V1,
                max_payload_bytes: Some(config.max_message_bytes),
            })
        });
        Self {
            config,
            remote_write,
        }
    }

    /// An exporter from its `[export.config]` table (with `topic` inserted by the host).
    ///
    /// # Errors
    /// As [`Config::from_table`].
    pub fn from_table(table: &Value) -> Result<Self, Error> {
        Config::from_table(table).map(Self::new)
    }

    /// Its settings.
    #[must_use]
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The series of `batch` grouped by topic, topics in order of first appearance.
    fn group<'b, 'a>(&self, batch: &'b ExportBatch<'a>) -> Vec<(String, Vec<SeriesRef<'b, 'a>>)> {
        let mut groups: Vec<(String, Vec<SeriesRef<'b, 'a>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut overflow: Option<usize> = None;
        let mut topic = String::new();
        for s in batch.series() {
            if s.points.is_empty() {
                continue;
            }
            self.config.topic.expand_into(s.labels, &mut topic);
            let slot = if let Some(&i) = index.get(&topic) {
                i
            } else if index.len() < self.config.max_topics.get() {
                groups.push((topic.clone(), Vec::new()));
                index.insert(topic.clone(), groups.len() - 1);
                groups.len() - 1
            } else {
                *overflow.get_or_insert_with(|| {
                    groups.push((self.config.overflow_topic.clone(), Vec::new()));
                    groups.len() - 1
                })
            };
            groups[slot].1.push(s);
        }
        groups
    }

    /// Encodes a batch into messages, each with its topic.
    ///
    /// # Errors
    /// [`Error::RemoteWrite`] when the remote write encoder refuses a series (a repeated or
    /// empty label name), [`Error::TooLarge`] past `u32` sample counts.
    pub fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        let content_type = self.config.encoding.content_type();
        let mut out = Vec::new();
        for (topic, series) in self.group(batch) {
            let messages: Vec<(Vec<u8>, u32)> = match self.config.encoding {
                Encoding::Json | Encoding::Influx => {
                    let text = if self.config.encoding == Encoding::Json {
                        Text::Json
                    } else {
                        Text::Influx
                    };
                    let mut w = Writer::new(text, self.config.max_message_bytes.get());
                    for s in series {
                        w.series(s)?;
                    }
                    w.finish()
                }
                Encoding::RemoteWrite => {
                    let mut b = ExportBatchBuilder::default();
                    for s in series {
                        b.series(s.labels.iter().cloned());
                        for p in s.points {
                            b.point(p.t, p.v);
                        }
                    }
                    let sub = b.finish();
                    let rw = self.remote_write.get_or_insert_with(|| {
                        remote_write::RemoteWrite::new(remote_write::Config::default())
                    });
                    rw.export(&sub)?
                        .into_iter()
                        .map(|p| (p.body.into_owned(), p.samples))
                        .collect()
                }
            };
            out.extend(messages.into_iter().map(|(body, samples)| Payload {
                body: Cow::Owned(body),
                content_type: Cow::Borrowed(content_type),
                headers: Vec::new(),
                topic: Some(Cow::Owned(topic.clone())),
                samples,
            }));
        }
        Ok(out)
    }
}
