//! Kubernetes service discovery with Prometheus' `kubernetes_sd_configs` semantics, for the
//! roles `node` and `pod`:
//!
//! ```toml
//! [[scrape.kubernetes_sd_configs]]
//! role = "pod"                              # or "node"
//! namespaces = { names = ["edge"] }         # pods only; default: all (own_namespace too)
//! selectors = [{ role = "pod", label = "app=sensor", field = "spec.nodeName=gw-7" }]
//! # Outside the cluster (default: in-cluster service account):
//! # api_server = "https://k8s.lan:6443"
//! # authorization = { credentials_file = "/etc/magpie/k8s.token" }   # or basic_auth
//! # tls_config = { ca_file = "/etc/magpie/k8s-ca.pem" }
//! ```
//!
//! Targets and labels are Prometheus' (`discovery/kubernetes/{node,pod}.go`, 2.42): a node
//! is its kubelet at the first address by type priority (InternalIP, InternalDNS,
//! ExternalIP, ExternalDNS, LegacyHostIP, Hostname) with `instance` = the node name and
//! `__meta_kubernetes_node_{name,provider_id,label_*,labelpresent_*,annotation_*,
//! annotationpresent_*,address_<type>}`; a pod gives a target per container port
//! (`podIP:port`) or per container without ports (the pod IP), init containers included,
//! with `__meta_kubernetes_namespace` and `__meta_kubernetes_pod_{name,ip,ready,phase,
//! node_name,host_ip,uid,controller_kind,controller_name,label_*,labelpresent_*,
//! annotation_*,annotationpresent_*,container_{name,id,image,init,port_name,port_number,
//! port_protocol}}`; a pod without an IP has no targets. Label and annotation names are
//! sanitized to `[a-zA-Z0-9_]`.
//!
//! # List and watch
//! A background task per source lists the objects, then watches from the list's
//! `resourceVersion` (with bookmarks and a server-side timeout). A watch that ends is
//! resumed from the last version seen; `410 Gone` (as a status or a watch `ERROR` event)
//! means the version is too old and the task lists again; any other failure is reported and
//! retried with backoff (1 s doubling to 30 s) from a new list. Targets stay as last known
//! through all of this. The job's supervisor picks up changes within a second.
//! In-cluster, the service account's token is read again for every request (bound tokens
//! rotate).

mod objects;
#[cfg(test)]
mod tests;

use super::TargetGroup;
use super::http::{Authorization, BasicAuth, TlsConfig};
use magpie_transport::{Auth, HttpClient, TlsOptions};
use objects::{List, Node, Pod, WatchEvent};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where a pod's service account finds its token, CA and namespace.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long the server keeps one watch open.
const WATCH_SECONDS: u64 = 300;
const BODY_LIMIT: u64 = 64 << 20;

/// What to discover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nodes (their kubelets).
    Node,
    /// Pods (their container ports).
    Pod,
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "node" => Ok(Self::Node),
            "pod" => Ok(Self::Pod),
            "service" | "endpoints" | "endpointslice" | "ingress" => Err(serde::de::Error::custom(
                format!("role `{s}` is not supported yet (node and pod are)"),
            )),
            _ => Err(serde::de::Error::custom(format!(
                "unknown Kubernetes SD role `{s}`"
            ))),
        }
    }
}

impl Role {
    const fn name(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Pod => "pod",
        }
    }
}

/// `namespaces`: which namespaces pods are listed in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// Include the namespace magpie runs in (in-cluster).
    #[serde(default)]
    pub own_namespace: bool,
    /// Namespaces by name; empty with `own_namespace` false means all.
    #[serde(default)]
    pub names: Vec<String>,
}

/// `selectors`: label and field selectors the API server filters with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The role the selector applies to.
    pub role: String,
    /// A label selector, `app=x,tier!=db`.
    #[serde(default)]
    pub label: Option<String>,
    /// A field selector, `spec.nodeName=gw-7`.
    #[serde(default)]
    pub field: Option<String>,
}

/// `kubernetes_sd_configs`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    /// `node` or `pod`.
    pub role: Role,
    /// The API server; default: in-cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` and the
    /// service account).
    #[serde(default)]
    pub api_server: Option<String>,
    /// Namespaces to list pods in.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// Server-side filters.
    #[serde(default)]
    pub selectors: Vec<Selector>,
    /// HTTP basic auth; the password from a file.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// A bearer token from a file.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// CA and client certificate.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
}

