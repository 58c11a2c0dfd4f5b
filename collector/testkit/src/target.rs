//! A scrape target on loopback that misbehaves on request, for end-to-end tests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How a path answers.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with this body and content type.
    Serve {
        /// `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
    /// 200 with bytes that are no exposition format.
    Garbage,
    /// 200 with a body that never ends (chunked, sent until the client goes away).
    Endless,
    /// Accepts the connection and never answers.
    Hang,
    /// Answers with this HTTP status and an empty body.
    Status(u16),
    /// 200 with this many gauges whose values change on every request, so they do not
    /// compress: for filling a WAL quickly.
    Random(usize),
    /// 200 with the file's content at the time of the request, as text 0.0.4 (as OpenMetrics
    /// 1.0 when the file name ends in `.om`); 503 while the file does not exist (a target
    /// that went down).
    File(std::path::PathBuf),
    /// 200 with `series` gauges `counted_scrape{series="0"}` … whose value is the number of
    /// this request (1, 2, …), counted in `served`: which scrapes arrived where can be told from
    /// the values alone.
    Counter {
        /// How many series each answer holds.
        series: usize,
        /// Requests answered so far; the last value served.
        served: Arc<AtomicU64>,
    },
}

/// A running target server; stops serving when dropped.
#[derive(Debug)]
pub struct TargetServer {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl TargetServer {
    /// Serves `routes` (path → behavior) on an ephemeral loopback port; other paths get 404.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    #[must_use]
    pub fn start(routes: Vec<(String, Behavior)>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = l.local_addr().expect("local address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let s = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let routes = Arc::clone(&routes);
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &routes, &s));
            }
        });
        Self { addr, stop }
    }

    /// `host:port`.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The URL of `path` on this server.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TargetServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(&self.addr);
    }
}

fn serve(mut conn: std::net::TcpStream, routes: &[(String, Behavior)], stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let Some((_, behavior)) = routes.iter().find(|(p, _)| p == path) else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    match behavior {
        Behavior::Serve { content_type, body } => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behavior::Garbage => {
            let body = "\u{0}\u{1}<html>this is not a metrics page</html>\n{{{{ 12 ]]\n";
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behavior::Endless => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            let line = "endless_series_total{page=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"} 1\n".repeat(100);
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            while !stop.load(Ordering::Relaxed) {
                if conn.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
            }
        }
        Behavior::Hang => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Behavior::Random(n) => {
            let mut x = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1;
            let mut body = String::with_capacity(n * 48);
            for i in 0..*n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                #[allow(clippy::cast_precision_loss)]
                let v = (x >> 11) as f64 / (1u64 << 53) as f64;
                body.push_str(&format!("random_gauge{{i=\"{i}\"}} {v}\n"));
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behavior::File(path) => match std::fs::read_to_string(path) {
            Ok(body) => {
                let content_type = if path.extension().is_some_and(|e| e == "om") {
                    "application/openmetrics-text; version=1.0.0; charset=utf-8"
                } else {
                    "text/plain; version=0.0.4"
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            Err(_) => {
                let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        },
        Behavior::Counter { series, served } => {
            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
            let body: String = (0..*series)
                .map(|k| format!("counted_scrape{{series=\"{k}\"}} {n}\n"))
                .collect();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behavior::Status(code) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }
}
