//! The connection driver: one rumqttc event loop per connection, polled by one task; it
//! resolves the waiters of the connection's table from the event loop's events, and on a lost
//! or failed connection fails them all, backs off, and connects again.

use super::track::{Qos, Tracker};
use super::{Link, MqttSettings, STATUS_OFFLINE, STATUS_ONLINE, Shared, Waiter};
use crate::Error;
use crate::delivery::{Decision, Delivery, Outcome};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet,
    TlsConfiguration, Transport,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest MQTT packet (the protocol's limit on the remaining length).
const MAX_PACKET: usize = 268_435_455;
/// How long a TCP connect, TLS handshake and CONNACK may take.
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// rumqttc options for the settings.
pub(super) fn options(s: &MqttSettings) -> Result<MqttOptions, Error> {
    let url = super::BrokerUrl::parse(&s.url)?;
    let bad = |reason: String| Error::Broker {
        url: s.url.clone(),
        reason,
    };
    if s.client_id.is_empty() {
        return Err(bad("the client id is empty".into()));
    }
    if !s.keep_alive.is_zero() && s.keep_alive < Duration::from_secs(1) {
        return Err(bad("keep_alive must be 0 or at least 1 s".into()));
    }
    let mut o = MqttOptions::new(s.client_id.clone(), url.host.clone(), url.port);
    o.set_keep_alive(s.keep_alive)
        .set_clean_session(s.clean_session)
        .set_max_packet_size(64 * 1024, MAX_PACKET)
        // Ids wrap at `inflight`; twice the window keeps a slow ack from colliding with a new id.
        .set_inflight(s.max_inflight.max(1).saturating_mul(2))
        .set_request_channel_capacity(usize::from(s.max_inflight.max(1)) + 8);
    if let Some((user, pass)) = &s.credentials {
        o.set_credentials(user.clone(), pass.clone());
    }
    if let Some(topic) = &s.status_topic {
        o.set_last_will(LastWill::new(
            topic.clone(),
            STATUS_OFFLINE,
            rumqttc::QoS::AtLeastOnce,
            true,
        ));
    }
    if let Some(name) = &s.tls.server_name {
        // rumqttc verifies the broker against the host of its address, with no way to
        // name another; refusing beats verifying a name the operator did not mean.
        return Err(Error::ServerName {
            name: name.clone(),
            reason: "not supported for MQTT brokers: connect by a name the certificate holds"
                .into(),
        });
    }
    if url.tls {
        let config = crate::tls::client_config(&s.tls)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(o)
}

/// Why a connection ended or failed, for logs and for publishers.
pub(super) fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let why = match code {
                rumqttc::ConnectReturnCode::BadUserNamePassword => {
                    "bad user name or password (check basic_auth)"
                }
                rumqttc::ConnectReturnCode::NotAuthorized => {
                    "not authorized (check basic_auth's user name and password file)"
                }
                rumqttc::ConnectReturnCode::BadClientId => "client id rejected",
                rumqttc::ConnectReturnCode::ServiceUnavailable => "service unavailable",
                rumqttc::ConnectReturnCode::RefusedProtocolVersion => {
                    "MQTT 3.1.1 not supported by the broker"
                }
                rumqttc::ConnectReturnCode::Success => "refused with a success code",
            };
            format!("the broker refused the connection: {why}")
        }
        ConnectionError::NetworkTimeout => "connecting timed out".into(),
        other => crate::client::chain(other),
    }
}

