//! What the host does on a guest's behalf: HTTP fetches (implemented by the embedder, so the
//! host crate stays free of HTTP stacks), byte streams, and files.

use magpie_sdk::abi::raw::RawSampleBatch;
use magpie_sdk::abi::{EmitStatus, ExemplarReport, HostError, MetadataUpdate, SampleBatch};
use std::future::Future;
use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, as the traits below return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A body or file a guest reads in chunks.
pub trait ByteStream: Send {
    /// Reads up to `buf.len()` bytes; 0 means the end.
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>>;
}

/// A GET request a scraper asked for (its URL already checked against the grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The URL.
    pub url: String,
    /// Request headers from the guest.
    pub headers: Vec<(String, String)>,
    /// Time left for the scrape.
    pub timeout: Duration,
    /// Bodies larger than this (after decompression) end in [`HostError::Limit`]; 0 = none.
    pub body_size_limit: u64,
}

/// The answer to a [`FetchRequest`].
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, empty when absent.
    pub content_type: String,
    /// The body, decompressed.
    pub body: Box<dyn ByteStream>,
}

impl std::fmt::Debug for FetchResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// Why a fetch failed: the code the guest sees, and the detail the operator sees (appended to
/// the plugin's own error when the call fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// What the guest is told.
    pub code: HostError,
    /// The cause, for logs and the status page; empty when there is nothing to add.
    pub detail: String,
}

impl From<HostError> for FetchError {
    fn from(code: HostError) -> Self {
        Self {
            code,
            detail: String::new(),
        }
    }
}

/// Performs HTTP fetches for scrapers.
pub trait Fetch: Send + Sync + 'static {
    /// Sends the request and returns once the response head arrived.
    fn fetch(&self, req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>>;
}

/// Receives the samples a scraper emits.
pub trait SampleSink: Send {
    /// Takes one batch (already checked for consistency). [`EmitStatus::Stop`] ends the
    /// scrape's emission, for example when a sample limit is reached.
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus;

    /// Takes one batch as encoded, framing and counts checked, strings not: what the host
    /// hands every sink. The default decodes it (checking every string) and calls
    /// [`SampleSink::push`]; a sink that keys series by their bytes overrides it and checks
    /// only the strings it keeps.
    ///
    /// # Errors
    /// The batch holds a string that is not UTF-8 (the plugin broke the ABI).
    fn push_raw(&mut self, batch: &RawSampleBatch<'_>) -> Result<EmitStatus, String> {
        Ok(self.push(&batch.decode()?))
    }

    /// Takes a change of the scraped metadata (see [`MetadataUpdate`]). Dropped unless
    /// overridden.
    fn metadata(&mut self, update: &MetadataUpdate<'_>) {
        let _ = update;
    }

    /// Takes a scrape's exemplars (see [`ExemplarReport`]). Dropped unless overridden.
    fn exemplars(&mut self, report: &ExemplarReport<'_>) {
        let _ = report;
    }
}

/// A file opened for a guest. Files under /proc and /sys are generated in memory by the
/// kernel, so reads do not block for long.
pub(crate) struct FileStream(pub(crate) std::fs::File);

impl ByteStream for FileStream {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>> {
        let r = self.0.read(buf).map_err(|_| HostError::Io);
        Box::pin(std::future::ready(r))
    }
}

/// A fetcher that answers every request with one body held in memory: for benchmarks and
/// examples that should measure no network.
#[derive(Debug, Clone)]
pub struct MemFetch {
    body: Arc<[u8]>,
    content_type: String,
}

impl MemFetch {
    /// Serves `body` with `content_type`.
    #[must_use]
    pub fn new(body: impl Into<Arc<[u8]>>, content_type: &str) -> Self {
        Self {
            body: body.into(),
            content_type: content_type.into(),
        }
    }
}

struct MemBody {
    data: Arc<[u8]>,
    at: usize,
}

impl ByteStream for MemBody {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>> {
        let n = buf.len().min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Box::pin(std::future::ready(Ok(n)))
    }
}

impl Fetch for MemFetch {
    fn fetch(&self, _req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        Box::pin(std::future::ready(Ok(FetchResponse {
            status: 200,
            content_type: self.content_type.clone(),
            body: Box::new(MemBody {
                data: Arc::clone(&self.body),
                at: 0,
            }),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mem_fetch_serves_its_body_in_chunks_to_every_request() {
        let f = MemFetch::new(b"hello world".to_vec(), "text/plain");
        for _ in 0..2 {
            let req = FetchRequest {
                url: "http://x/metrics".into(),
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
                body_size_limit: 0,
            };
            let mut resp = f.fetch(req).await.unwrap();
            assert_eq!(
                (resp.status, resp.content_type.as_str()),
                (200, "text/plain")
            );
            let mut got = Vec::new();
            let mut buf = [0u8; 4];
            loop {
                let n = resp.body.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"hello world");
        }
    }
}
