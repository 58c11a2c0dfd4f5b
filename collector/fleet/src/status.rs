//! What the fleet agent reports: `magpie_fleet_*` on `/metrics` and a line on the status page.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The agent's state, as readers see it. Empty (and not shown) without `[fleet]`.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// This device's id; empty when there is no `[fleet]`.
    pub device: String,
    /// The bundle version running, `None` for the local file alone.
    pub applied: Option<String>,
    /// A version applied and being watched, not yet committed.
    pub candidate: Option<String>,
    /// The last refusal, rollback or poll failure.
    pub last_error: Option<String>,
    pub polls: u64,
    pub poll_failures: u64,
    pub refused: u64,
    pub rollbacks: u64,
}

/// Shared between the agent (writer) and the HTTP server (readers).
#[derive(Debug, Default)]
pub struct Status(Mutex<Snapshot>);

impl Status {
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.lock());
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One line for the status page, `None` without `[fleet]`.
    pub fn summary(&self) -> Option<String> {
        let s = self.snapshot();
        if s.device.is_empty() {
            return None;
        }
        let mut line = format!(
            "Fleet: device {}, running {}",
            s.device,
            s.applied.as_deref().map_or_else(
                || "the local configuration".into(),
                |v| format!("bundle {v}")
            )
        );
        if let Some(c) = &s.candidate {
            line.push_str(&format!(", trying bundle {c}"));
        }
        line.push_str(&format!(", {} rollbacks", s.rollbacks));
        if let Some(e) = &s.last_error {
            line.push_str(&format!(". Last error: {e}"));
        }
        Some(line)
    }
}

/// The `magpie_fleet_*` families.
#[derive(Debug)]
pub struct StatusFamilies(pub Arc<Status>);

impl Collector for StatusFamilies {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = self.0.snapshot();
        if s.device.is_empty() {
            return Ok(());
        }
        let info = |e: &mut DescriptorEncoder, name: &str, help: &str, labels: &[(&str, &str)]| {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(1).encode(m.encode_family(&labels.to_vec())?)
        };
        let applied = s.applied.as_deref().unwrap_or("");
        info(
            &mut e,
            "magpie_fleet_applied",
            "The bundle version running (empty: the local configuration alone)",
            &[("version", applied), ("device", &s.device)],
        )?;
        if let Some(c) = &s.candidate {
            info(
                &mut e,
                "magpie_fleet_candidate",
                "A bundle version applied and watched for health, not yet committed",
                &[("version", c)],
            )?;
        }
        if let Some(err) = &s.last_error {
            // A label value: no quotes, backslashes or line breaks to escape.
            let err: String = err
                .chars()
                .map(|c| match c {
                    '"' => '\'',
                    '\\' => '/',
                    '\n' | '\r' => ' ',
                    c => c,
                })
                .collect();
            info(
                &mut e,
                "magpie_fleet_last_error",
                "The last bundle refused, rolled back or poll failed, and why",
                &[("error", &err)],
            )?;
        }
        for (name, help, v) in [
            ("magpie_fleet_polls", "Manifest polls", s.polls),
            (
                "magpie_fleet_poll_failures",
                "Manifest polls that failed (server unreachable or erroring)",
                s.poll_failures,
            ),
            (
                "magpie_fleet_refused",
                "Bundles refused: signature, hashes or checks failed",
                s.refused,
            ),
            (
                "magpie_fleet_rollbacks",
                "Bundles rolled back for not becoming healthy in time",
                s.rollbacks,
            ),
        ] {
            let m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(m)?;
        }
        Ok(())
    }
}
