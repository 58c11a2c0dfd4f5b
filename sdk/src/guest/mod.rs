//! The guest API: what a plugin built for `wasm32-unknown-unknown` uses.
//!
//! Implement [`Scraper`], [`Exporter`] or [`Decoder`] and export it with
//! [`crate::export_scraper!`], [`crate::export_exporter!`] or [`crate::export_decoder!`]. Host calls are wrapped safely here: [`log`], [`now_ms`],
//! [`fetch`] (a granted URL; the body is an [`embedded_io::Read`] stream), [`open`],
//! [`read_dir`], [`statvfs`], [`real_path`] (granted paths only), field devices granted by a
//! target ([`TcpStream`], [`UdpSocket`], [`Serial`]), and the [`Emitter`] a scraper pushes
//! samples into (flushed to the host in bounded batches through `emit`) and reports metadata
//! changes through (`emit_metadata`).
#![allow(unsafe_code)]

mod device;
mod ffi;
#[cfg(feature = "guest-runtime")]
mod rt;

use crate::abi::{
    self, DecodeRequest, DirList, EmitStatus, ExemplarReport, ExportBatch, ExportExemplar,
    ExportOutcome, ExportOutput, ExportRequest, FamilyMeta, FetchRequest, FetchResponse, FsStat,
    HostError, Init, Level, MetadataRequest, MetadataUpdate, Payload, ResponseHead, SampleEncoder,
    ScrapeRequest, Value, raw::RawExportRequest,
};
use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

pub use device::{Serial, TcpStream, UdpSocket};

/// A plugin failure: a message the host logs and shows with the plugin's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(msg: impl core::fmt::Display) -> Self {
        Self(msg.to_string())
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        Self::new(e)
    }
}

impl embedded_io::Error for HostError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::Denied => embedded_io::ErrorKind::PermissionDenied,
            Self::NotFound => embedded_io::ErrorKind::NotFound,
            Self::Invalid => embedded_io::ErrorKind::InvalidInput,
            Self::Timeout => embedded_io::ErrorKind::TimedOut,
            Self::Limit => embedded_io::ErrorKind::OutOfMemory,
            Self::Io | Self::Network => embedded_io::ErrorKind::Other,
        }
    }
}

/// A scraper: produces samples on each scrape.
pub trait Scraper: Sized + 'static {
    /// Builds the plugin from its `[scrape.config]` table. An error here fails `magpie check`.
    ///
    /// # Errors
    /// When the configuration is invalid; name the key at fault.
    fn init(name: &str, config: &Value) -> Result<Self, Error>;

    /// One scrape of `req.target()`: push samples into `out`.
    ///
    /// # Errors
    /// When the scrape failed; samples already emitted are discarded by the host.
    fn scrape(&mut self, req: &ScrapeRequest<'_>, out: &mut Emitter) -> Result<(), Error>;
}

/// An exporter: encodes batches into payloads the host sends.
pub trait Exporter: Sized + 'static {
    /// Builds the plugin from its `[export.config]` table.
    ///
    /// # Errors
    /// When the configuration is invalid; name the key at fault.
    fn init(name: &str, config: &Value) -> Result<Self, Error>;

    /// Encodes a batch. The payloads' `samples` counts add up to the batch's samples.
    ///
    /// # Errors
    /// When the batch cannot be encoded.
    fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error>;

    /// Encodes a batch in the fallback encoding, asked for after [`Exporter::outcome`]
    /// answered [`ExportOutcome::Unsupported`]; later outcomes judge fallback payloads. Only
    /// an exporter that answers `Unsupported` needs it.
    ///
    /// # Errors
    /// When the batch cannot be encoded; by default, always (there is no fallback).
    fn export_fallback(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        let _ = batch;
        Err(Error::new("this exporter has no fallback encoding"))
    }

    /// Encodes a batch with its exemplars (`fallback` as for [`Exporter::export_fallback`]).
    /// The host asks only when the exporter's configuration sends exemplars and the batch
    /// holds some. The default leaves the exemplars out.
    ///
    /// # Errors
    /// When the batch cannot be encoded.
    fn export_exemplars(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, Error> {
        let _ = exemplars;
        if fallback {
            self.export_fallback(batch)
        } else {
            self.export(batch)
        }
    }

    /// Encodes metric metadata into payloads of its own, for receivers that take metadata
    /// apart from samples (remote write 1.0). The default sends none.
    ///
    /// # Errors
    /// When the metadata cannot be encoded.
    fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, Error> {
        let _ = families;
        Ok(Vec::new())
    }

    /// Encodes one export request from its bytes. The default decodes it
    /// ([`ExportInput::decode`]) and calls [`Exporter::export_exemplars`] for a request with
    /// exemplars, else [`Exporter::export_fallback`] or [`Exporter::export`]. An exporter that
    /// writes label names and values as bytes overrides it and reads the request where it lies
    /// ([`ExportInput::read_raw`]), which saves building a [`Label`](abi::Label) per label and
    /// checking each string's UTF-8 (the host hands out only UTF-8).
    ///
    /// # Errors
    /// When the request does not decode, or the batch cannot be encoded.
    fn export_input(&mut self, input: &ExportInput<'_>) -> Result<Vec<Payload<'static>>, Error> {
        let req = input.decode()?;
        if !req.exemplars().is_empty() {
            self.export_exemplars(req.batch(), req.exemplars(), req.fallback())
        } else if req.fallback() {
            self.export_fallback(req.batch())
        } else {
            self.export(req.batch())
        }
    }

    /// Judges the receiver's answer to one payload.
    fn outcome(&mut self, head: &ResponseHead<'_>) -> ExportOutcome {
        let ResponseHead::V1 { status, .. } = head;
        ExportOutcome::from_status(*status)
    }
}

/// The encoded [`ExportRequest`] of one export call.
#[derive(Debug, Clone, Copy)]
pub struct ExportInput<'a>(&'a [u8]);

