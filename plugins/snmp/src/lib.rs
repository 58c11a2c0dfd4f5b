//! The `snmp` scraper: walks SNMP agents (v1, v2c, v3 with USM) by the modules of
//! snmp_exporter's generated `snmp.yml` and emits the series snmp_exporter would.
//!
//! ```toml
//! [[scrape]]
//! job = "switch"
//! plugin = "snmp"
//! targets = ["udp://192.0.2.10:161"]
//! [scrape.config]
//! version = "2c"                              # 1 | 2c | 3
//! community_file = "/etc/magpie/snmp-community"  # default community: public
//! modules_file = "/etc/magpie/snmp.yml"       # snmp_exporter's generated format
//! modules = ["if_mib"]
//! # max_repetitions = 25, retries = 3, timeout_ms = 5000 override the modules' own
//! # v3: version = "3", username = "...", security_level = "authPriv",
//! #     auth_protocol = "SHA" (MD5, SHA, SHA224, SHA256, SHA384, SHA512),
//! #     auth_password_file = "...", priv_protocol = "AES", priv_password_file = "..."
//! ```
//!
//! The files are read at init through the host's file grants (by default, for this plugin,
//! the `*_file` paths of its `[scrape.config]`; a job's `files` replaces them), so a typo
//! fails `magpie check`; a secret's content is never logged or shown in an error.
//!
//! Each scrape GETs the modules' `get` OIDs and walks their `walk` subtrees with GETBULK
//! (GETNEXT for v1), then renders the results ([`render`]) as snmp_exporter does: metric
//! names as in the module (counters keep their names and get TYPE counter), indexes and
//! lookups as labels, strings as labels of a sample of value 1, enumerations as `_info`
//! series or state sets. A request without an answer is sent again `retries` times after
//! `timeout` each, all within the scrape's deadline; an agent that stays silent, refuses the
//! community, or answers with a USM report (unknownUserNames, wrongDigests...) fails the
//! scrape with that reason (`up` 0), and other targets of the job are not affected.
//!
//! The codec ([`ber`], [`pdu`], [`usm`]), the module file ([`yaml`], [`module`]), walks
//! ([`walk`]) and rendering are plain code, tested natively; the wasm32 build adds the UDP
//! session over the host's `udp_connect`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod ber;
pub mod config;
pub mod module;
pub mod pdu;
#[cfg(target_arch = "wasm32")]
mod plugin;
pub mod render;
pub mod usm;
pub mod walk;
pub mod yaml;

pub use config::Config;
