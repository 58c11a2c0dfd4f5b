//! The fleet agent: polls the fleet server, stages and checks bundles, and hands them to the
//! run loop it belongs to. It stays in the binary because it prepares plugins as `magpie
//! check` does and reads the collector's own telemetry; the bundle format, signatures, staging
//! and the health verdict are `magpie-fleet`'s.

pub use magpie_fleet::{Status, StatusFamilies, bundle, cli, manifest};
use magpie_fleet::{health, stage, status};

pub(crate) mod agent;

pub(crate) use agent::{rejoin, spawn, starting};
