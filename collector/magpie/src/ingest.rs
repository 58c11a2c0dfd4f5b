//! Starting the `[[ingest]]` sources of a configuration: one HTTP listener or MQTT
//! subscription task per source, each with its decoder runners, appending to the shared WAL.

use crate::check::Plan;
use crate::config::{Ingest, IngestTls, Loaded, SourceKind};
use crate::telemetry::Telemetry;
use anyhow::{Context as _, Result};
use magpie_host::{Host, Runner};
use magpie_ingest::auth::Credentials;
use magpie_ingest::http::HttpSource;
use magpie_ingest::mqtt::MqttSource;
use magpie_ingest::status::{About, Endpoint, Route};
use magpie_ingest::{Decoder, Source, SourceLimits};
use magpie_transport::Auth;
use magpie_wal::owner::WalHandle;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The credentials an HTTP source accepts, read from their files now. Each error names the
/// key and the file, never a secret.
///
/// # Errors
/// An unreadable or empty password or token file, a bad users file.
pub(crate) fn credentials(cfg: &Ingest) -> Result<Credentials, String> {
    let mut c = Credentials::new(cfg.name.get_ref());
    if let Some(b) = &cfg.basic_auth {
        if let (Some(user), Some(file)) = (&b.username, &b.password_file)
            && let Auth::Basic { username, password } =
                Auth::basic(user, file).map_err(|e| format!("basic_auth.password_file: {e}"))?
        {
            c.add_user(&username, &password);
        }
        if let Some(file) = &b.users_file {
            let path = magpie_transport::secret_path(file);
            let users = magpie_ingest::auth::read_users_file(&path)
                .map_err(|e| format!("basic_auth.users_file {}: {e}", path.display()))?;
            for (user, password) in users {
                c.add_user(&user, &password);
            }
        }
    }
    if let Some(f) = &cfg.bearer_token_file
        && let Auth::Bearer(t) = Auth::bearer(f).map_err(|e| format!("bearer_token_file: {e}"))?
    {
        c.add_bearer(&t);
    }
    Ok(c)
}

/// The HTTPS server configuration of an HTTP source, read from its files now; `None` without
/// `tls`.
///
/// # Errors
/// An unreadable file, no PEM certificate or key in it, a key that is not the certificate's.
pub(crate) fn server_tls(
    cfg: &Ingest,
) -> Result<Option<Arc<magpie_transport::rustls::ServerConfig>>, String> {
    let Some(opts) = cfg.tls.as_ref().and_then(IngestTls::server_options) else {
        return Ok(None);
    };
    magpie_transport::server_config(&opts)
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| format!("tls: {e}"))
}

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
    let mut names = Vec::new();
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
        let mut shown = Vec::new();
        for d in &p.decoders {
            let route = Route::from_name(d.route)
                .with_context(|| format!("ingest `{name}`: unknown decoder route {}", d.route))?;
            let runner = Runner::new(host.clone(), d.plugin.clone(), d.spec.clone());
            telemetry.add_plugin(runner.name(), runner.stats());
            shown.push((route, d.plugin.name().to_string()));
            decoders.push((d.route, Arc::new(Decoder::new(route, runner))));
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
        let endpoint = match kind {
            SourceKind::Http => Endpoint::Http {
                listen: cfg.listen.clone().unwrap_or_default(),
                bearer_token: cfg.bearer_token_file.is_some(),
            },
            SourceKind::Mqtt => Endpoint::Mqtt {
                broker: shown_broker(cfg.url.as_deref().unwrap_or_default()),
                topics: cfg.topics.clone(),
                qos: cfg.qos,
                login: cfg.basic_auth.is_some(),
            },
        };
        let about = About {
            endpoint,
            decoders: shown,
            max_messages_per_second: limits.max_messages_per_second,
        };
        let source = Source::new(
            telemetry.ingest.source(&name, about),
            limits,
            defaults,
            wal.clone(),
            Arc::clone(wake),
        )
        .with_series(&telemetry.series);
        names.push(name.clone());
        match kind {
            SourceKind::Http => {
                let listen = cfg.listen.clone().unwrap_or_default();
                let credentials =
                    credentials(cfg).map_err(|e| anyhow::anyhow!("ingest `{name}`: {e}"))?;
                let tls = server_tls(cfg).map_err(|e| anyhow::anyhow!("ingest `{name}`: {e}"))?;
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
                    credentials,
                });
                log::info!(
                    "ingest source listening; source={name} address={listen} tls={} client_certificates={} credentials={}",
                    tls.is_some(),
                    cfg.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
                    src.credentials.required()
                );
                tasks.push(tokio::spawn(magpie_ingest::http::serve(
                    listener,
                    src,
                    tls,
                    stop.clone(),
                )));
            }
            SourceKind::Mqtt => {
                let credentials = match &cfg.basic_auth {
                    Some(b) => match (&b.username, &b.password_file) {
                        (Some(user), Some(file)) => match Auth::basic(user, file)
                            .with_context(|| format!("ingest `{name}`: basic_auth"))?
                        {
                            Auth::Basic { username, password } => Some((username, password)),
                            _ => None,
                        },
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
                    tls: IngestTls::client_options(cfg.tls.as_ref()),
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
    telemetry.ingest.set_current(names);
    Ok(tasks)
}

/// A broker URL as the status page shows it: scheme, host and port, nothing else, even if
/// the configuration check ever let credentials or a path through.
fn shown_broker(url: &str) -> String {
    match magpie_transport::mqtt::BrokerUrl::parse(url) {
        Ok(u) if u.host.contains(':') => format!("{}://[{}]:{}", scheme(u.tls), u.host, u.port),
        Ok(u) => format!("{}://{}:{}", scheme(u.tls), u.host, u.port),
        Err(_) => "(invalid URL)".into(),
    }
}

const fn scheme(tls: bool) -> &'static str {
    if tls { "mqtts" } else { "mqtt" }
}
