//! `magpie run`: open the WAL, load the plugins, start a scrape loop per target, serve the
//! self-metrics endpoints, and on SIGTERM or SIGINT stop scraping and close the WAL (flushing
//! and syncing what is buffered).

use crate::check::{self, Plan};
use crate::config::Loaded;
use crate::fetch::HttpFetch;
use crate::scrape::{self, JobDef};
use crate::telemetry::{self, Telemetry};
use anyhow::{Context as _, Result};
use magpie_host::{Host, Runner};
use magpie_transport::{HttpClient, TlsOptions};
use magpie_wal::Wal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often the WAL is asked whether a sync is due.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// Runs the collector until a termination signal.
///
/// # Errors
/// Start-up failures: an unusable data directory, a listen address in use, a configuration
/// whose plugins do not load.
pub async fn run(loaded: Loaded) -> Result<()> {
    let cfg = &loaded.config;
    let telemetry = Arc::new(Telemetry::default());
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
    let wal = Arc::new(Mutex::new(wal));
    telemetry.set_wal(Arc::clone(&wal));

    let client = HttpClient::new(&TlsOptions::default()).context("setting up the HTTP client")?;
    let host = Host::new()
        .map_err(|e| anyhow::anyhow!("cannot set up the WebAssembly engine: {e:#}"))?
        .with_fetcher(Arc::new(HttpFetch(client)));
    let plan = check::prepare(&loaded, &host).await.map_err(|errs| {
        let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the configuration does not load:\n  {}", list.join("\n  "))
    })?;
    let mut tasks = Vec::new();
    start_exports(&loaded, &plan, &wal)?;
    for job in &plan.jobs {
        let s = cfg.scrape[job.index].get_ref();
        let def = Arc::new(JobDef {
            job: s.job.get_ref().clone(),
            interval: s.interval.0,
            timeout: s.timeout.0,
            honor_labels: s.honor_labels,
            sample_limit: s.sample_limit,
            body_size_limit: s.body_size_limit.0,
            file_prefixes: s
                .file_grants()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        });
        let targets = if s.targets.is_empty() {
            vec![String::new()]
        } else {
            s.targets.clone()
        };
        for target in targets {
            let runner = Runner::new(host.clone(), job.plugin.clone(), job.spec.clone());
            telemetry.add_plugin(runner.name(), runner.stats());
            tasks.push(tokio::spawn(scrape::run_target(
                Arc::clone(&def),
                target,
                runner,
                Arc::clone(&wal),
                Arc::clone(&telemetry),
                stop_rx.clone(),
            )));
        }
    }
    tasks.push(tokio::spawn(sync_loop(
        Arc::clone(&wal),
        Arc::clone(&telemetry),
        stop_rx.clone(),
    )));
    telemetry.set_ready();
    log::info!(
        "magpie is running; listen={local} data_dir={} jobs={} exporters={}",
        cfg.collector.data_dir.display(),
        plan.jobs.len(),
        plan.exports.len()
    );

    wait_for_termination().await?;
    log::info!("stopping: finishing scrapes and syncing the WAL");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let _ = server.await;
    drop(telemetry.take_wal());
    let wal = Arc::try_unwrap(wal)
        .map_err(|_| anyhow::anyhow!("the WAL is still in use at shutdown"))?
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    wal.close().context("closing the WAL")?;
    log::info!("stopped");
    Ok(())
}

/// Registers each exporter's WAL cursor, so the backlog for it is kept from the first run.
fn start_exports(loaded: &Loaded, plan: &Plan, wal: &Arc<Mutex<Wal>>) -> Result<()> {
    let mut wal = wal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for e in &plan.exports {
        let name = loaded.config.export[e.index].get_ref().name.get_ref();
        wal.consumer(name)
            .with_context(|| format!("registering exporter `{name}` with the WAL"))?;
        log::warn!(
            "exporter `{name}` loaded; this version keeps its backlog in the WAL but does not deliver it yet"
        );
    }
    Ok(())
}

async fn sync_loop(
    wal: Arc<Mutex<Wal>>,
    telemetry: Arc<Telemetry>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SYNC_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let r = wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .sync_if_due(std::time::Instant::now());
        if let Err(e) = r {
            telemetry.wal_sync_failures.fetch_add(1, Ordering::Relaxed);
            log::error!(
                "WAL sync failed; samples since the last sync are at risk on power loss. error={e}"
            );
        }
    }
}

async fn wait_for_termination() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
