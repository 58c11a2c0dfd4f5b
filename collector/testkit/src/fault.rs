//! A fault proxy in front of a real receiver: each request is forwarded, held unanswered,
//! answered byte by byte, or answered with a chosen status, as the test says at that moment.
//! Works per HTTP request, not per connection, so a client's pooled keep-alive connection
//! meets the fault too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What the proxy does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward it to the upstream and relay the answer.
    Forward,
    /// Read it and never answer (the connection stays open).
    Hang,
    /// Forward it, then relay the answer one byte every this long.
    Drip(Duration),
    /// Forward it (the upstream has it at once), then relay the answer this much later.
    Delay(Duration),
    /// Answer with this status and these headers, an empty body beyond a short text.
    Answer {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// Answer with `status` a request whose `Content-Type` contains `containing` (as a
    /// receiver that does not take that message answers 415); forward any other.
    RefuseContentType {
        /// A part of the refused `Content-Type`, compared without case.
        containing: String,
        /// The answer to it.
        status: u16,
    },
    /// Answer 429 with a `Retry-After` HTTP-date this long after the answer (whole seconds, as
    /// the format has: the wait it asks for is up to a second shorter).
    RetryAtDate(Duration),
}

impl Fault {
    /// An answer with `status` and no extra header.
    #[must_use]
    pub const fn status(status: u16) -> Self {
        Self::Answer {
            status,
            headers: Vec::new(),
        }
    }
}

/// One request as the proxy handled it.
#[derive(Debug, Clone)]
pub struct Handled {
    /// When it arrived (fully read).
    pub at: Instant,
    /// What was done with it.
    pub fault: Fault,
    /// Its `Content-Type`, empty when absent.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct State {
    default: Fault,
    script: std::collections::VecDeque<Fault>,
    log: Vec<Handled>,
}

/// The proxy; stops accepting when dropped (open connections linger until the client closes).
#[derive(Debug)]
pub struct FaultProxy {
    addr: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts it on an ephemeral loopback port, forwarding to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start(upstream: &str) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let state = Arc::new(Mutex::new(State {
            default: Fault::Forward,
            script: std::collections::VecDeque::new(),
            log: Vec::new(),
        }));
        let (st, up) = (Arc::clone(&state), upstream.to_string());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, up) = (Arc::clone(&st), up.clone());
                std::thread::spawn(move || serve(conn, &up, &st));
            }
        });
        Self { addr, state }
    }

    /// The write URL (the upstream's path `/api/v1/write`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// What every request meets from now on, once the script is used up.
    ///
    /// # Panics
    /// Never in practice (a poisoned lock).
    pub fn set(&self, fault: Fault) {
        self.state.lock().expect("state").default = fault;
    }

    /// What the next requests meet, one each, before the default.
    ///
    /// # Panics
    /// Never in practice (a poisoned lock).
    pub fn script(&self, faults: Vec<Fault>) {
        self.state.lock().expect("state").script.extend(faults);
    }

    /// The requests handled so far.
    ///
    /// # Panics
    /// Never in practice (a poisoned lock).
    #[must_use]
    pub fn handled(&self) -> Vec<Handled> {
        self.state.lock().expect("state").log.clone()
    }
}

/// Reads one request: `(head, body)`; `None` when the client closed.
fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match conn.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    Some((head, buf[head_end..head_end + len].to_vec()))
}

/// The value of header `name` in a request head, empty when absent.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map_or(String::new(), |(_, v)| v.trim().to_string())
}

/// Sends the request to the upstream on a connection of its own and reads the answer to the
/// end (the request asks the upstream to close).
fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut h: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    h.push("Connection: close");
    let mut req = h.join("\r\n").into_bytes();
    req.extend_from_slice(b"\r\n\r\n");
    req.extend_from_slice(body);
    let mut resp = Vec::new();
    let ok = TcpStream::connect(upstream).and_then(|mut u| {
        u.write_all(&req)?;
        u.read_to_end(&mut resp)
    });
    if ok.is_err() || resp.is_empty() {
        return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".to_vec();
    }
    // The client keeps its connection: drop the upstream's `Connection: close`.
    let text = String::from_utf8_lossy(&resp);
    if let Some(end) = text.find("\r\n\r\n") {
        let head: Vec<&str> = text[..end]
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        let mut out = head.join("\r\n").into_bytes();
        out.extend_from_slice(&resp[end..]);
        return out;
    }
    resp
}

fn serve(mut conn: TcpStream, upstream: &str, state: &Mutex<State>) {
    while let Some((head, body)) = read_request(&mut conn) {
        let fault = {
            let mut s = state.lock().expect("state");
            let f = s.script.pop_front().unwrap_or_else(|| s.default.clone());
            s.log.push(Handled {
                at: Instant::now(),
                fault: f.clone(),
                content_type: header(&head, "content-type"),
                body: body.clone(),
            });
            f
        };
        let sent = match fault {
            Fault::Hang => {
                // Hold the connection until the client gives up on it.
                let mut b = [0u8; 1024];
                while matches!(conn.read(&mut b), Ok(n) if n > 0) {}
                return;
            }
            Fault::Drip(every) => forward(upstream, &head, &body).iter().try_for_each(|b| {
                std::thread::sleep(every);
                conn.write_all(std::slice::from_ref(b))
            }),
            Fault::Delay(d) => {
                let answer = forward(upstream, &head, &body);
                std::thread::sleep(d);
                conn.write_all(&answer)
            }
            Fault::RetryAtDate(after) => {
                let date = httpdate::fmt_http_date(SystemTime::now() + after);
                let r = format!(
                    "HTTP/1.1 429 Fault\r\nContent-Length: 5\r\nRetry-After: {date}\r\n\r\nfault"
                );
                conn.write_all(r.as_bytes())
            }
            Fault::RefuseContentType { containing, status }
                if header(&head, "content-type")
                    .to_ascii_lowercase()
                    .contains(&containing.to_ascii_lowercase()) =>
            {
                let r = format!("HTTP/1.1 {status} Fault\r\nContent-Length: 5\r\n\r\nfault");
                conn.write_all(r.as_bytes())
            }
            Fault::Forward | Fault::RefuseContentType { .. } => {
                conn.write_all(&forward(upstream, &head, &body))
            }
            Fault::Answer { status, headers } => {
                let mut r = format!("HTTP/1.1 {status} Fault\r\nContent-Length: 5\r\n");
                for (k, v) in headers {
                    r.push_str(&format!("{k}: {v}\r\n"));
                }
                r.push_str("\r\nfault");
                conn.write_all(r.as_bytes())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
