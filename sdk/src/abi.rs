//! The wire contract between the magpie host and its WebAssembly plugins.
//!
//! Everything that crosses the sandbox boundary is defined here once, encoded with postcard.
//! Messages are enums whose variants only grow (`V1`, later `V2`, ...): a host that meets a
//! variant it does not know refuses the message rather than misreading it.
//!
//! # Calling convention
//! Guests are core wasm modules (no WASI) that export `memory`, [`EXPORT_ABI_VERSION`],
//! [`EXPORT_INIT`] and one role function ([`EXPORT_SCRAPE`], [`EXPORT_EXPORT`] or
//! [`EXPORT_DECODE`]); they may
//! import only the functions listed in [`IMPORTS`] from module [`IMPORT_MODULE`].
//!
//! The guest owns every buffer. When the host has bytes for the guest (the call's input, a
//! directory listing, a response head) the guest passes a pointer and capacity; the host returns
//! the full length `n`. If `n <= cap` the bytes were written; if `n > cap` nothing was written and
//! the guest calls again with at least `n` bytes. Negative returns are [`HostError`] codes. No host
//! call ever allocates inside the guest.

mod batch;
mod exemplar;
mod meta;
pub mod raw;
mod value;

pub use batch::{
    ExportBatch, ExportBatchBuilder, ExportBatchEncoder, Label, Point, Sample, SampleBatch,
    SampleEncoder, SeriesHead, SeriesRef,
};
pub use exemplar::{ExemplarReport, ExportExemplar, MAX_EXEMPLARS_PER_SCRAPE, ScrapedExemplar};
pub use meta::{FamilyMeta, MetadataRequest, MetadataUpdate, MetricType};
pub use value::{ConfigError, Value};

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Version of this contract. A module built against a version outside
/// [`OLDEST_ABI_VERSION`]`..=`[`ABI_VERSION`] is refused at load.
///
/// Version 2 added the device imports (`tcp_connect`, `udp_connect`, `serial_open`,
/// `stream_write`, `stream_recv`) and changed no message, so modules built for version 1 still
/// load. Version 3 added [`ScrapeRequest::V2`] and the repeat record of a [`SampleBatch`]
/// ([`Sample::is_repeat`]); the host sends `V2` only to modules of version 3 or later, so
/// older ones still load.
pub const ABI_VERSION: u32 = 3;

/// The first version whose scrapers read [`ScrapeRequest::V2`].
pub const SCRAPE_V2_ABI_VERSION: u32 = 3;

/// The oldest version this host still loads.
pub const OLDEST_ABI_VERSION: u32 = 1;

/// Module name of every host import.
pub const IMPORT_MODULE: &str = "magpie";

/// `() -> i32`: the ABI version the guest was built with.
pub const EXPORT_ABI_VERSION: &str = "magpie_abi_version";
/// `() -> i32`: reads an [`Init`] through `input` and prepares the plugin. 0 = ok.
pub const EXPORT_INIT: &str = "magpie_init";
/// `() -> i32`: reads a [`ScrapeRequest`] through `input`, emits samples. 0 = ok.
pub const EXPORT_SCRAPE: &str = "magpie_scrape";
/// `() -> i32`: reads an [`ExportRequest`] through `input`, answers an [`ExportOutput`]
/// through `output`. 0 = ok.
pub const EXPORT_EXPORT: &str = "magpie_export";
/// `() -> i32`: reads a [`DecodeRequest`] through `input`, emits the samples the pushed bytes
/// hold. 0 = ok.
pub const EXPORT_DECODE: &str = "magpie_decode";
/// `() -> i32`: reads a [`ResponseHead`] through `input`, answers an [`ExportOutcome`] through
/// `output`. Optional: without it the host applies [`ExportOutcome::from_status`].
pub const EXPORT_OUTCOME: &str = "magpie_outcome";
/// `() -> i32`: reads a [`MetadataRequest`] through `input`, answers an [`ExportOutput`]
/// through `output` (no payloads when the exporter sends no metadata). Optional.
pub const EXPORT_METADATA: &str = "magpie_export_metadata";
/// The guest's linear memory.
pub const EXPORT_MEMORY: &str = "memory";

/// Status a guest export returns when it failed; the reason was passed to `set_error`.
pub const STATUS_ERROR: i32 = 1;

