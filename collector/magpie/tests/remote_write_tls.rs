//! Remote write over TLS to a real Prometheus that requires a client certificate.

mod common;

use common::{EXPOSITION, Magpie, plugin_dir};
use magpie_testkit::{Behavior, Prometheus, TargetServer, TestCerts, sample_value};
use magpie_transport::{HttpClient, TlsOptions};
use std::time::Duration;

/// Queries an HTTPS Prometheus that requires a client certificate; returns the JSON body.
fn query_tls(prom: &Prometheus, certs: &TestCerts, query: &str) -> String {
    let tls = TlsOptions {
        ca_file: Some(certs.path("ca.pem")),
        cert_file: Some(certs.path("client.pem")),
        key_file: Some(certs.path("client.key")),
        server_name: None,
    };
    let url = format!("https://{}/api/v1/query?query={query}", prom.addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = HttpClient::new(&tls).unwrap();
        let mut resp = client
            .get(&url, &[], Duration::from_secs(10), 1 << 20)
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        let mut body = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = resp.body.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(body).unwrap()
    })
}

#[test]
fn a_receiver_requiring_a_client_certificate_gets_one_and_refuses_others() {
    let certs = TestCerts::generate();
    let prom = Prometheus::start_tls(&certs);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("tls.toml");
    let ca = certs.path("ca.pem");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"with-cert\"\nplugin = \"remote-write\"\nurl = \"{url}\"\ntls = {{ ca_file = \"{ca}\", cert_file = \"{}\", key_file = \"{}\" }}\n[[export]]\nname = \"without\"\nplugin = \"remote-write\"\nurl = \"{url}\"\nmax_backoff = \"200ms\"\ntls = {{ ca_file = \"{ca}\" }}\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            certs.path("client.pem").display(),
            certs.path("client.key").display(),
            url = prom.write_url(),
            ca = ca.display(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"with-cert\"}",
        20.0,
    );
    m.wait_for(
        "magpie_exporter_failed_sends_total{exporter=\"without\"}",
        2.0,
    );
    let body = m.metrics();
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_sent_samples_total{exporter=\"without\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert!(
        m.log_text().contains("exporter `without`: sending failed"),
        "{}",
        m.log_text()
    );
    assert!(m.terminate().success());
    let got = query_tls(&prom, &certs, "room_temp_celsius%7Broom%3D%22b%22%7D");
    assert!(got.contains("\"19.25\""), "{got}");
}
