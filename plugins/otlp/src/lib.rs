//! The `otlp` decoder: OpenTelemetry metrics pushed over OTLP/HTTP to the collector's
//! `POST /v1/metrics`, as the OpenTelemetry SDKs' OTLP/HTTP exporters and the OpenTelemetry
//! Collector's `otlphttp` exporter send them.
//!
//! - `Content-Type: application/x-protobuf` is a binary `ExportMetricsServiceRequest`,
//!   `application/json` the same message in the OTLP/JSON encoding; anything else is refused.
//! - `Content-Encoding: gzip` is inflated here, inside the sandbox, so a body that inflates
//!   beyond the plugin's memory limit costs the plugin, not the collector; inflating stops at
//!   [`MAX_INFLATED_BYTES`] with a reason before the memory limit is reached.
//! - Conversion to samples ([`convert`]) and names ([`names`]) follow the OpenTelemetry
//!   specification "Prometheus and OpenMetrics Compatibility"; what is refused and why is in
//!   [`convert`]'s docs. A request is taken whole or not at all: any refused metric refuses the
//!   request (HTTP 400 with the reason), so a partial success is never answered.
//!
//! [`decode`] is the whole logic and compiles natively for tests; on wasm32 the crate is the
//! plugin.
//!
//! # Example
//!
//! OTLP/HTTP on its usual port; SDKs post to `/v1/metrics`:
//!
//! ```toml
//! [[ingest]]
//! name = "apps"
//! source = "http"
//! listen = "127.0.0.1:4318"
//! [ingest.decoders]
//! otlp = "otlp"
//! ```

pub mod convert;
mod json;
pub mod names;
pub mod proto;

use prost::Message as _;
use std::io::Read as _;

/// The largest body this decoder inflates from gzip.
pub const MAX_INFLATED_BYTES: u64 = 8 << 20;

pub use convert::Out;

/// The body's encoding, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding named by `content_type` (parameters ignored, case-insensitive).
    ///
    /// # Errors
    /// Any other media type, in words.
    pub fn of(content_type: &str) -> Result<Self, String> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Ok(Self::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else {
            Err(format!(
                "Content-Type `{content_type}` is neither application/x-protobuf nor application/json"
            ))
        }
    }
}

/// Decodes one request body: `out` gets (metric name, labels, value, timestamp ms) per sample.
/// Returns the number of samples.
///
/// # Errors
/// A message naming what is wrong: the content type or encoding, a body that is not gzip or
/// inflates too far, not the protobuf or JSON message, a metric that is refused (see
/// [`convert`]), or `out`'s own refusal.
pub fn decode(
    content_type: &str,
    content_encoding: Option<&str>,
    body: &[u8],
    out: &mut Out<'_>,
) -> Result<usize, String> {
    let encoding = Encoding::of(content_type)?;
    let inflated;
    let body = match content_encoding.map(str::trim) {
        None | Some("" | "identity") => body,
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            inflated = gunzip(body)?;
            &inflated[..]
        }
        Some(e) => return Err(format!("Content-Encoding `{e}` is not gzip")),
    };
    let req = match encoding {
        Encoding::Protobuf => proto::ExportMetricsServiceRequest::decode(body)
            .map_err(|e| format!("not an OTLP ExportMetricsServiceRequest (protobuf): {e}"))?,
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| format!("not an OTLP ExportMetricsServiceRequest (JSON): {e}"))?,
    };
    convert::convert(&req, out)
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("body is not valid gzip: {e}"))?;
    if out.len() as u64 > MAX_INFLATED_BYTES {
        return Err(format!(
            "body inflates to more than {MAX_INFLATED_BYTES} bytes; send smaller batches"
        ));
    }
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{DecodeRequest, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error};

    struct Otlp;

    impl Decoder for Otlp {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            config.expect_table(&[]).map_err(Error::new)?;
            Ok(Self)
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            super::decode(
                req.content_type(),
                req.header("content-encoding"),
                req.body(),
                &mut |name, labels, value, ts| {
                    out.sample(name, labels.iter().copied(), value, ts)
                        .map_err(|_| "the host took no more samples".into())
                },
            )
            .map(drop)
            .map_err(Error::new)
        }
    }

    magpie_sdk::export_decoder!(Otlp);
}

#[cfg(test)]
mod tests;
