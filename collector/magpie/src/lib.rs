//! The magpie collector as a library: configuration, the scrape scheduler and the wiring the
//! `magpie` binary runs. The binary (`main.rs`) is a thin command-line front.
//!
//! - [`config`]: the TOML schema (`[collector]`, `[wal]`, `[[scrape]]`, `[[export]]`,
//!   `[[ingest]]`), its
//!   defaults, and errors that name the file, line and key.
//! - [`run`]: opens the WAL, loads plugins, schedules scrapes, serves the status
//!   page on `/`, `/metrics`, `/-/healthy` and `/-/ready`, and shuts down cleanly on SIGTERM.
//! - [`check`]: validates a configuration and loads every plugin it names.
//! - [`trust`]: Ed25519 keys and plugin signatures, and the `[trust]` policy `check` applies.
//! - [`health`]: when failing WAL appends or syncs make `/-/healthy` answer 503.
#![forbid(unsafe_code)]

pub mod check;
pub mod config;
pub mod health;
mod ingest;
pub mod logger;
pub mod notify;
mod observed;
pub mod run;
mod status;
mod telemetry;
pub mod trust;
