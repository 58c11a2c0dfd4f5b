//! The fleet agent: polls the fleet server (or follows its MQTT topic: `follow`), stages and checks bundles, and hands them to the
//! run loop it belongs to. It stays in the binary because it prepares plugins as `magpie
//! check` does and reads the collector's own telemetry; the bundle format, signatures, staging
//! and the health verdict are `magpie-fleet`'s.

pub use magpie_fleet::{Status, StatusFamilies, bundle, cli, envelope, manifest};
use magpie_fleet::{health, stage, status};

pub(crate) mod agent;
mod fetch;
mod follow;
mod state;

pub(crate) use agent::{rejoin, spawn, starting};
