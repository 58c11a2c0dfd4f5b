//! The host functions a guest may import (see `magpie_sdk::abi::IMPORTS`). Every pointer from
//! the guest is bounds-checked against its memory; every path and URL against its grants.
//! Failures are returned to the guest as negative `HostError` codes, never as host panics.

use crate::io::{FetchRequest, FileStream};
use crate::state::{
    Call, MAX_LOG_BYTES, MAX_LOG_LINES, MAX_MESSAGE, MAX_STREAMS, State, StreamSlot,
};
use magpie_sdk::abi::raw::RawSampleBatch;
use magpie_sdk::abi::{self, DirList, ExemplarReport, FsStat, HostError, Level, MetadataUpdate};
use std::borrow::Cow;
use std::time::Duration;
use wasmtime::{Caller, Linker};

pub(crate) const M: &str = abi::IMPORT_MODULE;
/// Largest chunk a single `stream_read` moves.
const MAX_CHUNK: usize = 64 << 10;
/// Most entries a directory listing returns.
const MAX_DIR_ENTRIES: usize = 10_000;

pub(crate) fn code(e: HostError) -> i32 {
    e as i32
}

/// The guest range `ptr..ptr+len`, checked against its memory.
pub(crate) fn range(
    caller: &Caller<'_, State>,
    ptr: i32,
    len: i32,
) -> Result<std::ops::Range<usize>, HostError> {
    let mem = caller.data().memory.ok_or(HostError::Invalid)?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    let end = start.checked_add(len).ok_or(HostError::Invalid)?;
    if end > mem.data_size(caller) {
        return Err(HostError::Invalid);
    }
    Ok(start..end)
}

/// Copies guest bytes out.
pub(crate) fn read_bytes(
    caller: &Caller<'_, State>,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, HostError> {
    if len as u32 as usize > MAX_MESSAGE {
        return Err(HostError::Limit);
    }
    let r = range(caller, ptr, len)?;
    let mem = caller.data().memory.ok_or(HostError::Invalid)?;
    Ok(mem.data(caller)[r].to_vec())
}

pub(crate) fn read_str(
    caller: &Caller<'_, State>,
    ptr: i32,
    len: i32,
) -> Result<String, HostError> {
    String::from_utf8(read_bytes(caller, ptr, len)?).map_err(|_| HostError::Invalid)
}

/// The "length or need N" convention: writes `bytes` when they fit in `cap`, and returns their
/// length either way.
pub(crate) fn answer(
    caller: &mut Caller<'_, State>,
    ptr: i32,
    cap: i32,
    bytes: &[u8],
) -> Result<i32, HostError> {
    let n = i32::try_from(bytes.len()).map_err(|_| HostError::Limit)?;
    if bytes.len() <= cap as u32 as usize {
        let r = range(caller, ptr, n)?;
        let mem = caller.data().memory.ok_or(HostError::Invalid)?;
        mem.data_mut(caller)[r].copy_from_slice(bytes);
    }
    Ok(n)
}

pub(crate) fn flat(r: Result<i32, HostError>) -> i32 {
    r.unwrap_or_else(code)
}

pub(crate) fn new_slot(call: &mut Call, slot: StreamSlot) -> Result<i32, HostError> {
    if let Some(i) = call.streams.iter().position(Option::is_none) {
        call.streams[i] = Some(slot);
        return i32::try_from(i).map_err(|_| HostError::Limit);
    }
    if call.streams.len() >= MAX_STREAMS {
        return Err(HostError::Limit);
    }
    call.streams.push(Some(slot));
    i32::try_from(call.streams.len() - 1).map_err(|_| HostError::Limit)
}

pub(crate) fn time_left(call: &Call) -> Duration {
    call.io_deadline.map_or(Duration::from_secs(3600), |d| {
        d.saturating_duration_since(tokio::time::Instant::now())
    })
}

