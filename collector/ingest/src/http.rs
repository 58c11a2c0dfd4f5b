//! The HTTP ingest listener: the paths other agents and batch jobs push to.
//!
//! | method | path | decoder |
//! |---|---|---|
//! | `POST` | `/api/v1/write` | remote write 1.0 / 2.0 (by `Content-Type`) |
//! | `POST` | `/write`, `/api/v2/write` | Influx line protocol |
//! | `PUT`, `POST` | `/metrics/job/<job>{/<label>/<value>}` | Prometheus text (Pushgateway) |
//! | `POST` | `/v1/metrics` | OTLP/HTTP metrics (protobuf or JSON) |
//!
//! A 2xx is sent only after [`Source::accept`] returned, that is once the samples are in the
//! WAL's file. Answers: 204 (200 on Pushgateway paths) accepted; 400 malformed (the body names
//! the decoder's reason); 401 bad credentials (with `WWW-Authenticate`, [`crate::auth`]); 404
//! no decoder for the path; 405 wrong method; 413 body, inflated body or sample count over the
//! limit; 415 a `Content-Encoding` the path does not take ([`crate::encoding`]); 429 over
//! `max_messages_per_second` (with `Retry-After` in seconds); 503 WAL failure or decoder
//! quarantined (retry).
//!
//! With a TLS configuration the listener speaks HTTPS only; a connection that fails the
//! handshake (no client certificate when one is required, an untrusted one, plain HTTP) is
//! closed, counted (`reason="tls_handshake"`) and logged with the peer's address.
//! `/v1/metrics` answers as OTLP/HTTP asks ([`crate::otlp`]): 200 with an
//! `ExportMetricsServiceResponse`, errors with a `google.rpc.Status`, both in the request's
//! encoding.

use crate::auth::Credentials;
use crate::encoding::Encoding;
use crate::source::{Decoder, Message, Reason, Reject, Source};
use crate::status::Link;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Request headers handed to decoders.
const PASSED_HEADERS: &[&str] = &[
    "content-encoding",
    "x-prometheus-remote-write-version",
    "user-agent",
];

/// How long one connection may stay open.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP ingest source: its listener's routes.
#[derive(Debug)]
pub struct HttpSource {
    /// The source (name, limits, WAL).
    pub source: Source,
    /// Decoder for `POST /api/v1/write`.
    pub remote_write: Option<Arc<Decoder>>,
    /// Decoder for `POST /write` and `/api/v2/write`.
    pub influx: Option<Arc<Decoder>>,
    /// Decoder for Pushgateway paths.
    pub pushgateway: Option<Arc<Decoder>>,
    /// Decoder for `POST /v1/metrics` (OTLP/HTTP).
    pub otlp: Option<Arc<Decoder>>,
    /// The credentials a push must carry (`basic_auth`, `bearer_token_file`); none: open.
    pub credentials: Credentials,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    RemoteWrite,
    Influx,
    Pushgateway,
    Otlp,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/api/v1/write" => Some(Self::RemoteWrite),
            "/write" | "/api/v2/write" => Some(Self::Influx),
            "/v1/metrics" => Some(Self::Otlp),
            p if p.starts_with("/metrics/job/") || p.starts_with("/metrics/job@base64/") => {
                Some(Self::Pushgateway)
            }
            _ => None,
        }
    }

    fn allows(self, m: &Method) -> bool {
        *m == Method::POST || (self == Self::Pushgateway && *m == Method::PUT)
    }

    const fn what(self) -> &'static str {
        match self {
            Self::RemoteWrite => "remote write",
            Self::Influx => "Influx line protocol",
            Self::Pushgateway => "Pushgateway",
            Self::Otlp => "OTLP",
        }
    }

    /// Whether the core inflates gzip bodies for this route's decoder.
    const fn inflates(self) -> bool {
        matches!(self, Self::Influx | Self::Pushgateway)
    }

    const fn ok(self) -> StatusCode {
        match self {
            Self::Pushgateway | Self::Otlp => StatusCode::OK,
            _ => StatusCode::NO_CONTENT,
        }
    }
}

