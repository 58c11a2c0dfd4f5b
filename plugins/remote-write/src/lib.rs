//! The `remote-write` exporter: sample batches to Prometheus remote write requests.
//!
//! Built for `wasm32-unknown-unknown`, the crate is the `remote-write` exporter plugin; the
//! encoding compiles natively too, for tests and benchmarks.
//!
//! # Main types
//! - [`RemoteWrite`]: the exporter. [`RemoteWrite::export`] turns an [`ExportBatch`] into
//!   [`Payload`]s (snappy block-compressed protobuf with the protocol's headers);
//!   [`RemoteWrite::outcome`] judges the receiver's answer ([`response`]); a 2.0 exporter
//!   whose receiver does not take 2.0 answers [`ExportOutcome::Unsupported`], and the host
//!   asks it for the same batch in 1.0 ([`RemoteWrite::export_fallback`]).
//! - [`Config`] and [`Protocol`]: the `[export.config]` table (`protocol`,
//!   `max_payload_bytes`), checked at init; an unknown key is an error naming it.
//! - [`encode()`]: the writer behind `export`, giving uncompressed [`Request`]s.
//! - [`proto`]: the messages as `prost` types, for decoding what the writer wrote.
//! - [`Error`]: why a configuration or a batch was refused.
//!
//! # Protocols
//! - `protocol = "1.0"` (default): `prometheus.WriteRequest`, `Content-Type:
//!   application/x-protobuf`, `X-Prometheus-Remote-Write-Version: 0.1.0`.
//! - `protocol = "2.0"`: `io.prometheus.write.v2.Request` with a symbol table per request,
//!   `Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request`,
//!   `X-Prometheus-Remote-Write-Version: 2.0.0`.
//!
//! Both send `Content-Encoding: snappy` with the snappy block format (not the framed one).
//!
//! # Invariants
//! - The payloads of a batch carry its samples in batch order; their `samples` counts add up
//!   to the batch's points (series without points are skipped; an empty batch gives no
//!   payload).
//! - Labels go out sorted by name, unique, without empty values; samples in the order the host
//!   gave them (timestamp order). Values are written bit for bit: the staleness NaN
//!   `0x7ff0_0000_0000_0002` and `-0.0` survive.
//! - With `max_payload_bytes`, no uncompressed request is larger than the limit unless it
//!   holds a single series that alone exceeds it.
//!
//! # Example
//! ```
//! use magpie_sdk::abi::{ExportBatchBuilder, Label, Value};
//! use prost::Message as _;
//! use remote_write::{RemoteWrite, proto};
//!
//! let mut b = ExportBatchBuilder::default();
//! b.series([Label::new("__name__", "up"), Label::new("job", "node")]);
//! b.point(1_700_000_000_000, 1.0);
//! let batch = b.finish();
//!
//! let mut exporter = RemoteWrite::from_table(&Value::default())?;
//! let payloads = exporter.export(&batch)?;
//! assert_eq!(payloads.len(), 1);
//! assert_eq!(payloads[0].samples, 1);
//! let raw = snap::raw::Decoder::new().decompress_vec(&payloads[0].body)?;
//! let req = proto::v1::WriteRequest::decode(raw.as_slice())?;
//! assert_eq!(req.timeseries[0].labels[1].value, "node");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
pub mod encode;
mod error;
pub mod meta;
pub mod proto;
pub mod response;

#[cfg(all(target_arch = "wasm32", feature = "plugin"))]
mod plugin;

use std::borrow::Cow;

use magpie_sdk::abi::raw::RawExportRequest;
use magpie_sdk::abi::{
    ExportBatch, ExportExemplar, ExportOutcome, FamilyMeta, MetricType, Payload, ResponseHead,
    Value,
};

pub use config::{Config, Protocol};
pub use encode::{Request, encode, encode_full, encode_raw, encode_with};
pub use error::Error;
pub use meta::MetadataIndex;

/// The exporter: configuration plus a reusable snappy encoder.
pub struct RemoteWrite {
    config: Config,
    /// The protocol of the last batch encoded, which the receiver's answers are judged by.
    sending: Protocol,
    snappy: snap::raw::Encoder,
    /// The families' metadata a 2.0 request carries per series.
    metadata: MetadataIndex,
}

