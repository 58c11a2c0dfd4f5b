//! The prom-scrape plugin, built for wasm32 and run by the host against a real HTTP server on
//! an ephemeral loopback port, checked against the same parser run natively.

mod support;

use magpie_host::{
    BoxFuture, ByteStream, Fetch, FetchError, FetchRequest, FetchResponse, Grants, Host,
    InstanceSpec, PluginError,
};
use magpie_sdk::abi::{HostError, Replay, ScrapeRequest, Value};
use magpie_testkit::guest;
use prom_scrape::{Format, OwnedSample, ParseOptions, VecSink, parse_slice};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The text-format example of the Prometheus documentation, plus a NaN and a summary.
const TEXT_BODY: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} NaN
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;

const OPENMETRICS_BODY: &str = r#"# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69
# TYPE http_requests counter
http_requests_total{code="200"} 1027 1395066363.5
http_requests_total{code="400"} 3 1395066363.5
# TYPE foo histogram
foo_bucket{le="0.1"} 8 # {trace_id="KOO5S4vxi0o"} 0.067
foo_bucket{le="+Inf"} 17
foo_count 17
foo_sum 324789.3
# EOF
"#;

const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A test server on an ephemeral loopback port that answers every request with one fixed
/// response, and records the request heads it received.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(status: &str, content_type: &str, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let requests = Arc::<Mutex<Vec<String>>>::default();
        let seen = Arc::clone(&requests);
        let mut response = format!(
            "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body.as_bytes());
        // Lives until the test process ends, blocked in `accept` between requests.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
                seen.lock().unwrap().push(head);
                // The client may hang up early (a body over its limit); that is its business.
                let _ = conn.write_all(&response);
            }
        });
        Self { url, requests }
    }

    fn spec(&self, config: Value) -> InstanceSpec {
        spec(
            "job",
            config,
            Grants::new(vec![self.url.clone()], &[]).unwrap(),
        )
    }
}

/// A host whose scrapers fetch through [`Http10`].
fn http_host() -> Host {
    Host::new().unwrap().with_fetcher(Arc::new(Http10))
}

/// The host side of `http_fetch` for these tests: a minimal HTTP/1.0 client (no keep-alive, no
/// TLS, no compression) that ends a body over `body_size_limit` with [`HostError::Limit`], as
/// the `Fetch` contract asks.
struct Http10;

impl Fetch for Http10 {
    fn fetch(&self, req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        Box::pin(async move { get(req).await.map_err(FetchError::from) })
    }
}

async fn get(req: FetchRequest) -> Result<FetchResponse, HostError> {
    let net = |_| HostError::Network;
    let rest = req.url.strip_prefix("http://").ok_or(HostError::Invalid)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut conn = TcpStream::connect(authority).await.map_err(net)?;
    let mut head = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n");
    for (k, v) in &req.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.map_err(net)?;

    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.map_err(net)?;
        if n == 0 || buf.len() > 64 << 10 {
            return Err(HostError::Network);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HostError::Network)?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(HostError::Network)?;
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let pending = buf.split_off(end + 4);
    Ok(FetchResponse {
        status,
        content_type,
        body: Box::new(Body {
            conn,
            pending,
            read: 0,
            limit: req.body_size_limit,
        }),
    })
}

/// A response body: the bytes read along with the head, then the connection until it closes.
struct Body {
    conn: TcpStream,
    pending: Vec<u8>,
    read: u64,
    limit: u64,
}

impl ByteStream for Body {
    fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>> {
        Box::pin(async move {
            let n = if self.pending.is_empty() {
                self.conn.read(buf).await.map_err(|_| HostError::Network)?
            } else {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                self.pending.drain(..n);
                n
            };
            self.read += n as u64;
            if self.limit > 0 && self.read > self.limit {
                return Err(HostError::Limit);
            }
            Ok(n)
        })
    }
}

fn native(body: &str, format: Format) -> Vec<OwnedSample> {
    let mut sink = VecSink::default();
    parse_slice(body.as_bytes(), ParseOptions::new(format), &mut sink).unwrap();
    sink.samples
}

