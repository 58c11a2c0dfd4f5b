//! Field-device links a scraper may open: a TCP connection, a connected UDP socket, or a
//! serial line. Each is granted by exactly one of the job's targets (`tcp://host:port`,
//! `udp://host:port`, `rtu:///dev/ttyUSB0?baud=9600&parity=E`), lives in the call's stream
//! table (so it is closed when the call ends or the instance goes), and every wait on it is
//! bounded by the call's deadline.
//!
//! The line settings of a serial port come from the target's query and are set by the host:
//! a guest cannot reconfigure a port it was granted. Between frames the host keeps the line
//! silent for 3.5 character times (Modbus RTU's frame delimiter), counted from the last byte
//! read or written, so plugins need no clock finer than the host's.

use magpie_sdk::abi::HostError;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

/// Device opens (`tcp_connect`, `udp_connect`, `serial_open`) one call may make, open or
/// closed: a guest that reconnects in a loop stops here instead of hammering a device.
pub(crate) const MAX_OPENS_PER_CALL: u32 = 64;

/// Largest UDP datagram read.
const MAX_DATAGRAM: usize = 65_507;

/// An open link.
pub(crate) enum Link {
    Tcp(tokio::net::TcpStream),
    Udp(tokio::net::UdpSocket),
    Serial(Serial),
}

/// The kind of link an import opens, and the scheme its target must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Udp,
    Serial,
}

impl Kind {
    const fn scheme(self) -> &'static str {
        match self {
            Self::Tcp => "tcp://",
            Self::Udp => "udp://",
            Self::Serial => "rtu://",
        }
    }
}

/// Why an open or a transfer failed: the guest's code and the operator's detail.
pub(crate) type Failure = (HostError, String);

fn io_failure(target: &str, what: &str, e: &io::Error) -> Failure {
    let code = match e.kind() {
        io::ErrorKind::NotFound => HostError::NotFound,
        io::ErrorKind::PermissionDenied => HostError::Denied,
        io::ErrorKind::TimedOut => HostError::Timeout,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => HostError::Network,
        _ => HostError::Io,
    };
    (code, format!("{target}: {what}: {e}"))
}

/// Opens the link `target` names. The caller has checked the grant; `time_left` bounds the
/// connect.
pub(crate) async fn open(kind: Kind, target: &str, time_left: Duration) -> Result<Link, Failure> {
    let rest = target.strip_prefix(kind.scheme()).ok_or_else(|| {
        (
            HostError::Denied,
            format!("{target}: not a {}... target", kind.scheme()),
        )
    })?;
    let fut = async {
        match kind {
            Kind::Tcp => {
                let addr = authority(target, rest)?;
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| io_failure(target, "connect", &e))?;
                // Requests are small and answered one at a time: send each at once.
                s.set_nodelay(true)
                    .map_err(|e| io_failure(target, "connect", &e))?;
                Ok(Link::Tcp(s))
            }
            Kind::Udp => {
                let addr = authority(target, rest)?;
                let peer = tokio::net::lookup_host(addr)
                    .await
                    .map_err(|e| io_failure(target, "resolve", &e))?
                    .next()
                    .ok_or_else(|| (HostError::Network, format!("{target}: no address")))?;
                let local: std::net::SocketAddr = if peer.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let s = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(|e| io_failure(target, "bind", &e))?;
                s.connect(peer)
                    .await
                    .map_err(|e| io_failure(target, "connect", &e))?;
                Ok(Link::Udp(s))
            }
            Kind::Serial => {
                let line = LineSettings::parse(target).map_err(|e| (HostError::Invalid, e))?;
                Serial::open(target, &line).map(Link::Serial)
            }
        }
    };
    tokio::time::timeout(time_left, fut)
        .await
        .map_err(|_| (HostError::Timeout, format!("{target}: connect timed out")))?
}

/// `host:port` of a `tcp://` or `udp://` target: no path or credentials. A query
/// (`?unit=3`) is the plugin's, not the socket's.
fn authority<'a>(target: &str, rest: &'a str) -> Result<&'a str, Failure> {
    let rest = rest.split_once('?').map_or(rest, |(a, _)| a);
    let ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
        && rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if ok {
        Ok(rest)
    } else {
        Err((
            HostError::Invalid,
            format!("{target}: expected host:port after the scheme"),
        ))
    }
}

