//! The exporter's ends of the delivery driver: [`PluginJudge`] lets the exporter plugin read a
//! receiver's answer (remote write 2.0 reads its `X-Prometheus-Remote-Write-*-Written`
//! headers, and answers `Unsupported` when a 1.0 receiver refuses 2.0), and [`Tell`] turns
//! what the driver reports into the exporter's counters, last error and log lines.

use crate::ExportStats;
use magpie_host::Runner;
use magpie_sdk::abi::{ExportOutcome, ResponseHead};
use magpie_transport::PostResponse;
use magpie_transport::delivery::{ByStatus, Judge, Payload, Report, RoundFailed, Verdict};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

/// Judges answers with the exporter plugin, by status code when the plugin cannot.
pub(super) struct PluginJudge<'a> {
    pub name: &'a str,
    pub runner: &'a mut Runner,
    /// The payloads are the plugin's fallback encoding: `Unsupported` is a refusal.
    pub fallback: bool,
    /// Set to the status of an answer judged `Unsupported` while not in the fallback.
    pub unsupported: &'a OnceLock<u16>,
}

impl Judge for PluginJudge<'_> {
    async fn judge(&mut self, resp: &PostResponse) -> Verdict {
        let head = ResponseHead::V1 {
            status: resp.status,
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
            body: resp.body.as_slice().into(),
        };
        match self.runner.outcome(&head).await {
            Ok(ExportOutcome::Success) => Verdict::Accept,
            // The cursor moves per batch, so a partial success resends the payload: receivers
            // accept a sample they already hold.
            Ok(ExportOutcome::Retryable | ExportOutcome::Partial(_)) => Verdict::Retry,
            Ok(ExportOutcome::Rejected) => Verdict::Refuse,
            // The receiver does not take this encoding: the driver drops the payload without
            // booking it (see `Tell::refused`) and the exporter sends the batch again in the
            // fallback encoding.
            Ok(ExportOutcome::Unsupported) if !self.fallback => {
                let _ = self.unsupported.set(resp.status);
                Verdict::Refuse
            }
            Ok(ExportOutcome::Unsupported) => Verdict::Refuse,
            Err(e) => {
                log::warn!(
                    "exporter `{}`: the plugin could not judge a response; using the status code. error={e}",
                    self.name
                );
                ByStatus::verdict(resp.status)
            }
        }
    }
}

/// Books the driver's reports on an exporter.
pub(super) struct Tell<'a> {
    pub name: &'a str,
    pub stats: &'a ExportStats,
    /// Set by a retry: the next delivery may find a backlog worth splitting.
    pub recovering: &'a mut bool,
    /// Set when the receiver refused the encoding: the batch goes again, so refusals are not
    /// losses.
    pub unsupported: &'a OnceLock<u16>,
    /// Refusals are kept here, not booked, while the exporter may still send the batch in
    /// parts (`bisect.rs`).
    pub held: Option<&'a mut Vec<super::bisect::Held>>,
}

impl Report for Tell<'_> {
    fn accepted(&mut self, p: &Payload) {
        self.stats.delivered(p.samples);
    }

    fn refused(&mut self, p: &Payload, reason: &str) {
        if self.unsupported.get().is_some() {
            return;
        }
        let h = super::bisect::Held {
            samples: p.samples,
            reason: reason.to_string(),
        };
        match self.held.as_deref_mut() {
            Some(held) => held.push(h),
            None => h.book(self.name, self.stats),
        }
    }

    fn retrying(&mut self, r: &RoundFailed<'_>) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        self.stats
            .failed_sends
            .fetch_add(r.unreached as u64, Ordering::Relaxed);
        let first = !std::mem::replace(self.recovering, true);
        let what = if r.of > 1 {
            format!("{} of {} payloads failed", r.failed, r.of)
        } else {
            "sending failed".into()
        };
        self.stats.set_error(Some(format!("{what}: {}", r.reason)));
        let now = u64::try_from(magpie_transport::clock::now_ms()).unwrap_or(0);
        if self.stats.warn_due(first, now) {
            log::warn!(
                "exporter `{}`: {what}; retrying in {:?} (while it keeps failing, logged once a minute). error={}",
                self.name,
                r.wait,
                r.reason
            );
        }
    }
}
