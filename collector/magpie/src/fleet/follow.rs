//! The MQTT side of the agent: following the retained envelope on `[fleet] url`'s topic.
//!
//! The broker hands the retained message to each new subscription, so a device learns the
//! latest bundle at start, at every reconnect (a broker restart, a link that was down), and
//! whenever the operator publishes a new one; nothing is polled. The connection uses the
//! transport's MQTT settings (`basic_auth`, `tls` as `[[export]]` takes them) and backs off
//! between attempts up to `[fleet] poll`.

use crate::config::Fleet;

/// What the follower reports. A build without MQTT only follows HTTP(S) servers, so it never
/// reports anything.
#[cfg_attr(not(feature = "mqtt"), allow(dead_code))]
pub(super) enum Event {
    /// A message on the topic (empty: the retained message was cleared).
    Message(Vec<u8>),
    /// The broker could not be reached or the connection was lost.
    Down(String),
}

#[cfg(feature = "mqtt")]
pub(super) use imp::Follow;

#[cfg(feature = "mqtt")]
mod imp {
    use super::{Event, Fleet};
    use crate::config::Tls;
    use magpie_transport::delivery::RetryPolicy;
    use magpie_transport::mqtt::{MqttSettings, Retained, RetainedFollower};
    use std::time::Duration;

    /// The largest envelope accepted.
    const ENVELOPE_LIMIT: usize = 1 << 20;

    /// A follower of the fleet topic, or none for an HTTP(S) `url`.
    pub(in crate::fleet) struct Follow {
        inner: Option<RetainedFollower>,
        /// `mqtt://host:port/topic`, for messages.
        pub url: String,
    }

    impl Follow {
        /// Starts following when `settings.url` is an MQTT topic.
        pub fn start(settings: &Fleet, device: &str) -> Result<Self, String> {
            let url = settings.url.get_ref().clone();
            let Some((broker, topic)) = settings.mqtt_topic() else {
                return Ok(Self { inner: None, url });
            };
            let credentials = settings
                .basic_auth
                .as_ref()
                .map(|b| {
                    match magpie_transport::Auth::basic(&b.username, &b.password_file)
                        .map_err(|e| format!("fleet.basic_auth: {e}"))?
                    {
                        magpie_transport::Auth::Basic { username, password } => {
                            Ok((username, password))
                        }
                        _ => Err("fleet.basic_auth: not a user name and password".to_string()),
                    }
                })
                .transpose()?;
            let floor = Duration::from_millis(250);
            let mqtt = MqttSettings {
                url: broker,
                client_id: format!("magpie-fleet-{device}"),
                credentials,
                tls: Tls::options(settings.tls.as_ref()),
                keep_alive: Duration::from_secs(30),
                clean_session: true,
                status_topic: None,
                max_inflight: 1,
                reconnect: RetryPolicy {
                    min_backoff: floor,
                    max_backoff: settings.poll.0.max(floor),
                },
            };
            let f =
                RetainedFollower::start(mqtt, &topic, ENVELOPE_LIMIT).map_err(|e| e.to_string())?;
            Ok(Self {
                inner: Some(f),
                url,
            })
        }

        /// Whether manifests come over MQTT.
        pub const fn is_mqtt(&self) -> bool {
            self.inner.is_some()
        }

        /// The next report; never resolves for HTTP(S).
        pub async fn next(&mut self) -> Event {
            loop {
                match &mut self.inner {
                    Some(f) => match f.next().await {
                        Some(Retained::Message(b)) => return Event::Message(b.to_vec()),
                        Some(Retained::Down(e)) => return Event::Down(e),
                        Some(Retained::Up) => {}
                        None => std::future::pending::<()>().await,
                    },
                    None => std::future::pending::<()>().await,
                }
            }
        }
    }
}

/// Without MQTT support `magpie check` refuses an MQTT `url`; manifests come over HTTP(S).
#[cfg(not(feature = "mqtt"))]
pub(super) struct Follow {
    pub url: String,
}

#[cfg(not(feature = "mqtt"))]
impl Follow {
    pub fn start(settings: &Fleet, _device: &str) -> Result<Self, String> {
        Ok(Self {
            url: settings.url.get_ref().clone(),
        })
    }

    pub const fn is_mqtt(&self) -> bool {
        false
    }

    pub async fn next(&mut self) -> Event {
        std::future::pending().await
    }
}