/// A host import: its name and its wasm signature, as `(params, results)` of value types
/// `i32`/`i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSig {
    /// Function name in module [`IMPORT_MODULE`].
    pub name: &'static str,
    /// Parameter types, `'i'` for i32 and `'I'` for i64.
    pub params: &'static str,
    /// Result types, same letters.
    pub results: &'static str,
}

const fn sig(name: &'static str, params: &'static str, results: &'static str) -> ImportSig {
    ImportSig {
        name,
        params,
        results,
    }
}

/// Every import a guest may use. Anything else is refused at load.
pub const IMPORTS: &[ImportSig] = &[
    // (level, ptr, len)
    sig("log", "iii", ""),
    // () -> unix time in ms
    sig("now_ms", "", "I"),
    // (ptr, cap) -> len | need | -err: the current call's input message
    sig("input", "ii", "i"),
    // (ptr, len) -> 0 | -err: the current call's output message
    sig("output", "ii", "i"),
    // (ptr, len): the reason a call failed, shown to the operator
    sig("set_error", "ii", ""),
    // (ptr, len) -> 0 continue | 1 stop | -err: a postcard SampleBatch
    sig("emit", "ii", "i"),
    // (ptr, len) -> 0 | -err: a postcard MetadataUpdate
    sig("emit_metadata", "ii", "i"),
    // (ptr, len) -> 0 | -err: a postcard ExemplarReport
    sig("emit_exemplars", "ii", "i"),
    // (req_ptr, req_len) -> stream handle | -err: a postcard FetchRequest
    sig("http_fetch", "ii", "i"),
    // (handle, ptr, cap) -> len | need | -err: the FetchResponse head
    sig("http_response", "iii", "i"),
    // (path_ptr, path_len) -> stream handle | -err
    sig("file_open", "ii", "i"),
    // (path_ptr, path_len, ptr, cap) -> len | need | -err: a postcard DirList
    sig("dir_list", "iiii", "i"),
    // (path_ptr, path_len, ptr, cap) -> len | need | -err: a postcard FsStat
    sig("statvfs", "iiii", "i"),
    // (path_ptr, path_len, ptr, cap) -> len | need | -err: the path with symlinks resolved
    sig("real_path", "iiii", "i"),
    // (handle, ptr, cap) -> bytes read (0 = end) | -err
    sig("stream_read", "iii", "i"),
    // (handle)
    sig("stream_close", "i", ""),
    // (target_ptr, target_len) -> stream handle | -err: a TCP connection to a granted
    // `tcp://host:port` target
    sig("tcp_connect", "ii", "i"),
    // (target_ptr, target_len) -> stream handle | -err: a UDP socket connected to a granted
    // `udp://host:port` target; each write is one datagram, each read one datagram
    sig("udp_connect", "ii", "i"),
    // (target_ptr, target_len) -> stream handle | -err: the serial device of a granted
    // `rtu:///dev/...?baud=..` target, its line set by the host from the target's query
    sig("serial_open", "ii", "i"),
    // (handle, ptr, len) -> len | -err: writes all of the bytes (one datagram for UDP)
    sig("stream_write", "iii", "i"),
    // (handle, ptr, cap, timeout_ms) -> bytes read (0 = closed) | -err: what arrives within
    // `timeout_ms` (bounded by the call's deadline); `Timeout` when nothing did
    sig("stream_recv", "iiii", "i"),
];

/// The capability an import gives a plugin, as `magpie plugin inspect` lists it; `None` for
/// the imports every plugin may use (log, clock, input and output, emit).
#[must_use]
pub fn capability(import: &str) -> Option<&'static str> {
    Some(match import {
        "http_fetch" | "http_response" => "http",
        "file_open" | "dir_list" | "statvfs" | "real_path" => "files",
        "tcp_connect" => "tcp",
        "udp_connect" => "udp",
        "serial_open" => "serial",
        _ => return None,
    })
}

/// Errors a host import reports to the guest as a negative return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum HostError {
    /// The plugin's grants do not cover this URL, path or operation.
    Denied = -1,
    /// The file or directory does not exist.
    NotFound = -2,
    /// An I/O error on the host side.
    Io = -3,
    /// A pointer, length, handle or message from the guest was invalid.
    Invalid = -4,
    /// A per-call bound (open streams, body size, sample count) was reached.
    Limit = -5,
    /// The call's deadline passed.
    Timeout = -6,
    /// The remote end could not be reached or answered with a protocol error.
    Network = -7,
}

