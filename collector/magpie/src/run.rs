//! `magpie run`: open the WAL, load the plugins, start a scrape loop per target, serve the
//! self-metrics endpoints, and on SIGTERM or SIGINT stop scraping and close the WAL (flushing
//! and syncing what is buffered).

use crate::check::{self, Plan};
use crate::config::{self, Loaded};
use crate::notify::{self, Notifier};
use crate::telemetry::{self, Telemetry};
use anyhow::{Context as _, Result};
use magpie_host::Host;
use magpie_scrape::discovery::Discoverer;
use magpie_scrape::fetch::HttpFetch;
use magpie_scrape::{self as scrape, JobDef};
use magpie_transport::{HttpClient, TlsOptions};
use magpie_wal::Wal;
use magpie_wal::owner::WalHandle;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Notify, watch};

mod exports;
mod scrape_client;
mod sync;
use exports::start_exports;
use scrape_client::job_host;

/// The tasks of one configuration; a reload replaces them, the WAL and listener stay.
struct Generation {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    jobs: usize,
    exporters: usize,
}

impl Generation {
    fn start(loaded: &Loaded, plan: &Plan, shared: &Shared) -> Result<Self> {
        let cfg = &loaded.config;
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = start_exports(loaded, plan, shared, &stop_rx)?;
        tasks.extend(crate::ingest::start(
            loaded,
            plan,
            &shared.host,
            &shared.wal,
            &shared.wake,
            &shared.telemetry,
            &stop_rx,
        )?);
        for job in &plan.jobs {
            let s = cfg.scrape[job.index].get_ref();
            let def = Arc::new(JobDef {
                job: s.job.get_ref().clone(),
                interval: s.interval.0,
                timeout: s.timeout(),
                honor_labels: s.honor_labels,
                honor_timestamps: s.honor_timestamps,
                sample_limit: s.sample_limit,
                body_size_limit: s.body_size_limit.0,
                target_limit: s.target_limit,
                label_limits: magpie_scrape::target::LabelLimits {
                    count: s.label_limit,
                    name_len: s.label_name_length_limit,
                    value_len: s.label_value_length_limit,
                },
                file_prefixes: s
                    .file_grants()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                relabel: magpie_scrape::relabel::compile(&s.metric_relabel_configs)
                    .map_err(|e| anyhow::anyhow!("scrape job `{}`: {e}", s.job.get_ref()))?,
            });
            let base = loaded
                .file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut sds = Vec::new();
            for c in &s.file_sd_configs {
                let sd = magpie_scrape::discovery::FileSd::new(c, base).map_err(|e| {
                    anyhow::anyhow!(
                        "scrape job `{}`: file_sd_configs: {}",
                        s.job.get_ref(),
                        e.join("; ")
                    )
                })?;
                sds.push(Discoverer::File(sd, c.refresh_interval()));
            }
            for c in &s.http_sd_configs {
                let sd = magpie_scrape::discovery::http::HttpSd::new(c).map_err(|e| {
                    anyhow::anyhow!(
                        "scrape job `{}`: http_sd_configs: {}",
                        s.job.get_ref(),
                        e.join("; ")
                    )
                })?;
                sds.push(Discoverer::Http(Box::new(sd)));
            }
            for c in &s.dns_sd_configs {
                let sd = magpie_scrape::discovery::dns::DnsSd::new(c).map_err(|e| {
                    anyhow::anyhow!(
                        "scrape job `{}`: dns_sd_configs: {}",
                        s.job.get_ref(),
                        e.join("; ")
                    )
                })?;
                sds.push(Discoverer::Dns(sd));
            }
            #[cfg(feature = "kubernetes")]
            for c in &s.kubernetes_sd_configs {
                let sd =
                    magpie_scrape::discovery::kubernetes::KubernetesSd::new(c).map_err(|e| {
                        anyhow::anyhow!(
                            "scrape job `{}`: kubernetes_sd_configs: {}",
                            s.job.get_ref(),
                            e.join("; ")
                        )
                    })?;
                sds.push(Discoverer::Kubernetes(Box::new(sd)));
            }
            // A job with neither targets nor discovery is a host collector: one targetless loop.
            let groups: Vec<_> = (s.static_configs.iter().enumerate())
                .map(|(i, g)| g.group(format!("static_configs:{i}")))
                .collect();
            let targets = if s.targets.is_empty() && groups.is_empty() && sds.is_empty() {
                vec![String::new()]
            } else {
                s.targets.clone()
            };
            let rules = scrape::populate::TargetRules {
                job: def.job.clone(),
                scheme: s.scheme.clone(),
                metrics_path: s.metrics_path.clone(),
                interval: def.interval,
                timeout: def.timeout,
                params: s.params.clone(),
                relabel: magpie_scrape::relabel::compile(&s.relabel_configs).map_err(|e| {
                    anyhow::anyhow!("scrape job `{}`: relabel_configs: {e}", s.job.get_ref())
                })?,
            };
            let run = scrape::JobRun {
                def,
                plugin: job.plugin.clone(),
                spec: job.spec.clone(),
                host: job_host(&shared.host, s)?,
                file_grants: s.file_grants(),
                targets: rules,
                out: scrape::Outputs {
                    wal: shared.wal.clone(),
                    observer: Arc::clone(&shared.telemetry) as Arc<dyn scrape::Observer>,
                    wake: Arc::clone(&shared.wake),
                    metadata: shared.metadata.clone(),
                },
            };
            tasks.push(tokio::spawn(scrape::run_job(
                run,
                targets,
                groups,
                sds,
                stop_rx.clone(),
            )));
        }
        Ok(Self {
            stop,
            tasks,
            jobs: plan.jobs.len(),
            exporters: plan.exports.len(),
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// What outlives a reload.
struct Shared {
    host: Host,
    /// The WAL's owner thread; nothing else holds the WAL.
    wal: WalHandle,
    telemetry: Arc<Telemetry>,
    wake: Arc<Notify>,
    /// Exporters sending their plugin's fallback encoding; outlives reloads.
    fallbacks: magpie_export::Fallbacks,
    /// The scraped metric metadata, for exporters that send it.
    metadata: scrape::metadata::MetadataStore,
}

fn describe(errs: &[crate::config::ConfigError]) -> String {
    let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
    list.join("\n  ")
}

/// Runs the collector until a termination signal. SIGHUP re-reads `config_file` (when the
/// configuration came from one) and restarts scraping and delivery with it; a configuration
/// that does not load is logged and the running one kept. The WAL stays open throughout, so
/// no buffered sample is lost.
///
/// # Errors
/// Start-up failures: an unusable data directory, a listen address in use, a configuration
/// whose plugins do not load.
pub async fn run(loaded: Loaded, config_file: Option<PathBuf>) -> Result<()> {
    let cfg = &loaded.config;
    let notifier = Notifier::from_env();
    let telemetry = Arc::new(Telemetry::new(cfg.collector.status_history_step.0));
    *telemetry.wal_health.lock() = crate::health::WalHealth::new(cfg.wal.unhealthy_after.0);
    let listener = tokio::net::TcpListener::bind(&cfg.collector.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (collector.listen)",
                cfg.collector.listen
            )
        })?;
    let local = listener
        .local_addr()
        .context("reading the listen address")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(telemetry::serve(
        listener,
        Arc::clone(&telemetry),
        stop_rx.clone(),
    ));

    let wal_dir = cfg.collector.data_dir.join("wal");
    std::fs::create_dir_all(&wal_dir)
        .with_context(|| format!("cannot create {}", wal_dir.display()))?;
    let wal = Wal::open(&wal_dir, cfg.wal.options())
        .with_context(|| format!("cannot open the WAL in {}", wal_dir.display()))?;
    let wal = magpie_wal::owner::spawn(wal).context("starting the WAL's thread")?;
    let fsync_interval = cfg.wal.fsync.0;

    let client = HttpClient::new(&TlsOptions::default()).context("setting up the HTTP client")?;
    let host = Host::new()
        .map_err(|e| anyhow::anyhow!("cannot set up the WebAssembly engine: {e:#}"))?
        .with_fetcher(Arc::new(HttpFetch(client)));
    // Cranelift's working set stays in the child (magpie_host::child_compile).
    #[cfg(feature = "compiler")]
    let host = match std::env::current_exe() {
        Ok(exe) => host.with_compile_process(exe),
        Err(e) => {
            log::warn!("cannot find the magpie binary; plugins are compiled in process. error={e}");
            host
        }
    };
    // With `[fleet]`, the last-known-good bundle joined with the local file, when there is one.
    let local_file = loaded.clone();
    let loaded = crate::fleet::starting(&local_file, &host, &telemetry.fleet)
        .await
        .unwrap_or(loaded);
    let plan = check::prepare(&loaded, &host).await.map_err(|errs| {
        anyhow::anyhow!("the configuration does not load:\n  {}", describe(&errs))
    })?;
    let shared = Shared {
        host,
        wal: wal.clone(),
        telemetry: Arc::clone(&telemetry),
        wake: Arc::new(Notify::new()),
        fallbacks: magpie_export::Fallbacks::default(),
        metadata: scrape::metadata::MetadataStore::accounted(telemetry.series.share()),
    };
    let mut generation = Generation::start(&loaded, &plan, &shared)?;
    let mut current = loaded;
    let applied = telemetry.fleet.snapshot().applied;
    let (fleet, mut fleet_rx) = match crate::fleet::spawn(
        local_file,
        applied,
        shared.host.clone(),
        Arc::clone(&telemetry),
        stop_rx.clone(),
    ) {
        Some((task, rx)) => (Some(task), rx),
        None => (None, tokio::sync::mpsc::channel(1).1),
    };
    let syncer = tokio::spawn(sync::sync_loop(
        wal.clone(),
        Arc::clone(&telemetry),
        fsync_interval,
        stop_rx.clone(),
    ));
    let history = tokio::spawn(telemetry::keep_history(
        Arc::clone(&telemetry),
        stop_rx.clone(),
    ));
    let watchdog = notify::watchdog_period()
        .zip(Notifier::from_env())
        .map(|(period, n)| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tokio::select! {
                        _ = tick.tick() => n.send("WATCHDOG=1"),
                        _ = stop.changed() => return,
                    }
                }
            })
        });
    telemetry.set_ready();
    if let Some(n) = &notifier {
        n.send("READY=1\nSTATUS=scraping");
    }
    log::info!(
        "magpie is running; listen={local} data_dir={} jobs={} exporters={}",
        current.config.collector.data_dir.display(),
        generation.jobs,
        generation.exporters
    );

    let mut signals = Signals::new()?;
    loop {
        let file = tokio::select! {
            signal = signals.next() => match signal {
                Signal::Terminate => break,
                Signal::Reload => config_file.as_ref(),
            },
            Some(req) = fleet_rx.recv() => {
                let r = swap(&mut generation, &shared, &req.loaded, &req.plan).await;
                if r.is_ok() {
                    current = req.loaded;
                }
                let _ = req.done.send(r);
                continue;
            }
        };
        let Some(file) = file else {
            log::warn!("SIGHUP ignored: the built-in configuration has nothing to reload");
            continue;
        };
        if let Some(n) = &notifier {
            n.send("RELOADING=1");
        }
        match reload(file, &current, &shared).await {
            Ok((loaded, plan)) => {
                if let Err(e) = swap(&mut generation, &shared, &loaded, &plan).await {
                    log::error!("{e}");
                }
                current = loaded;
            }
            Err(e) => log::error!("reload refused, the running configuration stays: {e:#}"),
        }
        if let Some(n) = &notifier {
            n.send("READY=1");
        }
    }

    if let Some(n) = &notifier {
        n.send("STOPPING=1");
    }
    log::info!("stopping: finishing scrapes and syncing the WAL");
    generation.stop().await;
    let _ = stop_tx.send(true);
    drop(fleet_rx);
    if let Some(f) = fleet {
        let _ = f.await;
    }
    let _ = syncer.await;
    let _ = history.await;
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    let _ = server.await;
    drop(shared);
    // Runs after everything the stopped tasks queued: their appends and acknowledgements.
    wal.close().await.context("closing the WAL")?;
    log::info!("stopped");
    Ok(())
}

