//! Starting the `[[ingest]]` sources of a configuration: one HTTP listener or MQTT
//! subscription task per source, each with its decoder runners, appending to the shared WAL.

use crate::check::Plan;
use crate::config::{Loaded, SourceKind, Tls};
use crate::telemetry::Telemetry;
use anyhow::{Context as _, Result};
use magpie_host::{Host, Runner};
use magpie_ingest::http::HttpSource;
use magpie_ingest::mqtt::MqttSource;
use magpie_ingest::{Decoder, Source, SourceLimits};
use magpie_transport::Auth;
use magpie_wal::owner::WalHandle;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Starts every source of `plan`.
///
/// # Errors
/// An HTTP listen address that cannot be bound, an unreadable secret file.
pub(crate) fn start(
    loaded: &Loaded,
    plan: &Plan,
    host: &Host,
    wal: &WalHandle,
    wake: &Arc<Notify>,
    telemetry: &Arc<Telemetry>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for p in &plan.ingest {
        let cfg = loaded.config.ingest[p.index].get_ref();
        let name = cfg.name.get_ref().clone();
        let limits = SourceLimits {
            max_body_bytes: cfg.max_body_bytes.0,
            sample_limit: cfg.sample_limit,
            fsync_ack: cfg.fsync_ack,
            max_messages_per_second: cfg.max_messages_per_second,
        };
        let mut decoders = Vec::new();
        for d in &p.decoders {
            let runner = Runner::new(host.clone(), d.plugin.clone(), d.spec.clone());
            telemetry.add_plugin(runner.name(), runner.stats());
            decoders.push((d.route, Arc::new(Decoder::new(runner))));
        }
        let route = |r: &str| {
            decoders
                .iter()
                .find(|(n, _)| *n == r)
                .map(|(_, d)| Arc::clone(d))
        };
        let kind = cfg.kind().context("unknown ingest source kind")?;
        let defaults = match kind {
            SourceKind::Mqtt => vec![("job".to_string(), name.clone())],
            SourceKind::Http => Vec::new(),
        };
        let source = Source::new(
            &name,
            limits,
            defaults,
            wal.clone(),
            Arc::clone(wake),
            Arc::clone(&telemetry.ingest) as Arc<dyn magpie_ingest::Observer>,
        );
        match kind {
            SourceKind::Http => {
                let listen = cfg.listen.clone().unwrap_or_default();
                let bearer_token = match &cfg.bearer_token_file {
                    Some(f) => match Auth::bearer(f)
                        .with_context(|| format!("ingest `{name}`: bearer_token_file"))?
                    {
                        Auth::Bearer(t) => Some(t),
                        _ => None,
                    },
                    None => None,
                };
                let std_listener = std::net::TcpListener::bind(&listen)
                    .with_context(|| format!("ingest `{name}`: cannot listen on {listen}"))?;
                std_listener
                    .set_nonblocking(true)
                    .context("setting the ingest listener non-blocking")?;
                let listener = tokio::net::TcpListener::from_std(std_listener)
                    .context("registering the ingest listener")?;
                let src = Arc::new(HttpSource {
                    source,
                    remote_write: route("remote_write"),
                    influx: route("influx"),
                    pushgateway: route("pushgateway"),
                    otlp: route("otlp"),
                    bearer_token,
                });
                log::info!("ingest source listening; source={name} address={listen}");
                tasks.push(tokio::spawn(magpie_ingest::http::serve(
                    listener,
                    src,
                    stop.clone(),
                )));
            }
            SourceKind::Mqtt => {
                let credentials = match &cfg.basic_auth {
                    Some(b) => match Auth::basic(&b.username, &b.password_file)
                        .with_context(|| format!("ingest `{name}`: basic_auth"))?
                    {
                        Auth::Basic { username, password } => Some((username, password)),
                        _ => None,
                    },
                    None => None,
                };
                let decoder = route("mqtt").context("an mqtt source without its decoder")?;
                let src = Arc::new(MqttSource {
                    source,
                    decoder,
                    url: cfg.url.clone().unwrap_or_default(),
                    topics: cfg.topics.clone(),
                    qos: cfg.qos,
                    client_id: cfg
                        .client_id
                        .clone()
                        .unwrap_or_else(|| format!("magpie-ingest-{name}")),
                    credentials,
                    tls: Tls::options(cfg.tls.as_ref()),
                });
                magpie_ingest::mqtt::options(&src)
                    .map_err(|e| anyhow::anyhow!("ingest `{name}`: {e}"))?;
                log::info!(
                    "ingest source subscribing; source={name} url={} topics={:?}",
                    src.url,
                    src.topics
                );
                tasks.push(tokio::spawn(magpie_ingest::mqtt::run(src, stop.clone())));
            }
        }
    }
    Ok(tasks)
}