impl HostError {
    /// Decodes a negative return value; unknown codes read as [`HostError::Invalid`].
    #[must_use]
    pub const fn from_code(code: i32) -> Self {
        match code {
            -1 => Self::Denied,
            -2 => Self::NotFound,
            -3 => Self::Io,
            -5 => Self::Limit,
            -6 => Self::Timeout,
            -7 => Self::Network,
            _ => Self::Invalid,
        }
    }

    /// A short lower-case description.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied by the plugin's grants",
            Self::NotFound => "not found",
            Self::Io => "I/O error",
            Self::Invalid => "invalid argument",
            Self::Limit => "limit reached",
            Self::Timeout => "timed out",
            Self::Network => "network error",
        }
    }
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for HostError {}

/// What `emit` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum EmitStatus {
    /// Keep going.
    Continue = 0,
    /// The host will take no more samples in this call (a limit was hit or the call is being
    /// cancelled); the guest should return.
    Stop = 1,
}

/// Log levels of the `log` import, as in the `log` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i32)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal operation.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
}

impl Level {
    /// Decodes the `log` import's level; unknown values read as [`Level::Debug`].
    #[must_use]
    pub const fn from_code(code: i32) -> Self {
        match code {
            1 => Self::Error,
            2 => Self::Warn,
            3 => Self::Info,
            _ => Self::Debug,
        }
    }
}

/// The role a module plays, known from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Produces samples (`magpie_scrape`).
    Scraper,
    /// Turns sample batches into payloads (`magpie_export`).
    Exporter,
    /// Turns bytes pushed to the collector into samples (`magpie_decode`).
    Decoder,
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Scraper => "scraper",
            Self::Exporter => "exporter",
            Self::Decoder => "decoder",
        })
    }
}

/// Input of `magpie_init`: who the plugin is and its configuration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Init<'a> {
    /// First version.
    V1 {
        /// The plugin's name in the configuration (a job or exporter name).
        #[serde(borrow)]
        name: Cow<'a, str>,
        /// The role the host loads it for.
        role: Role,
        /// The `[scrape.config]` or `[export.config]` table, empty when absent.
        config: Value,
    },
}

/// What a scraper may reach, as granted by its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants<'a> {
    /// URLs the plugin may fetch (exactly these).
    #[serde(borrow)]
    pub urls: Vec<Cow<'a, str>>,
    /// Path prefixes the plugin may open, list and stat.
    #[serde(borrow)]
    pub file_prefixes: Vec<Cow<'a, str>>,
}

/// Input of `magpie_scrape`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScrapeRequest<'a> {
    /// First version.
    V1 {
        /// The target to scrape (a URL for HTTP scrapers; empty for host collectors).
        #[serde(borrow)]
        target: Cow<'a, str>,
        /// Time the scrape started, unix ms; samples without their own timestamp get it.
        scrape_time_ms: i64,
        /// Budget for the whole scrape.
        timeout_ms: u32,
        /// Bodies larger than this fail the scrape (0 = unlimited).
        body_size_limit: u64,
        /// More samples than this fail the scrape (0 = unlimited).
        sample_limit: u32,
        /// What the plugin may reach during this scrape.
        #[serde(borrow)]
        grants: Grants<'a>,
    },
    /// Version 3 of the ABI: [`ScrapeRequest::V1`] and the [`Replay`] tokens.
    V2 {
        /// As in `V1`.
        #[serde(borrow)]
        target: Cow<'a, str>,
        /// As in `V1`.
        scrape_time_ms: i64,
        /// As in `V1`.
        timeout_ms: u32,
        /// As in `V1`.
        body_size_limit: u64,
        /// As in `V1`.
        sample_limit: u32,
        /// As in `V1`.
        #[serde(borrow)]
        grants: Grants<'a>,
        /// Which earlier scrape the host can resolve repeat records against.
        replay: Replay,
    },
}

/// The tokens that let a scraper send repeat records ([`Sample::is_repeat`]).
///
/// Every scrape of a target gets a token, unique to it. `order` is the token of the scrape
/// whose samples the host still holds in order (0 when it holds none: the last scrape failed,
/// or the target is new). A sample a scraper emits as a repeat record at position `i` of
/// this scrape (its `i`-th sample, from 0, across every `emit` of the call) stands for the
/// series of the `i`-th sample of scrape `order`, with the record's value and timestamp. A
/// scraper that remembers nothing of scrape `order` sends whole samples; a repeat record
/// when `order` is 0, or past the end of that scrape, fails the scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    /// This scrape's token, never 0.
    pub token: u64,
    /// The token of the scrape repeat records refer to, 0 for none.
    pub order: u64,
}

