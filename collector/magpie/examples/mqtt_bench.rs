//! MQTT figures: bytes per sample of each encoding of the `mqtt` plugin, and publish
//! throughput at QoS 0 and QoS 1 against a local Mosquitto (started like the tests do).
//! Prints a table; asserts nothing. Run through `bench/mqtt.sh`.

use bytes::Bytes;
use magpie_sdk::abi::{ExportBatch, ExportBatchBuilder, Label, Payload, Value};
use magpie_testkit::{Mosquitto, MosquittoOptions};
use magpie_transport::TlsOptions;
use magpie_transport::delivery::RetryPolicy;
use magpie_transport::mqtt::{MqttClient, MqttSettings, Qos};
use std::time::{Duration, Instant};

/// A node-exporter-like batch: `series` series of `points` points each.
fn batch(series: usize, points: usize) -> ExportBatch<'static> {
    let mut b = ExportBatchBuilder::default();
    for i in 0..series {
        b.series([
            Label::new("__name__", "node_network_receive_bytes_total"),
            Label {
                name: "device".into(),
                value: format!("eth{}", i % 4).into(),
            },
            Label {
                name: "index".into(),
                value: i.to_string().into(),
            },
            Label::new("instance", "pi-07:9100"),
            Label::new("job", "node"),
            Label::new("site", "pi-07"),
        ]);
        for t in 0..points {
            #[allow(clippy::cast_precision_loss)]
            let v = (i * 1000 + t * 17) as f64 * 1.5;
            b.point(1_700_000_000_000 + i64::try_from(t).unwrap() * 15_000, v);
        }
    }
    b.finish()
}

fn encode(encoding: &str, batch: &ExportBatch<'_>) -> Vec<Payload<'static>> {
    let config = Value::Table(vec![
        ("topic".into(), Value::Str("bench/{job}".into())),
        ("encoding".into(), Value::Str(encoding.into())),
    ]);
    mqtt::Mqtt::from_table(&config)
        .unwrap()
        .export(batch)
        .unwrap()
}

async fn throughput(client: &MqttClient, payloads: &[Payload<'static>], qos: Qos) -> (f64, f64) {
    let per_round: u64 = payloads.iter().map(|p| u64::from(p.samples)).sum();
    let started = Instant::now();
    let (mut samples, mut messages) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(3) {
        let mut acks = Vec::new();
        for p in payloads {
            let topic = p.topic.as_deref().unwrap();
            acks.push(
                client
                    .submit(topic, Bytes::copy_from_slice(&p.body), qos)
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.wait().await.unwrap();
        }
        samples += per_round;
        messages += payloads.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    (samples as f64 / secs, messages as f64 / secs)
}

fn main() {
    let b = batch(2000, 10);
    let n = b.sample_count();
    println!("encoding       bytes/sample  messages  (batch: {n} samples, 2000 series, 6 labels)");
    for encoding in ["json", "influx", "remote-write"] {
        let ps = encode(encoding, &b);
        let bytes: usize = ps.iter().map(|p| p.body.len()).sum();
        #[allow(clippy::cast_precision_loss)]
        let per = bytes as f64 / n as f64;
        println!("{encoding:<14} {per:>12.1}  {:>8}", ps.len());
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!();
    println!("publish to local mosquitto, 3 s each (pre-encoded messages, in-flight window 32)");
    println!("broker            encoding       qos    samples/s   messages/s");
    for nodelay in [false, true] {
        let broker = Mosquitto::start_with(&MosquittoOptions {
            tcp_nodelay: nodelay,
            ..MosquittoOptions::default()
        });
        let label = if nodelay {
            "set_tcp_nodelay"
        } else {
            "default"
        };
        rt.block_on(async {
            let client = MqttClient::start(MqttSettings {
                url: broker.url(),
                client_id: "magpie-bench".into(),
                credentials: None,
                tls: TlsOptions::default(),
                keep_alive: Duration::from_secs(30),
                clean_session: true,
                status_topic: None,
                max_inflight: 32,
                reconnect: RetryPolicy::DEFAULT,
            })
            .unwrap();
            for encoding in ["json", "remote-write"] {
                let ps = encode(encoding, &b);
                for (q, qos) in [(0, Qos::AtMostOnce), (1, Qos::AtLeastOnce)] {
                    let (sps, mps) = throughput(&client, &ps, qos).await;
                    println!("{label:<17} {encoding:<14} {q:>3}  {sps:>11.0}  {mps:>11.1}");
                }
            }
            client.close().await;
        });
    }
}