/// Registers every import on `linker`.
pub(crate) fn define(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.func_wrap(
        M,
        "log",
        |caller: Caller<'_, State>, level: i32, ptr: i32, len: i32| {
            let len = len.clamp(0, MAX_LOG_BYTES as i32);
            let Ok(msg) = read_bytes(&caller, ptr, len) else {
                return;
            };
            let msg = String::from_utf8_lossy(&msg);
            log_line(caller, Level::from_code(level), &msg);
        },
    )?;
    linker.func_wrap(M, "now_ms", || -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })?;
    linker.func_wrap(
        M,
        "input",
        |mut caller: Caller<'_, State>, ptr: i32, cap: i32| -> i32 {
            let input = std::mem::take(&mut caller.data_mut().call.input);
            let r = answer(&mut caller, ptr, cap, &input);
            caller.data_mut().call.input = input;
            flat(r)
        },
    )?;
    linker.func_wrap(
        M,
        "output",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
            flat(read_bytes(&caller, ptr, len).map(|b| {
                caller.data_mut().call.output = Some(b);
                0
            }))
        },
    )?;
    linker.func_wrap(
        M,
        "set_error",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| {
            let len = len.clamp(0, 4096);
            if let Ok(b) = read_bytes(&caller, ptr, len) {
                caller.data_mut().call.error = Some(String::from_utf8_lossy(&b).into_owned());
            }
        },
    )?;
    linker.func_wrap(
        M,
        "emit",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
            flat(emit(&mut caller, ptr, len))
        },
    )?;
    linker.func_wrap(
        M,
        "emit_metadata",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
            flat(emit_metadata(&mut caller, ptr, len))
        },
    )?;
    linker.func_wrap(
        M,
        "emit_exemplars",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
            flat(emit_exemplars(&mut caller, ptr, len))
        },
    )?;
    linker.func_wrap_async(
        M,
        "http_fetch",
        |mut caller: Caller<'_, State>, (ptr, len): (i32, i32)| {
            Box::new(async move { flat(http_fetch(&mut caller, ptr, len).await) })
        },
    )?;
    linker.func_wrap(
        M,
        "http_response",
        |mut caller: Caller<'_, State>, handle: i32, ptr: i32, cap: i32| -> i32 {
            flat(http_response(&mut caller, handle, ptr, cap))
        },
    )?;
    linker.func_wrap(
        M,
        "file_open",
        |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> i32 {
            flat((|| {
                let path = read_str(&caller, ptr, len)?;
                let real = caller.data().grants.check_path(&path)?;
                let file = std::fs::File::open(real).map_err(|e| io_code(&e))?;
                new_slot(
                    &mut caller.data_mut().call,
                    StreamSlot::Body(Box::new(FileStream(file))),
                )
            })())
        },
    )?;
    linker.func_wrap(
        M,
        "dir_list",
        |mut caller: Caller<'_, State>, pp: i32, pl: i32, ptr: i32, cap: i32| -> i32 {
            flat((|| {
                let path = read_str(&caller, pp, pl)?;
                let real = caller.data().grants.check_path(&path)?;
                let mut entries = Vec::new();
                for e in std::fs::read_dir(real)
                    .map_err(|e| io_code(&e))?
                    .take(MAX_DIR_ENTRIES)
                {
                    let e = e.map_err(|e| io_code(&e))?;
                    if let Ok(name) = e.file_name().into_string() {
                        entries.push(Cow::Owned(name));
                    }
                }
                entries.sort();
                let bytes = abi::encode(&DirList::V1 { entries }).map_err(|_| HostError::Io)?;
                answer(&mut caller, ptr, cap, &bytes)
            })())
        },
    )?;
    linker.func_wrap(
        M,
        "statvfs",
        |mut caller: Caller<'_, State>, pp: i32, pl: i32, ptr: i32, cap: i32| -> i32 {
            flat((|| {
                let path = read_str(&caller, pp, pl)?;
                let grants = &caller.data().grants;
                let real = match grants.check_path(&path) {
                    Err(HostError::Denied) if grants.may_stat_mount_point(&path) => {
                        std::path::PathBuf::from(&path)
                    }
                    r => r?,
                };
                let st = rustix::fs::statvfs(&real).map_err(|e| io_code(&e.into()))?;
                let stat = FsStat::V1 {
                    block_size: st.f_frsize,
                    blocks: st.f_blocks,
                    blocks_free: st.f_bfree,
                    blocks_avail: st.f_bavail,
                    files: st.f_files,
                    files_free: st.f_ffree,
                    readonly: st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
                };
                let bytes = abi::encode(&stat).map_err(|_| HostError::Io)?;
                answer(&mut caller, ptr, cap, &bytes)
            })())
        },
    )?;
    linker.func_wrap(
        M,
        "real_path",
        |mut caller: Caller<'_, State>, pp: i32, pl: i32, ptr: i32, cap: i32| -> i32 {
            flat((|| {
                let path = read_str(&caller, pp, pl)?;
                let real = caller.data().grants.check_path(&path)?;
                let real = real.to_str().ok_or(HostError::Invalid)?.to_string();
                answer(&mut caller, ptr, cap, real.as_bytes())
            })())
        },
    )?;
    linker.func_wrap_async(
        M,
        "stream_read",
        |mut caller: Caller<'_, State>, (handle, ptr, cap): (i32, i32, i32)| {
            Box::new(async move { flat(stream_read(&mut caller, handle, ptr, cap).await) })
        },
    )?;
    linker.func_wrap(
        M,
        "stream_close",
        |mut caller: Caller<'_, State>, handle: i32| {
            if let Some(slot) = caller
                .data_mut()
                .call
                .streams
                .get_mut(handle as u32 as usize)
            {
                *slot = None;
            }
        },
    )?;
    crate::device_imports::define(linker)
}

