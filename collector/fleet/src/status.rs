//! What the fleet agent reports: `magpie_fleet_*` on `/metrics`, a line on the status page,
//! and a JSON document ([`Status::document`]) that MQTT exporters keep retained on
//! `<status_topic>/fleet`:
//!
//! ```json
//! {"device":"gw-07","applied":"1","candidate":null,"last_error":null,"rollbacks":0,"refused":0,"bad":["2"]}
//! ```
//!
//! The document changes only when one of its fields does (a poll alone changes nothing), so
//! subscribers see one message per event: a candidate started, committed, refused, rolled
//! back, a poll that failed with a new error.

use bytes::Bytes;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use serde::Serialize;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

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
    /// Versions rolled back, never tried again (the fleet state's `bad`).
    pub bad: Vec<String>,
    pub polls: u64,
    pub poll_failures: u64,
    pub refused: u64,
    pub rollbacks: u64,
}

/// The retained fleet document: the state an operator acts on, without the poll counters.
#[derive(Serialize)]
struct Document<'a> {
    device: &'a str,
    applied: Option<&'a str>,
    candidate: Option<&'a str>,
    last_error: Option<&'a str>,
    rollbacks: u64,
    refused: u64,
    bad: &'a [String],
}

impl Snapshot {
    /// The JSON document of this state; empty without `[fleet]`.
    #[must_use]
    pub fn document(&self) -> Bytes {
        if self.device.is_empty() {
            return Bytes::new();
        }
        let d = Document {
            device: &self.device,
            applied: self.applied.as_deref(),
            candidate: self.candidate.as_deref(),
            last_error: self.last_error.as_deref(),
            rollbacks: self.rollbacks,
            refused: self.refused,
            bad: &self.bad,
        };
        serde_json::to_vec(&d).map(Bytes::from).unwrap_or_default()
    }
}

/// Shared between the agent (writer) and the HTTP server and MQTT exporters (readers).
#[derive(Debug)]
pub struct Status {
    now: Mutex<Snapshot>,
    document: watch::Sender<Bytes>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            now: Mutex::default(),
            document: watch::Sender::new(Bytes::new()),
        }
    }
}

impl Status {
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let doc = {
            let mut s = self.lock();
            f(&mut s);
            s.document()
        };
        self.document.send_if_modified(|d| {
            let changed = *d != doc;
            *d = doc;
            changed
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// The fleet document, as it changes; empty without `[fleet]`.
    #[must_use]
    pub fn document(&self) -> watch::Receiver<Bytes> {
        self.document.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
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
        if !s.bad.is_empty() {
            line.push_str(&format!(" (bad: {})", s.bad.join(", ")));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_changes_with_the_state_and_not_with_polls() {
        let status = Status::default();
        let mut rx = status.document();
        status.update(|s| s.polls += 1);
        assert!(!rx.has_changed().unwrap(), "no [fleet], no document");
        assert!(rx.borrow().is_empty());
        status.update(|s| s.device = "gw-1".into());
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            &rx.borrow_and_update()[..],
            br#"{"device":"gw-1","applied":null,"candidate":null,"last_error":null,"rollbacks":0,"refused":0,"bad":[]}"#
        );
        status.update(|s| s.polls += 1);
        assert!(!rx.has_changed().unwrap(), "a poll alone changes nothing");
        status.update(|s| {
            s.rollbacks += 1;
            s.applied = Some("1".into());
            s.bad.push("2".into());
            s.last_error = Some("bundle 2 rolled back: \"x\"".into());
        });
        let v: serde_json::Value = serde_json::from_slice(&rx.borrow_and_update()).unwrap();
        assert_eq!(v["applied"], "1");
        assert_eq!(v["bad"][0], "2");
        assert_eq!(v["last_error"], "bundle 2 rolled back: \"x\"");
        assert_eq!(v["rollbacks"], 1);
    }
}
