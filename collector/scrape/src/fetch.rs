//! The host's HTTP fetcher for scrapers, over the transport's client.
//!
//! A job with credentials or TLS settings gets a [`JobFetch`] of its own: its client trusts
//! the job's CA and presents its client certificate, and the credentials are added to every
//! request here, on the host's side of the plugin boundary. The plugin asks for its target's
//! URL and gets the body; the secret never enters its memory, and an `Authorization` header it
//! sends itself is replaced.

use magpie_host::{BoxFuture, ByteStream, Fetch, FetchError, FetchRequest, FetchResponse};
use magpie_sdk::abi::HostError;
use magpie_transport::{Auth, Body, Error, HttpClient};

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
        | Error::ServerName { .. }
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

/// A job's fetcher: its own client (TLS settings) and its credentials.
#[derive(Debug, Clone)]
pub struct JobFetch {
    fetch: HttpFetch,
    auth: Auth,
}

impl JobFetch {
    /// A fetcher sending `auth` with every request over `client`.
    #[must_use]
    pub const fn new(client: HttpClient, auth: Auth) -> Self {
        Self {
            fetch: HttpFetch(client),
            auth,
        }
    }

    /// The request as sent: the guest's headers, any `Authorization` of its own replaced by
    /// the job's credentials.
    fn authorized(&self, mut req: FetchRequest) -> FetchRequest {
        if let Some(header) = self.auth.header() {
            req.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            req.headers.push(header);
        }
        req
    }
}

impl Fetch for JobFetch {
    fn fetch(&self, req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        self.fetch.fetch(self.authorized(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_jobs_credentials_replace_the_guests_authorization() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t0ken\n").unwrap();
        let client = HttpClient::new(&magpie_transport::TlsOptions::default()).unwrap();
        let f = JobFetch::new(client, Auth::bearer(&token).unwrap());
        let req = FetchRequest {
            url: "http://127.0.0.1:1/metrics".into(),
            headers: vec![
                ("Authorization".into(), "Bearer guess".into()),
                ("accept".into(), "text/plain".into()),
            ],
            timeout: Duration::from_secs(1),
            body_size_limit: 0,
        };
        let sent = f.authorized(req);
        assert_eq!(
            sent.headers,
            vec![
                ("accept".to_string(), "text/plain".to_string()),
                ("authorization".to_string(), "Bearer t0ken".to_string()),
            ]
        );
        assert!(!format!("{f:?}").contains("t0ken"));
    }
}