#[tokio::test]
async fn prom_scrape_delivers_a_text_exposition_sample_for_sample() {
    let server = Server::start("200 OK", TEXT_TYPE, TEXT_BODY);
    let host = http_host();
    let spec = server.spec(Value::default());
    let req = request(&server.url, 0, 0);
    let (r, samples) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    r.unwrap();

    assert_eq!(samples, native(TEXT_BODY, Format::PrometheusText));
    assert_eq!(samples.len(), 16);
    let msdos = &samples[2];
    assert_eq!(msdos.name, "msdos_file_access_time_seconds");
    assert_eq!(
        msdos.labels,
        [
            ("path".to_string(), r"C:\DIR\FILE.TXT".to_string()),
            (
                "error".to_string(),
                "Cannot find file:\n\"FILE.TXT\"".to_string()
            ),
        ]
    );
    assert_eq!(samples[0].timestamp_ms, Some(1_395_066_363_000));
    assert_eq!(samples[3].timestamp_ms, None);
    assert_eq!(samples[4].value, f64::INFINITY);
    assert_eq!(samples[4].timestamp_ms, Some(-3_982_045));
    assert!(samples[13].value.is_nan());

    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].contains(&format!("Accept: {}\r\n", prom_scrape::ACCEPT_HEADER)),
        "{}",
        requests[0]
    );
}

#[tokio::test]
async fn prom_scrape_reads_openmetrics_by_its_content_type() {
    let server = Server::start("200 OK", OPENMETRICS_TYPE, OPENMETRICS_BODY);
    let host = http_host();
    let spec = server.spec(Value::default());
    let req = request(&server.url, 0, 0);
    let (r, samples) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    r.unwrap();

    assert_eq!(samples, native(OPENMETRICS_BODY, Format::OpenMetrics));
    assert_eq!(samples.len(), 10);
    // Timestamps in seconds become milliseconds; that is OpenMetrics, not the text format.
    let total = samples
        .iter()
        .find(|s| s.name == "http_requests_total")
        .unwrap();
    assert_eq!(total.timestamp_ms, Some(1_395_066_363_500));
    // The exemplar is dropped; the bucket stays.
    let bucket = samples.iter().find(|s| s.name == "foo_bucket").unwrap();
    assert_eq!(bucket.labels, [("le".to_string(), "0.1".to_string())]);
    assert_eq!(bucket.value, 8.0);
}

#[tokio::test]
async fn prom_scrape_body_over_the_size_limit_fails_the_scrape() {
    let server = Server::start("200 OK", TEXT_TYPE, TEXT_BODY);
    let host = http_host();
    let spec = server.spec(Value::default());
    let limit = 200;
    let req = request(&server.url, limit, 0);
    let (r, _) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    let reason = failure(r);
    assert!(reason.contains(&server.url), "{reason}");
    assert!(
        reason.contains("body exceeds the size limit of 200 bytes"),
        "{reason}"
    );
    // The same limit with room to spare passes.
    let req = request(&server.url, TEXT_BODY.len() as u64, 0);
    let (r, samples) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    r.unwrap();
    assert_eq!(samples.len(), 16);
}

#[tokio::test]
async fn prom_scrape_more_samples_than_the_limit_fails_the_scrape() {
    let server = Server::start("200 OK", TEXT_TYPE, TEXT_BODY);
    let host = http_host();
    let spec = server.spec(Value::default());
    let req = request(&server.url, 0, 3);
    let (r, _) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    let reason = failure(r);
    assert!(reason.contains(&server.url), "{reason}");
    // The fourth sample is on line 10 of the body.
    assert!(
        reason.contains("line 10: more than the limit of 3 samples"),
        "{reason}"
    );
    let req = request(&server.url, 0, 16);
    let (r, _) = scrape(&host, "prom-scrape", &spec, &req, None).await;
    r.unwrap();
}

#[tokio::test]
async fn prom_scrape_ends_the_parse_when_the_host_takes_no_more_samples() {
    let body: String = (0..2000).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    let server = Server::start("200 OK", TEXT_TYPE, &body);
    let host = http_host();
    let spec = server.spec(Value::default());
    let req = request(&server.url, 0, 0);
    // The sink refuses more after the first batch (512 samples, the SDK's
    // `Emitter::BATCH_SAMPLES`): the parse stops at the sample whose push sent that batch.
    let (r, samples) = scrape(&host, "prom-scrape", &spec, &req, Some(1)).await;
    let reason = failure(r);
    assert!(reason.contains(&server.url), "{reason}");
    assert!(
        reason.contains("line 512: sink refused the data: the host took no more samples"),
        "{reason}"
    );
    assert_eq!(samples.len(), 512);
}

