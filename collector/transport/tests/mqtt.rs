//! The MQTT publisher against a real Mosquitto on a loopback port.

use bytes::Bytes;
use magpie_testkit::{Mosquitto, MosquittoOptions};
use magpie_transport::delivery::RetryPolicy;
use magpie_transport::mqtt::{MqttClient, MqttSettings, Qos};
use magpie_transport::{Error, TlsOptions};
use std::time::{Duration, Instant};

fn settings(url: String, id: &str) -> MqttSettings {
    MqttSettings {
        url,
        client_id: id.into(),
        credentials: None,
        tls: TlsOptions::default(),
        keep_alive: Duration::from_secs(5),
        clean_session: true,
        status_topic: Some(format!("test/status/{id}")),
        max_inflight: 8,
        reconnect: RetryPolicy {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn acknowledged_publishes_arrive_in_order_with_status() {
    let broker = Mosquitto::start();
    let sub = broker.subscribe("test/#", "sub-ack", None);
    rt().block_on(async {
        let c = MqttClient::start(settings(broker.url(), "pub-ack")).unwrap();
        for i in 0..50u32 {
            let qos = if i % 2 == 0 {
                Qos::AtLeastOnce
            } else {
                Qos::AtMostOnce
            };
            c.publish("test/data", Bytes::from(i.to_string()), qos)
                .await
                .unwrap();
        }
        assert!(c.is_connected());
        c.close().await;
    });
    wait_until("50 messages and both statuses", || {
        sub.messages()
            .iter()
            .filter(|m| m.topic == "test/data")
            .count()
            == 50
            && sub.messages().iter().any(|m| m.payload == b"offline")
    });
    let msgs = sub.messages();
    let data: Vec<String> = msgs
        .iter()
        .filter(|m| m.topic == "test/data")
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect();
    // MQTT orders messages of one QoS level on a topic; a broker may let QoS 0 messages pass
    // QoS 1 ones held back by the subscriber's in-flight window, so each level is checked on
    // its own.
    for parity in [0, 1] {
        let got: Vec<&String> = data
            .iter()
            .filter(|d| d.parse::<u32>().unwrap() % 2 == parity)
            .collect();
        let want: Vec<String> = (0..50u32)
            .filter(|i| i % 2 == parity)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(got, want.iter().collect::<Vec<_>>(), "all: {data:?}");
    }
    let status: Vec<&[u8]> = msgs
        .iter()
        .filter(|m| m.topic == "test/status/pub-ack")
        .map(|m| m.payload.as_slice())
        .collect();
    assert_eq!(status, [b"online".as_slice(), b"offline"]);
}

#[test]
fn a_wrong_password_is_a_clear_error_naming_the_broker() {
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: Some(("magpie".into(), "right".into())),
        tls: false,
        tcp_nodelay: false,
    });
    rt().block_on(async {
        let mut s = settings(broker.url(), "pub-pw");
        s.credentials = Some(("magpie".into(), "wrong".into()));
        let c = MqttClient::start(s).unwrap();
        let e = c
            .publish("test/x", Bytes::from_static(b"x"), Qos::AtLeastOnce)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Broker { .. }), "{text}");
        assert!(text.contains(&broker.url()), "{text}");
        assert!(text.contains("refused the connection"), "{text}");
        assert!(text.contains("basic_auth"), "{text}");
        assert!(!text.contains("wrong"), "the password leaked: {text}");

        let mut s = settings(broker.url(), "pub-pw2");
        s.credentials = Some(("magpie".into(), "right".into()));
        let c = MqttClient::start(s).unwrap();
        c.publish("test/x", Bytes::from_static(b"x"), Qos::AtLeastOnce)
            .await
            .unwrap();
    });
}

