//! Supervision: a [`Runner`] owns one plugin instance for one job, exporter or ingest source, recreates it
//! after a fault with exponential backoff, and quarantines it after repeated faults. A fault is
//! a value returned to the caller; the collector runs on.

use crate::error::PluginError;
use crate::instance::Instance;
use crate::io::SampleSink;
use crate::{Host, InstanceSpec, Plugin};
use magpie_sdk::abi::{
    DecodeRequest, ExportBatch, ExportBatchEncoder, ExportExemplar, ExportOutcome, FamilyMeta,
    Payload, ResponseHead, ScrapeRequest,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// First wait before recreating a faulted instance; doubles per consecutive fault.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Consecutive faults that quarantine a plugin.
pub const QUARANTINE_AFTER: u32 = 5;
/// How long a quarantine lasts before one more attempt.
pub const QUARANTINE_FOR: Duration = Duration::from_secs(600);

/// Counters of one runner, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls attempted.
    pub calls: AtomicU64,
    /// Traps.
    pub traps: AtomicU64,
    /// CPU or wall time limits hit.
    pub timeouts: AtomicU64,
    /// Memory limits hit.
    pub memory_limits: AtomicU64,
    /// ABI violations.
    pub abi_errors: AtomicU64,
    /// Failures the plugin reported itself.
    pub failures: AtomicU64,
    /// Instances created after the first.
    pub restarts: AtomicU64,
    /// Whether the plugin is quarantined now.
    pub quarantined: AtomicBool,
}