impl std::fmt::Debug for RemoteWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWrite")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RemoteWrite {
    /// An exporter with these settings.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            sending: config.protocol,
            snappy: snap::raw::Encoder::new(),
            metadata: MetadataIndex::default(),
        }
    }

    /// An exporter from its `[export.config]` table.
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

    /// Encodes a batch into payloads ready to POST.
    ///
    /// # Errors
    /// As [`encode()`]; [`Error::Compress`] if snappy refuses a body.
    pub fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        self.export_as(batch, &[], self.config.protocol)
    }

    /// Encodes a batch in remote write 1.0 whatever the configured protocol: the fallback a
    /// 2.0 exporter sends after [`RemoteWrite::outcome`] answered
    /// [`ExportOutcome::Unsupported`].
    ///
    /// # Errors
    /// As [`RemoteWrite::export`].
    pub fn export_fallback(
        &mut self,
        batch: &ExportBatch<'_>,
    ) -> Result<Vec<Payload<'static>>, Error> {
        self.export_as(batch, &[], Protocol::V1)
    }

    /// As [`RemoteWrite::export`] (or [`RemoteWrite::export_fallback`] with `fallback`),
    /// with the batch's exemplars in their series.
    ///
    /// # Errors
    /// As [`RemoteWrite::export`].
    pub fn export_exemplars(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, Error> {
        let protocol = self.protocol(fallback);
        self.export_as(batch, exemplars, protocol)
    }

    /// Any export request, read where it lies ([`encode_raw`]): the payloads
    /// [`RemoteWrite::export_exemplars`] gives for the decoded request.
    ///
    /// # Errors
    /// As [`RemoteWrite::export`].
    pub fn export_raw(
        &mut self,
        req: &RawExportRequest<'_>,
    ) -> Result<Vec<Payload<'static>>, Error> {
        let config = self.sending_as(self.protocol(req.fallback));
        let requests = encode_raw(&req.batch, &req.exemplars, &config, &self.metadata)?;
        self.payloads(requests, config.protocol)
    }

    /// The protocol of the configured encoding, or of its fallback.
    const fn protocol(&self, fallback: bool) -> Protocol {
        if fallback {
            Protocol::V1
        } else {
            self.config.protocol
        }
    }

    /// Encodes with `protocol`; later answers are judged as answers to it.
    fn export_as(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        protocol: Protocol,
    ) -> Result<Vec<Payload<'static>>, Error> {
        let config = self.sending_as(protocol);
        let requests = encode_full(batch, exemplars, &config, &self.metadata)?;
        self.payloads(requests, protocol)
    }

    /// Notes that `protocol` is being sent, and the configuration to encode it with.
    fn sending_as(&mut self, protocol: Protocol) -> Config {
        self.sending = protocol;
        Config {
            protocol,
            ..self.config
        }
    }

    /// The requests compressed into payloads.
    fn payloads(
        &mut self,
        requests: Vec<Request>,
        protocol: Protocol,
    ) -> Result<Vec<Payload<'static>>, Error> {
        requests
            .into_iter()
            .map(|req| {
                let body = self
                    .snappy
                    .compress_vec(&req.body)
                    .map_err(|e| Error::Compress(e.to_string()))?;
                Ok(Payload {
                    body: Cow::Owned(body),
                    content_type: Cow::Borrowed(protocol.content_type()),
                    headers: vec![
                        (Cow::Borrowed("Content-Encoding"), Cow::Borrowed("snappy")),
                        (
                            Cow::Borrowed("X-Prometheus-Remote-Write-Version"),
                            Cow::Borrowed(protocol.version_header()),
                        ),
                    ],
                    topic: None,
                    samples: req.samples,
                })
            })
            .collect()
    }

    /// Encodes metric metadata as one remote write 1.0 request holding only `metadata`, as
    /// Prometheus sends it with `metadata_config` (the caller bounds the families per
    /// request). Remote write 2.0 carries metadata with each series instead: a 2.0 exporter
    /// keeps `families` as the whole current metadata (replacing what it held; see [`meta`])
    /// for the series it encodes next, and sends nothing apart.
    ///
    /// # Errors
    /// [`Error::Compress`] if snappy refuses the body.
    pub fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, Error> {
        use prost::Message as _;
        if self.config.protocol != Protocol::V1 {
            self.metadata.replace(families);
            return Ok(Vec::new());
        }
        if families.is_empty() {
            return Ok(Vec::new());
        }
        let req = proto::v1::MetadataWriteRequest {
            metadata: families
                .iter()
                .map(|f| proto::v1::MetricMetadata {
                    r#type: metric_type_v1(f.kind),
                    metric_family_name: f.name.to_string(),
                    help: f.help.to_string(),
                    unit: f.unit.to_string(),
                })
                .collect(),
        };
        let body = self
            .snappy
            .compress_vec(&req.encode_to_vec())
            .map_err(|e| Error::Compress(e.to_string()))?;
        Ok(vec![Payload {
            body: Cow::Owned(body),
            content_type: Cow::Borrowed(Protocol::V1.content_type()),
            headers: vec![
                (Cow::Borrowed("Content-Encoding"), Cow::Borrowed("snappy")),
                (
                    Cow::Borrowed("X-Prometheus-Remote-Write-Version"),
                    Cow::Borrowed(Protocol::V1.version_header()),
                ),
            ],
            topic: None,
            samples: 0,
        }])
    }

    /// Judges the receiver's answer to one payload of the last batch encoded; see
    /// [`response`].
    #[must_use]
    pub fn outcome(&self, head: &ResponseHead<'_>) -> ExportOutcome {
        response::outcome(self.sending, head)
    }

    /// The protocol of the last batch encoded.
    #[must_use]
    pub const fn sending(&self) -> Protocol {
        self.sending
    }
}

/// `prometheus.MetricMetadata.MetricType` of a family type.
#[must_use]
pub const fn metric_type_v1(t: MetricType) -> i32 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}