fn io_code(e: &std::io::Error) -> HostError {
    match e.kind() {
        std::io::ErrorKind::NotFound => HostError::NotFound,
        std::io::ErrorKind::PermissionDenied => HostError::Denied,
        _ => HostError::Io,
    }
}

fn log_line(mut caller: Caller<'_, State>, level: Level, msg: &str) {
    let s = caller.data_mut();
    if s.call.log_lines >= MAX_LOG_LINES {
        s.call.logs_dropped += 1;
        return;
    }
    s.call.log_lines += 1;
    let lvl = match level {
        Level::Error => log::Level::Error,
        Level::Warn => log::Level::Warn,
        Level::Info => log::Level::Info,
        Level::Debug => log::Level::Debug,
    };
    log::log!(target: "magpie::plugin", lvl, "plugin {}: {}", s.plugin, msg.trim_end());
}

/// Reads the batch in place in guest memory: the guest is suspended in this call, and the
/// sink gets borrowed strings, so nothing is copied out first.
fn emit(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Result<i32, HostError> {
    if len as u32 as usize > MAX_MESSAGE {
        return Err(HostError::Limit);
    }
    let r = range(caller, ptr, len)?;
    let mem = caller.data().memory.ok_or(HostError::Invalid)?;
    let (data, s) = mem.data_and_store_mut(caller);
    let bytes = data.get(r).ok_or(HostError::Invalid)?;
    let batch = match RawSampleBatch::parse(bytes) {
        Ok(b) => b,
        Err(e) => {
            s.call.abi_violation = Some(format!("emit: undecodable sample batch: {e}"));
            return Err(HostError::Invalid);
        }
    };
    let sink = s.call.sink.as_mut().ok_or(HostError::Invalid)?;
    match sink.push_raw(&batch) {
        Ok(status) => Ok(status as i32),
        Err(e) => {
            s.call.abi_violation = Some(format!("emit: undecodable sample batch: {e}"));
            Err(HostError::Invalid)
        }
    }
}

fn emit_metadata(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Result<i32, HostError> {
    let bytes = read_bytes(caller, ptr, len)?;
    let s = caller.data_mut();
    let update: MetadataUpdate<'_> = match abi::decode(&bytes) {
        Ok(u) => u,
        Err(e) => {
            s.call.abi_violation = Some(format!("emit_metadata: undecodable update: {e}"));
            return Err(HostError::Invalid);
        }
    };
    let sink = s.call.sink.as_mut().ok_or(HostError::Invalid)?;
    sink.metadata(&update);
    Ok(0)
}

fn emit_exemplars(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Result<i32, HostError> {
    let bytes = read_bytes(caller, ptr, len)?;
    let s = caller.data_mut();
    let report: ExemplarReport<'_> = match abi::decode(&bytes) {
        Ok(r) => r,
        Err(e) => {
            s.call.abi_violation = Some(format!("emit_exemplars: undecodable report: {e}"));
            return Err(HostError::Invalid);
        }
    };
    let ExemplarReport::V1 { exemplars, .. } = &report;
    if exemplars.len() > abi::MAX_EXEMPLARS_PER_SCRAPE {
        s.call.abi_violation = Some(format!(
            "emit_exemplars: {} exemplars in one scrape, more than the {} allowed",
            exemplars.len(),
            abi::MAX_EXEMPLARS_PER_SCRAPE
        ));
        return Err(HostError::Limit);
    }
    let sink = s.call.sink.as_mut().ok_or(HostError::Invalid)?;
    sink.exemplars(&report);
    Ok(0)
}

async fn http_fetch(caller: &mut Caller<'_, State>, ptr: i32, len: i32) -> Result<i32, HostError> {
    let bytes = read_bytes(caller, ptr, len)?;
    let abi::FetchRequest::V1 { url, headers } =
        abi::decode(&bytes).map_err(|_| HostError::Invalid)?;
    let s = caller.data();
    s.grants.check_url(&url)?;
    let fetcher = s.fetcher.clone().ok_or(HostError::Denied)?;
    if s.call.streams.iter().filter(|x| x.is_some()).count() >= MAX_STREAMS {
        return Err(HostError::Limit);
    }
    let timeout = time_left(&s.call);
    let req = FetchRequest {
        url: url.into_owned(),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        timeout,
        body_size_limit: s.call.body_size_limit,
    };
    let resp = match tokio::time::timeout(timeout, fetcher.fetch(req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            if !e.detail.is_empty() {
                caller.data_mut().call.io_error = Some(e.detail);
            }
            return Err(e.code);
        }
        Err(_) => return Err(HostError::Timeout),
    };
    new_slot(&mut caller.data_mut().call, StreamSlot::Response(resp))
}

fn http_response(
    caller: &mut Caller<'_, State>,
    handle: i32,
    ptr: i32,
    cap: i32,
) -> Result<i32, HostError> {
    let idx = handle as u32 as usize;
    let slot = caller
        .data_mut()
        .call
        .streams
        .get_mut(idx)
        .and_then(Option::take);
    let Some(StreamSlot::Response(resp)) = slot else {
        if let Some(s) = slot {
            caller.data_mut().call.streams[idx] = Some(s);
        }
        return Err(HostError::Invalid);
    };
    let head = abi::FetchResponse::V1 {
        status: resp.status,
        content_type: Cow::Borrowed(resp.content_type.as_str()),
    };
    let bytes = abi::encode(&head).map_err(|_| HostError::Io)?;
    let r = answer(caller, ptr, cap, &bytes);
    let written = matches!(r, Ok(n) if n as u32 as usize <= cap as u32 as usize);
    caller.data_mut().call.streams[idx] = Some(if written {
        StreamSlot::Body(resp.body)
    } else {
        StreamSlot::Response(resp)
    });
    r
}

async fn stream_read(
    caller: &mut Caller<'_, State>,
    handle: i32,
    ptr: i32,
    cap: i32,
) -> Result<i32, HostError> {
    let idx = handle as u32 as usize;
    let cap = (cap as u32 as usize).min(MAX_CHUNK);
    // Validate the destination before reading, so a bad pointer consumes nothing.
    range(
        caller,
        ptr,
        i32::try_from(cap).map_err(|_| HostError::Invalid)?,
    )?;
    let mut stream = match caller
        .data_mut()
        .call
        .streams
        .get_mut(idx)
        .and_then(Option::take)
    {
        Some(StreamSlot::Body(b)) => b,
        Some(StreamSlot::Response(r)) => r.body,
        Some(StreamSlot::Link(link)) => {
            caller.data_mut().call.streams[idx] = Some(StreamSlot::Link(link));
            return crate::device_imports::recv(caller, handle, ptr, cap as i32, u32::MAX).await;
        }
        None => return Err(HostError::Invalid),
    };
    let timeout = time_left(&caller.data().call);
    let mut buf = vec![0u8; cap];
    let r = tokio::time::timeout(timeout, stream.read(&mut buf)).await;
    caller.data_mut().call.streams[idx] = Some(StreamSlot::Body(stream));
    let n = r.map_err(|_| HostError::Timeout)??;
    let n = n.min(cap);
    answer(
        caller,
        ptr,
        i32::try_from(n).map_err(|_| HostError::Invalid)?,
        &buf[..n],
    )
}
