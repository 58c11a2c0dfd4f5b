//! The exporters of one generation: a delivery loop per `[[export]]`, each with its WAL
//! cursor, and the HTTP or MQTT destination it sends to.

use super::Shared;
use crate::check::Plan;
use crate::config::{self, Loaded};
use anyhow::{Context as _, Result};
use magpie_export as export;
use magpie_host::Runner;
use magpie_transport::delivery::RetryPolicy;
use magpie_transport::{HttpClient, TlsOptions};
use std::sync::Arc;
#[cfg(feature = "mqtt")]
use std::time::Duration;
use tokio::sync::watch;

/// Starts a delivery loop per exporter, each with its WAL cursor.
pub(super) fn start_exports(
    loaded: &Loaded,
    plan: &Plan,
    shared: &Shared,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let (host, wal, telemetry, wake) = (&shared.host, &shared.wal, &shared.telemetry, &shared.wake);
    let cfg = &loaded.config;
    let external: Vec<(String, String)> = cfg
        .collector
        .external_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut tasks = Vec::new();
    for e in &plan.exports {
        let ec = cfg.export[e.index].get_ref();
        let name = ec.name.get_ref().clone();
        let registered = wal.call_blocking({
            let name = name.clone();
            move |wal| -> Result<magpie_wal::ConsumerId> {
                let id = wal
                    .consumer(&name)
                    .with_context(|| format!("registering exporter `{name}` with the WAL"))?;
                // After a reload the consumer is the previous generation's, whose read
                // position may be past a batch it read but never got acknowledged: read that
                // again.
                wal.rewind(id)
                    .with_context(|| format!("rewinding exporter `{name}` in the WAL"))?;
                if let Some(newest) = wal.newest(id) {
                    wal.rewind(newest)
                        .with_context(|| format!("rewinding exporter `{name}` in the WAL"))?;
                }
                Ok(id)
            }
        });
        let consumer = registered.context("the WAL is closed")??;
        let destination = make_destination(ec, &telemetry.fleet)?;
        let runner = Runner::new(host.clone(), e.plugin.clone(), e.spec.clone());
        telemetry.add_plugin(runner.name(), runner.stats());
        let stats = Arc::new(export::ExportStats::default());
        telemetry.add_exporter(name.clone(), Arc::clone(&stats));
        let exporter = export::Exporter {
            name,
            runner,
            destination,
            external_labels: export::ExternalLabels::new(&external),
            relabel: magpie_scrape::relabel::compile(&ec.write_relabel_configs)
                .map_err(|e| anyhow::anyhow!("exporter `{}`: {e}", ec.name.get_ref()))?,
            max_samples: ec.max_samples_per_send,
            max_rate: ec.max_samples_per_second,
            age_limit: ec.sample_age_limit.map(|d| d.0),
            newest_first: ec.newest_first,
            recovering: true,
            timeout: ec.timeout.0,
            policy: RetryPolicy {
                min_backoff: ec.min_backoff.0,
                max_backoff: ec.max_backoff.0,
            },
            wal: wal.clone(),
            consumer,
            stats,
            fallbacks: shared.fallbacks.clone(),
            metadata: ec
                .metadata
                .as_ref()
                .filter(|m| m.send)
                .map(|m| export::MetadataSend {
                    store: shared.metadata.clone(),
                    interval: m.send_interval.0,
                    max_per_send: m.max_samples_per_send,
                }),
            send_exemplars: ec.send_exemplars,
        };
        tasks.push(tokio::spawn(exporter.run(Arc::clone(wake), stop.clone())));
    }
    Ok(tasks)
}

/// Where an exporter delivers: an HTTP client, or an MQTT client connecting in the background
/// (which keeps the fleet document on its status topic, with `[fleet]`).
fn make_destination(
    ec: &config::Export,
    fleet: &crate::fleet::Status,
) -> Result<export::Destination> {
    let name = ec.name.get_ref();
    let url = ec.url.get_ref().clone();
    let tls = config::Tls::options(ec.tls.as_ref());
    if config::is_mqtt_url(&url) {
        return make_mqtt_destination(ec, url, tls, fleet);
    }
    let client = HttpClient::new(&tls).with_context(|| format!("exporter `{name}`: TLS setup"))?;
    let headers = ec
        .request_headers()
        .with_context(|| format!("exporter `{name}`: credentials"))?;
    Ok(export::Destination::Http {
        url,
        client,
        headers,
    })
}

#[cfg(feature = "mqtt")]
fn make_mqtt_destination(
    ec: &config::Export,
    url: String,
    tls: TlsOptions,
    fleet: &crate::fleet::Status,
) -> Result<export::Destination> {
    use magpie_transport::mqtt::{MqttClient, MqttSettings, Qos};
    let name = ec.name.get_ref();
    let m = ec.mqtt_settings();
    let client_id = m
        .client_id
        .clone()
        .unwrap_or_else(|| format!("magpie-{}-{name}", magpie_scrape::target::hostname()));
    let status_topic = m
        .status_topic
        .clone()
        .unwrap_or_else(|| format!("magpie/status/{client_id}"));
    let settings = MqttSettings {
        url,
        client_id,
        credentials: ec
            .mqtt_credentials()
            .with_context(|| format!("exporter `{name}`: credentials"))?,
        tls,
        keep_alive: m.keep_alive.0,
        clean_session: m.clean_session,
        status_topic: Some(status_topic.clone()),
        max_inflight: m.max_inflight.get(),
        // Reconnecting follows the exporter's backoff, but never faster than 4 times a second.
        reconnect: RetryPolicy {
            min_backoff: ec.min_backoff.0.max(Duration::from_millis(250)),
            max_backoff: ec.max_backoff.0.max(Duration::from_millis(250)),
        },
    };
    let client = MqttClient::start(settings).with_context(|| format!("exporter `{name}`"))?;
    // The fleet state beside the plain `online`/`offline`, whose consumers expect just that.
    let document = fleet.document();
    if !document.borrow().is_empty() {
        client.keep_retained(&format!("{status_topic}/fleet"), document);
    }
    let qos = if m.qos == 0 {
        Qos::AtMostOnce
    } else {
        Qos::AtLeastOnce
    };
    Ok(export::Destination::Mqtt { client, qos })
}

#[cfg(not(feature = "mqtt"))]
fn make_mqtt_destination(
    ec: &config::Export,
    url: String,
    _tls: TlsOptions,
    _fleet: &crate::fleet::Status,
) -> Result<export::Destination> {
    anyhow::bail!(
        "exporter `{}`: {url}: this build has no MQTT support (cargo feature `mqtt`)",
        ec.name.get_ref()
    )
}
