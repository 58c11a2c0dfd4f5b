//! Kubernetes service discovery with Prometheus' `kubernetes_sd_configs` semantics, for the
//! roles `node`, `pod`, `service`, `endpoints`, `endpointslice` and `ingress` (see
//! `ingress.rs`). The client half is behind the cargo feature `kubernetes` (on by default);
//! without it only the settings are read, and [`ENABLED`] tells the configuration checks to
//! refuse them:
//!
//! ```toml
//! [[scrape.kubernetes_sd_configs]]
//! role = "pod"                # or "node", "service", "endpoints", "endpointslice", "ingress"
//! namespaces = { names = ["edge"] }         # not for nodes; default: all (own_namespace too)
//! selectors = [{ role = "pod", label = "app=sensor", field = "spec.nodeName=gw-7" }]
//! # Outside the cluster (default: in-cluster service account):
//! # api_server = "https://k8s.lan:6443"
//! # authorization = { credentials_file = "/etc/magpie/k8s.token" }   # or basic_auth
//! # tls_config = { ca_file = "/etc/magpie/k8s-ca.pem" }
//! ```
//!
//! Targets and labels are Prometheus' (`discovery/kubernetes/*.go`, 2.42): a node
//! is its kubelet at the first address by type priority (InternalIP, InternalDNS,
//! ExternalIP, ExternalDNS, LegacyHostIP, Hostname) with `instance` = the node name and
//! `__meta_kubernetes_node_{name,provider_id,label_*,labelpresent_*,annotation_*,
//! annotationpresent_*,address_<type>}` (a node without such an address keeps the targets it
//! last had, as Prometheus sends no update for it); a pod gives a target per container port
//! (`podIP:port`) or per container without ports (the pod IP), init containers included,
//! with `__meta_kubernetes_namespace` and `__meta_kubernetes_pod_{name,ip,ready,phase,
//! node_name,host_ip,uid,controller_kind,controller_name,label_*,labelpresent_*,
//! annotation_*,annotationpresent_*,container_{name,id,image,init,port_name,port_number,
//! port_protocol}}`; a pod without an IP has no targets. A service gives a target per port at
//! `<name>.<namespace>.svc:<port>` with `__meta_kubernetes_namespace` and
//! `__meta_kubernetes_service_{name,label_*,labelpresent_*,annotation_*,annotationpresent_*,
//! port_name,port_number,port_protocol,type}`, plus `cluster_ip` (or `external_name` for
//! an ExternalName service) and `loadbalancer_ip` for a LoadBalancer.
//!
//! An Endpoints object gives a target per address (ready and not ready) and port at
//! `ip:port`, with `__meta_kubernetes_namespace`, `__meta_kubernetes_endpoints_{name,label_*,
//! labelpresent_*}` and `__meta_kubernetes_endpoint_{port_name,port_protocol,ready,
//! address_target_kind,address_target_name,node_name,hostname}`; the service of the same name
//! adds its `__meta_kubernetes_service_*` labels, and an address whose target is a pod adds
//! the pod's `__meta_kubernetes_pod_*` labels and `pod_container_{name,image,port_name,
//! port_number,port_protocol}` of the container port matching the endpoint port. A pod's container ports no endpoint port covers become targets of their own. An
//! EndpointSlice (`discovery.k8s.io/v1`) works the same way with
//! `__meta_kubernetes_endpointslice_{name,address_type,port,port_name,port_protocol,
//! port_app_protocol,endpoint_conditions_{ready,serving,terminating},endpoint_hostname,
//! endpoint_node_name,endpoint_zone,address_target_kind,address_target_name,
//! endpoint_topology_*,endpoint_topology_present_*}` (`endpoint_node_name` and `_zone` are
//! Prometheus 2.52's),
//! its service named by its `kubernetes.io/service-name` label. These two roles list and
//! watch three resources (the endpoints or slices, services and pods, each filtered by the
//! `selectors` of its role) and rebuild the targets when any of them changes. Label and
//! annotation names are sanitized to `[a-zA-Z0-9_]`.
//!
//! # List and watch
//! A background task per source lists the objects, then watches from the list's
//! `resourceVersion` (with bookmarks and a server-side timeout). A watch that ends is
//! resumed from the last version seen; `410 Gone` (as a status, or a watch `ERROR` event
//! with that code or the reason `Expired` or `Gone`, as client-go reads it) means the version
//! is too old and the task lists again; any other failure is reported and retried with
//! backoff (1 s doubling to 30 s) from a new list. Targets stay as last known
//! through all of this. The job's supervisor picks up changes within a second.
//! In-cluster, the service account's token is read again for every request (bound tokens
//! rotate).
//!
//! # Tested against Kubernetes' own objects
//! `testdata/kubernetes/` holds the objects Kubernetes' API machinery serializes with every
//! field set (the `kubernetes/api` repository's `testdata/HEAD`); `tests_apidata*.rs` feed
//! each through `store.rs` as a list and as watch events and check every target's labels
//! against what Prometheus 2.42's code builds from it.

#[cfg(all(test, feature = "kubernetes"))]
mod apidata;
#[cfg(feature = "kubernetes")]
mod endpoints;
#[cfg(feature = "kubernetes")]
mod ingress;
#[cfg(feature = "kubernetes")]
mod objects;
#[cfg(feature = "kubernetes")]
mod store;
#[cfg(all(test, feature = "kubernetes"))]
mod tests;
#[cfg(all(test, feature = "kubernetes"))]
mod tests_apidata;
#[cfg(all(test, feature = "kubernetes"))]
mod tests_apidata_endpoints;
#[cfg(all(test, feature = "kubernetes"))]
mod tests_endpoints;
#[cfg(feature = "kubernetes")]
mod watch;