/// Reads a field both versions of [`ScrapeRequest`] have.
macro_rules! scrape_field {
    ($req:expr, $field:ident) => {
        match $req {
            ScrapeRequest::V1 { $field, .. } | ScrapeRequest::V2 { $field, .. } => $field,
        }
    };
}

impl<'a> ScrapeRequest<'a> {
    /// The target to scrape.
    #[must_use]
    pub fn target(&self) -> &str {
        scrape_field!(self, target)
    }

    /// Time the scrape started, unix ms.
    #[must_use]
    pub const fn scrape_time_ms(&self) -> i64 {
        *scrape_field!(self, scrape_time_ms)
    }

    /// Budget for the whole scrape in ms.
    #[must_use]
    pub const fn timeout_ms(&self) -> u32 {
        *scrape_field!(self, timeout_ms)
    }

    /// Largest body accepted, 0 = unlimited.
    #[must_use]
    pub const fn body_size_limit(&self) -> u64 {
        *scrape_field!(self, body_size_limit)
    }

    /// Most samples accepted, 0 = unlimited.
    #[must_use]
    pub const fn sample_limit(&self) -> u32 {
        *scrape_field!(self, sample_limit)
    }

    /// What the plugin may reach.
    #[must_use]
    pub const fn grants(&self) -> &Grants<'a> {
        scrape_field!(self, grants)
    }

    /// The replay tokens; all 0 in a `V1` request, which allows no repeat record.
    #[must_use]
    pub const fn replay(&self) -> Replay {
        match self {
            Self::V1 { .. } => Replay { token: 0, order: 0 },
            Self::V2 { replay, .. } => *replay,
        }
    }

    /// The same request as `V1`, for a module older than [`SCRAPE_V2_ABI_VERSION`].
    #[must_use]
    pub fn to_v1(&self) -> ScrapeRequest<'_> {
        ScrapeRequest::V1 {
            target: Cow::Borrowed(self.target()),
            scrape_time_ms: self.scrape_time_ms(),
            timeout_ms: self.timeout_ms(),
            body_size_limit: self.body_size_limit(),
            sample_limit: self.sample_limit(),
            grants: Grants {
                urls: self
                    .grants()
                    .urls
                    .iter()
                    .map(|u| Cow::Borrowed(&**u))
                    .collect(),
                file_prefixes: (self.grants().file_prefixes.iter())
                    .map(|p| Cow::Borrowed(&**p))
                    .collect(),
            },
        }
    }
}

/// Argument of `http_fetch`: a GET request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchRequest<'a> {
    /// First version.
    V1 {
        /// Absolute URL; must be one of the plugin's granted URLs.
        #[serde(borrow)]
        url: Cow<'a, str>,
        /// Extra request headers (for example `Accept`).
        #[serde(borrow)]
        headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    },
}

/// Answer of `http_response`: the head of a fetched response. The body is read from the
/// stream handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FetchResponse<'a> {
    /// First version.
    V1 {
        /// HTTP status code.
        status: u16,
        /// The `Content-Type` header, empty when absent.
        #[serde(borrow)]
        content_type: Cow<'a, str>,
    },
}

/// Answer of `dir_list`: entry names of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirList<'a> {
    /// First version.
    V1 {
        /// Entry names, not full paths.
        #[serde(borrow)]
        entries: Vec<Cow<'a, str>>,
    },
}

/// Answer of `statvfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FsStat {
    /// First version.
    V1 {
        /// Fundamental block size in bytes.
        block_size: u64,
        /// Size of the file system in blocks.
        blocks: u64,
        /// Free blocks.
        blocks_free: u64,
        /// Free blocks for unprivileged users.
        blocks_avail: u64,
        /// Inodes.
        files: u64,
        /// Free inodes.
        files_free: u64,
        /// Mounted read-only.
        readonly: bool,
    },
}

