//! A scrape job's supervisor: starts a target loop per static or discovered target, and stops
//! and starts loops as discovery changes the target set.

use crate::discovery::{FileSd, TargetGroup};
use crate::target::{JobDef, Labels};
use crate::target_loop::{Outputs, run_target};
use magpie_host::Runner;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

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
    /// `http` or `https`, for discovered addresses.
    pub scheme: String,
    /// Path of discovered targets.
    pub metrics_path: String,
    /// Query string of discovered targets (from `params`), empty for none.
    pub query: String,
    /// Where results go.
    pub out: Outputs,
}

type Running = HashMap<(String, Labels), (watch::Sender<bool>, tokio::task::JoinHandle<()>)>;

impl JobRun {
    fn spawn(
        &self,
        url: &str,
        group: &Labels,
        forced: Option<String>,
    ) -> Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
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
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_target(
            Arc::clone(&self.def),
            url.to_string(),
            group.clone(),
            runner,
            self.out.clone(),
            forced,
            rx,
        ));
        Some((tx, task))
    }

    /// Brings the running target loops in line with `desired`. `over` is whether the loops
    /// run under a forced `target_limit` error; crossing the limit restarts them all.
    async fn converge(&self, running: &mut Running, desired: &[(String, Labels)], over: &mut bool) {
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
                log::info!("scrape job `{}`: target {} removed", self.def.job, k.0);
            }
        }
        for k in desired {
            if !running.contains_key(k)
                && let Some(r) = self.spawn(&k.0, &k.1, forced.clone())
            {
                running.insert(k.clone(), r);
            }
        }
    }
}

/// The URL (with `query` when not empty) and public labels of each target of `groups`.
#[must_use]
pub fn discovered(
    groups: &[TargetGroup],
    scheme: &str,
    path: &str,
    query: &str,
) -> Vec<(String, Labels)> {
    let mut out = Vec::new();
    for g in groups {
        let labels: Labels = g
            .public_labels()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        for address in &g.targets {
            let mut url = g.url(address, scheme, path);
            if !query.is_empty() {
                url.push('?');
                url.push_str(query);
            }
            out.push((url, labels.clone()));
        }
    }
    out
}

/// Runs a scrape job: its static targets (URL and labels), and targets from
/// `file_sd_configs`, re-read every refresh interval; target loops start and stop as the
/// files change.
pub async fn run_job(
    job: JobRun,
    fixed: Vec<(String, Labels)>,
    mut sds: Vec<FileSd>,
    interval: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    let mut found: Vec<Vec<(String, Labels)>> = vec![Vec::new(); sds.len()];
    let mut running = Running::new();
    let mut over = false;
    loop {
        for (i, sd) in sds.iter_mut().enumerate() {
            match sd.refresh() {
                Ok(Some(groups)) => {
                    found[i] = discovered(&groups, &job.scheme, &job.metrics_path, &job.query)
                }
                Ok(None) => {}
                Err(errors) => {
                    for e in errors {
                        log::warn!("scrape job `{}`: file_sd: {e}", job.def.job);
                    }
                    found[i] = discovered(&sd.groups(), &job.scheme, &job.metrics_path, &job.query);
                }
            }
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
        let wait = interval.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, task)) in running {
        let _ = tx.send(true);
        let _ = task.await;
    }
}