impl<'a> ExportInput<'a> {
    /// The request decoded, every string checked.
    ///
    /// # Errors
    /// When the bytes are not an [`ExportRequest`].
    pub fn decode(&self) -> Result<ExportRequest<'a>, Error> {
        abi::decode(self.0).map_err(|e| Error::new(alloc::format!("bad export request: {e}")))
    }

    /// The request read where it lies: framing and counts checked, label strings left as
    /// bytes.
    ///
    /// # Errors
    /// When the bytes are not an [`ExportRequest`] with consistent counts.
    pub fn read_raw(&self) -> Result<RawExportRequest<'a>, Error> {
        RawExportRequest::parse(self.0)
            .map_err(|e| Error::new(alloc::format!("bad export request: {e}")))
    }
}

/// A decoder: turns bytes pushed to the collector (an HTTP body, an MQTT payload) into samples.
pub trait Decoder: Sized + 'static {
    /// Builds the plugin from its `[ingest.config]` table. An error here fails `magpie check`.
    ///
    /// # Errors
    /// When the configuration is invalid; name the key at fault.
    fn init(name: &str, config: &Value) -> Result<Self, Error>;

    /// Decodes one message: push its samples into `out`. Samples without a timestamp
    /// (`None`) get `req.receive_time_ms()`.
    ///
    /// # Errors
    /// When the message is malformed; the host then refuses it whole (HTTP 400, or an MQTT
    /// reject counted and logged with this reason) and keeps none of its samples.
    fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error>;
}

/// Writes a log line through the host, attributed to this plugin.
pub fn log(level: Level, msg: &str) {
    // SAFETY: the pointer and length describe `msg`, which outlives the call.
    unsafe { ffi::log(level as i32, msg.as_ptr(), msg.len()) }
}

/// Unix time in ms, from the host's clock.
#[must_use]
pub fn now_ms() -> i64 {
    // SAFETY: no arguments.
    unsafe { ffi::now_ms() }
}

fn set_error(msg: &str) {
    // SAFETY: the pointer and length describe `msg`.
    unsafe { ffi::set_error(msg.as_ptr(), msg.len()) }
}

fn check(code: i32) -> Result<i32, HostError> {
    if code < 0 {
        Err(HostError::from_code(code))
    } else {
        Ok(code)
    }
}

/// Runs a "length or need N" host call until `buf` is large enough; `buf` holds the answer.
fn fill(buf: &mut Vec<u8>, mut call: impl FnMut(*mut u8, usize) -> i32) -> Result<(), HostError> {
    loop {
        let cap = buf.capacity();
        let n = usize::try_from(check(call(buf.as_mut_ptr(), cap))?).unwrap_or(usize::MAX);
        if n <= cap {
            // SAFETY: the host wrote `n <= cap` initialised bytes at the start of the buffer.
            unsafe { buf.set_len(n) };
            return Ok(());
        }
        buf.clear();
        buf.reserve_exact(n);
    }
}

/// A byte stream from the host: an HTTP response body or a file. Closed on drop.
#[derive(Debug)]
pub struct Stream {
    handle: i32,
}