/// Input of `magpie_decode`: one pushed message (an HTTP request body or an MQTT payload) and
/// where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DecodeRequest<'a> {
    /// First version.
    V1 {
        /// The ingest source's name in the configuration.
        #[serde(borrow)]
        source: Cow<'a, str>,
        /// The MQTT topic, or the HTTP request path with its query string (`/write?precision=s`).
        #[serde(borrow)]
        context: Cow<'a, str>,
        /// The `Content-Type` (HTTP; MQTT 3.1.1 has none), empty when absent.
        #[serde(borrow)]
        content_type: Cow<'a, str>,
        /// Request headers the host passes on, names in lower case.
        #[serde(borrow)]
        headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        /// The body, whole (the host bounds its size before the call).
        #[serde(borrow, with = "serde_cow_bytes")]
        body: Cow<'a, [u8]>,
        /// When the host received it, unix ms; samples without their own timestamp get it.
        receive_time_ms: i64,
        /// More samples than this fail the message (0 = unlimited).
        sample_limit: u32,
    },
}

impl DecodeRequest<'_> {
    /// The ingest source's name.
    #[must_use]
    pub fn source(&self) -> &str {
        let Self::V1 { source, .. } = self;
        source
    }

    /// The MQTT topic or HTTP path.
    #[must_use]
    pub fn context(&self) -> &str {
        let Self::V1 { context, .. } = self;
        context
    }

    /// The `Content-Type`, empty when absent.
    #[must_use]
    pub fn content_type(&self) -> &str {
        let Self::V1 { content_type, .. } = self;
        content_type
    }

    /// The value of header `name` (lower case), if the host passed it on.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let Self::V1 { headers, .. } = self;
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        let Self::V1 { body, .. } = self;
        body
    }

    /// When the host received the message, unix ms.
    #[must_use]
    pub const fn receive_time_ms(&self) -> i64 {
        let Self::V1 {
            receive_time_ms, ..
        } = self;
        *receive_time_ms
    }

    /// Most samples accepted, 0 = unlimited.
    #[must_use]
    pub const fn sample_limit(&self) -> u32 {
        let Self::V1 { sample_limit, .. } = self;
        *sample_limit
    }
}

/// Input of `magpie_export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExportRequest<'a> {
    /// First version.
    V1 {
        /// The samples to encode, grouped by series.
        #[serde(borrow)]
        batch: ExportBatch<'a>,
    },
    /// Asks for the plugin's fallback encoding. The host sends it only to a plugin that
    /// answered [`ExportOutcome::Unsupported`], so plugins that never do need not know it.
    V2 {
        /// The samples to encode, grouped by series.
        #[serde(borrow)]
        batch: ExportBatch<'a>,
        /// Encode with the fallback (remote write 1.0 for a 2.0 exporter) instead of the
        /// configured encoding.
        fallback: bool,
    },
    /// A batch with exemplars, sent only to an exporter configured to send them and only
    /// when the batch holds some: plugins that never see exemplars need not know it.
    V3 {
        /// The samples to encode, grouped by series.
        #[serde(borrow)]
        batch: ExportBatch<'a>,
        /// As in `V2`.
        fallback: bool,
        /// Exemplars of the batch's series.
        #[serde(borrow)]
        exemplars: Vec<ExportExemplar<'a>>,
    },
}

impl<'a> ExportRequest<'a> {
    /// The samples to encode.
    #[must_use]
    pub const fn batch(&self) -> &ExportBatch<'a> {
        match self {
            Self::V1 { batch } | Self::V2 { batch, .. } | Self::V3 { batch, .. } => batch,
        }
    }

    /// Whether the host asks for the fallback encoding.
    #[must_use]
    pub const fn fallback(&self) -> bool {
        match self {
            Self::V1 { .. } => false,
            Self::V2 { fallback, .. } | Self::V3 { fallback, .. } => *fallback,
        }
    }

    /// The batch's exemplars (none before [`ExportRequest::V3`]).
    #[must_use]
    pub fn exemplars(&self) -> &[ExportExemplar<'a>] {
        match self {
            Self::V3 { exemplars, .. } => exemplars,
            _ => &[],
        }
    }
}

/// One message to send, as an exporter encoded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload<'a> {
    /// The request body or MQTT message.
    #[serde(borrow, with = "serde_cow_bytes")]
    pub body: Cow<'a, [u8]>,
    /// `Content-Type` for HTTP; ignored for MQTT.
    #[serde(borrow)]
    pub content_type: Cow<'a, str>,
    /// Extra HTTP headers.
    #[serde(borrow)]
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// MQTT topic; `None` for HTTP.
    #[serde(borrow)]
    pub topic: Option<Cow<'a, str>>,
    /// How many samples of the batch this payload carries, in batch order.
    pub samples: u32,
}

