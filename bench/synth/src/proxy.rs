//! The byte-counting proxy in front of the remote-write receiver. One thread per direction of
//! each connection; a monitor thread writes the totals every 100 ms and watches the down
//! file. Down means: the listener is closed (new connections are refused) and open ones are
//! shut, as when the receiver's host goes away.

use crate::{Opts, write_atomic, write_port};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct State {
    /// Bytes from the agent to the receiver.
    up: AtomicU64,
    /// Bytes from the receiver to the agent.
    down_bytes: AtomicU64,
    conns: AtomicU64,
    down: AtomicBool,
    open: Mutex<HashMap<u64, TcpStream>>,
}

/// Runs the proxy until killed.
pub fn run(opts: &Opts) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let upstream: SocketAddr = opts
        .upstream
        .parse()
        .map_err(|e| format!("--upstream {}: {e}", opts.upstream))?;
    let state = Arc::new(State::default());
    {
        let state = Arc::clone(&state);
        let stats = opts.stats.clone();
        let down_file = opts.down_file.clone();
        std::thread::spawn(move || monitor(&state, stats.as_deref(), down_file.as_deref()));
    }
    write_port(opts, addr.port())?;
    let mut listener = Some(listener);
    loop {
        if state.down.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                // Back up: listen again on the same port.
                match TcpListener::bind(addr) {
                    Ok(l) => listener.insert(l),
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
        };
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        match l.accept() {
            Ok((client, _)) => {
                let _ = client.set_nonblocking(false);
                let state = Arc::clone(&state);
                std::thread::spawn(move || connect(client, upstream, &state));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn connect(client: TcpStream, upstream: SocketAddr, state: &Arc<State>) {
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let id = state.conns.fetch_add(1, Ordering::SeqCst);
    let (Ok(c2), Ok(s2), Ok(reg)) = (client.try_clone(), server.try_clone(), client.try_clone())
    else {
        return;
    };
    lock(&state.open).insert(id, reg);
    if state.down.load(Ordering::SeqCst) {
        let _ = client.shutdown(Shutdown::Both);
    }
    let st = Arc::clone(state);
    let back = std::thread::spawn(move || pump(s2, c2, &st.down_bytes));
    pump(client, server, &state.up);
    let _ = back.join();
    lock(&state.open).remove(&id);
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn monitor(state: &State, stats: Option<&std::path::Path>, down_file: Option<&std::path::Path>) {
    loop {
        let down = down_file.is_some_and(std::path::Path::exists);
        let was = state.down.swap(down, Ordering::SeqCst);
        if down && !was {
            for conn in lock(&state.open).values() {
                let _ = conn.shutdown(Shutdown::Both);
            }
        }
        if let Some(path) = stats {
            let line = format!(
                "{} {} {} {}\n",
                state.up.load(Ordering::Relaxed),
                state.down_bytes.load(Ordering::Relaxed),
                state.conns.load(Ordering::Relaxed),
                u8::from(down)
            );
            let _ = write_atomic(path, &line);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