impl PluginStats {
    fn count(&self, e: &PluginError) {
        let c = match e {
            PluginError::Trap { .. } => &self.traps,
            PluginError::Timeout { .. } => &self.timeouts,
            PluginError::MemoryLimit { .. } => &self.memory_limits,
            PluginError::Abi { .. } => &self.abi_errors,
            PluginError::Failed { .. } => &self.failures,
            PluginError::Quarantined { .. } | PluginError::Backoff { .. } => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// One supervised plugin instance.
#[derive(Debug)]
pub struct Runner {
    host: Host,
    plugin: Plugin,
    spec: InstanceSpec,
    instance: Option<Instance>,
    created: u64,
    faults: u32,
    retry_at: Option<Instant>,
    stats: Arc<PluginStats>,
}

impl Runner {
    /// A runner; the instance is created on first use.
    #[must_use]
    pub fn new(host: Host, plugin: Plugin, spec: InstanceSpec) -> Self {
        Self {
            host,
            plugin,
            spec,
            instance: None,
            created: 0,
            faults: 0,
            retry_at: None,
            stats: Arc::default(),
        }
    }

    /// Its counters.
    #[must_use]
    pub fn stats(&self) -> Arc<PluginStats> {
        Arc::clone(&self.stats)
    }

    /// The name used in errors (`plugin:instance`).
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}:{}", self.plugin.name(), self.spec.name)
    }

    /// Consecutive faults so far.
    #[must_use]
    pub const fn consecutive_faults(&self) -> u32 {
        self.faults
    }

    async fn ready(&mut self) -> Result<&mut Instance, PluginError> {
        if self.instance.is_none() {
            let now = Instant::now();
            if let Some(at) = self.retry_at.filter(|at| *at > now) {
                let remaining = at - now;
                return Err(if self.faults >= QUARANTINE_AFTER {
                    PluginError::Quarantined {
                        plugin: self.name(),
                        faults: self.faults,
                        remaining,
                    }
                } else {
                    PluginError::Backoff {
                        plugin: self.name(),
                        remaining,
                    }
                });
            }
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
            // Only a successful call clears the fault count: a plugin that instantiates but
            // faults on every call must still reach quarantine.
            let inst = match self.host.instantiate(&self.plugin, &self.spec).await {
                Ok(i) => i,
                Err(e) => return self.settle(Err(e)),
            };
            if self.created > 0 {
                self.stats.restarts.fetch_add(1, Ordering::Relaxed);
            }
            self.created += 1;
            self.instance = Some(inst);
        } else {
            self.stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        self.instance.as_mut().ok_or_else(|| PluginError::Abi {
            plugin: self.plugin.name().into(),
            reason: "instance vanished".into(),
        })
    }

    /// Books a call's result: a fault drops the instance and schedules the next attempt.
    fn settle<T>(&mut self, r: Result<T, PluginError>) -> Result<T, PluginError> {
        match &r {
            Ok(_) => {
                self.faults = 0;
                self.retry_at = None;
                self.stats.quarantined.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                self.stats.count(e);
                if e.is_fault() {
                    self.instance = None;
                    self.faults += 1;
                    let wait = if self.faults >= QUARANTINE_AFTER {
                        self.stats.quarantined.store(true, Ordering::Relaxed);
                        log::error!(
                            "plugin {} quarantined for {QUARANTINE_FOR:?} after {} faults in a row; last: {e}",
                            self.name(),
                            self.faults
                        );
                        QUARANTINE_FOR
                    } else {
                        let exp = BACKOFF_BASE.saturating_mul(1 << (self.faults - 1).min(16));
                        log::warn!(
                            "plugin {} faulted, recreating it in {:?}: {e}",
                            self.name(),
                            exp.min(BACKOFF_MAX)
                        );
                        exp.min(BACKOFF_MAX)
                    };
                    self.retry_at = Some(Instant::now() + wait);
                }
            }
        }
        r
    }

    /// One scrape; see [`Instance::scrape`].
    pub async fn scrape(
        &mut self,
        req: &ScrapeRequest<'_>,
        sink: Box<dyn SampleSink>,
    ) -> (Box<dyn SampleSink>, Result<(), PluginError>) {
        let inst = match self.ready().await {
            Ok(i) => i,
            Err(e) => return (sink, Err(e)),
        };
        let (sink, r) = inst.scrape(req, sink).await;
        (sink, self.settle(r))
    }

    /// Decodes one pushed message; see [`Instance::decode`].
    pub async fn decode(
        &mut self,
        req: &DecodeRequest<'_>,
        sink: Box<dyn SampleSink>,
    ) -> (Box<dyn SampleSink>, Result<(), PluginError>) {
        let inst = match self.ready().await {
            Ok(i) => i,
            Err(e) => return (sink, Err(e)),
        };
        let (sink, r) = inst.decode(req, sink).await;
        (sink, self.settle(r))
    }

    /// Encodes a batch; see [`Instance::export`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export(
        &mut self,
        batch: &ExportBatch<'_>,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let r = self.ready().await?.export(batch, false).await;
        self.settle(r)
    }

    /// Encodes a batch in the plugin's fallback encoding, after it judged an answer
    /// [`ExportOutcome::Unsupported`]; see [`Instance::export`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_fallback(
        &mut self,
        batch: &ExportBatch<'_>,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let r = self.ready().await?.export(batch, true).await;
        self.settle(r)
    }

    /// Encodes a batch with its exemplars (in the fallback encoding with `fallback`); with
    /// no exemplars the same as [`Runner::export`] or [`Runner::export_fallback`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_with_exemplars(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let r = (self.ready().await?)
            .export_with_exemplars(batch, exemplars, fallback)
            .await;
        self.settle(r)
    }

    /// Encodes a batch held encoded, with its exemplars (in the fallback encoding with
    /// `fallback`); see [`Instance::export_encoded`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_encoded(
        &mut self,
        batch: &ExportBatchEncoder,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let r = (self.ready().await?)
            .export_encoded(batch, exemplars, fallback)
            .await;
        self.settle(r)
    }

    /// Encodes metric metadata; see [`Instance::export_metadata`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let r = self.ready().await?.export_metadata(families).await;
        self.settle(r)
    }

    /// Judges a receiver's answer; see [`Instance::outcome`].
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn outcome(&mut self, head: &ResponseHead<'_>) -> Result<ExportOutcome, PluginError> {
        let r = self.ready().await?.outcome(head).await;
        self.settle(r)
    }
}
