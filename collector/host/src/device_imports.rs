//! The device imports: `tcp_connect`, `udp_connect`, `serial_open` (each refused unless its
//! target is one the plugin's grants name exactly), `stream_write` and `stream_recv`. Links
//! share the call's stream table with bodies and files, and with it the cap on open handles;
//! a call may also open at most [`MAX_OPENS_PER_CALL`] links in all.

use crate::device::{self, Kind, MAX_OPENS_PER_CALL};
use crate::imports::{M, answer, flat, new_slot, range, read_bytes, read_str, time_left};
use crate::state::{MAX_STREAMS, State, StreamSlot};
use magpie_sdk::abi::HostError;
use std::time::Duration;
use wasmtime::{Caller, Linker};

/// Largest chunk one `stream_recv` moves.
const MAX_CHUNK: usize = 64 << 10;

pub(crate) fn define(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    for (name, kind) in [
        ("tcp_connect", Kind::Tcp),
        ("udp_connect", Kind::Udp),
        ("serial_open", Kind::Serial),
    ] {
        linker.func_wrap_async(
            M,
            name,
            move |mut caller: Caller<'_, State>, (ptr, len): (i32, i32)| {
                Box::new(async move { flat(connect(&mut caller, kind, ptr, len).await) })
            },
        )?;
    }
    linker.func_wrap_async(
        M,
        "stream_write",
        |mut caller: Caller<'_, State>, (handle, ptr, len): (i32, i32, i32)| {
            Box::new(async move { flat(write(&mut caller, handle, ptr, len).await) })
        },
    )?;
    linker.func_wrap_async(
        M,
        "stream_recv",
        |mut caller: Caller<'_, State>, (handle, ptr, cap, timeout_ms): (i32, i32, i32, i32)| {
            Box::new(
                async move { flat(recv(&mut caller, handle, ptr, cap, timeout_ms as u32).await) },
            )
        },
    )?;
    Ok(())
}

/// Records the operator's detail of a failure and hands the guest its code.
fn fail(caller: &mut Caller<'_, State>, (code, detail): device::Failure) -> HostError {
    caller.data_mut().call.io_error = Some(detail);
    code
}

async fn connect(
    caller: &mut Caller<'_, State>,
    kind: Kind,
    ptr: i32,
    len: i32,
) -> Result<i32, HostError> {
    let target = read_str(caller, ptr, len)?;
    if caller.data().grants.check_url(&target).is_err() {
        let plugin = caller.data().plugin.clone();
        return Err(fail(
            caller,
            (
                HostError::Denied,
                format!("{target}: not one of the targets granted to plugin {plugin}"),
            ),
        ));
    }
    let call = &mut caller.data_mut().call;
    if call.opens >= MAX_OPENS_PER_CALL {
        return Err(fail(
            caller,
            (
                HostError::Limit,
                format!("{target}: more than {MAX_OPENS_PER_CALL} opens in one call"),
            ),
        ));
    }
    if call.streams.iter().filter(|x| x.is_some()).count() >= MAX_STREAMS {
        return Err(fail(
            caller,
            (
                HostError::Limit,
                format!("{target}: more than {MAX_STREAMS} handles open at once"),
            ),
        ));
    }
    call.opens += 1;
    let left = time_left(call);
    match device::open(kind, &target, left).await {
        Ok(link) => new_slot(&mut caller.data_mut().call, StreamSlot::Link(link)),
        Err(f) => Err(fail(caller, f)),
    }
}

fn take_link(caller: &mut Caller<'_, State>, idx: usize) -> Result<device::Link, HostError> {
    let slot = caller
        .data_mut()
        .call
        .streams
        .get_mut(idx)
        .and_then(Option::take);
    match slot {
        Some(StreamSlot::Link(l)) => Ok(l),
        Some(other) => {
            caller.data_mut().call.streams[idx] = Some(other);
            Err(HostError::Invalid)
        }
        None => Err(HostError::Invalid),
    }
}

async fn write(
    caller: &mut Caller<'_, State>,
    handle: i32,
    ptr: i32,
    len: i32,
) -> Result<i32, HostError> {
    let bytes = read_bytes(caller, ptr, len)?;
    let idx = handle as u32 as usize;
    let mut link = take_link(caller, idx)?;
    let left = time_left(&caller.data().call);
    let r = tokio::time::timeout(left, link.write_all(&bytes)).await;
    caller.data_mut().call.streams[idx] = Some(StreamSlot::Link(link));
    match r {
        Err(_) => Err(fail(caller, (HostError::Timeout, "write timed out".into()))),
        Ok(Err(e)) => Err(fail(caller, (HostError::Network, format!("write: {e}")))),
        Ok(Ok(())) => i32::try_from(bytes.len()).map_err(|_| HostError::Limit),
    }
}

/// Reads what arrives on link `handle` within `timeout_ms` (and the call's deadline).
pub(crate) async fn recv(
    caller: &mut Caller<'_, State>,
    handle: i32,
    ptr: i32,
    cap: i32,
    timeout_ms: u32,
) -> Result<i32, HostError> {
    let cap = (cap as u32 as usize).min(MAX_CHUNK);
    range(
        caller,
        ptr,
        i32::try_from(cap).map_err(|_| HostError::Invalid)?,
    )?;
    let idx = handle as u32 as usize;
    let mut link = take_link(caller, idx)?;
    let wait = time_left(&caller.data().call).min(Duration::from_millis(u64::from(timeout_ms)));
    let mut buf = vec![0u8; cap];
    let r = tokio::time::timeout(wait, link.read(&mut buf)).await;
    caller.data_mut().call.streams[idx] = Some(StreamSlot::Link(link));
    let n = match r {
        Err(_) => {
            return Err(fail(
                caller,
                (
                    HostError::Timeout,
                    format!("no answer within {} ms", wait.as_millis()),
                ),
            ));
        }
        Ok(Err(e)) => return Err(fail(caller, (HostError::Network, format!("read: {e}")))),
        Ok(Ok(n)) => n.min(cap),
    };
    answer(
        caller,
        ptr,
        i32::try_from(n).map_err(|_| HostError::Invalid)?,
        &buf[..n],
    )
}