impl embedded_io::ErrorType for Stream {
    type Error = HostError;
}

impl embedded_io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let n = check(unsafe { ffi::stream_read(self.handle, buf.as_mut_ptr(), buf.len()) })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // SAFETY: closing a handle this stream owns; the host ignores unknown handles.
        unsafe { ffi::stream_close(self.handle) }
    }
}

impl Stream {
    /// Reads the whole stream into `buf` (cleared first).
    ///
    /// # Errors
    /// The host's error for the stream.
    pub fn read_to_end(&mut self, buf: &mut Vec<u8>) -> Result<(), HostError> {
        buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let n = embedded_io::Read::read(self, &mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// An HTTP response: its head, and the body as a stream.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The body, decompressed by the host when it was gzip-encoded.
    pub body: Stream,
}

/// Fetches a granted URL with a GET request.
///
/// # Errors
/// [`HostError::Denied`] for a URL outside the plugin's grants; network errors and timeouts.
pub fn fetch(url: &str, headers: &[(&str, &str)]) -> Result<Response, HostError> {
    let req = FetchRequest::V1 {
        url: Cow::Borrowed(url),
        headers: headers
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect(),
    };
    let bytes = abi::encode(&req).map_err(|_| HostError::Invalid)?;
    // SAFETY: the pointer and length describe `bytes`.
    let handle = check(unsafe { ffi::http_fetch(bytes.as_ptr(), bytes.len()) })?;
    let body = Stream { handle };
    let mut head = Vec::with_capacity(256);
    // SAFETY: `fill` passes the buffer's own pointer and capacity.
    fill(&mut head, |p, c| unsafe {
        ffi::http_response(handle, p, c)
    })?;
    let FetchResponse::V1 {
        status,
        content_type,
    } = abi::decode(&head).map_err(|_| HostError::Invalid)?;
    Ok(Response {
        status,
        content_type: content_type.into_owned(),
        body,
    })
}

/// Opens a granted file for reading.
///
/// # Errors
/// [`HostError::Denied`] outside the plugin's grants, [`HostError::NotFound`], I/O errors.
pub fn open(path: &str) -> Result<Stream, HostError> {
    // SAFETY: the pointer and length describe `path`.
    let handle = check(unsafe { ffi::file_open(path.as_ptr(), path.len()) })?;
    Ok(Stream { handle })
}

/// Lists a granted directory: entry names, not full paths.
///
/// # Errors
/// As [`open`].
pub fn read_dir(path: &str) -> Result<Vec<String>, HostError> {
    let mut buf = Vec::with_capacity(1024);
    // SAFETY: path and buffer pointers describe live buffers of the given lengths.
    fill(&mut buf, |p, c| unsafe {
        ffi::dir_list(path.as_ptr(), path.len(), p, c)
    })?;
    let DirList::V1 { entries } = abi::decode(&buf).map_err(|_| HostError::Invalid)?;
    Ok(entries.into_iter().map(Cow::into_owned).collect())
}

/// A granted path with its symlinks resolved, as `realpath(3)` gives it.
///
/// # Errors
/// As [`open`]; also when the resolved path lies outside the grants.
pub fn real_path(path: &str) -> Result<String, HostError> {
    let mut buf = Vec::with_capacity(256);
    // SAFETY: path and buffer pointers describe live buffers of the given lengths.
    fill(&mut buf, |p, c| unsafe {
        ffi::real_path(path.as_ptr(), path.len(), p, c)
    })?;
    String::from_utf8(buf).map_err(|_| HostError::Invalid)
}

/// File system statistics of a granted mount point.
///
/// # Errors
/// As [`open`].
pub fn statvfs(path: &str) -> Result<FsStat, HostError> {
    let mut buf = Vec::with_capacity(64);
    // SAFETY: path and buffer pointers describe live buffers of the given lengths.
    fill(&mut buf, |p, c| unsafe {
        ffi::statvfs(path.as_ptr(), path.len(), p, c)
    })?;
    abi::decode(&buf).map_err(|_| HostError::Invalid)
}

/// Where a scraper pushes samples. They leave for the host in batches of at most
/// [`Emitter::BATCH_SAMPLES`] samples or [`Emitter::BATCH_BYTES`] encoded bytes.
#[derive(Debug, Default)]
pub struct Emitter {
    enc: SampleEncoder,
    buf: Vec<u8>,
    stopped: bool,
}

/// The host will take no more samples in this scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl From<Stopped> for Error {
    fn from(_: Stopped) -> Self {
        Self::new(
            "the host stopped taking samples (a sample limit was reached or the call was cancelled)",
        )
    }
}

impl Emitter {
    /// Most samples per `emit`.
    pub const BATCH_SAMPLES: usize = 512;
    /// Most encoded bytes per `emit` (a larger single sample is sent alone).
    pub const BATCH_BYTES: usize = 32 * 1024;

