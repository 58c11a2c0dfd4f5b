//! `magpie-export`: one delivery loop per exporter. It reads the oldest unacknowledged
//! samples from the WAL, has the exporter plugin encode them (`encode`), hands the payloads
//! to the delivery driver of `magpie-transport` (HTTP: one POST at a time until the receiver
//! accepts or refuses it; MQTT: pipelined publishes until the broker acknowledged each), and
//! only when the driver is done acknowledges the batch in the WAL. Retry, backoff,
//! `Retry-After` and pacing are the driver's; this loop does no waiting of its own but for an
//! idle WAL or a backing-off plugin. Delivery is at-least-once, oldest first; the cursor
//! survives restarts, so a backlog outlives outages and reboots. Stopping never waits for a
//! receiver: the data is in the WAL.
//!
//! - [`Exporter`] and [`Destination`]: what a loop needs, and where its payloads go; the
//!   binary builds them from `[[export]]` and spawns [`Exporter::run`].
//! - [`MetadataSend`]: whether and how often an exporter sends the scraped metric metadata
//!   (Prometheus' `metadata_config`), apart from the samples.
//! - [`ExportStats`]: the counters a loop keeps, read as [`ExporterCounters`].
//! - [`Fallbacks`]: the exporters whose receiver refused the plugin's encoding (remote write
//!   2.0 answered with 415) and that send its fallback (1.0) for the life of the process. The
//!   batch that met the refusal is encoded again and sent; it is acknowledged only once the
//!   fallback was delivered.
//! - [`metrics`]: the `magpie_exporter_*` families encoded from those counters.
//!
//! Dependencies point one way: this crate uses the WAL, the plugin host and the transport,
//! and knows nothing of the configuration file or of the HTTP endpoints.
//!
//! # Example
//! ```
//! use magpie_export::{ExportStats, ExporterCounters};
//! // A loop's counters, as `/metrics` reads them before anything was delivered.
//! let stats = ExportStats::default();
//! assert_eq!(stats.counters(), ExporterCounters::default());
//! ```
#![forbid(unsafe_code)]

mod exporter;
mod external;
mod fallback;
pub mod metrics;
mod stats;

pub use exporter::{Destination, Exporter, MetadataSend};
pub use external::ExternalLabels;
pub use fallback::Fallbacks;
pub use stats::{ExportStats, ExporterCounters};
