//! A running plugin instance: one store, reused across calls, with its limits.

use crate::engine::EPOCH_TICK;
use crate::error::PluginError;
use crate::io::SampleSink;
use crate::state::{Call, State};
use magpie_sdk::abi::{
    self, DecodeRequest, ExportBatch, ExportBatchEncoder, ExportExemplar, ExportOutcome,
    ExportOutput, FamilyMeta, MetadataRequest, Payload, ResponseHead, ScrapeRequest,
};
use std::time::Duration;
use wasmtime::{Store, Trap, TypedFunc, UpdateDeadline};

/// Limits of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap in bytes.
    pub memory_bytes: u64,
    /// CPU time one call may use inside the guest (counted in epoch ticks).
    pub cpu: Duration,
    /// Wall time one call may take, host I/O included.
    pub wall: Duration,
}

impl Limits {
    /// 16 MiB, 1 s of CPU, 30 s of wall time.
    pub const DEFAULT: Self = Self {
        memory_bytes: 16 << 20,
        cpu: Duration::from_secs(1),
        wall: Duration::from_secs(30),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An instantiated, initialised plugin.
pub struct Instance {
    pub(crate) store: Store<State>,
    pub(crate) role_fn: TypedFunc<(), i32>,
    pub(crate) outcome_fn: Option<TypedFunc<(), i32>>,
    pub(crate) metadata_fn: Option<TypedFunc<(), i32>>,
    pub(crate) limits: Limits,
    /// The module's ABI version: which messages it reads.
    pub(crate) abi_version: u32,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.store.data().plugin)
            .finish_non_exhaustive()
    }
}

/// The epoch callback: counts CPU ticks spent in the guest, yields to the runtime at each one,
/// and interrupts the guest once its budget is spent.
pub(crate) fn install_deadline(store: &mut Store<State>) {
    store.epoch_deadline_callback(|mut ctx| {
        let s = ctx.data_mut();
        s.ticks += 1;
        if s.ticks > s.tick_budget {
            return Err(Trap::Interrupt.into());
        }
        Ok(UpdateDeadline::Yield(1))
    });
}

/// Time kept between the end of host I/O and the wall-time limit, for the guest to report.
fn io_margin(wall: Duration) -> Duration {
    (wall / 10).clamp(Duration::from_millis(20), Duration::from_millis(500))
}

pub(crate) fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// Runs one guest export with `input`, classifying every way it can fail.
pub(crate) async fn call(
    store: &mut Store<State>,
    f: &TypedFunc<(), i32>,
    input: Vec<u8>,
    limits: Limits,
) -> Result<Option<Vec<u8>>, PluginError> {
    let deadline = tokio::time::Instant::now() + limits.wall;
    {
        let s = store.data_mut();
        let sink = s.call.sink.take();
        s.call = Call {
            input,
            io_deadline: Some(deadline - io_margin(limits.wall)),
            sink,
            ..Call::default()
        };
        s.ticks = 0;
        s.tick_budget = ticks(limits.cpu);
        s.limits.hit = false;
    }
    store.set_epoch_deadline(1);
    let running = store.data().ticker.run();
    let result = tokio::time::timeout_at(deadline, f.call_async(&mut *store, ())).await;
    drop(running);
    let plugin = store.data().plugin.to_string();
    let s = store.data_mut();
    s.call.streams.clear();
    // The request is as large as what it carries (an export batch of 10k samples is over
    // 1 MiB with its labels) and the guest has read it by now: kept until the next call, it
    // would hold the largest request's pages for good.
    s.call.input = Vec::new();
    if s.call.logs_dropped > 0 {
        log::warn!(
            "plugin {plugin}: {} log lines dropped in one call",
            s.call.logs_dropped
        );
    }
    let status = match result {
        Err(_) => {
            return Err(PluginError::Timeout {
                plugin,
                what: "wall time",
                limit: limits.wall,
            });
        }
        Ok(Err(e)) => {
            if s.limits.hit {
                return Err(PluginError::MemoryLimit {
                    plugin,
                    limit: s.limits.memory_bytes,
                });
            }
            if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                return Err(PluginError::Timeout {
                    plugin,
                    what: "CPU time",
                    limit: limits.cpu,
                });
            }
            let reason = match (s.call.error.take(), e.downcast_ref::<Trap>()) {
                (Some(msg), _) => msg,
                (None, Some(t)) => t.to_string(),
                (None, None) => format!("{e:#}"),
            };
            return Err(PluginError::Trap { plugin, reason });
        }
        Ok(Ok(status)) => status,
    };
    if let Some(reason) = s.call.abi_violation.take() {
        return Err(PluginError::Abi { plugin, reason });
    }
    match status {
        0 => Ok(s.call.output.take()),
        abi::STATUS_ERROR => {
            let mut reason = s
                .call
                .error
                .take()
                .unwrap_or_else(|| "no reason given".into());
            if let Some(cause) = s.call.io_error.take() {
                reason = format!("{reason} ({cause})");
            }
            Err(PluginError::Failed { plugin, reason })
        }
        n => Err(PluginError::Abi {
            plugin,
            reason: format!("returned unknown status {n}"),
        }),
    }
}

fn abi_err(plugin: &str, what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::Abi {
        plugin: plugin.into(),
        reason: format!("{what}: {e}"),
    }
}

