//! The plugin's side of an exporter: a WAL batch becomes the plugin's input (samples older than
//! `sample_age_limit` left out, external labels added), and the plugin's payloads become the
//! delivery driver's.
//!
//! A plugin that cannot encode a batch is asked again, with backoff, [`ENCODE_ATTEMPTS`] times
//! in all; then the batch is dropped as poison (counted, logged at ERROR, shown as the
//! exporter's last error) so that one bad batch cannot stop every later one. Calls refused
//! because the plugin is backing off or quarantined after faults are not attempts: they say
//! nothing about the batch.

use super::{Exporter, pause};
use magpie_host::PluginError;
use magpie_sdk::abi::{ExportBatchEncoder, ExportExemplar, Label, Payload};
use magpie_transport::clock::now_ms;
use magpie_transport::delivery::{self, Decision, Delivery, Outcome};
use magpie_wal::Batch;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

/// Encoding attempts a batch gets before it is dropped as poison.
pub(super) const ENCODE_ATTEMPTS: u32 = 3;

/// What became of a batch at the plugin.
pub(super) enum Encoded {
    /// The payloads to deliver (none for a batch left empty by the age limit).
    Payloads(Vec<delivery::Payload>),
    /// The plugin failed on it [`ENCODE_ATTEMPTS`] times; it is dropped.
    Poisoned,
    /// Asked to stop meanwhile.
    Stop,
}

