use crate::{Body, Error};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::Request;
use hyper::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT,
};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;
use std::time::Duration;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// Idle connections kept per host; a gateway scrapes a handful of hosts.
const POOL_PER_HOST: usize = 2;

/// TLS settings. Verification is always on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// A PEM file of CA certificates to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A PEM certificate chain presented to servers that ask for a client certificate.
    pub cert_file: Option<PathBuf>,
    /// The PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for, sent as SNI, instead of the
    /// URL's host (Prometheus' `tls_config.server_name`): for a server reached by IP or
    /// through a tunnel whose certificate names it otherwise. An IP address is checked
    /// against the certificate's IP addresses and, as in TLS, not sent as SNI. HTTP only.
    pub server_name: Option<String>,
}

/// An HTTP/1.1 client; cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    poster: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

/// A response whose head has arrived.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, empty when absent.
    pub content_type: String,
    /// `ETag`, empty when absent (for a conditional GET's `If-None-Match`).
    pub etag: String,
    /// The body, decoded.
    pub body: Body,
}

impl HttpClient {
    /// A client trusting the system's CA roots, or `tls.ca_file`, verifying servers against
    /// `tls.server_name` when set.
    ///
    /// # Errors
    /// When the CA file cannot be read or holds no certificate; a `server_name` that is
    /// neither a DNS name nor an IP address.
    pub fn new(tls: &TlsOptions) -> Result<Self, Error> {
        let config = crate::tls::client_config(tls)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_nodelay(true);
        let mut https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        if let Some(name) = &tls.server_name {
            https = https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
                crate::tls::server_name(name)?,
            ));
        }
        let https = https.enable_http1().wrap_connector(http);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_PER_HOST);
        let client = builder.build(https.clone());
        let poster = builder.build(https);
        let user_agent = HeaderValue::from_static(concat!("magpie/", env!("CARGO_PKG_VERSION")));
        Ok(Self {
            client,
            poster,
            user_agent,
        })
    }

    /// GETs `url`; returns when the response head arrived. `timeout` bounds the wait for the
    /// head; the caller bounds body reads. `body_limit` (0 = none) caps the decoded body.
    ///
    /// # Errors
    /// Invalid URLs, connection and TLS failures, timeouts.
    pub async fn get(
        &self,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
        body_limit: u64,
    ) -> Result<Response, Error> {
        let mut req = self.request(url, Request::get, Empty::<Bytes>::new())?;
        let h = req.headers_mut();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", timeout.as_secs_f64())) {
            h.insert(
                HeaderName::from_static("x-prometheus-scrape-timeout-seconds"),
                v,
            );
        }
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
                h.insert(k, v);
            }
        }
        let resp = tokio::time::timeout(timeout, self.client.request(req))
            .await
            .map_err(|_| Error::Timeout { url: url.into() })?
            .map_err(|e| Error::Request {
                url: url.into(),
                reason: chain(&e),
                refused: refused(&e),
            })?;
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let content_type = header(CONTENT_TYPE);
        let etag = header(hyper::header::ETAG);
        let gzip = header(CONTENT_ENCODING).eq_ignore_ascii_case("gzip");
        let status = resp.status().as_u16();
        Ok(Response {
            status,
            content_type,
            etag,
            body: Body::new(resp.into_body(), gzip, body_limit),
        })
    }
}

/// The answer to a POST: status, the headers a sender acts on, the start of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, `Content-Type` and `X-Prometheus-Remote-Write-*` headers.
    pub headers: Vec<(String, String)>,
    /// At most [`PostResponse::BODY_KEPT`] bytes of the body, for error messages.
    pub body: Vec<u8>,
}

impl PostResponse {
    /// Bytes of a response body kept.
    pub const BODY_KEPT: usize = 1024;

    /// The `Retry-After` delay from now, from delta-seconds or an HTTP-date (unclamped).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| crate::delivery::retry_after::parse(v, std::time::SystemTime::now()))
    }
}

impl HttpClient {
    /// A request for an http(s) `url` with `body`, carrying the user agent.
    fn request<B>(
        &self,
        url: &str,
        method: fn(hyper::Uri) -> hyper::http::request::Builder,
        body: B,
    ) -> Result<Request<B>, Error> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.into(),
            reason,
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(invalid("only http and https are supported".into()));
        }
        let mut req = method(uri).body(body).map_err(|e| invalid(e.to_string()))?;
        req.headers_mut()
            .insert(USER_AGENT, self.user_agent.clone());
        Ok(req)
    }

    /// POSTs `body` to `url` with `headers`; `timeout` bounds the whole exchange.
    ///
    /// # Errors
    /// Invalid URLs, connection and TLS failures, timeouts.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<PostResponse, Error> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.into(),
            reason,
        };
        let mut req = self.request(url, Request::post, Full::new(body))?;
        let h = req.headers_mut();
        for (k, v) in headers {
            let k = HeaderName::try_from(k.as_str())
                .map_err(|e| invalid(format!("header `{k}`: {e}")))?;
            let v = HeaderValue::from_str(v).map_err(|e| invalid(format!("header `{k}`: {e}")))?;
            h.insert(k, v);
        }
        let exchange = async {
            let resp = self.poster.request(req).await.map_err(|e| Error::Request {
                url: url.into(),
                reason: chain(&e),
                refused: refused(&e),
            })?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .filter(|(k, _)| {
                    let k = k.as_str();
                    k == "retry-after"
                        || k == "content-type"
                        || k.starts_with("x-prometheus-remote-write-")
                })
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            let mut body = Vec::new();
            let mut incoming = resp.into_body();
            while body.len() < PostResponse::BODY_KEPT {
                match incoming.frame().await {
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            body.extend_from_slice(
                                &d[..d.len().min(PostResponse::BODY_KEPT - body.len())],
                            );
                        }
                    }
                    Some(Err(e)) => {
                        return Err(Error::Body {
                            reason: e.to_string(),
                        });
                    }
                    None => break,
                }
            }
            Ok(PostResponse {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| Error::Timeout { url: url.into() })?
    }
}

/// Whether `e` is a refused connection: the host answered that nothing listens on the port
/// (a TCP reset to the connection attempt). Costs the receiver nothing, unlike a request.
pub(crate) fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