impl KubernetesSdConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Every problem found, each naming the key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if let Some(u) = &self.api_server
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            errors.push(format!(
                "api_server: `{u}` is not an http:// or https:// URL"
            ));
        }
        if self.api_server.is_none() && (self.basic_auth.is_some() || self.authorization.is_some())
        {
            errors.push(
                "basic_auth and authorization need api_server (in-cluster uses the service account)"
                    .into(),
            );
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            errors.push("basic_auth and authorization cannot both be set".into());
        }
        for s in &self.selectors {
            if s.role != self.role.name() {
                errors.push(format!(
                    "selectors: role `{}` does not match the discovery role `{}`",
                    s.role,
                    self.role.name()
                ));
            }
        }
        if self.role == Role::Node
            && (self.namespaces.own_namespace || !self.namespaces.names.is_empty())
        {
            errors.push("namespaces: nodes are not namespaced".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// How requests reach the API server.
#[derive(Debug, Clone)]
struct Api {
    base: String,
    client: HttpClient,
    /// Fixed credentials, or the service account's token file, read per request.
    auth: Auth,
    token_file: Option<PathBuf>,
}

impl Api {
    fn headers(&self) -> Result<Vec<(String, String)>, String> {
        let auth = match &self.token_file {
            Some(f) => Auth::bearer(f).map_err(|e| e.to_string())?,
            None => self.auth.clone(),
        };
        Ok(auth.header().into_iter().collect())
    }
}

/// What the background task publishes.
#[derive(Debug, Clone, Default)]
struct State {
    groups: Arc<Vec<TargetGroup>>,
    error: Option<String>,
}

/// Discovery from the Kubernetes API; see the module documentation.
#[derive(Debug)]
pub struct KubernetesSd {
    api: Api,
    role: Role,
    /// Paths to list and watch: one per namespace, or one for all.
    paths: Vec<String>,
    query: String,
    state: Option<watch::Receiver<State>>,
    task: Option<tokio::task::JoinHandle<()>>,
    groups: Arc<Vec<TargetGroup>>,
    /// The first refresh reports even an empty set.
    first: bool,
}

impl Drop for KubernetesSd {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl KubernetesSd {
    /// Discovery for `config`.
    ///
    /// # Errors
    /// What [`KubernetesSdConfig::validate`] finds; in-cluster without the service
    /// account's environment or files; unreadable credential or certificate files.
    pub fn new(config: &KubernetesSdConfig) -> Result<Self, Vec<String>> {
        config.validate()?;
        let sa = PathBuf::from(SERVICE_ACCOUNT);
        let (base, mut tls, auth, token_file) = if let Some(url) = &config.api_server {
            let auth = match (&config.basic_auth, &config.authorization) {
                (Some(b), _) => Auth::basic(&b.username, &b.password_file)
                    .map_err(|e| vec![format!("basic_auth: {e}")])?,
                (None, Some(a)) => Auth::bearer(&a.credentials_file)
                    .map_err(|e| vec![format!("authorization: {e}")])?,
                (None, None) => Auth::None,
            };
            (
                url.trim_end_matches('/').to_string(),
                TlsOptions::default(),
                auth,
                None,
            )
        } else {
            let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
            let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_default();
            if host.is_empty() || port.is_empty() {
                return Err(vec![
                    "api_server: not set, and not running in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset)".into(),
                ]);
            }
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let tls = TlsOptions {
                ca_file: Some(sa.join("ca.crt")),
                ..TlsOptions::default()
            };
            (
                format!("https://{host}:{port}"),
                tls,
                Auth::None,
                Some(sa.join("token")),
            )
        };
        if let Some(t) = &config.tls_config {
            tls = TlsOptions {
                ca_file: t.ca_file.clone().or(tls.ca_file),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
            };
        }
        let client = HttpClient::new(&tls).map_err(|e| vec![format!("tls_config: {e}")])?;
        let mut namespaces = config.namespaces.names.clone();
        if config.namespaces.own_namespace {
            let ns = std::fs::read_to_string(sa.join("namespace")).map_err(|e| {
                vec![format!(
                    "namespaces: own_namespace: cannot read {}: {e}",
                    sa.join("namespace").display()
                )]
            })?;
            namespaces.push(ns.trim().to_string());
        }
        let resource = match config.role {
            Role::Node => "nodes",
            Role::Pod => "pods",
        };
        let paths = if namespaces.is_empty() {
            vec![format!("/api/v1/{resource}")]
        } else {
            namespaces
                .iter()
                .map(|ns| format!("/api/v1/namespaces/{ns}/{resource}"))
                .collect()
        };
        let mut query = String::new();
        for s in &config.selectors {
            for (key, value) in [("labelSelector", &s.label), ("fieldSelector", &s.field)] {
                if let Some(v) = value {
                    query.push_str(&format!("&{key}={}", escape(v)));
                }
            }
        }
        Ok(Self {
            api: Api {
                base,
                client,
                auth,
                token_file,
            },
            role: config.role,
            paths,
            query,
            state: None,
            task: None,
            groups: Arc::new(Vec::new()),
            first: true,
        })
    }

    /// How often the supervisor looks for changes the background task found.
    #[must_use]
    pub const fn refresh_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Starts the list-and-watch task on first use; returns every group when they changed.
    ///
    /// # Errors
    /// The task's latest failure, once; the last known groups stay.
    pub async fn refresh(&mut self) -> Result<Option<Vec<TargetGroup>>, Vec<String>> {
        if self.state.is_none() {
            let (tx, rx) = watch::channel(State::default());
            let mut tasks = Vec::new();
            for path in &self.paths {
                tasks.push(Watcher {
                    api: self.api.clone(),
                    role: self.role,
                    path: path.clone(),
                    query: self.query.clone(),
                    objects: BTreeMap::new(),
                });
            }
            self.task = Some(tokio::spawn(run(tasks, tx)));
            self.state = Some(rx);
        }
        let Some(rx) = self.state.as_mut() else {
            return Ok(None);
        };
        if !rx.has_changed().unwrap_or(false) && !self.first {
            return Ok(None);
        }
        let state = rx.borrow_and_update().clone();
        let changed = self.first || state.groups != self.groups;
        self.first = false;
        self.groups = state.groups;
        if let Some(e) = state.error {
            return Err(vec![e]);
        }
        Ok(changed.then(|| self.groups.to_vec()))
    }

    /// The groups as last known.
    #[must_use]
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.groups.to_vec()
    }
}

/// Percent-encodes a query value.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One list-and-watch loop (one namespace, or all).
struct Watcher {
    api: Api,
    role: Role,
    path: String,
    query: String,
    /// Groups per object source.
    objects: BTreeMap<String, Vec<TargetGroup>>,
}

/// How a watch ended.
enum Ended {
    /// The server closed it; resume from this version.
    Closed(String),
    /// The version is too old: list again.
    Gone,
}

async fn run(mut watchers: Vec<Watcher>, tx: watch::Sender<State>) {
    // Several namespaces: one loop each, sharing the published state.
    let (inner_tx, mut inner_rx) =
        tokio::sync::mpsc::channel::<(usize, Result<Vec<TargetGroup>, String>)>(16);
    let count = watchers.len();
    for (i, w) in watchers.drain(..).enumerate() {
        let tx = inner_tx.clone();
        tokio::spawn(async move { w.run(i, tx).await });
    }
    drop(inner_tx);
    let mut per: Vec<Vec<TargetGroup>> = vec![Vec::new(); count];
    while let Some((i, update)) = inner_rx.recv().await {
        let error = match update {
            Ok(groups) => {
                per[i] = groups;
                None
            }
            Err(e) => Some(e),
        };
        let groups = Arc::new(per.iter().flatten().cloned().collect());
        tx.send_replace(State { groups, error });
    }
}

type Updates = tokio::sync::mpsc::Sender<(usize, Result<Vec<TargetGroup>, String>)>;

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

    fn groups(&self) -> Vec<TargetGroup> {
        self.objects.values().flatten().cloned().collect()
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

    /// Builds an object's groups; `None` for an object that is not of the role's kind.
    fn build(&self, object: serde_json::Value) -> Result<(String, Vec<TargetGroup>), String> {
        match self.role {
            Role::Node => {
                let n: Node = serde_json::from_value(object).map_err(|e| format!("a node: {e}"))?;
                let source = objects::node_source(&n.metadata.name);
                let groups = objects::node_groups(&n).unwrap_or_else(|e| {
                    log::warn!("kubernetes_sd_configs: {e}");
                    Vec::new()
                });
                Ok((source, groups))
            }
            Role::Pod => {
                let p: Pod = serde_json::from_value(object).map_err(|e| format!("a pod: {e}"))?;
                let source = objects::pod_source(&p.metadata.namespace, &p.metadata.name);
                Ok((source, objects::pod_groups(&p)))
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
