//! The list-and-watch loops of one Kubernetes discovery source; see the parent module.
//!
//! Each loop keeps the objects of one resource in one namespace (or all). For the roles
//! node, pod and service an object is kept as its groups; for endpoints and endpointslice the
//! loops of the endpoints, services and pods keep the objects themselves, and every change
//! in any of them rebuilds the groups from all three stores, since a target carries labels
//! from each.

use super::endpoints::{self, EndpointSlice, Endpoints, Stores};
use super::ingress::{self, Ingress};
use super::objects::{self, List, Node, Pod, Service, WatchEvent};
use super::{Api, BODY_LIMIT, Role, State, WATCH_SECONDS, escape};
use crate::discovery::TargetGroup;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A resource a loop lists and watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resource {
    Nodes,
    Pods,
    Services,
    Endpoints,
    EndpointSlices,
    Ingresses,
}

impl Resource {
    /// The resources a role needs, its own first.
    pub(super) const fn of(role: Role) -> &'static [Self] {
        match role {
            Role::Node => &[Self::Nodes],
            Role::Pod => &[Self::Pods],
            Role::Service => &[Self::Services],
            Role::Endpoints => &[Self::Endpoints, Self::Services, Self::Pods],
            Role::EndpointSlice => &[Self::EndpointSlices, Self::Services, Self::Pods],
            Role::Ingress => &[Self::Ingresses],
        }
    }

    /// The selector role that filters this resource.
    pub(super) const fn selector_role(self) -> &'static str {
        match self {
            Self::Nodes => "node",
            Self::Pods => "pod",
            Self::Services => "service",
            Self::Endpoints => "endpoints",
            Self::EndpointSlices => "endpointslice",
            Self::Ingresses => "ingress",
        }
    }

    /// The API path, for one namespace or (`None`) all.
    pub(super) fn path(self, namespace: Option<&str>) -> String {
        let (group, plural) = match self {
            Self::Nodes => ("/api/v1", "nodes"),
            Self::Pods => ("/api/v1", "pods"),
            Self::Services => ("/api/v1", "services"),
            Self::Endpoints => ("/api/v1", "endpoints"),
            Self::EndpointSlices => ("/apis/discovery.k8s.io/v1", "endpointslices"),
            Self::Ingresses => ("/apis/networking.k8s.io/v1", "ingresses"),
        };
        match namespace {
            Some(ns) => format!("{group}/namespaces/{ns}/{plural}"),
            None => format!("{group}/{plural}"),
        }
    }
}

/// A kept object: its groups, or for the endpoints roles the object itself.
#[derive(Debug, Clone)]
pub(super) enum Object {
    Groups(Vec<TargetGroup>),
    Pod(Box<Pod>),
    Service(Box<Service>),
    Endpoints(Box<Endpoints>),
    EndpointSlice(Box<EndpointSlice>),
}

type Objects = BTreeMap<String, Object>;

/// The groups of all loops' objects.
pub(super) fn groups(role: Role, stores: &[Objects]) -> Vec<TargetGroup> {
    let all = stores.iter().flat_map(BTreeMap::values);
    if !matches!(role, Role::Endpoints | Role::EndpointSlice) {
        return all
            .filter_map(|o| match o {
                Object::Groups(g) => Some(g),
                _ => None,
            })
            .flatten()
            .cloned()
            .collect();
    }
    let mut s = Stores::default();
    for o in all.clone() {
        match o {
            Object::Pod(p) => {
                let m = &p.metadata;
                s.pods.insert((m.namespace.as_str(), m.name.as_str()), p);
            }
            Object::Service(v) => {
                let m = &v.metadata;
                s.services
                    .insert((m.namespace.as_str(), m.name.as_str()), v);
            }
            _ => {}
        }
    }
    all.flat_map(|o| match o {
        Object::Endpoints(e) => endpoints::endpoints_groups(e, &s),
        Object::EndpointSlice(e) => endpoints::endpointslice_groups(e, &s),
        _ => Vec::new(),
    })
    .collect()
}

/// One list-and-watch loop (one resource in one namespace, or all).
pub(super) struct Watcher {
    pub(super) api: Api,
    pub(super) role: Role,
    pub(super) resource: Resource,
    pub(super) path: String,
    pub(super) query: String,
    /// Objects by source.
    pub(super) objects: Objects,
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
        self.objects.clone()
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

