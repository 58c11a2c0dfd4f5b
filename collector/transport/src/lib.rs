//! `magpie-transport`: the network side of magpie, fenced off from the core.
//!
//! [`HttpClient`] is the HTTP/1.1 client scrapes and remote write use: hyper over rustls
//! with the system's CA roots or a given CA file, connection reuse, per-request timeouts, and
//! response bodies read in chunks ([`Body::read`]) with gzip decoded on the fly and a limit on
//! the decoded size, so neither a large nor a compressed-bomb body can exhaust memory.
//! [`delivery`] holds the delivery policy once for both transports: a sans-IO core deciding,
//! from outcomes and the time, whether a payload is acknowledged, retried (exponential backoff
//! with jitter, `Retry-After` honoured) or dropped, and [`delivery::deliver`], the driver that
//! sends a batch's payloads over an HTTP or MQTT link until each is accepted or refused.
//! [`clock`] is the one wall clock (`now_ms`) and jitter source. [`Auth`] reads credentials from files and never prints them.
//! With the `mqtt` feature, [`mqtt::MqttClient`] publishes to an MQTT 3.1.1 broker over
//! rumqttc and resolves each publish only when the broker acknowledged it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), magpie_transport::Error> {
//! use magpie_transport::{HttpClient, TlsOptions};
//! use std::time::Duration;
//! let client = HttpClient::new(&TlsOptions::default())?;
//! let mut resp = client.get("http://127.0.0.1:9100/metrics", &[], Duration::from_secs(10), 0).await?;
//! let mut buf = [0u8; 4096];
//! while resp.body.read(&mut buf).await? > 0 {}
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod auth;
pub mod base64;
mod body;
mod client;
pub mod clock;
pub mod delivery;
#[cfg(feature = "mqtt")]
pub mod mqtt;
mod tls;

pub use auth::{Auth, CREDENTIALS_DIRECTORY, redact_url, secret_path, url_has_credentials};
pub use body::Body;
pub use client::{HttpClient, PostResponse, Response, TlsOptions};
/// The rustls these configurations are made with, for the crates that run them.
pub use rustls;
pub use tls::{ServerTlsOptions, client_config, server_config, server_name};

use std::path::PathBuf;

/// Why an HTTP exchange or an MQTT publish failed. URLs are shown with any user info
/// redacted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL does not parse or has an unsupported scheme.
    #[error("invalid URL `{}`: {reason}", redact_url(.url))]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting, TLS or the HTTP exchange failed.
    #[error("request to {} failed: {reason}", redact_url(.url))]
    Request {
        /// The URL.
        url: String,
        /// The cause chain.
        reason: String,
        /// Nothing listens there: the connection was refused.
        refused: bool,
    },
    /// No answer within the timeout.
    #[error("request to {} timed out", redact_url(.url))]
    Timeout {
        /// The URL.
        url: String,
    },
    /// The body (after decompression) grew past the limit.
    #[error("body larger than the limit of {limit} bytes")]
    BodyLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body could not be read or decoded.
    #[error("reading the body failed: {reason}")]
    Body {
        /// What went wrong.
        reason: String,
    },
    /// A secret file (password, token) could not be used.
    #[error("secret file {path}: {reason}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What went wrong (never the secret).
        reason: String,
    },
    /// An MQTT broker was unreachable, refused the connection, or lost it before
    /// acknowledging a publish.
    #[error("MQTT broker {}: {reason}", redact_url(.url))]
    Broker {
        /// The broker URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// `tls.server_name` is neither a DNS name nor an IP address, or was given where it
    /// cannot be honoured.
    #[error("TLS setup: server_name `{name}`: {reason}")]
    ServerName {
        /// The name as configured.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A CA or certificate file could not be used.
    #[error("TLS setup: {path}: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}
