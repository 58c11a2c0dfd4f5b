//! Fleet management: signed configuration bundles, fetched from a static HTTP(S) server,
//! applied like a reload, and rolled back when they do not work.
//!
//! A bundle is a directory (`bundle`, `manifest`): `manifest.json` names the version, every
//! file with its SHA-256, an optional rollout selector, and is signed by a key from the local
//! `[trust] keys` (`manifest.json.sig`). The agent (in the `magpie` binary, which owns the
//! run loop it hands configurations to) polls the manifest with
//! `If-None-Match`, and for a new version meant for this device: checks the signature,
//! downloads and hashes every file, stages them under `<data_dir>/fleet/bundles/<version>`,
//! runs the checks of `magpie check` on the bundle's configuration joined with the local
//! file, and hands the result to the run loop, which swaps it in as it does on SIGHUP (the WAL
//! stays open, nothing buffered is lost). Then it watches the collector's own health
//! ([`health`]) for `health_window`: healthy, the version becomes last-known-good
//! (`<data_dir>/fleet/state.json`); not, the previous configuration comes back and the version
//! is marked bad so it is not tried again.
//!
//! The local file keeps `[collector]`, `[wal]`, `[trust]` and `[fleet]`; a bundle carries only
//! `[[scrape]]` and `[[export]]` (plugin settings included) and its plugin files, so no bundle
//! can move the data directory, change which keys are trusted, or cut the device off its fleet.
//! At start the last-known-good bundle is checked again from disk and applied without asking
//! the server, so a device whose server is unreachable keeps running what it ran.
//!
//! Over MQTT (`[fleet] url = "mqtt://broker/topic"`) the manifest and its signature arrive as
//! one retained message ([`envelope`]) instead of being polled, and the files still come from
//! an HTTP(S) directory the message names; everything after the signature check is the same.
//!
//! This crate holds what needs no running collector: the bundle format ([`manifest`],
//! [`bundle`], [`envelope`]), staging on disk ([`stage`]), signatures and keys ([`trust`]), the health
//! verdict ([`health`]), the agent's reported state ([`status`]) and `magpie bundle` ([`cli`],
//! with `bundle publish` in `publish` when built with MQTT).
//!
//! # Example
//! ```
//! // A bundle's configuration may carry scrape jobs and exporters, never `[collector]`.
//! assert!(magpie_fleet::bundle::check_sections("bundle/magpie.toml", "[[scrape]]\njob = \"node\"\nplugin = \"node\"\n").is_ok());
//! let refused = magpie_fleet::bundle::check_sections("bundle/magpie.toml", "[collector]\ndata_dir = \"/tmp\"\n").unwrap_err();
//! assert!(refused.contains("bundle/magpie.toml"), "{refused}");
//! ```

pub mod bundle;
pub mod cli;
pub mod envelope;
pub mod health;
pub mod manifest;
#[cfg(feature = "mqtt")]
pub mod publish;
pub mod stage;
pub mod status;
pub mod trust;

pub use status::{Status, StatusFamilies};