impl Exporter {
    /// The plugin's input for `batch`, encoded, and the batch's exemplars (only when this
    /// exporter sends them) naming series by their index in it. Label sets go to the plugin as
    /// the WAL holds them when nothing changes them: their encoding is postcard's, so each is
    /// one copy.
    fn encode<'b>(&self, batch: &'b Batch) -> (ExportBatchEncoder, Vec<ExportExemplar<'b>>) {
        let cutoff = self
            .age_limit
            .map(|l| now_ms() - i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
        // Points grouped by series, series in index order, points in WAL order: a counting
        // sort, so a batch costs no allocation per series.
        let n = batch.series.len();
        let mut start = vec![0u32; n + 1];
        let mut too_old = 0u64;
        let fresh = |t_ms: i64| cutoff.is_none_or(|c| t_ms >= c);
        for s in &batch.samples {
            if !fresh(s.t_ms) {
                too_old += 1;
            } else if let Some(c) = start.get_mut(s.series as usize + 1) {
                *c += 1;
            }
        }
        if too_old > 0 {
            self.stats.too_old.fetch_add(too_old, Ordering::Relaxed);
            log::warn!(
                "exporter `{}`: dropped {too_old} samples older than sample_age_limit",
                self.name
            );
        }
        for i in 1..=n {
            start[i] += start[i - 1];
        }
        let mut points = vec![(0i64, 0f64); start[n] as usize];
        let mut fill = start.clone();
        for s in &batch.samples {
            if fresh(s.t_ms)
                && let Some(at) = fill[..n].get_mut(s.series as usize)
            {
                points[*at as usize] = (s.t_ms, s.value);
                *at += 1;
            }
        }
        // Exemplars cost nothing unless this exporter sends them and the batch holds some.
        let with_ex = self.send_exemplars && !batch.exemplars.is_empty();
        let mut has_ex = vec![false; if with_ex { n } else { 0 }];
        if with_ex {
            for e in batch.exemplars.iter().filter(|e| fresh(e.t_ms)) {
                if let Some(h) = has_ex.get_mut(e.series as usize) {
                    *h = true;
                }
            }
        }
        // Each WAL series' index among those the plugin gets.
        let mut out_index: Vec<Option<u32>> = vec![None; has_ex.len()];
        let mut next_out = 0u32;
        let mut b = ExportBatchEncoder::default();
        let mut scratch = Vec::new();
        for (i, labels) in batch.series.iter().enumerate() {
            let (from, to) = (start[i] as usize, start[i + 1] as usize);
            // A series with exemplars but no sample in this batch still carries them.
            if from == to && !has_ex.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(o) = out_index.get_mut(i) {
                *o = Some(next_out);
            }
            next_out += 1;
            if self.external_labels.is_empty() && self.relabel.is_empty() {
                // WAL label sets are sorted by name already.
                let (count, pairs) = labels.encoded_pairs();
                b.series_encoded(count, pairs);
            } else if self.relabel.is_empty() {
                // External labels fill in names the series lacks; the series' own values win.
                scratch.clear();
                let count = self.external_labels.write_merged(labels, &mut scratch);
                b.series_encoded(count, &scratch);
            } else {
                // As Prometheus: write relabeling sees the external labels too.
                let mut all: Vec<(String, String)> = (labels.iter())
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                for (n, v) in self.external_labels.iter() {
                    if labels.get(n).is_none() {
                        all.push((n.to_string(), v.to_string()));
                    }
                }
                if !self.relabel.apply(&mut all) {
                    next_out -= 1;
                    if let Some(o) = out_index.get_mut(i) {
                        *o = None;
                    }
                    continue;
                }
                all.sort();
                b.series(all.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            }
            for &(t, v) in &points[from..to] {
                b.point(t, v);
            }
        }
        let mut exemplars = Vec::new();
        if with_ex {
            for e in batch.exemplars.iter().filter(|e| fresh(e.t_ms)) {
                if let Some(&Some(series)) = out_index.get(e.series as usize) {
                    exemplars.push(ExportExemplar {
                        series,
                        labels: e.labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
                        value: e.value,
                        timestamp_ms: e.t_ms,
                    });
                }
            }
        }
        (b, exemplars)
    }

    /// Has the plugin encode `batch` (in its fallback encoding with `fallback`), bounded by
    /// [`ENCODE_ATTEMPTS`].
    pub(super) async fn encode_payloads(
        &mut self,
        batch: &Batch,
        fallback: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> Encoded {
        let (encoded, exemplars) = self.encode(batch);
        if encoded.sample_count() == 0 && exemplars.is_empty() {
            return Encoded::Payloads(Vec::new());
        }
        let mut attempts = 0;
        let mut backoff = Delivery::new(self.policy);
        loop {
            let exported = (self.runner)
                .export_encoded(&encoded, &exemplars, fallback)
                .await;
            let e = match exported {
                Ok(p) => return Encoded::Payloads(p.iter().map(to_delivery).collect()),
                Err(e) => e,
            };
            let wait = match &e {
                PluginError::Backoff { remaining, .. }
                | PluginError::Quarantined { remaining, .. } => *remaining,
                _ => {
                    attempts += 1;
                    if attempts >= ENCODE_ATTEMPTS {
                        let samples = encoded.sample_count() as u64;
                        self.stats
                            .poisoned_samples
                            .fetch_add(samples, Ordering::Relaxed);
                        self.stats.set_error(Some(format!(
                            "dropped a batch of {samples} samples the plugin could not encode in {attempts} attempts: {e}"
                        )));
                        log::error!(
                            "exporter `{}`: the plugin could not encode a batch in {attempts} attempts; its {samples} samples are dropped and later batches go on. error={e}",
                            self.name
                        );
                        return Encoded::Poisoned;
                    }
                    match backoff.decide(
                        Outcome::Retryable { retry_after: None },
                        std::time::Instant::now(),
                        magpie_transport::clock::random(),
                    ) {
                        Decision::RetryAt(at) => {
                            at.saturating_duration_since(std::time::Instant::now())
                        }
                        Decision::Done | Decision::Drop => self.policy.min_backoff,
                    }
                }
            };
            log::warn!(
                "exporter `{}`: the plugin could not encode a batch (attempt {attempts} of {ENCODE_ATTEMPTS}); retrying in {wait:?}. error={e}",
                self.name
            );
            self.stats
                .set_error(Some(format!("the plugin could not encode a batch: {e}")));
            if pause(wait, stop).await {
                return Encoded::Stop;
            }
        }
    }
}

/// A plugin's payload as the delivery driver takes it: its `Content-Type` joins its headers.
pub(super) fn to_delivery(p: &Payload<'_>) -> delivery::Payload {
    let mut headers: Vec<(String, String)> = p
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !p.content_type.is_empty() {
        headers.push(("content-type".into(), p.content_type.to_string()));
    }
    delivery::Payload {
        body: bytes::Bytes::copy_from_slice(&p.body),
        samples: p.samples,
        headers,
        topic: p.topic.as_ref().map(ToString::to_string),
    }
}