/// The driver: connect, poll, resolve waiters; on failure fail them, back off, reconnect.
pub(super) async fn drive(
    options: MqttOptions,
    settings: MqttSettings,
    shared: Arc<Shared>,
    window: Arc<Semaphore>,
) {
    let url = settings.url.as_str();
    let mut backoff = Delivery::new(settings.reconnect);
    let mut last_reason: Option<String> = None;
    loop {
        let (client, mut events) = AsyncClient::new(
            options.clone(),
            usize::from(settings.max_inflight.max(1)) + 8,
        );
        events
            .network_options
            .set_connection_timeout(CONNECT_TIMEOUT_SECS);
        // Without it Nagle's algorithm holds a publish back until the previous one's PUBACK,
        // which the broker's delayed ACK holds for ~40 ms: QoS 1 would crawl.
        events.network_options.set_tcp_nodelay(true);
        let end = run_connection(&client, &mut events, &settings, &shared, &mut backoff).await;
        let reason = match end {
            Ok(()) => {
                if let Some(mut t) = shared.set(Link::Closed) {
                    fail(&mut t, "the publisher closed the connection");
                }
                window.close();
                return;
            }
            Err(reason) => reason,
        };
        let was_up = matches!(&*shared.link.lock(), Link::Up { .. });
        if let Some(mut t) = shared.set(Link::Down(reason.clone())) {
            fail(&mut t, &format!("connection lost: {reason}"));
        }
        drop(events);
        let delay = connect_delay(&mut backoff, &settings);
        let attempt = backoff.attempts();
        if was_up {
            log::warn!(
                "The connection to MQTT broker {url} was lost; reconnecting in {delay:?}. error={reason}"
            );
        } else if attempt.is_power_of_two() || last_reason.as_deref() != Some(reason.as_str()) {
            // A long outage logs at attempts 1, 2, 4, 8, ... and whenever the reason changes.
            log::warn!(
                "Connecting to MQTT broker {url} failed; retrying in {delay:?} (attempt {attempt}). error={reason}"
            );
        } else {
            log::debug!(
                "Connecting to MQTT broker {url} failed; retrying in {delay:?} (attempt {attempt}). error={reason}"
            );
        }
        last_reason = Some(reason);
        tokio::time::sleep(delay).await;
        shared.set(Link::Connecting);
    }
}

/// The wait before the next connection attempt, counting this failure.
pub(super) fn connect_delay(backoff: &mut Delivery, settings: &MqttSettings) -> Duration {
    match backoff.decide(
        Outcome::Retryable { retry_after: None },
        std::time::Instant::now(),
        crate::clock::random(),
    ) {
        Decision::RetryAt(at) => at.saturating_duration_since(std::time::Instant::now()),
        Decision::Done | Decision::Drop => settings.reconnect.min_backoff,
    }
}

fn fail(t: &mut Tracker<Waiter>, reason: &str) {
    for w in t.fail_all() {
        w.resolve(Err(reason.to_string()));
    }
}

/// Polls one connection until it ends: `Ok` after a requested disconnect, `Err` with the reason
/// otherwise.
async fn run_connection(
    client: &AsyncClient,
    events: &mut EventLoop,
    settings: &MqttSettings,
    shared: &Shared,
    backoff: &mut Delivery,
) -> Result<(), String> {
    loop {
        let event = events.poll().await.map_err(|e| describe(&e))?;
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                if ack.code != rumqttc::ConnectReturnCode::Success {
                    return Err(describe(&ConnectionError::ConnectionRefused(ack.code)));
                }
                *backoff = Delivery::new(settings.reconnect);
                let mut tracker = Tracker::default();
                if let Some(topic) = &settings.status_topic {
                    // Queued before any payload, so the tracker's order holds.
                    if client
                        .try_publish(
                            topic.clone(),
                            rumqttc::QoS::AtLeastOnce,
                            true,
                            STATUS_ONLINE,
                        )
                        .is_ok()
                    {
                        tracker.queued(Qos::AtLeastOnce, None);
                    }
                }
                shared.connected(client, tracker);
                log::info!(
                    "Connected to MQTT broker {}; session_present={}",
                    settings.url,
                    ack.session_present
                );
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(Some(w)) = shared.with_tracker(|t| t.written(pkid)) {
                    w.resolve(Ok(()));
                }
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                if let Some(Some(w)) = shared.with_tracker(|t| t.acked(ack.pkid)) {
                    w.resolve(Ok(()));
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => return Ok(()),
            _ => {}
        }
    }
}