#[test]
fn tls_needs_the_right_ca() {
    let broker = Mosquitto::start_with(&MosquittoOptions {
        user: None,
        tls: true,
        tcp_nodelay: false,
    });
    assert!(broker.url().starts_with("mqtts://"));
    rt().block_on(async {
        // System roots do not know the test CA.
        let c = MqttClient::start(settings(broker.url(), "pub-tls-bad")).unwrap();
        let e = c
            .publish("test/x", Bytes::from_static(b"x"), Qos::AtLeastOnce)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains(&broker.url()), "{e}");
        assert!(e.to_lowercase().contains("certificate"), "{e}");

        let mut s = settings(broker.url(), "pub-tls-good");
        s.tls.ca_file = Some(broker.ca_file());
        let c = MqttClient::start(s).unwrap();
        c.publish("test/x", Bytes::from_static(b"x"), Qos::AtLeastOnce)
            .await
            .unwrap();
    });
}

#[test]
fn a_broker_restart_fails_then_recovers() {
    let mut broker = Mosquitto::start();
    let r = rt();
    let c = r.block_on(async {
        let c = MqttClient::start(settings(broker.url(), "pub-restart")).unwrap();
        c.publish("test/a", Bytes::from_static(b"1"), Qos::AtLeastOnce)
            .await
            .unwrap();
        c
    });
    broker.stop();
    r.block_on(async {
        // The loss is noticed at the latest by the next write; publishing then fails fast.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let res = c
                .publish("test/a", Bytes::from_static(b"2"), Qos::AtLeastOnce)
                .await;
            if let Err(e) = res {
                assert!(e.to_string().contains(&broker.url()), "{e}");
                break;
            }
            assert!(Instant::now() < deadline, "publishing kept succeeding");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!c.is_connected());
    });
    broker.resume();
    r.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c
            .publish("test/a", Bytes::from_static(b"3"), Qos::AtLeastOnce)
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "never reconnected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(c.is_connected());
    });
}

#[test]
fn a_lost_connection_resolves_every_publish_in_flight() {
    let mut broker = Mosquitto::start();
    let url = broker.url();
    let r = rt();
    let c = r.block_on(async {
        let c = MqttClient::start(settings(url.clone(), "pub-loss")).unwrap();
        c.publish("test/big", Bytes::from_static(b"warm-up"), Qos::AtLeastOnce)
            .await
            .unwrap();
        c
    });
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        broker.stop();
        broker
    });
    let (ok, failed) = r.block_on(async {
        let (mut ok, mut failed) = (0u32, 0u32);
        let deadline = Instant::now() + Duration::from_secs(20);
        while failed == 0 && Instant::now() < deadline {
            let mut acks = Vec::new();
            for _ in 0..8 {
                let body = Bytes::from(vec![7u8; 256 * 1024]);
                match c.submit("test/big", body, Qos::AtLeastOnce).await {
                    Ok(a) => acks.push(a),
                    Err(_) => failed += 1,
                }
            }
            for a in acks {
                // Every publish resolves, acknowledged or failed: none is left hanging when
                // the connection goes.
                match tokio::time::timeout(Duration::from_secs(10), a.wait())
                    .await
                    .expect("a publish in flight never resolved")
                {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(e.to_string().contains(&url), "{e}");
                        failed += 1;
                    }
                }
            }
        }
        (ok, failed)
    });
    drop(stopper.join().unwrap());
    assert!(ok > 0, "nothing was acknowledged before the broker stopped");
    assert!(failed > 0, "no publish failed although the broker stopped");
}

#[test]
fn a_server_name_is_refused_for_a_broker_naming_it() {
    // rumqttc verifies a broker against its address; a name to verify instead is refused
    // before any connection rather than ignored.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let mut s = settings("mqtts://127.0.0.1:8883".into(), "named");
    s.tls.server_name = Some("broker.example.org".into());
    let Err(e) = MqttClient::start(s) else {
        panic!("a server_name for a broker was accepted");
    };
    assert!(matches!(e, Error::ServerName { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("server_name `broker.example.org`") && e.contains("MQTT"),
        "{e}"
    );
}
