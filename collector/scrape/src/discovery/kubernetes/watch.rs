//! The list-and-watch loops of one Kubernetes discovery source (the HTTP half; what is kept
//! of the objects is `store.rs`); see the parent module.
//!
//! Each loop keeps the objects of one resource in one namespace (or all). For the roles
//! node, pod and service an object is kept as its groups; for endpoints and endpointslice the
//! loops of the endpoints, services and pods keep the objects themselves, and every change
//! in any of them rebuilds the groups from all three stores, since a target carries labels
//! from each.

use super::store::{Objects, Step, Store, groups};
use super::{Api, BODY_LIMIT, Role, State, WATCH_SECONDS, escape};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One list-and-watch loop (one resource in one namespace, or all).
pub(super) struct Watcher {
    pub(super) api: Api,
    pub(super) path: String,
    pub(super) query: String,
    /// The objects seen so far.
    pub(super) store: Store,
}

/// How a watch ended.
enum Ended {
    /// The server closed it; resume from this version.
    Closed(String),
    /// The version is too old: list again.
    Gone,
}

pub(super) async fn run(role: Role, mut watchers: Vec<Watcher>, tx: watch::Sender<State>) {
    // Several namespaces or resources: one loop each, sharing the published state.
    let (inner_tx, mut inner_rx) = tokio::sync::mpsc::channel::<(usize, Update)>(16);
    let count = watchers.len();
    // When this task is aborted (the source dropped on reload or stop), so are the watchers,
    // and their open watch connections close.
    let _watchers = AbortOnDrop(
        watchers
            .drain(..)
            .enumerate()
            .map(|(i, w)| {
                let tx = inner_tx.clone();
                tokio::spawn(async move { w.run(i, tx).await })
            })
            .collect(),
    );
    drop(inner_tx);
    let mut per: Vec<Objects> = vec![BTreeMap::new(); count];
    while let Some((i, update)) = inner_rx.recv().await {
        let error = match update {
            Ok(objects) => {
                per[i] = objects;
                None
            }
            Err(e) => Some(e),
        };
        let groups = Arc::new(groups(role, &per));
        tx.send_replace(State { groups, error });
    }
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

type Update = Result<Objects, String>;
type Updates = tokio::sync::mpsc::Sender<(usize, Update)>;

impl Watcher {
    async fn run(mut self, index: usize, out: Updates) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.list().await {
                Ok(mut version) => {
                    backoff = Duration::from_secs(1);
                    if out.send((index, Ok(self.groups()))).await.is_err() {
                        return;
                    }
                    loop {
                        match self.watch(&version, index, &out).await {
                            Ok(Ended::Closed(v)) => version = v,
                            Ok(Ended::Gone) => {
                                log::info!(
                                    "kubernetes_sd_configs: {}: resource version {version} is gone; listing again",
                                    self.path
                                );
                                break;
                            }
                            Err(e) => {
                                if out.send((index, Err(e))).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(30));
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    if out.send((index, Err(e))).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    fn groups(&self) -> Objects {
        self.store.objects.clone()
    }

    fn url(&self, extra: &str) -> String {
        let q = format!("{extra}{}", self.query);
        let q = q.trim_start_matches('&');
        if q.is_empty() {
            format!("{}{}", self.api.base, self.path)
        } else {
            format!("{}{}?{q}", self.api.base, self.path)
        }
    }

    /// Lists every object; returns the version to watch from.
    async fn list(&mut self) -> Result<String, String> {
        let url = self.url("");
        let body = self.get_all(&url).await?;
        self.store.list(&body).map_err(|e| format!("{url}: {e}"))
    }

    async fn get_all(&self, url: &str) -> Result<Vec<u8>, String> {
        let headers = self.api.headers()?;
        let mut resp = self
            .api
            .client
            .get(url, &headers, Duration::from_secs(30), BODY_LIMIT)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if resp.status != 200 {
            return Err(format!("{url}: the API server answered {}", resp.status));
        }
        let mut body = Vec::new();
        let mut buf = vec![0; 16 << 10];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(60), resp.body.read(&mut buf))
                .await
                .map_err(|_| format!("{url}: the list stalled"))?
                .map_err(|e| format!("{url}: {e}"))?;
            if n == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&buf[..n]);
        }
    }

    /// Watches from `version`, publishing each change.
    async fn watch(&mut self, version: &str, index: usize, out: &Updates) -> Result<Ended, String> {
        let url = self.url(&format!(
            "watch=true&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={}",
            escape(version)
        ));
        let headers = self.api.headers()?;
        let mut resp = self
            .api
            .client
            .get(&url, &headers, Duration::from_secs(30), 0)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if resp.status == 410 {
            return Ok(Ended::Gone);
        }
        if resp.status != 200 {
            return Err(format!("{url}: the API server answered {}", resp.status));
        }
        let mut version = version.to_string();
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0; 16 << 10];
        let idle = Duration::from_secs(WATCH_SECONDS + 30);
        loop {
            let n = match tokio::time::timeout(idle, resp.body.read(&mut buf)).await {
                Err(_) => return Err(format!("{url}: the watch went silent")),
                // A broken stream is resumed like a closed one: the version is still good.
                Ok(Err(e)) => {
                    log::info!("kubernetes_sd_configs: {url}: watch broke ({e}); resuming");
                    return Ok(Ended::Closed(version));
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Ok(Ended::Closed(version));
            }
            pending.extend_from_slice(&buf[..n]);
            let mut changed = false;
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                match self.store.event(&line, &mut version) {
                    Ok(Step::Changed(c)) => changed |= c,
                    Ok(Step::Gone) => return Ok(Ended::Gone),
                    Err(e) => return Err(format!("{url}: {e}")),
                }
            }
            if changed && out.send((index, Ok(self.groups()))).await.is_err() {
                return Ok(Ended::Closed(version));
            }
        }
    }
}