#[tokio::test]
async fn prom_scrape_reports_bad_status_and_bad_lines_with_the_target() {
    let server = Server::start("503 Service Unavailable", TEXT_TYPE, "down\n");
    let (r, _) = scrape(
        &http_host(),
        "prom-scrape",
        &server.spec(Value::default()),
        &request(&server.url, 0, 0),
        None,
    )
    .await;
    let reason = failure(r);
    assert!(reason.contains(&server.url), "{reason}");
    assert!(reason.contains("HTTP status 503"), "{reason}");

    let body = "up 1\nup{job=\"a\" 1\n";
    let server = Server::start("200 OK", TEXT_TYPE, body);
    let (r, _) = scrape(
        &http_host(),
        "prom-scrape",
        &server.spec(Value::default()),
        &request(&server.url, 0, 0),
        None,
    )
    .await;
    let reason = failure(r);
    assert!(reason.contains(&server.url), "{reason}");
    assert!(reason.contains("line 2: "), "{reason}");
}

#[tokio::test]
async fn prom_scrape_checks_its_config() {
    let server = Server::start("200 OK", TEXT_TYPE, TEXT_BODY);
    let host = http_host();
    let plugin = host
        .load("prom-scrape", &guest("prom-scrape"))
        .await
        .unwrap();
    let bad = server.spec(table(vec![("max_line_length", Value::Int(10))]));
    let err = host.instantiate(&plugin, &bad).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::Failed { reason, .. } if reason.contains("config key `max_line_length`: unknown key")),
        "{err}"
    );
    // A line limit shorter than the body's longest line fails the scrape at that line.
    let short = server.spec(table(vec![("max_line_len", Value::Int(40))]));
    let mut instance = host.instantiate(&plugin, &short).await.unwrap();
    let (s, _) = sink(None);
    let (_, r) = instance.scrape(&request(&server.url, 0, 0), s).await;
    let reason = failure(r);
    assert!(
        reason.contains("line 1: longer than the limit of 40 bytes"),
        "{reason}"
    );
}

/// A scrape request with replay tokens.
fn replay_request(url: &str, token: u64, order: u64) -> ScrapeRequest<'_> {
    ScrapeRequest::V2 {
        target: url.into(),
        scrape_time_ms: 0,
        timeout_ms: 10_000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: Default::default(),
        replay: Replay { token, order },
    }
}

#[tokio::test]
async fn prom_scrape_repeats_the_series_of_the_scrape_the_host_holds() {
    repeats_of(TEXT_TYPE, TEXT_BODY, Format::PrometheusText, 0).await;
}

#[tokio::test]
async fn prom_scrape_repeats_openmetrics_lines_but_those_with_an_exemplar() {
    let exemplars = OPENMETRICS_BODY
        .lines()
        .filter(|l| l.contains(" # {"))
        .count();
    assert!(exemplars > 0);
    repeats_of(
        OPENMETRICS_TYPE,
        OPENMETRICS_BODY,
        Format::OpenMetrics,
        exemplars,
    )
    .await;
}

/// Scrapes `body` with and without the order of the instance's last scrape; every sample line
/// but `whole` of them (exemplars) repeats when offered that order.
async fn repeats_of(content_type: &str, body: &str, format: Format, whole: usize) {
    let server = Server::start("200 OK", content_type, body);
    let host = http_host();
    let plugin = host
        .load("prom-scrape", &guest("prom-scrape"))
        .await
        .unwrap();
    let mut instance = host
        .instantiate(&plugin, &server.spec(Value::default()))
        .await
        .unwrap();
    let want = native(body, format);
    let mut call = async |req: ScrapeRequest<'_>| {
        let (s, seen) = sink(None);
        let (_, r) = instance.scrape(&req, s).await;
        r.unwrap();
        seen.lock().unwrap().clone()
    };
    // The first scrape, and one whose order names no scrape of this instance, send whole
    // samples; one offered the order of the instance's last scrape repeats every series.
    for (token, order, repeats) in [(1, 0, false), (2, 1, true), (3, 9, false), (4, 3, true)] {
        let got = call(replay_request(&server.url, token, order)).await;
        assert_eq!(got.len(), want.len());
        let mut repeated = 0;
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.value.to_bits(), w.value.to_bits());
            assert_eq!(g.timestamp_ms, w.timestamp_ms);
            if g.name.is_empty() {
                assert!(g.labels.is_empty(), "{g:?}");
                repeated += 1;
            } else {
                assert_eq!(g, w);
            }
        }
        let expected = if repeats { want.len() - whole } else { 0 };
        assert_eq!(repeated, expected, "token {token}, order {order}");
    }
    // A V1 request carries no tokens: whole samples, and the positions are forgotten.
    assert_eq!(call(request(&server.url, 0, 0)).await, want);
    let got = call(replay_request(&server.url, 5, 4)).await;
    assert_eq!(got, want);
}
