//! Kubernetes objects as the API server sends them (only the fields discovery reads), and the
//! target groups Prometheus builds from them (`discovery/kubernetes/{node,pod}.go`, 2.42).
//! No I/O: JSON in, groups out.

use super::super::TargetGroup;
use serde::Deserialize;
use std::collections::BTreeMap;

pub(super) const META: &str = "__meta_kubernetes_";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Meta {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) uid: String,
    pub(super) resource_version: String,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) owner_references: Vec<OwnerRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct OwnerRef {
    kind: String,
    name: String,
    controller: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Node {
    pub(super) metadata: Meta,
    spec: NodeSpec,
    status: NodeStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeSpec {
    #[serde(rename = "providerID")]
    provider_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct NodeStatus {
    addresses: Vec<NodeAddress>,
    daemon_endpoints: DaemonEndpoints,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct NodeAddress {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DaemonEndpoints {
    kubelet_endpoint: Endpoint,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct Endpoint {
    port: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Pod {
    pub(super) metadata: Meta,
    pub(super) spec: PodSpec,
    pub(super) status: PodStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodSpec {
    node_name: String,
    pub(super) containers: Vec<Container>,
    init_containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Container {
    pub(super) name: String,
    pub(super) image: String,
    pub(super) ports: Vec<ContainerPort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ContainerPort {
    pub(super) name: String,
    pub(super) container_port: i64,
    pub(super) protocol: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PodStatus {
    phase: String,
    #[serde(rename = "podIP")]
    pub(super) pod_ip: String,
    #[serde(rename = "hostIP")]
    host_ip: String,
    conditions: Vec<Condition>,
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ContainerStatus {
    name: String,
    #[serde(rename = "containerID")]
    container_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Service {
    pub(super) metadata: Meta,
    spec: ServiceSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "clusterIP")]
    cluster_ip: String,
    external_name: String,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: String,
    ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ServicePort {
    name: String,
    port: i64,
    protocol: String,
}

/// A list response: the items and the version to watch from. A `null` list (Go's nil slice)
/// is empty.
#[derive(Debug, Deserialize)]
#[serde(default, bound = "T: Deserialize<'de>")]
pub(super) struct List<T> {
    #[serde(deserialize_with = "null_default")]
    pub(super) metadata: ListMeta,
    #[serde(deserialize_with = "null_default")]
    pub(super) items: Vec<T>,
}

/// `null` as the type's default, as Go reads it into a zero value.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            metadata: ListMeta::default(),
            items: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ListMeta {
    #[serde(deserialize_with = "null_default")]
    pub(super) resource_version: String,
}

/// One line of a watch stream.
#[derive(Debug, Deserialize)]
pub(super) struct WatchEvent {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) object: serde_json::Value,
}

/// Prometheus' `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes
/// `_`.
pub(super) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `host:port` as Go's `net.JoinHostPort`: an IPv6 address in brackets.
pub(super) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn labels_and_annotations(out: &mut BTreeMap<String, String>, kind: &str, meta: &Meta) {
    for (what, map) in [("label", &meta.labels), ("annotation", &meta.annotations)] {
        for (k, v) in map {
            let n = sanitize(k);
            out.insert(format!("{META}{kind}_{what}_{n}"), v.clone());
            out.insert(format!("{META}{kind}_{what}present_{n}"), "true".into());
        }
    }
}

/// The source of a node's group.
pub(super) fn node_source(name: &str) -> String {
    format!("node/{name}")
}

/// The source of a pod's group.
pub(super) fn pod_source(namespace: &str, name: &str) -> String {
    format!("pod/{namespace}/{name}")
}

/// The source of a service's group.
pub(super) fn service_source(namespace: &str, name: &str) -> String {
    format!("svc/{namespace}/{name}")
}

/// The labels every target of a service carries (and the endpoints roles add for the
/// service an object belongs to).
pub(super) fn service_labels(svc: &Service) -> BTreeMap<String, String> {
    let m = &svc.metadata;
    let mut out = BTreeMap::new();
    out.insert(format!("{META}service_name"), m.name.clone());
    out.insert(format!("{META}namespace"), m.namespace.clone());
    labels_and_annotations(&mut out, "service", m);
    out
}

/// A service's targets: one per port, at `<name>.<namespace>.svc:<port>`.
pub(super) fn service_groups(svc: &Service) -> Vec<TargetGroup> {
    let m = &svc.metadata;
    let common = service_labels(svc);
    let spec = &svc.spec;
    spec.ports
        .iter()
        .map(|port| {
            let number = port.port.to_string();
            let mut labels = common.clone();
            let mut put = |n: &str, v: &str| {
                labels.insert(format!("{META}{n}"), v.to_string());
            };
            put("service_port_name", &port.name);
            put("service_port_number", &number);
            put("service_port_protocol", &port.protocol);
            put("service_type", &spec.kind);
            if spec.kind == "ExternalName" {
                put("service_external_name", &spec.external_name);
            } else {
                put("service_cluster_ip", &spec.cluster_ip);
            }
            if spec.kind == "LoadBalancer" {
                put("service_loadbalancer_ip", &spec.load_balancer_ip);
            }
            TargetGroup {
                targets: vec![join_host_port(
                    &format!("{}.{}.svc", m.name, m.namespace),
                    &number,
                )],
                labels,
                source: service_source(&m.namespace, &m.name),
            }
        })
        .collect()
}

const ADDRESS_PRIORITY: [&str; 6] = [
    "InternalIP",
    "InternalDNS",
    "ExternalIP",
    "ExternalDNS",
    "LegacyHostIP",
    "Hostname",
];

/// A node's target: the kubelet at the node's preferred address. `None` (logged by the
/// caller) when the node has no address.
pub(super) fn node_groups(n: &Node) -> Result<Vec<TargetGroup>, String> {
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    for a in &n.status.addresses {
        by_type.entry(a.kind.as_str()).or_insert(a.address.as_str());
    }
    let address = ADDRESS_PRIORITY
        .iter()
        .find_map(|t| by_type.get(t))
        .ok_or_else(|| format!("node `{}`: no node address found", n.metadata.name))?;
    let mut labels = BTreeMap::new();
    labels.insert(format!("{META}node_name"), n.metadata.name.clone());
    labels.insert(
        format!("{META}node_provider_id"),
        n.spec.provider_id.clone(),
    );
    labels_and_annotations(&mut labels, "node", &n.metadata);
    labels.insert("instance".into(), n.metadata.name.clone());
    for (t, a) in &by_type {
        labels.insert(
            sanitize(&format!("{META}node_address_{t}")),
            (*a).to_string(),
        );
    }
    let port = n.status.daemon_endpoints.kubelet_endpoint.port.to_string();
    Ok(vec![TargetGroup {
        targets: vec![join_host_port(address, &port)],
        labels,
        source: node_source(&n.metadata.name),
    }])
}

/// A pod's targets: one per container port, or one per container without ports (the pod IP
/// alone); none while the pod has no IP. One group per target, since each has its own
/// container labels.
pub(super) fn pod_groups(p: &Pod) -> Vec<TargetGroup> {
    if p.status.pod_ip.is_empty() {
        return Vec::new();
    }
    let m = &p.metadata;
    let mut common = pod_labels(p);
    common.insert(format!("{META}namespace"), m.namespace.clone());
    let source = pod_source(&m.namespace, &m.name);
    let all = p
        .spec
        .containers
        .iter()
        .map(|c| (c, false))
        .chain(p.spec.init_containers.iter().map(|c| (c, true)));
    let mut out = Vec::new();
    for (c, init) in all {
        let statuses = if init {
            &p.status.init_container_statuses
        } else {
            &p.status.container_statuses
        };
        let id = statuses
            .iter()
            .find(|s| s.name == c.name)
            .map_or("", |s| s.container_id.as_str());
        let mut labels = common.clone();
        labels.insert(format!("{META}pod_container_name"), c.name.clone());
        labels.insert(format!("{META}pod_container_id"), id.to_string());
        labels.insert(format!("{META}pod_container_image"), c.image.clone());
        labels.insert(format!("{META}pod_container_init"), init.to_string());
        if c.ports.is_empty() {
            out.push(TargetGroup {
                targets: vec![p.status.pod_ip.clone()],
                labels,
                source: source.clone(),
            });
            continue;
        }
        for port in &c.ports {
            let number = port.container_port.to_string();
            let mut labels = labels.clone();
            labels.insert(format!("{META}pod_container_port_number"), number.clone());
            labels.insert(format!("{META}pod_container_port_name"), port.name.clone());
            labels.insert(
                format!("{META}pod_container_port_protocol"),
                port.protocol.clone(),
            );
            out.push(TargetGroup {
                targets: vec![join_host_port(&p.status.pod_ip, &number)],
                labels,
                source: source.clone(),
            });
        }
    }
    out
}

/// A pod's own labels, without its namespace and containers (Prometheus' `podLabels`).
pub(super) fn pod_labels(p: &Pod) -> BTreeMap<String, String> {
    let m = &p.metadata;
    let mut common = BTreeMap::new();
    let mut put = |n: &str, v: &str| {
        common.insert(format!("{META}{n}"), v.to_string());
    };
    put("pod_name", &m.name);
    put("pod_ip", &p.status.pod_ip);
    put("pod_phase", &p.status.phase);
    put("pod_node_name", &p.spec.node_name);
    put("pod_host_ip", &p.status.host_ip);
    put("pod_uid", &m.uid);
    let ready = p
        .status
        .conditions
        .iter()
        .find(|c| c.kind == "Ready")
        .map_or_else(|| "unknown".to_string(), |c| c.status.to_ascii_lowercase());
    put("pod_ready", &ready);
    if let Some(owner) = m
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
    {
        if !owner.kind.is_empty() {
            put("pod_controller_kind", &owner.kind);
        }
        if !owner.name.is_empty() {
            put("pod_controller_name", &owner.name);
        }
    }
    labels_and_annotations(&mut common, "pod", m);
    common
}
