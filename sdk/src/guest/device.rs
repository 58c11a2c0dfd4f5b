//! Field devices a target grants: a TCP connection (`tcp://host:port`), a UDP socket
//! (`udp://host:port`) and a serial line (`rtu:///dev/ttyUSB0?baud=9600&parity=E`). Each
//! looks blocking to the plugin; the host waits, bounded by the call's deadline and by the
//! link's read timeout. A link is closed on drop, and by the host when the call ends: it never
//! outlives a scrape. The serial line's settings are the host's, taken from the target.

use super::{check, ffi};
use crate::abi::HostError;

/// How long a read waits when the plugin set no timeout: until the call's deadline.
const NO_TIMEOUT: u32 = u32::MAX;

#[derive(Debug)]
struct Link {
    handle: i32,
    read_timeout_ms: u32,
}

impl Link {
    fn open(
        target: &str,
        f: unsafe extern "C" fn(*const u8, usize) -> i32,
    ) -> Result<Self, HostError> {
        // SAFETY: the pointer and length describe `target`.
        let handle = check(unsafe { f(target.as_ptr(), target.len()) })?;
        Ok(Self {
            handle,
            read_timeout_ms: NO_TIMEOUT,
        })
    }

    fn write(&self, bytes: &[u8]) -> Result<usize, HostError> {
        // SAFETY: the pointer and length describe `bytes`.
        let n = check(unsafe { ffi::stream_write(self.handle, bytes.as_ptr(), bytes.len()) })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize, HostError> {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let n = check(unsafe {
            ffi::stream_recv(
                self.handle,
                buf.as_mut_ptr(),
                buf.len(),
                self.read_timeout_ms,
            )
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // SAFETY: closing a handle this link owns; the host ignores unknown handles.
        unsafe { ffi::stream_close(self.handle) }
    }
}

macro_rules! byte_link {
    ($(#[$doc:meta])* $name:ident, $open:ident, $scheme:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Link);

        impl $name {
            #[doc = concat!("Opens the link a granted `", $scheme, "` target names.")]
            ///
            /// # Errors
            /// [`HostError::Denied`] for a target the plugin was not granted; network and I/O
            /// errors; [`HostError::Limit`] past the per-call cap on open handles.
            pub fn open(target: &str) -> Result<Self, HostError> {
                Link::open(target, ffi::$open).map(Self)
            }

            /// Reads wait at most `ms` milliseconds (and never past the call's deadline), then
            /// fail with [`HostError::Timeout`].
            pub const fn set_read_timeout_ms(&mut self, ms: u32) {
                self.0.read_timeout_ms = ms;
            }
        }

        impl embedded_io::ErrorType for $name {
            type Error = HostError;
        }

        impl embedded_io::Read for $name {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
                self.0.read(buf)
            }
        }

        impl embedded_io::Write for $name {
            fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
                self.0.write(buf)
            }

            fn flush(&mut self) -> Result<(), HostError> {
                Ok(())
            }
        }
    };
}

byte_link!(
    /// A TCP connection to a granted `tcp://host:port` target; read and write it through
    /// [`embedded_io::Read`] and [`embedded_io::Write`] (`read_exact`, `write_all`).
    TcpStream,
    tcp_connect,
    "tcp://host:port"
);

byte_link!(
    /// The serial line of a granted `rtu:///dev/...` target, in raw mode at the line settings
    /// of the target's query. Before each write the host keeps the line silent for 3.5
    /// character times, the Modbus RTU frame gap.
    Serial,
    serial_open,
    "rtu:///dev/...?baud=..."
);

impl TcpStream {
    /// Connects to a granted `tcp://host:port` target.
    ///
    /// # Errors
    /// As [`TcpStream::open`].
    pub fn connect(target: &str) -> Result<Self, HostError> {
        Self::open(target)
    }
}

/// A UDP socket connected to a granted `udp://host:port` target: each send is one datagram,
/// each receive one datagram (cut to the buffer).
#[derive(Debug)]
pub struct UdpSocket(Link);

impl UdpSocket {
    /// Opens a socket connected to a granted `udp://host:port` target.
    ///
    /// # Errors
    /// As [`TcpStream::open`].
    pub fn connect(target: &str) -> Result<Self, HostError> {
        Link::open(target, ffi::udp_connect).map(Self)
    }

    /// Receives wait at most `ms` milliseconds (and never past the call's deadline).
    pub const fn set_read_timeout_ms(&mut self, ms: u32) {
        self.0.read_timeout_ms = ms;
    }

    /// Sends one datagram.
    ///
    /// # Errors
    /// Network errors and timeouts.
    pub fn send(&self, datagram: &[u8]) -> Result<(), HostError> {
        self.0.write(datagram).map(drop)
    }

    /// Receives one datagram into `buf`; returns its length (cut to `buf.len()`).
    ///
    /// # Errors
    /// [`HostError::Timeout`] when none arrived in time; network errors.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, HostError> {
        self.0.read(buf)
    }
}
