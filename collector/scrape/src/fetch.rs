//! The host's HTTP fetcher for scrapers, over the transport's client.

use magpie_host::{BoxFuture, ByteStream, Fetch, FetchError, FetchRequest, FetchResponse};
use magpie_sdk::abi::HostError;
use magpie_transport::{Body, Error, HttpClient};

/// Lends scrapers the collector's HTTP client.
#[derive(Debug, Clone)]
pub struct HttpFetch(pub HttpClient);

fn code(e: &Error) -> HostError {
    match e {
        Error::Timeout { .. } => HostError::Timeout,
        Error::BodyLimit { .. } => HostError::Limit,
        Error::InvalidUrl { .. } => HostError::Invalid,
        Error::Request { .. }
        | Error::Body { .. }
        | Error::Tls { .. }
        | Error::Secret { .. }
        | Error::Broker { .. } => HostError::Network,
    }
}

struct Stream(Body);

impl ByteStream for Stream {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>> {
        Box::pin(async move {
            self.0.read(buf).await.map_err(|e| {
                // The guest only sees a code; the reason goes to the log for the operator.
                log::info!("reading a scrape body failed; error={e}");
                code(&e)
            })
        })
    }
}

impl Fetch for HttpFetch {
    fn fetch(&self, req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        let client = self.0.clone();
        Box::pin(async move {
            match client
                .get(&req.url, &req.headers, req.timeout, req.body_size_limit)
                .await
            {
                Ok(r) => Ok(FetchResponse {
                    status: r.status,
                    content_type: r.content_type,
                    body: Box::new(Stream(r.body)),
                }),
                Err(e) => Err(FetchError {
                    code: code(&e),
                    detail: e.to_string(),
                }),
            }
        })
    }
}
