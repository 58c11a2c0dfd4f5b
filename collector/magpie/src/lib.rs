//! The magpie collector as a library: configuration, the scrape scheduler and the wiring the
//! `magpie` binary runs. The binary (`main.rs`) is a thin command-line front.
//!
//! - [`config`]: `magpie-config`, re-exported: the TOML schema (`[collector]`, `[wal]`,
//!   `[[scrape]]`, `[[export]]`, `[[ingest]]`), its defaults, and errors that name the file,
//!   line and key.
//! - [`run`]: opens the WAL, loads plugins, schedules scrapes, serves the status
//!   page on `/`, `/metrics`, `/-/healthy` and `/-/ready`, and shuts down cleanly on SIGTERM.
//! - [`check`]: validates a configuration and loads every plugin it names.
//! - [`trust`]: `magpie-fleet`'s, re-exported: Ed25519 keys and plugin signatures, and the
//!   `[trust]` policy `check` applies.
//! - [`fleet`]: the agent that applies, watches and rolls back signed configuration bundles
//!   from a fleet server; the bundle format itself is `magpie-fleet`'s.
//! - [`health`]: when failing WAL appends or syncs make `/-/healthy` answer 503.
//!
//! The library crates do the work: `magpie-scrape` (the scrape pipeline), `magpie-host`
//! (plugins), `magpie-wal`, `magpie-export` (exporter loops), `magpie-transport`; this one
//! reads the configuration and wires them together.
//!
//! # Example
//! ```
//! use std::path::Path;
//! // A configuration is checked whole, and every problem names the file, line and key.
//! let loaded = magpie::config::parse(Path::new("magpie.toml"), "[[scrape]]\njob = \"node\"\nplugin = \"node\"\n").unwrap();
//! assert_eq!(loaded.config.scrape[0].get_ref().job.get_ref(), "node");
//! let errors = magpie::config::parse(Path::new("magpie.toml"), "[[scrape]]\njob = 3\n").unwrap_err();
//! assert!(errors[0].to_string().contains("magpie.toml"), "{}", errors[0]);
//! ```
#![forbid(unsafe_code)]

pub mod check;
pub use magpie_config as config;
pub mod fleet;
pub use magpie_wal::health;
mod ingest;
pub mod logger;
pub mod notify;
use magpie_status::observed;
pub mod run;
use magpie_status as status;
mod telemetry;
pub use magpie_fleet::trust;
