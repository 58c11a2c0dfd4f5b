//! systemd's notify protocol without libsystemd: datagrams to `$NOTIFY_SOCKET` saying
//! `READY=1` once the WAL is open and plugins are loaded, `RELOADING=1`/`READY=1` around a
//! reload, `STOPPING=1` at shutdown, and `WATCHDOG=1` every half `$WATCHDOG_USEC` from the
//! async runtime, so a wedged collector stops pinging and systemd restarts it.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to send notifications, if systemd asked for them.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; `None` when unset or unusable.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let bytes = path.as_encoded_bytes();
        let addr = if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt as _;
            SocketAddr::from_abstract_name(name).ok()?
        } else {
            SocketAddr::from_pathname(std::path::Path::new(&path)).ok()?
        };
        let sock = UnixDatagram::unbound().ok()?;
        Some(Self { sock, addr })
    }

    /// Sends one state string; failures are logged, never fatal.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.sock.send_to_addr(state.as_bytes(), &self.addr) {
            log::warn!("notifying systemd failed; state={state} error={e}");
        }
    }
}

/// The watchdog ping period: half of `$WATCHDOG_USEC`, when set for this process.
#[must_use]
pub fn watchdog_period() -> Option<Duration> {
    let pid = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok());
    if pid.is_some_and(|p| p != std::process::id()) {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