    /// Keeps an object: its source and what is kept of it.
    fn build(&self, object: serde_json::Value) -> Result<(String, Object), String> {
        fn parse<T: serde::de::DeserializeOwned>(
            v: serde_json::Value,
            what: &str,
        ) -> Result<T, String> {
            serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
        }
        let own = Resource::of(self.role)[0] == self.resource;
        match self.resource {
            Resource::Nodes => {
                let n: Node = parse(object, "a node")?;
                let source = objects::node_source(&n.metadata.name);
                let groups = objects::node_groups(&n).unwrap_or_else(|e| {
                    log::warn!("kubernetes_sd_configs: {e}");
                    Vec::new()
                });
                Ok((source, Object::Groups(groups)))
            }
            Resource::Pods => {
                let p: Pod = parse(object, "a pod")?;
                let source = objects::pod_source(&p.metadata.namespace, &p.metadata.name);
                if own {
                    Ok((source, Object::Groups(objects::pod_groups(&p))))
                } else {
                    Ok((source, Object::Pod(Box::new(p))))
                }
            }
            Resource::Services => {
                let s: Service = parse(object, "a service")?;
                let source = objects::service_source(&s.metadata.namespace, &s.metadata.name);
                if own {
                    Ok((source, Object::Groups(objects::service_groups(&s))))
                } else {
                    Ok((source, Object::Service(Box::new(s))))
                }
            }
            Resource::Endpoints => {
                let e: Endpoints = parse(object, "an endpoints object")?;
                let m = &e.metadata;
                let source = endpoints::endpoints_source(&m.namespace, &m.name);
                Ok((source, Object::Endpoints(Box::new(e))))
            }
            Resource::EndpointSlices => {
                let e: EndpointSlice = parse(object, "an endpoint slice")?;
                let m = &e.metadata;
                let source = endpoints::endpointslice_source(&m.namespace, &m.name);
                Ok((source, Object::EndpointSlice(Box::new(e))))
            }
            Resource::Ingresses => {
                let i: Ingress = parse(object, "an ingress")?;
                let m = &i.metadata;
                let source = ingress::ingress_source(&m.namespace, &m.name);
                Ok((source, Object::Groups(ingress::ingress_groups(&i))))
            }
        }
    }

    /// Lists every object; returns the version to watch from.
    async fn list(&mut self) -> Result<String, String> {
        let url = self.url("");
        let body = self.get_all(&url).await?;
        let list: List<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not a list: {e}"))?;
        let mut objects = BTreeMap::new();
        for item in list.items {
            let (source, groups) = self.build(item).map_err(|e| format!("{url}: {e}"))?;
            objects.insert(source, groups);
        }
        self.objects = objects;
        Ok(list.metadata.resource_version)
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
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event: WatchEvent = serde_json::from_slice(&line)
                    .map_err(|e| format!("{url}: not a watch event: {e}"))?;
                let rv = event
                    .object
                    .pointer("/metadata/resourceVersion")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                match event.kind.as_str() {
                    "ADDED" | "MODIFIED" => {
                        let (source, groups) = self
                            .build(event.object)
                            .map_err(|e| format!("{url}: {e}"))?;
                        self.objects.insert(source, groups);
                        changed = true;
                    }
                    "DELETED" => {
                        let (source, _) = self
                            .build(event.object)
                            .map_err(|e| format!("{url}: {e}"))?;
                        changed |= self.objects.remove(&source).is_some();
                    }
                    "BOOKMARK" => {}
                    "ERROR" => {
                        let code = event.object.get("code").and_then(serde_json::Value::as_i64);
                        if code == Some(410) {
                            return Ok(Ended::Gone);
                        }
                        let message = event
                            .object
                            .get("message")
                            .and_then(|m| m.as_str())
                            .unwrap_or("");
                        return Err(format!("{url}: watch error {code:?}: {message}"));
                    }
                    other => {
                        log::warn!("kubernetes_sd_configs: {url}: unknown watch event `{other}`")
                    }
                }
                if let Some(rv) = rv {
                    version = rv;
                }
            }
            if changed && out.send((index, Ok(self.groups()))).await.is_err() {
                return Ok(Ended::Closed(version));
            }
        }
    }
}