impl Link {
    /// Writes all of `bytes` (one datagram for UDP).
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(bytes).await,
            Self::Udp(s) => s.send(bytes).await.map(drop),
            Self::Serial(s) => s.write_all(bytes).await,
        }
    }

    /// Reads what is there, waiting for at least one byte (or one datagram).
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf).await,
            Self::Udp(s) => {
                // A datagram larger than `buf` is cut; read it whole, hand over what fits.
                let mut whole = vec![0u8; MAX_DATAGRAM];
                let n = s.recv(&mut whole).await?;
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&whole[..n]);
                Ok(n)
            }
            Self::Serial(s) => s.read(buf).await,
        }
    }
}

/// A serial line's settings, from the target's query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineSettings {
    pub(crate) device: String,
    pub(crate) baud: u32,
    pub(crate) data_bits: u8,
    /// `N`, `E` or `O`.
    pub(crate) parity: char,
    pub(crate) stop_bits: u8,
}

impl LineSettings {
    /// Parses `rtu:///dev/ttyUSB0?baud=9600&parity=E&stop_bits=1&data_bits=8`. Defaults:
    /// 9600 baud, 8 data bits, no parity, 1 stop bit. Keys the host does not know (`unit`)
    /// are left to the plugin.
    pub(crate) fn parse(target: &str) -> Result<Self, String> {
        let rest = target
            .strip_prefix("rtu://")
            .ok_or_else(|| format!("{target}: not an rtu:// target"))?;
        let (device, query) = rest.split_once('?').unwrap_or((rest, ""));
        let p = std::path::Path::new(device);
        if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(format!(
                "{target}: the device must be an absolute path without `..`"
            ));
        }
        let mut line = Self {
            device: device.to_string(),
            baud: 9600,
            data_bits: 8,
            parity: 'N',
            stop_bits: 1,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = || format!("{target}: `{k}`: `{v}` is not a valid value");
            match k {
                "baud" => {
                    line.baud = v.parse().ok().filter(|b| *b > 0).ok_or_else(bad)?;
                }
                "data_bits" => {
                    line.data_bits = v
                        .parse()
                        .ok()
                        .filter(|b| (5..=8).contains(b))
                        .ok_or_else(bad)?;
                }
                "parity" => {
                    line.parity = match v {
                        "N" | "n" => 'N',
                        "E" | "e" => 'E',
                        "O" | "o" => 'O',
                        _ => return Err(bad()),
                    };
                }
                "stop_bits" => {
                    line.stop_bits = v
                        .parse()
                        .ok()
                        .filter(|b| (1..=2).contains(b))
                        .ok_or_else(bad)?;
                }
                _ => {}
            }
        }
        Ok(line)
    }

    /// Bits on the line per character: start, data, parity, stop.
    fn bits_per_char(&self) -> u32 {
        1 + u32::from(self.data_bits) + u32::from(self.parity != 'N') + u32::from(self.stop_bits)
    }

    /// The silence that ends a frame: 3.5 character times, and at least 1.75 ms above 19200
    /// baud, as the Modbus serial line specification fixes it.
    pub(crate) fn frame_gap(&self) -> Duration {
        if self.baud > 19_200 {
            return Duration::from_micros(1750);
        }
        let micros = u64::from(self.bits_per_char()) * 3_500_000 / u64::from(self.baud);
        Duration::from_micros(micros)
    }

    /// Time one character takes on the line.
    fn char_time(&self) -> Duration {
        Duration::from_micros(u64::from(self.bits_per_char()) * 1_000_000 / u64::from(self.baud))
    }
}

/// An open serial port in raw mode, non-blocking under tokio.
pub(crate) struct Serial {
    fd: AsyncFd<OwnedFd>,
    gap: Duration,
    char_time: Duration,
    /// When the line last carried a byte (read, or written and drained).
    quiet_since: Instant,
}

