//! HTTP(S) fetches for the agent, and when a manifest's ETag may be trusted.
//!
//! nginx (and most static servers) derive the ETag from the file's modification time in whole
//! seconds and its size: two manifests of one size written within the same second share it,
//! and a device that fetched the first would be told "304 Not Modified" about the second for
//! good. So a new ETag is not sent back as `If-None-Match` at once: the manifest is fetched in
//! full until a fetch made [`SETTLE`] after the ETag was first seen still returns it. By then
//! the second its modification time names is over, so the file can no longer change without
//! its ETag changing. The agent also compares each manifest's bytes with the last one it
//! dealt with, so a full fetch of the same manifest costs no more than a hash.

use magpie_transport::HttpClient;
use std::time::{Duration, Instant};

/// How long after an ETag was first seen it is trusted; over a second, the resolution of the
/// modification times ETags are made of.
pub(super) const SETTLE: Duration = Duration::from_millis(1500);

/// How long a manifest or file request may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The last manifest ETag and whether it may be sent as `If-None-Match`.
#[derive(Debug, Default)]
pub(super) struct Etag {
    value: String,
    first_seen: Option<Instant>,
    settled: bool,
}

impl Etag {
    /// The `If-None-Match` to send, once the ETag settled.
    pub fn condition(&self) -> Option<&str> {
        self.settled.then_some(self.value.as_str())
    }

    /// Records the ETag of a full fetch that started at `at`.
    pub fn seen(&mut self, etag: &str, at: Instant) {
        if etag.is_empty() {
            *self = Self::default();
            return;
        }
        match self.first_seen {
            Some(first) if self.value == etag => {
                self.settled |= at.saturating_duration_since(first) >= SETTLE;
            }
            _ => {
                *self = Self {
                    value: etag.to_string(),
                    first_seen: Some(at),
                    settled: false,
                };
            }
        }
    }
}

/// Why a GET came to nothing.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server could not be asked, or answered with an error.
    Server(String),
    /// The body was larger than the limit: for a bundle file, not the file the manifest names.
    TooLarge(String),
}

impl From<Failure> for String {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Server(e) | Failure::TooLarge(e) => e,
        }
    }
}

/// GETs `url`: `None` for 304, else the body (at most `limit` bytes) and the ETag.
pub(super) async fn get(
    client: &HttpClient,
    url: &str,
    etag: Option<&str>,
    limit: u64,
) -> Result<Option<(Vec<u8>, String)>, Failure> {
    let headers: Vec<(String, String)> = etag
        .map(|e| vec![("if-none-match".to_string(), e.to_string())])
        .unwrap_or_default();
    let mut resp = client
        .get(url, &headers, REQUEST_TIMEOUT, limit)
        .await
        .map_err(|e| Failure::Server(e.to_string()))?;
    if resp.status == 304 {
        return Ok(None);
    }
    if resp.status != 200 {
        return Err(Failure::Server(format!("{url}: HTTP {}", resp.status)));
    }
    let mut out = Vec::new();
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = tokio::time::timeout(REQUEST_TIMEOUT, resp.body.read(&mut buf))
            .await
            .map_err(|_| Failure::Server(format!("{url}: the body stalled")))?
            .map_err(|e| match e {
                magpie_transport::Error::BodyLimit { .. } => {
                    Failure::TooLarge(format!("{url}: {e}"))
                }
                e => Failure::Server(format!("{url}: {e}")),
            })?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(Some((out, resp.etag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_is_trusted_only_once_its_second_is_over() {
        let t0 = Instant::now();
        let mut e = Etag::default();
        assert_eq!(e.condition(), None);
        e.seen("\"a-1\"", t0);
        assert_eq!(e.condition(), None);
        e.seen("\"a-1\"", t0 + Duration::from_millis(900));
        assert_eq!(e.condition(), None, "still within the second it names");
        e.seen("\"a-1\"", t0 + SETTLE);
        assert_eq!(e.condition(), Some("\"a-1\""));
        // A new one starts over.
        e.seen("\"b-1\"", t0 + Duration::from_secs(5));
        assert_eq!(e.condition(), None);
        e.seen("", t0 + Duration::from_secs(9));
        assert_eq!(e.condition(), None);
    }
}