#[cfg(feature = "kubernetes")]
use super::TargetGroup;
use super::http::{Authorization, BasicAuth, TlsConfig};
#[cfg(feature = "kubernetes")]
use magpie_transport::{Auth, HttpClient, TlsOptions};
use serde::Deserialize;
#[cfg(feature = "kubernetes")]
use std::path::PathBuf;
#[cfg(feature = "kubernetes")]
use std::sync::Arc;
#[cfg(feature = "kubernetes")]
use std::time::Duration;

/// Whether this build discovers from Kubernetes (cargo feature `kubernetes`, on by default,
/// off in the device build). Without it, `kubernetes_sd_configs` are refused at load.
pub const ENABLED: bool = cfg!(feature = "kubernetes");

#[cfg(feature = "kubernetes")]
/// Where a pod's service account finds its token, CA and namespace.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long the server keeps one watch open.
#[cfg(feature = "kubernetes")]
const WATCH_SECONDS: u64 = 300;
#[cfg(feature = "kubernetes")]
const BODY_LIMIT: u64 = 64 << 20;

/// What to discover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nodes (their kubelets).
    Node,
    /// Pods (their container ports).
    Pod,
    /// Services (each port at its cluster DNS name).
    Service,
    /// Endpoints objects (each address and port), with their services and pods.
    Endpoints,
    /// EndpointSlices (`discovery.k8s.io/v1`), with their services and pods.
    EndpointSlice,
    /// Ingresses (`networking.k8s.io/v1`): each rule host and path.
    Ingress,
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "node" => Ok(Self::Node),
            "pod" => Ok(Self::Pod),
            "service" => Ok(Self::Service),
            "endpoints" => Ok(Self::Endpoints),
            "endpointslice" => Ok(Self::EndpointSlice),
            "ingress" => Ok(Self::Ingress),
            _ => Err(serde::de::Error::custom(format!(
                "unknown Kubernetes SD role `{s}`"
            ))),
        }
    }
}

impl Role {
    #[cfg(feature = "kubernetes")]
    const fn name(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Pod => "pod",
            Self::Service => "service",
            Self::Endpoints => "endpoints",
            Self::EndpointSlice => "endpointslice",
            Self::Ingress => "ingress",
        }
    }
}

/// `namespaces`: which namespaces objects are listed in.
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
    /// What to discover.
    pub role: Role,
    /// The API server; default: in-cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` and the
    /// service account).
    #[serde(default)]
    pub api_server: Option<String>,
    /// Namespaces to list objects in.
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
        #[cfg(feature = "kubernetes")]
        for s in &self.selectors {
            let resources = store::Resource::of(self.role);
            if !resources.iter().any(|r| r.selector_role() == s.role) {
                let allowed: Vec<_> = resources.iter().map(|r| r.selector_role()).collect();
                errors.push(format!(
                    "selectors: role `{}` does not apply to the discovery role `{}` (it takes {})",
                    s.role,
                    self.role.name(),
                    allowed.join(", ")
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
#[cfg(feature = "kubernetes")]
struct Api {
    base: String,
    client: HttpClient,
    /// Fixed credentials, or the service account's token file, read per request.
    auth: Auth,
    token_file: Option<PathBuf>,
}

#[cfg(feature = "kubernetes")]
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
#[cfg(feature = "kubernetes")]
struct State {
    groups: Arc<Vec<TargetGroup>>,
    error: Option<String>,
}

/// Discovery from the Kubernetes API; see the module documentation.
#[derive(Debug)]
#[cfg(feature = "kubernetes")]
pub struct KubernetesSd {
    api: Api,
    role: Role,
    /// What to list and watch: each resource the role needs, per namespace or in all; the
    /// path and its selector query.
    paths: Vec<(store::Resource, String, String)>,
    state: Option<tokio::sync::watch::Receiver<State>>,
    task: Option<tokio::task::JoinHandle<()>>,
    groups: Arc<Vec<TargetGroup>>,
    /// The first refresh reports even an empty set.
    first: bool,
}

#[cfg(feature = "kubernetes")]
impl Drop for KubernetesSd {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

#[cfg(feature = "kubernetes")]
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
                server_name: None,
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
        let mut paths = Vec::new();
        for &resource in store::Resource::of(config.role) {
            let mut query = String::new();
            for s in config
                .selectors
                .iter()
                .filter(|s| s.role == resource.selector_role())
            {
                for (key, value) in [("labelSelector", &s.label), ("fieldSelector", &s.field)] {
                    if let Some(v) = value {
                        query.push_str(&format!("&{key}={}", escape(v)));
                    }
                }
            }
            if namespaces.is_empty() {
                paths.push((resource, resource.path(None), query));
            } else {
                for ns in &namespaces {
                    paths.push((resource, resource.path(Some(ns)), query.clone()));
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
            let (tx, rx) = tokio::sync::watch::channel(State::default());
            let mut tasks = Vec::new();
            for (resource, path, query) in &self.paths {
                tasks.push(watch::Watcher {
                    api: self.api.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    store: store::Store::new(self.role, *resource),
                });
            }
            self.task = Some(tokio::spawn(watch::run(self.role, tasks, tx)));
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
#[cfg(feature = "kubernetes")]
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