impl Serial {
    fn open(target: &str, line: &LineSettings) -> Result<Self, Failure> {
        use rustix::fs::{Mode, OFlags};
        use rustix::termios::{self, ControlModes, OptionalActions};
        let fail = |what: &str, e: rustix::io::Errno| io_failure(target, what, &e.into());
        let fd = rustix::fs::open(
            line.device.as_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open", e))?;
        let mut t = termios::tcgetattr(&fd).map_err(|e| fail("not a serial line", e))?;
        t.make_raw();
        t.set_speed(line.baud)
            .map_err(|e| fail(&format!("baud {}", line.baud), e))?;
        let mut c = t.control_modes - ControlModes::CSIZE;
        c -= ControlModes::PARENB | ControlModes::PARODD | ControlModes::CSTOPB;
        c |= match line.data_bits {
            5 => ControlModes::CS5,
            6 => ControlModes::CS6,
            7 => ControlModes::CS7,
            _ => ControlModes::CS8,
        };
        match line.parity {
            'E' => c |= ControlModes::PARENB,
            'O' => c |= ControlModes::PARENB | ControlModes::PARODD,
            _ => {}
        }
        if line.stop_bits == 2 {
            c |= ControlModes::CSTOPB;
        }
        t.control_modes = c | ControlModes::CREAD | ControlModes::CLOCAL;
        termios::tcsetattr(&fd, OptionalActions::Now, &t).map_err(|e| fail("set line", e))?;
        // Bytes left from before this call are not an answer to anything the guest sends.
        let _ = termios::tcflush(&fd, termios::QueueSelector::IFlush);
        // SAFETY: the `OwnedFd` is open and owned by the `AsyncFd` for its whole life; nothing
        // else closes or replaces it.
        #[allow(unsafe_code)]
        let fd = unsafe { AsyncFd::register(fd) }
            .map_err(|e| io_failure(target, "register", &e.into()))?;
        Ok(Self {
            fd,
            gap: line.frame_gap(),
            char_time: line.char_time(),
            quiet_since: Instant::now(),
        })
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        tokio::time::sleep_until(self.quiet_since + self.gap).await;
        let total = bytes.len();
        while !bytes.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| rustix::io::write(fd.get_ref().as_fd(), bytes).map_err(Into::into))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        // The kernel sends the frame at the line's speed; the line is quiet once it has.
        let on_wire = self.char_time * u32::try_from(total).unwrap_or(u32::MAX);
        self.quiet_since = Instant::now() + on_wire;
        Ok(())
    }

    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref().as_fd(), &mut *buf).map_err(Into::into))
            {
                Ok(Ok(n)) => {
                    self.quiet_since = Instant::now();
                    return Ok(n);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_settings_come_from_the_query_with_defaults() {
        let l = LineSettings::parse("rtu:///dev/ttyUSB0?baud=19200&parity=E&unit=3").unwrap();
        assert_eq!(
            l,
            LineSettings {
                device: "/dev/ttyUSB0".into(),
                baud: 19_200,
                data_bits: 8,
                parity: 'E',
                stop_bits: 1,
            }
        );
        let d = LineSettings::parse("rtu:///dev/ttyS1").unwrap();
        assert_eq!(
            (d.baud, d.data_bits, d.parity, d.stop_bits),
            (9600, 8, 'N', 1)
        );
    }

    #[test]
    fn bad_line_settings_name_the_key() {
        let e = LineSettings::parse("rtu:///dev/ttyS1?parity=X").unwrap_err();
        assert!(e.contains("`parity`") && e.contains("`X`"), "{e}");
        let e = LineSettings::parse("rtu:///dev/ttyS1?baud=fast").unwrap_err();
        assert!(e.contains("`baud`"), "{e}");
        let e = LineSettings::parse("rtu:///dev/ttyS1?data_bits=9").unwrap_err();
        assert!(e.contains("`data_bits`"), "{e}");
        let e = LineSettings::parse("rtu://dev/ttyS1").unwrap_err();
        assert!(e.contains("absolute"), "{e}");
        let e = LineSettings::parse("rtu:///dev/../etc/passwd").unwrap_err();
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn the_frame_gap_is_three_and_a_half_characters() {
        // 9600 8E1: 11 bits a character, 3.5 characters = 38.5 bits = 4.0104 ms.
        let l = LineSettings::parse("rtu:///dev/x?baud=9600&parity=E").unwrap();
        assert_eq!(l.frame_gap(), Duration::from_micros(4010));
        // Above 19200 baud the gap is fixed at 1.75 ms.
        let fast = LineSettings::parse("rtu:///dev/x?baud=115200").unwrap();
        assert_eq!(fast.frame_gap(), Duration::from_micros(1750));
    }

    #[test]
    fn socket_targets_need_exactly_host_and_port() {
        assert!(authority("t", "10.0.0.5:502").is_ok());
        assert!(authority("t", "[::1]:502").is_ok());
        assert_eq!(
            authority("t", "10.0.0.5:502?unit=3").unwrap(),
            "10.0.0.5:502"
        );
        for bad in [
            "10.0.0.5",
            "10.0.0.5:502/x",
            "u@10.0.0.5:502",
            "",
            "h:99999",
        ] {
            assert!(authority("t", bad).is_err(), "{bad}");
        }
    }
}
