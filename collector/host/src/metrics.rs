//! `magpie_plugin_*` (feature `metrics`): calls and faults of each plugin instance, from the
//! [`PluginCounters`] its [`PluginStats`] read.

use crate::PluginStats;
use magpie_metrics::{counters, gauges};
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One plugin instance's counters, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginCounters {
    pub calls: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub memory_limits: u64,
    pub abi_errors: u64,
    pub failures: u64,
    pub restarts: u64,
    pub quarantined: bool,
}

impl PluginStats {
    /// The counters now.
    pub fn counters(&self) -> PluginCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PluginCounters {
            calls: get(&self.calls),
            traps: get(&self.traps),
            timeouts: get(&self.timeouts),
            memory_limits: get(&self.memory_limits),
            abi_errors: get(&self.abi_errors),
            failures: get(&self.failures),
            restarts: get(&self.restarts),
            quarantined: self.quarantined.load(Ordering::Relaxed),
        }
    }
}

/// Encodes the plugin families, one row per (instance name, counters).
///
/// # Errors
/// Only the writer's.
pub fn encode(e: &mut DescriptorEncoder, plugins: &[(String, PluginCounters)]) -> fmt::Result {
    let rows = || plugins.iter().map(|(p, c)| ([("plugin", p.as_str())], c));
    counters(
        e,
        "magpie_plugin_calls",
        "Calls into a plugin instance.",
        rows().map(|(l, c)| (l, c.calls)),
    )?;
    counters(
        e,
        "magpie_plugin_faults",
        "Plugin calls that faulted, by kind.",
        plugins.iter().flat_map(|(p, c)| {
            [
                ("trap", c.traps),
                ("timeout", c.timeouts),
                ("memory_limit", c.memory_limits),
                ("abi", c.abi_errors),
            ]
            .map(|(kind, v)| ([("plugin", p.as_str()), ("kind", kind)], v))
        }),
    )?;
    counters(
        e,
        "magpie_plugin_failures",
        "Failures a plugin reported itself.",
        rows().map(|(l, c)| (l, c.failures)),
    )?;
    counters(
        e,
        "magpie_plugin_restarts",
        "Plugin instances recreated after a fault.",
        rows().map(|(l, c)| (l, c.restarts)),
    )?;
    gauges(
        e,
        "magpie_plugin_quarantined",
        "Whether a plugin is quarantined after repeated faults.",
        rows().map(|(l, c)| (l, i64::from(c.quarantined))),
    )
}