    /// Pushes a sample; `timestamp_ms` is `None` for "the scrape time".
    ///
    /// # Errors
    /// [`Stopped`] when the host refuses more samples; return from the scrape then.
    pub fn sample<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), Stopped> {
        if self.stopped {
            return Err(Stopped);
        }
        self.enc.push(name, labels, value, timestamp_ms);
        if self.enc.len() >= Self::BATCH_SAMPLES || self.enc.encoded_len() >= Self::BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes a repeat record: the series of the sample at the same position (counted from 0
    /// over the whole scrape) in the scrape [`Replay::order`](crate::abi::Replay) names. Send
    /// one only when the request's `order` is the token of a scrape whose samples you
    /// remember, in order, and this sample's series is that one's.
    ///
    /// # Errors
    /// [`Stopped`] when the host refuses more samples; return from the scrape then.
    pub fn repeat(&mut self, value: f64, timestamp_ms: Option<i64>) -> Result<(), Stopped> {
        if self.stopped {
            return Err(Stopped);
        }
        self.enc.push_repeat(value, timestamp_ms);
        if self.enc.len() >= Self::BATCH_SAMPLES || self.enc.encoded_len() >= Self::BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what is held.
    ///
    /// # Errors
    /// [`Stopped`] when the host refuses more samples.
    pub fn flush(&mut self) -> Result<(), Stopped> {
        if self.enc.is_empty() {
            return if self.stopped { Err(Stopped) } else { Ok(()) };
        }
        self.buf.clear();
        self.enc.finish_into(&mut self.buf);
        // SAFETY: the pointer and length describe `self.buf`.
        let status = unsafe { ffi::emit(self.buf.as_ptr(), self.buf.len()) };
        if status == EmitStatus::Continue as i32 {
            Ok(())
        } else {
            self.stopped = true;
            Err(Stopped)
        }
    }
}

impl Emitter {
    /// Reports how the scraped metadata changed (see [`MetadataUpdate`]). Samples held are
    /// sent first. The host takes metadata even after it stopped taking samples.
    ///
    /// # Errors
    /// When the host refused the message as malformed.
    pub fn metadata(&mut self, update: &MetadataUpdate<'_>) -> Result<(), HostError> {
        // Samples first, so the host sees them in emission order; a stop only concerns them.
        let _ = self.flush();
        let bytes = abi::encode(update).map_err(|_| HostError::Invalid)?;
        // SAFETY: the pointer and length describe `bytes`.
        check(unsafe { ffi::emit_metadata(bytes.as_ptr(), bytes.len()) }).map(|_| ())
    }

    /// Reports the scrape's exemplars (see [`ExemplarReport`]), once, after its samples.
    /// Samples held are sent first.
    ///
    /// # Errors
    /// When the host refused the report as malformed or over
    /// [`abi::MAX_EXEMPLARS_PER_SCRAPE`].
    pub fn exemplars(&mut self, report: &ExemplarReport<'_>) -> Result<(), HostError> {
        let _ = self.flush();
        let bytes = abi::encode(report).map_err(|_| HostError::Invalid)?;
        // SAFETY: the pointer and length describe `bytes`.
        check(unsafe { ffi::emit_exemplars(bytes.as_ptr(), bytes.len()) }).map(|_| ())
    }
}

/// Holds a plugin instance between calls.
#[doc(hidden)]
#[derive(Debug)]
pub struct Slot<T>(RefCell<Option<T>>);

// SAFETY: wasm32 guests without the `atomics` target feature have exactly one thread, so the
// cell is never reached from two threads.
#[cfg(not(target_feature = "atomics"))]
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    #[doc(hidden)]
    #[must_use]
    pub const fn new() -> Self {
        Self(RefCell::new(None))
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn read_input() -> Result<Vec<u8>, HostError> {
    let mut buf = Vec::with_capacity(512);
    // SAFETY: `fill` passes the buffer's own pointer and capacity.
    fill(&mut buf, |p, c| unsafe { ffi::input(p, c) })?;
    Ok(buf)
}

fn write_output(bytes: &[u8]) -> Result<(), HostError> {
    // SAFETY: the pointer and length describe `bytes`.
    check(unsafe { ffi::output(bytes.as_ptr(), bytes.len()) }).map(|_| ())
}

fn status(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            set_error(e.message());
            abi::STATUS_ERROR
        }
    }
}

fn decode_init<T>(init: impl FnOnce(&str, &Value) -> Result<T, Error>) -> Result<T, Error> {
    let input = read_input()?;
    let Init::V1 { name, config, .. } =
        abi::decode(&input).map_err(|e| Error::new(alloc::format!("bad init message: {e}")))?;
    init(&name, &config)
}

#[doc(hidden)]
pub fn run_init_scraper<T: Scraper>(slot: &Slot<T>) -> i32 {
    status(decode_init(T::init).map(|p| *slot.0.borrow_mut() = Some(p)))
}

#[doc(hidden)]
pub fn run_init_exporter<T: Exporter>(slot: &Slot<T>) -> i32 {
    status(decode_init(T::init).map(|p| *slot.0.borrow_mut() = Some(p)))
}

#[doc(hidden)]
pub fn run_init_decoder<T: Decoder>(slot: &Slot<T>) -> i32 {
    status(decode_init(T::init).map(|p| *slot.0.borrow_mut() = Some(p)))
}

#[doc(hidden)]
pub fn run_decode<T: Decoder>(slot: &Slot<T>) -> i32 {
    status((|| {
        let input = read_input()?;
        let req: DecodeRequest<'_> = abi::decode(&input)
            .map_err(|e| Error::new(alloc::format!("bad decode request: {e}")))?;
        let mut guard = slot.0.borrow_mut();
        let plugin = guard
            .as_mut()
            .ok_or_else(|| Error::new("decode before init"))?;
        let mut out = Emitter::default();
        plugin.decode(&req, &mut out)?;
        out.flush()?;
        Ok(())
    })())
}

#[doc(hidden)]
pub fn run_scrape<T: Scraper>(slot: &Slot<T>) -> i32 {
    status((|| {
        let input = read_input()?;
        let req: ScrapeRequest<'_> = abi::decode(&input)
            .map_err(|e| Error::new(alloc::format!("bad scrape request: {e}")))?;
        let mut guard = slot.0.borrow_mut();
        let plugin = guard
            .as_mut()
            .ok_or_else(|| Error::new("scrape before init"))?;
        let mut out = Emitter::default();
        plugin.scrape(&req, &mut out)?;
        out.flush()?;
        Ok(())
    })())
}

#[doc(hidden)]
pub fn run_export<T: Exporter>(slot: &Slot<T>) -> i32 {
    status((|| {
        let input = read_input()?;
        let mut guard = slot.0.borrow_mut();
        let plugin = guard
            .as_mut()
            .ok_or_else(|| Error::new("export before init"))?;
        let payloads = plugin.export_input(&ExportInput(&input))?;
        let bytes = abi::encode(&ExportOutput::V1 { payloads })
            .map_err(|e| Error::new(alloc::format!("encoding the output: {e}")))?;
        write_output(&bytes)?;
        Ok(())
    })())
}

#[doc(hidden)]
pub fn run_export_metadata<T: Exporter>(slot: &Slot<T>) -> i32 {
    status((|| {
        let input = read_input()?;
        let MetadataRequest::V1 { families } = abi::decode(&input)
            .map_err(|e| Error::new(alloc::format!("bad metadata request: {e}")))?;
        let mut guard = slot.0.borrow_mut();
        let plugin = guard
            .as_mut()
            .ok_or_else(|| Error::new("export before init"))?;
        let payloads = plugin.export_metadata(&families)?;
        let bytes = abi::encode(&ExportOutput::V1 { payloads })
            .map_err(|e| Error::new(alloc::format!("encoding the output: {e}")))?;
        write_output(&bytes)?;
        Ok(())
    })())
}

#[doc(hidden)]
pub fn run_outcome<T: Exporter>(slot: &Slot<T>) -> i32 {
    status((|| {
        let input = read_input()?;
        let head: ResponseHead<'_> = abi::decode(&input)
            .map_err(|e| Error::new(alloc::format!("bad response head: {e}")))?;
        let mut guard = slot.0.borrow_mut();
        let plugin = guard
            .as_mut()
            .ok_or_else(|| Error::new("outcome before init"))?;
        let bytes = abi::encode(&plugin.outcome(&head))
            .map_err(|e| Error::new(alloc::format!("encoding the outcome: {e}")))?;
        write_output(&bytes)?;
        Ok(())
    })())
}
