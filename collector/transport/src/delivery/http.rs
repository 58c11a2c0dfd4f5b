//! The HTTP link: POST one payload a round (so the receiver gets them oldest first), and have a
//! [`Judge`] read the answer. Remote write's exporter plugin judges answers itself, so the
//! judging is a seam; [`ByStatus`] is the plain rule (2xx accepted; 429 and 5xx retried;
//! other statuses refused). A network error or a timeout is retried.

use super::Outcome;
use super::drive::{Attempt, Link, Payload};
use crate::{HttpClient, PostResponse};
use std::future::Future;
use std::time::Duration;

/// What a receiver's answer means for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Accept,
    /// Send it again (the answer's `Retry-After`, if any, says when).
    Retry,
    /// Refused for good.
    Refuse,
}

/// Reads a receiver's answer.
pub trait Judge {
    /// The verdict on `resp`.
    fn judge(&mut self, resp: &PostResponse) -> impl Future<Output = Verdict>;
}

/// Judges by status code alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct ByStatus;

impl ByStatus {
    /// The verdict for `status`.
    #[must_use]
    pub const fn verdict(status: u16) -> Verdict {
        match status {
            200..=299 => Verdict::Accept,
            429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Refuse,
        }
    }
}

impl Judge for ByStatus {
    async fn judge(&mut self, resp: &PostResponse) -> Verdict {
        Self::verdict(resp.status)
    }
}

/// POSTs payloads to one URL.
#[derive(Debug)]
pub struct HttpLink<'a, J> {
    /// The client.
    pub client: &'a HttpClient,
    /// Where to.
    pub url: &'a str,
    /// Headers on every request (configured ones, credentials); a payload's own come after.
    pub headers: &'a [(String, String)],
    /// Bounds each exchange, connecting included.
    pub timeout: Duration,
    /// Reads the answers.
    pub judge: J,
}

impl<J: Judge> Link for HttpLink<'_, J> {
    fn window(&self) -> usize {
        1
    }

    async fn send(&mut self, payloads: &[Payload], round: &[usize]) -> Vec<Attempt> {
        let mut out = Vec::with_capacity(round.len());
        for &i in round {
            let Some(p) = payloads.get(i) else { continue };
            let mut headers = self.headers.to_vec();
            headers.extend(p.headers.iter().cloned());
            let resp = self
                .client
                .post(self.url, &headers, p.body.clone(), self.timeout)
                .await;
            out.push(match resp {
                Err(e) => Attempt {
                    index: i,
                    // Nothing listens: looking again costs the receiver nothing.
                    outcome: if matches!(e, crate::Error::Request { refused: true, .. }) {
                        Outcome::NotListening
                    } else {
                        Outcome::Retryable { retry_after: None }
                    },
                    reason: Some(e.to_string()),
                    unreached: true,
                },
                Ok(resp) => {
                    let body = String::from_utf8_lossy(&resp.body);
                    let body = body.trim();
                    match self.judge.judge(&resp).await {
                        Verdict::Accept => Attempt::accepted(i),
                        // The cursor moves per batch, so a partial success resends the
                        // payload: receivers accept a sample they already hold.
                        Verdict::Retry => Attempt {
                            index: i,
                            outcome: Outcome::Retryable {
                                retry_after: resp.retry_after(),
                            },
                            reason: Some(format!("the receiver answered {}: {body}", resp.status)),
                            unreached: false,
                        },
                        Verdict::Refuse => Attempt {
                            index: i,
                            outcome: Outcome::Rejected,
                            reason: Some(format!(
                                "the receiver refused a payload with {}: {body}",
                                resp.status
                            )),
                            unreached: false,
                        },
                    }
                }
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_verdicts_follow_remote_write() {
        for (s, v) in [
            (200, Verdict::Accept),
            (204, Verdict::Accept),
            (400, Verdict::Refuse),
            (404, Verdict::Refuse),
            (413, Verdict::Refuse),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
            (302, Verdict::Refuse),
        ] {
            assert_eq!(ByStatus::verdict(s), v, "{s}");
        }
    }

    /// One attempt at `url`, as the exporter's link makes it.
    async fn attempt(url: &str) -> Attempt {
        let client = HttpClient::new(&crate::TlsOptions::default()).unwrap();
        let mut link = HttpLink {
            client: &client,
            url,
            headers: &[],
            timeout: Duration::from_secs(5),
            judge: ByStatus,
        };
        let payload = Payload {
            body: bytes::Bytes::from_static(b"x"),
            samples: 1,
            headers: Vec::new(),
            topic: None,
        };
        link.send(&[payload], &[0]).await.remove(0)
    }

    #[tokio::test]
    async fn a_refused_connection_is_told_apart_from_other_failures() {
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = attempt(&format!("http://127.0.0.1:{port}/api/v1/write")).await;
        assert_eq!(a.outcome, Outcome::NotListening);
        assert!(a.unreached);
        // A server that takes the connection and closes it: the request may have cost it
        // work, so it is an ordinary failure (the usual backoff).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                drop(s);
            }
        });
        let a = attempt(&format!("http://{addr}/api/v1/write")).await;
        assert_eq!(a.outcome, Outcome::Retryable { retry_after: None });
        assert!(a.unreached);
    }
}