/// Replaces the running generation with one of `loaded`; the WAL stays open. When the new one
/// cannot start, nothing scrapes or delivers until the next swap, and the error says so.
async fn swap(
    generation: &mut Generation,
    shared: &Shared,
    loaded: &Loaded,
    plan: &Plan,
) -> Result<(), String> {
    let old = std::mem::replace(
        generation,
        Generation {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            jobs: 0,
            exporters: 0,
        },
    );
    old.stop().await;
    shared.telemetry.clear_plugins();
    match Generation::start(loaded, plan, shared) {
        Ok(g) => {
            *generation = g;
            log::info!(
                "configuration reloaded; jobs={} exporters={}",
                generation.jobs,
                generation.exporters
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "the reloaded configuration could not start ({e:#}); scraping and delivery are stopped until the next reload"
        )),
    }
}

/// Loads and prepares a new configuration without touching the running one.
async fn reload(file: &Path, current: &Loaded, shared: &Shared) -> Result<(Loaded, Plan)> {
    let loaded = config::load(file).map_err(|errs| anyhow::anyhow!("{}", describe(&errs)))?;
    let loaded =
        crate::fleet::rejoin(loaded, &shared.telemetry.fleet).map_err(anyhow::Error::msg)?;
    let plan = check::prepare(&loaded, &shared.host)
        .await
        .map_err(|errs| anyhow::anyhow!("{}", describe(&errs)))?;
    for e in &loaded.config.export {
        e.get_ref()
            .request_headers()
            .with_context(|| format!("exporter `{}`", e.get_ref().name.get_ref()))?;
    }
    let (old, new) = (&current.config.collector, &loaded.config.collector);
    if old.listen != new.listen || old.data_dir != new.data_dir {
        log::warn!("collector.listen and collector.data_dir take effect at the next restart");
    }
    if current.config.wal.options() != loaded.config.wal.options() {
        log::warn!("[wal] settings take effect at the next restart");
    }
    Ok((loaded, plan))
}

enum Signal {
    Terminate,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Terminate,
            _ = self.int.recv() => Signal::Terminate,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
