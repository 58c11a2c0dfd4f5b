//! A remote-write receiver that answers from a script, for testing retry semantics.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, if any.
    pub retry_after: Option<u64>,
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
    /// Its headers, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// Body length.
    pub body_len: usize,
    /// The body as sent (still compressed).
    pub body: Vec<u8>,
}

/// The receiver; answers requests with the script in order, then 200 forever.
#[derive(Debug)]
pub struct ScriptedReceiver {
    addr: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl ScriptedReceiver {
    /// Starts it on an ephemeral loopback port.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start(script: Vec<Answer>) -> Self {
        Self::start_with_delay(script, Duration::ZERO)
    }

    /// As [`ScriptedReceiver::start`], but every answer goes out `delay` after the request was
    /// recorded: a receiver that stored the data and is slow to say so, so a sender that stops
    /// meanwhile never learns it was accepted.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start_with_delay(script: Vec<Answer>, delay: Duration) -> Self {
        Self::spawn(script, delay, None)
    }

    /// A recording endpoint that answers every request 200 and, to a remote write 2.0
    /// request, adds the `X-Prometheus-Remote-Write-Samples-Written` header a 2.0 receiver
    /// must send, with the count `samples` reads from the (compressed) body. It stores and
    /// checks nothing: it is not a 2.0 receiver, only what lets a 2.0 sender go on sending 2.0.
    ///
    /// # Panics
    /// When no port can be bound.
    #[must_use]
    pub fn start_v2(samples: fn(&[u8]) -> u64) -> Self {
        Self::spawn(Vec::new(), Duration::ZERO, Some(samples))
    }

    fn spawn(script: Vec<Answer>, delay: Duration, v2: Option<fn(&[u8]) -> u64>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let lg = Arc::clone(&log);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let (lg, script) = (Arc::clone(&lg), Arc::clone(&script));
                std::thread::spawn(move || serve(conn, &lg, &script, delay, v2));
            }
        });
        Self { addr, log }
    }

    /// The write URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// What arrived so far.
    ///
    /// # Panics
    /// Never in practice (a poisoned lock).
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }
}

fn serve(
    mut conn: std::net::TcpStream,
    log: &Mutex<Vec<Received>>,
    script: &Mutex<std::vec::IntoIter<Answer>>,
    delay: Duration,
    v2: Option<fn(&[u8]) -> u64>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let mut buf = Vec::new();
        let mut b = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&b[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&b[..n]),
            }
        }
        let answer = script.lock().expect("script").next().unwrap_or(Answer {
            status: 200,
            retry_after: None,
        });
        let is_v2 = headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.contains("io.prometheus.write.v2.Request"));
        log.lock().expect("log").push(Received {
            at: Instant::now(),
            status: answer.status,
            headers,
            body_len: len,
            body: buf[head_end..head_end + len].to_vec(),
        });
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut extra = answer
            .retry_after
            .map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
        if let Some(count) = v2.filter(|_| is_v2 && answer.status < 300) {
            let n = count(&buf[head_end..head_end + len]);
            extra.push_str(&format!(
                "X-Prometheus-Remote-Write-Samples-Written: {n}\r\n"
            ));
        }
        let body = if answer.status >= 300 {
            "scripted failure"
        } else {
            ""
        };
        let resp = format!(
            "HTTP/1.1 {} Scripted\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            answer.status,
            body.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
