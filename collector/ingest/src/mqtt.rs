//! The MQTT ingest subscriber: a persistent session (`CleanSession = 0`, a fixed client id),
//! so the broker queues QoS 1 messages while the collector is down or the link is out, and
//! manual acknowledgement: the PUBACK for a message goes out only after [`Source::accept`]
//! returned, so a message the broker counts as delivered is in the WAL.
//!
//! A malformed message is counted, logged with its topic and the decoder's reason, and
//! acknowledged (sending it again would not mend it). A message that failed for a reason that
//! may pass (the WAL failed, the decoder is in quarantine) is not acknowledged: the connection
//! is dropped and made again, and the broker delivers it again.
//!
//! Over `max_messages_per_second` the subscriber waits before it handles the next message
//! (and reads nothing meanwhile), so the broker keeps the backlog; nothing is dropped.

use crate::source::{Decoder, Message, Source, now_ms};
use crate::status::Link;
use magpie_transport::TlsOptions;
use magpie_transport::mqtt::BrokerUrl;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Publish, QoS,
    TlsConfiguration, Transport,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Wait before connecting again after a failure.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Largest MQTT packet accepted from the broker, besides `max_body_bytes`.
const MAX_PACKET: usize = 268_435_455;

/// An MQTT ingest source.
#[derive(Debug)]
pub struct MqttSource {
    /// The source (name, limits, WAL).
    pub source: Source,
    /// Its decoder.
    pub decoder: Arc<Decoder>,
    /// `mqtt://host[:port]` or `mqtts://host[:port]`.
    pub url: String,
    /// Topic filters (MQTT wildcards, `$share/<group>/` filters).
    pub topics: Vec<String>,
    /// Subscription QoS: 0 or 1.
    pub qos: u8,
    /// Client id of the persistent session.
    pub client_id: String,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// CA roots for `mqtts://`.
    pub tls: TlsOptions,
}

/// rumqttc options for a source.
///
/// # Errors
/// A bad URL or TLS setting, in words.
pub fn options(src: &MqttSource) -> Result<MqttOptions, String> {
    let url = BrokerUrl::parse(&src.url).map_err(|e| e.to_string())?;
    let mut o = MqttOptions::new(src.client_id.clone(), url.host.clone(), url.port);
    let max = usize::try_from(src.source.limits().max_body_bytes)
        .unwrap_or(MAX_PACKET)
        .saturating_add(64 * 1024)
        .min(MAX_PACKET);
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(max, 64 * 1024);
    if let Some((user, pass)) = &src.credentials {
        o.set_credentials(user.clone(), pass.clone());
    }
    if url.tls {
        let config = magpie_transport::client_config(&src.tls).map_err(|e| e.to_string())?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(o)
}

/// A connection failure in words an operator acts on: which setting to look at for a refused
/// login or an untrusted broker certificate.
fn describe(e: &ConnectionError, has_credentials: bool) -> String {
    match e {
        ConnectionError::ConnectionRefused(
            c @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => {
            if has_credentials {
                format!("the broker refused the user name or password of basic_auth ({c:?})")
            } else {
                format!("the broker wants a user name and password: set basic_auth ({c:?})")
            }
        }
        ConnectionError::Tls(t) => {
            let text = t.to_string();
            if text.contains("invalid peer certificate") {
                format!("the broker's certificate is not trusted, check tls.ca_file: {text}")
            } else {
                format!("TLS: {text}")
            }
        }
        e => e.to_string(),
    }
}

/// Runs the subscription until `stop` turns true.
pub async fn run(src: Arc<MqttSource>, mut stop: watch::Receiver<bool>) {
    let name = src.source.name().to_string();
    let status = src.source.status();
    let opts = match options(&src) {
        Ok(o) => o,
        Err(e) => {
            log::error!("MQTT ingest cannot start; source={name} error={e}");
            status.failed(Link::Stopped, e, now_ms());
            return;
        }
    };
    let qos = if src.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut reported = false;
    loop {
        let (client, mut events) = AsyncClient::new(opts.clone(), 16);
        // Acknowledgements go through the client's request channel, which only `events.poll`
        // drains, and the event loop hands out the publishes it has already read before it
        // looks at that channel. Waiting here for room in it would stop both in a burst, so
        // acknowledgements queue here (at most the broker's in-flight window) and are handed
        // over as room appears.
        let mut unacked: VecDeque<Publish> = VecDeque::new();
        let reconnect = loop {
            while let Some(p) = unacked.front() {
                if client.try_ack(p).is_err() {
                    break;
                }
                unacked.pop_front();
            }
            let event = tokio::select! {
                e = events.poll() => e,
                _ = stop.changed() => {
                    let _ = client.try_disconnect();
                    status.set_link(Link::Stopped);
                    return;
                }
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if reported {
                        log::info!("MQTT ingest connected again; source={name}");
                    }
                    reported = false;
                    status.set_link(Link::Connected);
                    for t in &src.topics {
                        if let Err(e) = client.try_subscribe(t.clone(), qos) {
                            log::error!(
                                "MQTT ingest cannot subscribe; source={name} topic={t} error={e}"
                            );
                        }
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        log::error!(
                            "the broker refused an ingest subscription; source={name} topics={:?}",
                            src.topics
                        );
                        status.failed(
                            Link::Connected,
                            format!("the broker refused the subscription to {:?}", src.topics),
                            now_ms(),
                        );
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // Over the rate the event loop is not polled: the socket fills, the broker
                    // holds the rest. Nothing is acknowledged before it is in the WAL.
                    while let Err(wait) = src.source.admit() {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            _ = stop.changed() => {
                                status.set_link(Link::Stopped);
                                return;
                            }
                        }
                    }
                    let msg = Message {
                        context: &p.topic,
                        content_type: "",
                        headers: &[],
                        body: &p.payload,
                    };
                    match src.source.accept(&src.decoder, msg).await {
                        Ok(_) => {}
                        Err(r) if r.retryable() => {
                            status.failed(
                                Link::Reconnecting,
                                format!("a message on {} was not acknowledged: {r}", p.topic),
                                now_ms(),
                            );
                            break true;
                        }
                        Err(_) => {}
                    }
                    if p.qos != QoS::AtMostOnce {
                        unacked.push_back(p);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    status.failed(Link::Reconnecting, e.to_string(), now_ms());
                    if !reported {
                        log::warn!(
                            "MQTT ingest connection failed; source={name} url={} error={}; retrying every {RECONNECT_DELAY:?}",
                            src.url,
                            describe(&e, src.credentials.is_some())
                        );
                        reported = true;
                    }
                    tokio::time::sleep(RECONNECT_DELAY).await;
                }
            }
        };
        if reconnect {
            // Unacknowledged messages come again on the next connection of the session.
            drop(events);
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_DELAY) => {}
                _ = stop.changed() => {
                    status.set_link(Link::Stopped);
                    return;
                }
            }
        }
    }
}
