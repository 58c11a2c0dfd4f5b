//! A scrape job's supervisor: starts a target loop per static or discovered target, and stops
//! and starts loops as discovery changes the target set. Every target, static or discovered,
//! goes through `relabel_configs` first ([`crate::populate`]).

use crate::discovery::{Discoverer, TargetGroup};
use crate::populate::{ScrapeTarget, TargetRules};
use crate::target::{JobDef, Labels};
use crate::target_loop::{Outputs, run_target};
use magpie_host::Runner;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a scrape job's supervisor needs to start target loops.
#[derive(Debug)]
pub struct JobRun {
    /// The job.
    pub def: Arc<JobDef>,
    /// Its scraper plugin, loaded.
    pub plugin: magpie_host::Plugin,
    /// How to instantiate it (grants are replaced per target).
    pub spec: magpie_host::InstanceSpec,
    /// The plugin host.
    pub host: magpie_host::Host,
    /// File prefixes every target's instance may read.
    pub file_grants: Vec<std::path::PathBuf>,
    /// How targets become scrape targets: the job's scheme, path, params and
    /// `relabel_configs`.
    pub targets: TargetRules,
    /// Where results go.
    pub out: Outputs,
}

type Running = HashMap<ScrapeTarget, (watch::Sender<bool>, tokio::task::JoinHandle<()>)>;

impl JobRun {
    fn spawn(
        &self,
        t: &ScrapeTarget,
        forced: Option<String>,
    ) -> Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
        let url = t.url.as_str();
        let urls = if url.is_empty() {
            Vec::new()
        } else {
            vec![url.to_string()]
        };
        let grants = match magpie_host::Grants::new(urls, &self.file_grants) {
            Ok(g) => g,
            Err(e) => {
                log::error!(
                    "scrape job `{}`: target {url} not started: {e}",
                    self.def.job
                );
                return None;
            }
        };
        let spec = magpie_host::InstanceSpec {
            grants: Arc::new(grants),
            ..self.spec.clone()
        };
        let runner = Runner::new(self.host.clone(), self.plugin.clone(), spec);
        self.out
            .observer
            .plugin_started(runner.name(), runner.stats());
        // `__scrape_interval__` and `__scrape_timeout__` may give a target its own.
        let def = if (t.interval, t.timeout) == (self.def.interval, self.def.timeout) {
            Arc::clone(&self.def)
        } else {
            Arc::new(JobDef {
                interval: t.interval,
                timeout: t.timeout,
                ..(*self.def).clone()
            })
        };
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_target(
            def,
            url.to_string(),
            t.labels.clone(),
            runner,
            self.out.clone(),
            forced,
            rx,
        ));
        Some((tx, task))
    }

    /// Brings the running target loops in line with `desired`. `over` is whether the loops
    /// run under a forced `target_limit` error; crossing the limit restarts them all.
    async fn converge(&self, running: &mut Running, desired: &[ScrapeTarget], over: &mut bool) {
        let limit = self.def.target_limit;
        let now_over = limit > 0 && desired.len() > limit as usize;
        let forced = now_over.then(|| {
            format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                desired.len()
            )
        });
        if now_over != *over {
            if now_over {
                log::warn!(
                    "scrape job `{}`: {} targets, more than its target_limit of {limit}: none is scraped",
                    self.def.job,
                    desired.len()
                );
            }
            *over = now_over;
            for (_, (tx, task)) in running.drain() {
                let _ = tx.send(true);
                let _ = task.await;
            }
        }
        let gone: Vec<_> = running
            .keys()
            .filter(|k| !desired.contains(k))
            .cloned()
            .collect();
        for k in gone {
            if let Some((tx, task)) = running.remove(&k) {
                let _ = tx.send(true);
                let _ = task.await;
                log::info!("scrape job `{}`: target {} removed", self.def.job, k.url);
            }
        }
        for k in desired {
            if !running.contains_key(k)
                && let Some(r) = self.spawn(k, forced.clone())
            {
                running.insert(k.clone(), r);
            }
        }
    }

    /// The scrape targets of discovered groups, after `relabel_configs`; targets that cannot
    /// be scraped are logged, naming the group they came from.
    fn discovered(&self, sd: &str, groups: &[TargetGroup]) -> Vec<ScrapeTarget> {
        let mut out = Vec::new();
        for g in groups {
            for address in &g.targets {
                match self.targets.populate(address, &g.labels) {
                    Ok(Some(t)) => out.push(t),
                    Ok(None) => {}
                    Err(e) => log::warn!(
                        "scrape job `{}`: {sd}: target `{address}` of group {} dropped: {e}",
                        self.def.job,
                        g.source
                    ),
                }
            }
        }
        out
    }

    fn static_targets(&self, targets: Vec<String>) -> Vec<ScrapeTarget> {
        let mut out = Vec::new();
        for url in targets {
            if url.is_empty() {
                // A host collector: nothing to relabel.
                out.push(ScrapeTarget {
                    url,
                    labels: Labels::new(),
                    interval: self.def.interval,
                    timeout: self.def.timeout,
                });
                continue;
            }
            match self.targets.populate_url(&url) {
                Ok(Some(t)) => out.push(t),
                Ok(None) => log::info!(
                    "scrape job `{}`: target {url} dropped by relabel_configs",
                    self.def.job
                ),
                Err(e) => log::warn!("scrape job `{}`: target {url} dropped: {e}", self.def.job),
            }
        }
        out
    }
}

