//! The client against a real HTTP server on loopback (a thread speaking HTTP/1.1).

use magpie_transport::{Error, HttpClient, TlsOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Serves each accepted connection with `respond(request) -> raw response`; `None` holds the
/// connection open without answering.
fn server(respond: impl Fn(&str) -> Option<Vec<u8>> + Send + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            match respond(&String::from_utf8_lossy(&req)) {
                Some(resp) => {
                    let _ = s.write_all(&resp);
                }
                None => std::thread::sleep(Duration::from_secs(5)),
            }
        }
    });
    addr
}

fn response(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn read_all(body: &mut magpie_transport::Body) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = body.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn client() -> HttpClient {
    HttpClient::new(&TlsOptions::default()).unwrap()
}

#[tokio::test]
async fn plain_body_arrives_whole_with_headers_sent() {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = server(move |req| {
        let _ = tx.send(req.to_string());
        Some(response(
            "Content-Type: text/plain; version=0.0.4\r\n",
            b"up 1\n",
        ))
    });
    let headers = [("Accept".to_string(), "text/plain".to_string())];
    let mut r = client()
        .get(
            &format!("http://{addr}/metrics"),
            &headers,
            Duration::from_secs(5),
            0,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/plain; version=0.0.4");
    assert_eq!(read_all(&mut r.body).await.unwrap(), b"up 1\n");
    let req = rx.recv().unwrap().to_ascii_lowercase();
    assert!(req.starts_with("get /metrics http/1.1"), "{req}");
    assert!(
        req.contains("accept: text/plain") && req.contains("accept-encoding: gzip"),
        "{req}"
    );
    assert!(
        req.contains("user-agent: magpie/")
            && req.contains("x-prometheus-scrape-timeout-seconds: 5.000"),
        "{req}"
    );
}

#[tokio::test]
async fn gzip_bodies_are_decoded() {
    let body: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("metric_{i} {i}\n").into_bytes())
        .collect();
    let compressed = gzip(&body);
    let addr = server(move |_| Some(response("Content-Encoding: gzip\r\n", &compressed)));
    let mut r = client()
        .get(&format!("http://{addr}/"), &[], Duration::from_secs(5), 0)
        .await
        .unwrap();
    assert_eq!(read_all(&mut r.body).await.unwrap(), body);
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_limit() {
    let bomb = gzip(&vec![0u8; 50 << 20]);
    assert!(bomb.len() < 100 << 10);
    let addr = server(move |_| Some(response("Content-Encoding: gzip\r\n", &bomb)));
    let mut r = client()
        .get(
            &format!("http://{addr}/"),
            &[],
            Duration::from_secs(5),
            1 << 20,
        )
        .await
        .unwrap();
    match read_all(&mut r.body).await {
        Err(Error::BodyLimit { limit }) => assert_eq!(limit, 1 << 20),
        other => panic!("expected the body limit, got {:?}", other.map(|b| b.len())),
    }
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let addr = server(|_| None);
    let err = client()
        .get(
            &format!("http://{addr}/"),
            &[],
            Duration::from_millis(300),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn refused_connections_and_bad_urls_are_errors() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = client()
        .get(
            &format!("http://127.0.0.1:{port}/"),
            &[],
            Duration::from_secs(5),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Request { .. }), "{err:?}");
    let err = client()
        .get("ftp://127.0.0.1/", &[], Duration::from_secs(1), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let dir = std::env::temp_dir().join(format!("magpie-ca-{}", std::process::id()));
    std::fs::write(&dir, "not a certificate").unwrap();
    let err = HttpClient::new(&TlsOptions {
        ca_file: Some(dir.clone()),
        ..TlsOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let _ = std::fs::remove_file(dir);
}