impl Instance {
    /// The name this instance reports in errors and logs (`plugin:instance`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.store.data().plugin
    }

    /// Bytes of request and reply the host holds for this instance between calls: none, so
    /// that a large call leaves nothing behind on the host's side (the guest's linear memory
    /// is its own).
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        let call = &self.store.data().call;
        call.input.capacity() + call.output.as_ref().map_or(0, Vec::capacity)
    }

    /// Runs one scrape; emitted batches go to `sink`, which is handed back with the result.
    pub async fn scrape(
        &mut self,
        req: &ScrapeRequest<'_>,
        sink: Box<dyn SampleSink>,
    ) -> (Box<dyn SampleSink>, Result<(), PluginError>) {
        let input = if self.abi_version >= abi::SCRAPE_V2_ABI_VERSION {
            abi::encode(req)
        } else {
            abi::encode(&req.to_v1())
        };
        let input = input.unwrap_or_default();
        self.store.data_mut().call.sink = Some(sink);
        self.store.data_mut().call.body_size_limit = req.body_size_limit();
        let r = call(&mut self.store, &self.role_fn, input, self.limits)
            .await
            .map(drop);
        let sink = self.store.data_mut().call.sink.take();
        (sink.unwrap_or_else(|| Box::new(Discard)), r)
    }

    /// Decodes one pushed message; emitted batches go to `sink`, which is handed back with the
    /// result.
    pub async fn decode(
        &mut self,
        req: &DecodeRequest<'_>,
        sink: Box<dyn SampleSink>,
    ) -> (Box<dyn SampleSink>, Result<(), PluginError>) {
        let input = abi::encode(req).unwrap_or_default();
        self.store.data_mut().call.sink = Some(sink);
        self.store.data_mut().call.body_size_limit = 0;
        let r = call(&mut self.store, &self.role_fn, input, self.limits)
            .await
            .map(drop);
        let sink = self.store.data_mut().call.sink.take();
        (sink.unwrap_or_else(|| Box::new(Discard)), r)
    }

    /// Encodes a batch into payloads; with `fallback`, in the plugin's fallback encoding (see
    /// [`ExportOutcome::Unsupported`]).
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export(
        &mut self,
        batch: &ExportBatch<'_>,
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        self.export_with_exemplars(batch, &[], fallback).await
    }

    /// As [`Instance::export`], with the batch's exemplars.
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_with_exemplars(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let input = crate::export_request::encode(batch, exemplars, fallback);
        self.export_input(input).await
    }

    /// As [`Instance::export_with_exemplars`], with the batch held encoded: the exporter's
    /// path, which copies label sets kept encoded in one piece each.
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_encoded(
        &mut self,
        batch: &ExportBatchEncoder,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let input = crate::export_request::encode_from(batch, exemplars, fallback);
        self.export_input(input).await
    }

    /// Runs the export with its encoded request.
    async fn export_input(&mut self, input: Vec<u8>) -> Result<Vec<Payload<'static>>, PluginError> {
        let out = call(&mut self.store, &self.role_fn, input, self.limits).await?;
        let plugin = self.name().to_string();
        let out = out.ok_or_else(|| abi_err(&plugin, "export", "no output"))?;
        let ExportOutput::V1 { payloads } =
            abi::decode(&out).map_err(|e| abi_err(&plugin, "export output", e))?;
        Ok(payloads.into_iter().map(owned_payload).collect())
    }

    /// Encodes metric metadata into payloads of its own; none from a plugin without the
    /// optional export.
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, PluginError> {
        let Some(f) = self.metadata_fn.clone() else {
            return Ok(Vec::new());
        };
        let input = abi::encode(&MetadataRequest::V1 {
            families: families.to_vec(),
        })
        .unwrap_or_default();
        let out = call(&mut self.store, &f, input, self.limits).await?;
        let plugin = self.name().to_string();
        let out = out.ok_or_else(|| abi_err(&plugin, "export_metadata", "no output"))?;
        let ExportOutput::V1 { payloads } =
            abi::decode(&out).map_err(|e| abi_err(&plugin, "export_metadata output", e))?;
        Ok(payloads.into_iter().map(owned_payload).collect())
    }

    /// Judges a receiver's answer; without the optional export, by status code.
    ///
    /// # Errors
    /// A [`PluginError`] naming the plugin.
    pub async fn outcome(&mut self, head: &ResponseHead<'_>) -> Result<ExportOutcome, PluginError> {
        let Some(f) = self.outcome_fn.clone() else {
            let ResponseHead::V1 { status, .. } = head;
            return Ok(ExportOutcome::from_status(*status));
        };
        let input = abi::encode(head).unwrap_or_default();
        let out = call(&mut self.store, &f, input, self.limits).await?;
        let plugin = self.name().to_string();
        let out = out.ok_or_else(|| abi_err(&plugin, "outcome", "no output"))?;
        abi::decode(&out).map_err(|e| abi_err(&plugin, "outcome", e))
    }
}

fn owned_payload(p: Payload<'_>) -> Payload<'static> {
    Payload {
        body: p.body.into_owned().into(),
        content_type: p.content_type.into_owned().into(),
        headers: p
            .headers
            .into_iter()
            .map(|(k, v)| (k.into_owned().into(), v.into_owned().into()))
            .collect(),
        topic: p.topic.map(|t| t.into_owned().into()),
        samples: p.samples,
    }
}

/// A sink that drops everything; stands in when a guest call lost the caller's sink.
struct Discard;

impl SampleSink for Discard {
    fn push(&mut self, _batch: &abi::SampleBatch<'_>) -> abi::EmitStatus {
        abi::EmitStatus::Stop
    }
}