impl JobRun {
    /// Refreshes the sources whose time has come.
    async fn refresh_due(
        &self,
        sds: &mut [Discoverer],
        found: &mut [Vec<ScrapeTarget>],
        due: &mut [Instant],
    ) {
        let now = Instant::now();
        for (i, sd) in sds.iter_mut().enumerate() {
            if due[i] > now {
                continue;
            }
            due[i] = now + sd.refresh_interval();
            let name = sd.name();
            match sd.refresh().await {
                Ok(Some(groups)) => found[i] = self.discovered(name, &groups),
                Ok(None) => {}
                Err(errors) => {
                    for e in errors {
                        log::warn!("scrape job `{}`: {name}: {e}", self.def.job);
                    }
                    found[i] = self.discovered(name, &sd.groups());
                }
            }
        }
    }
}

/// Runs a scrape job: its static targets (URLs, and `static_configs` groups), and targets from
/// discovery, each source refreshed on its own interval; target loops start and stop as the
/// target set changes.
pub async fn run_job(
    job: JobRun,
    static_targets: Vec<String>,
    static_groups: Vec<TargetGroup>,
    mut sds: Vec<Discoverer>,
    mut stop: watch::Receiver<bool>,
) {
    let mut fixed = job.static_targets(static_targets);
    for t in job.discovered("static_configs", &static_groups) {
        if !fixed.contains(&t) {
            fixed.push(t);
        }
    }
    let mut over = false;
    let mut found: Vec<Vec<ScrapeTarget>> = vec![Vec::new(); sds.len()];
    let mut due: Vec<Instant> = vec![Instant::now(); sds.len()];
    let mut running = Running::new();
    loop {
        // A slow source (an HTTP endpoint, a DNS server that does not answer) must not hold
        // up a stop or a reload.
        tokio::select! {
            () = job.refresh_due(&mut sds, &mut found, &mut due) => {}
            _ = stop.changed() => break,
        }
        let mut desired = fixed.clone();
        for f in &found {
            for t in f {
                if !desired.contains(t) {
                    desired.push(t.clone());
                }
            }
        }
        job.converge(&mut running, &desired, &mut over).await;
        let wake = due
            .iter()
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, task)) in running {
        let _ = tx.send(true);
        let _ = task.await;
    }
}
