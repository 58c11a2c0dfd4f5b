//! Kept retained messages (`MqttClient::keep_retained`) against a real Mosquitto: published at
//! once, again at each change, and again after a reconnect (here the broker's copy was cleared
//! by someone else before the broker restarted).

use bytes::Bytes;
use magpie_testkit::Mosquitto;
use magpie_transport::TlsOptions;
use magpie_transport::delivery::RetryPolicy;
use magpie_transport::mqtt::{MqttClient, MqttSettings};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const TOPIC: &str = "test/status/kept/fleet";

/// The retained message of [`TOPIC`], read by a fresh `mosquitto_sub`.
async fn retained(port: u16) -> Option<String> {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", TOPIC])
            .args(["-C", "1", "-W", "1", "--retained-only"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    })
    .await
    .unwrap()
}

async fn wait_for(port: u16, want: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = retained(port).await;
        if got.as_deref() == want {
            return;
        }
        assert!(Instant::now() < deadline, "retained {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_kept_message_follows_its_value_and_comes_back_after_a_reconnect() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = watch::channel(Bytes::from_static(b"a"));
    let client = rt.block_on(async {
        let c = MqttClient::start(MqttSettings {
            url: broker.url(),
            client_id: "kept".into(),
            credentials: None,
            tls: TlsOptions::default(),
            keep_alive: Duration::from_secs(5),
            clean_session: true,
            status_topic: Some("test/status/kept".into()),
            max_inflight: 4,
            reconnect: RetryPolicy {
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(300),
            },
        })
        .unwrap();
        c.keep_retained(TOPIC, rx);
        wait_for(port, Some("a")).await;
        tx.send_replace(Bytes::from_static(b"b"));
        wait_for(port, Some("b")).await;
        // Someone clears it; the client does not know until it connects again.
        let cleared = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", TOPIC])
            .args(["-r", "-n", "-q", "1"])
            .status()
            .unwrap();
        assert!(cleared.success());
        wait_for(port, None).await;
        c
    });
    broker.stop();
    broker.resume();
    rt.block_on(async {
        // Nothing changed: only the publish at the new CONNACK brings it back.
        wait_for(port, Some("b")).await;
        tx.send_replace(Bytes::from_static(b"c"));
        wait_for(port, Some("c")).await;
        assert!(client.is_connected());
        client.close().await;
    });
}
