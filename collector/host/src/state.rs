//! Per-instance state held in the wasmtime store.

use crate::grants::Grants;
use crate::io::{ByteStream, Fetch, FetchResponse, SampleSink};
use std::sync::Arc;
use wasmtime::{Memory, ResourceLimiter};

/// Open streams a guest may hold at once.
pub(crate) const MAX_STREAMS: usize = 16;
/// Log lines a guest may write per call; further lines are counted, not written.
pub(crate) const MAX_LOG_LINES: u32 = 64;
/// Longest log line kept.
pub(crate) const MAX_LOG_BYTES: usize = 2048;
/// Largest message a guest may hand the host (`output`, `emit`, requests).
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

pub(crate) enum StreamSlot {
    Body(Box<dyn ByteStream>),
    /// A fetch whose head the guest has not read yet.
    Response(FetchResponse),
    /// A TCP connection, UDP socket or serial line.
    Link(crate::device::Link),
}

pub(crate) struct State {
    pub(crate) plugin: Arc<str>,
    pub(crate) memory: Option<Memory>,
    pub(crate) limits: Limits,
    pub(crate) grants: Arc<Grants>,
    pub(crate) fetcher: Option<Arc<dyn Fetch>>,
    /// Ticks of CPU time used by the current call, and its budget.
    pub(crate) ticks: u64,
    pub(crate) tick_budget: u64,
    /// Keeps the epoch advancing while this instance runs guest code.
    pub(crate) ticker: Arc<crate::engine::Ticker>,
    pub(crate) call: Call,
}

/// What the current call reads and writes.
#[derive(Default)]
pub(crate) struct Call {
    pub(crate) input: Vec<u8>,
    pub(crate) output: Option<Vec<u8>>,
    pub(crate) error: Option<String>,
    pub(crate) sink: Option<Box<dyn SampleSink>>,
    pub(crate) streams: Vec<Option<StreamSlot>>,
    pub(crate) log_lines: u32,
    pub(crate) logs_dropped: u32,
    /// When host I/O on the guest's behalf gives up: a little before the call's wall-time
    /// limit, so a slow target ends in a `Timeout` the guest reports, not in a plugin fault.
    pub(crate) io_deadline: Option<tokio::time::Instant>,
    pub(crate) body_size_limit: u64,
    pub(crate) abi_violation: Option<String>,
    /// The cause of the last failed host I/O of this call, added to the plugin's error.
    pub(crate) io_error: Option<String>,
    /// Device links opened in this call, closed ones included.
    pub(crate) opens: u32,
}

pub(crate) struct Limits {
    pub(crate) memory_bytes: u64,
    pub(crate) hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory growth to {desired} bytes exceeds the limit of {} bytes",
                self.memory_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 65_536)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}