fn answer(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn status_of(r: &Reject) -> StatusCode {
    match r.reason {
        Reason::Malformed | Reason::DecoderFault | Reason::TlsHandshake => StatusCode::BAD_REQUEST,
        Reason::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Reason::TooLarge | Reason::TooManySamples => StatusCode::PAYLOAD_TOO_LARGE,
        Reason::Unsupported => StatusCode::NOT_FOUND,
        Reason::Unauthorized => StatusCode::UNAUTHORIZED,
        Reason::Wal | Reason::DecoderUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
    }
}

impl HttpSource {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/v1/metrics" {
            return self.handle_route(req).await;
        }
        // OTLP senders read the status code and a `google.rpc.Status`, not plain text.
        let json = crate::otlp::is_json(
            req.headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        );
        let r = self.handle_route(req).await;
        if r.status().is_success() {
            return crate::otlp::accepted(json);
        }
        let status = r.status();
        let kept: Vec<_> = [hyper::header::RETRY_AFTER, hyper::header::WWW_AUTHENTICATE]
            .into_iter()
            .flat_map(|h| {
                r.headers()
                    .get_all(&h)
                    .iter()
                    .map(|v| (h.clone(), v.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut answer =
            crate::otlp::refused(status, json, String::from_utf8_lossy(&body).trim_end());
        for (h, v) in kept {
            answer.headers_mut().append(h, v);
        }
        answer
    }

    async fn handle_route(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let context = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), ToString::to_string);
        let refuse = |r: Reject| {
            let r = self.source.refuse(&context, r);
            answer(status_of(&r), format!("{}\n", r.detail))
        };
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map(hyper::header::HeaderValue::as_bytes);
        if !self.credentials.admits(authorization) {
            let mut r = refuse(Reject::new(
                Reason::Unauthorized,
                if authorization.is_some() {
                    "wrong credentials"
                } else {
                    "credentials required"
                },
            ));
            for c in self.credentials.challenges() {
                if let Ok(v) = c.parse() {
                    r.headers_mut().append(hyper::header::WWW_AUTHENTICATE, v);
                }
            }
            return r;
        }
        let Some(route) = Route::of(req.uri().path()) else {
            return refuse(Reject::new(
                Reason::Unsupported,
                format!("no ingest path {}", req.uri().path()),
            ));
        };
        if !route.allows(req.method()) {
            self.source.refuse(
                &context,
                Reject::new(Reason::Unsupported, format!("method {}", req.method())),
            );
            return answer(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not accepted on {}\n", req.method(), req.uri().path()),
            );
        }
        if let Err(wait) = self.source.admit() {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut r = refuse(Reject::new(
                Reason::RateLimited,
                format!(
                    "more than max_messages_per_second {}; retry in {secs} s",
                    self.source.limits().max_messages_per_second
                ),
            ));
            r.headers_mut()
                .insert(hyper::header::RETRY_AFTER, secs.max(1).into());
            return r;
        }
        let decoder = match route {
            Route::RemoteWrite => &self.remote_write,
            Route::Influx => &self.influx,
            Route::Pushgateway => &self.pushgateway,
            Route::Otlp => &self.otlp,
        };
        let Some(decoder) = decoder else {
            return refuse(Reject::new(
                Reason::Unsupported,
                format!("this source has no {} decoder configured", route.what()),
            ));
        };
        let encoding = if route.inflates() {
            match Encoding::of(
                req.headers()
                    .get(hyper::header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
            ) {
                Ok(e) => e,
                Err(r) => return refuse(r),
            }
        } else {
            Encoding::Identity
        };
        let max = self.source.limits().max_body_bytes;
        let too_large = |n: &dyn std::fmt::Display| {
            Reject::new(
                Reason::TooLarge,
                format!("body of {n} bytes is larger than max_body_bytes {max}"),
            )
        };
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared.filter(|n| *n > max) {
            return refuse(too_large(&n));
        }
        let content_type = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let headers: Vec<(String, String)> = PASSED_HEADERS
            .iter()
            // The decoder of an inflated body sees it as sent without an encoding.
            .filter(|h| !(route.inflates() && **h == "content-encoding"))
            .filter_map(|h| {
                req.headers()
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*h).to_string(), v.to_string()))
            })
            .collect();
        let limit = usize::try_from(max).unwrap_or(usize::MAX);
        let body = match Limited::new(req.into_body(), limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return refuse(too_large(&format!("more than {max}")));
            }
            Err(e) => {
                return refuse(Reject::new(
                    Reason::Malformed,
                    format!("reading the body failed: {e}"),
                ));
            }
        };
        let body = match encoding {
            Encoding::Identity => body,
            Encoding::Gzip => {
                match tokio::task::spawn_blocking(move || crate::encoding::gunzip(&body, max)).await
                {
                    Ok(Ok(b)) => Bytes::from(b),
                    Ok(Err(r)) => return refuse(r),
                    Err(e) => {
                        return refuse(Reject::new(
                            Reason::Malformed,
                            format!("inflating the body failed: {e}"),
                        ));
                    }
                }
            }
        };
        let msg = Message {
            context: &context,
            content_type: &content_type,
            headers: &headers,
            body: &body,
        };
        match self.source.accept(decoder, msg).await {
            Ok(a) => {
                let mut r = answer(route.ok(), String::new());
                if let Ok(v) = a.samples.to_string().parse() {
                    r.headers_mut()
                        .insert("x-prometheus-remote-write-samples-written", v);
                }
                r
            }
            Err(r) => answer(status_of(&r), format!("{}\n", r.detail)),
        }
    }
}

/// Serves `src` on `listener` until `stop` turns true, over TLS when `tls` is given. Each
/// connection is its own task (its handshake included, bounded by the connection timeout); a
/// request in flight when the stop comes finishes (its append included).
pub async fn serve(
    listener: tokio::net::TcpListener,
    src: Arc<HttpSource>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    src.source.status().set_link(Link::Listening);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => {
                src.source.status().set_link(Link::Stopped);
                return;
            }
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                log::warn!(
                    "accepting an ingest connection failed; source={} error={e}",
                    src.source.name()
                );
                src.source.status().failed(
                    Link::Listening,
                    format!("accepting a connection: {e}"),
                    crate::source::now_ms(),
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let src = Arc::clone(&src);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, async move {
                match acceptor {
                    None => connection(stream, src).await,
                    Some(a) => match a.accept(stream).await {
                        Ok(tls) => connection(tls, src).await,
                        Err(e) => {
                            src.source.refuse(
                                &format!("tls handshake from {peer}"),
                                Reject::new(Reason::TlsHandshake, e.to_string()),
                            );
                        }
                    },
                }
            })
            .await;
        });
    }
}

/// Answers the requests of one connection.
async fn connection<S>(stream: S, src: Arc<HttpSource>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let src = Arc::clone(&src);
        async move { Ok::<_, std::convert::Infallible>(src.handle(req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
        .await;
}