/// Output of `magpie_export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportOutput<'a> {
    /// First version.
    V1 {
        /// Payloads to send in order; together they carry the whole batch.
        #[serde(borrow)]
        payloads: Vec<Payload<'a>>,
    },
}

/// Input of `magpie_outcome`: what the receiver answered to one payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseHead<'a> {
    /// First version.
    V1 {
        /// HTTP status code.
        status: u16,
        /// Response headers the host passes on (`Retry-After`, content type).
        #[serde(borrow)]
        headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
        /// The start of the response body (at most a few KiB), for error messages.
        #[serde(borrow, with = "serde_cow_bytes")]
        body: Cow<'a, [u8]>,
    },
}

/// How a send went, as the exporter judges the receiver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportOutcome {
    /// Accepted: the samples may be acknowledged in the WAL.
    Success,
    /// A transient failure: send the same payload again later.
    Retryable,
    /// Refused for good: drop the payload and count its samples.
    Rejected,
    /// The first `n` samples were accepted; the rest is retried.
    Partial(u32),
    /// The receiver does not take this encoding (HTTP 415 Unsupported Media Type to a remote
    /// write 2.0 request): nothing is acknowledged or dropped; the host asks the plugin for
    /// the batch again in its fallback encoding ([`ExportRequest::V2`]) and sends that, to
    /// this receiver, from then on. Answered for a payload already in the fallback encoding,
    /// it counts as [`ExportOutcome::Rejected`].
    Unsupported,
}

impl ExportOutcome {
    /// Prometheus remote-write semantics: 2xx accepted, 5xx and 429 retried, other 4xx refused.
    #[must_use]
    pub const fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Success,
            429 | 500..=599 => Self::Retryable,
            _ => Self::Rejected,
        }
    }
}

/// Decodes a postcard message, borrowing from `bytes`.
///
/// # Errors
/// When `bytes` is not a complete, valid encoding of `T`.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// Encodes a message, appending to `out`.
///
/// # Errors
/// Only when `T`'s serializer fails, which the types of this module never do.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    let buf = core::mem::take(out);
    *out = postcard::to_extend(value, buf)?;
    Ok(())
}

/// Encodes a message into a new buffer.
///
/// # Errors
/// Only when `T`'s serializer fails, which the types of this module never do.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Convenience for owned strings in messages.
#[must_use]
pub fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(String::from(s))
}

/// Bytes as one length-prefixed run (postcard's `serialize_bytes`), borrowed when decoding.
mod serde_cow_bytes {
    use alloc::borrow::Cow;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ptr_arg)] // serde's `with` fixes the signature to the field's type.
    pub(super) fn serialize<S: Serializer>(v: &Cow<'_, [u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de: 'a, 'a, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Cow<'a, [u8]>, D::Error> {
        <&'de [u8]>::deserialize(d).map(Cow::Borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn v2(replay: Replay) -> ScrapeRequest<'static> {
        ScrapeRequest::V2 {
            target: "http://t/metrics".into(),
            scrape_time_ms: 5,
            timeout_ms: 6,
            body_size_limit: 7,
            sample_limit: 8,
            grants: Grants {
                urls: vec!["http://t/metrics".into()],
                file_prefixes: vec!["/proc".into()],
            },
            replay,
        }
    }

    #[test]
    fn a_v2_request_reads_as_v1_with_its_tokens() {
        let replay = Replay { token: 9, order: 3 };
        let req = v2(replay);
        let bytes = encode(&req).unwrap();
        let back: ScrapeRequest<'_> = decode(&bytes).unwrap();
        assert_eq!(back, req);
        assert_eq!(back.replay(), replay);
        let v1 = req.to_v1();
        assert!(matches!(v1, ScrapeRequest::V1 { .. }));
        assert_eq!(v1.replay(), Replay::default());
        let (a, b) = (&v1, &req);
        assert_eq!(a.target(), b.target());
        assert_eq!(a.scrape_time_ms(), b.scrape_time_ms());
        assert_eq!(a.timeout_ms(), b.timeout_ms());
        assert_eq!(a.body_size_limit(), b.body_size_limit());
        assert_eq!(a.sample_limit(), b.sample_limit());
        assert_eq!(a.grants(), b.grants());
        // `V1` is the first variant: a module of an older ABI reads what `to_v1` encodes.
        let bytes = encode(&v1).unwrap();
        assert_eq!(bytes[0], 0);
    }
}
