//! The roles `endpoints` and `endpointslice`: Endpoints (`v1`) and EndpointSlice
//! (`discovery.k8s.io/v1`) objects joined with the services and pods they name, into the
//! targets Prometheus builds (`discovery/kubernetes/{endpoints,endpointslice}.go`, 2.42).
//! No I/O: objects in, groups out. A group is rebuilt from the three stores whenever any of
//! them changes, so a pod or service that changes after its endpoints is reflected too.

use super::objects::{
    META, Meta, Pod, Service, join_host_port, pod_labels, sanitize, service_labels,
};
use crate::discovery::TargetGroup;
use serde::Deserialize;
use std::collections::BTreeMap;

/// An Endpoints object (`v1`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Endpoints {
    pub(super) metadata: Meta,
    subsets: Vec<Subset>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Subset {
    addresses: Vec<Address>,
    not_ready_addresses: Vec<Address>,
    ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Address {
    ip: String,
    hostname: String,
    node_name: Option<String>,
    target_ref: Option<ObjectRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ObjectRef {
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct EndpointPort {
    name: String,
    port: i64,
    protocol: String,
}

/// An EndpointSlice object (`discovery.k8s.io/v1`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct EndpointSlice {
    pub(super) metadata: Meta,
    address_type: String,
    endpoints: Vec<SliceEndpoint>,
    ports: Vec<SlicePort>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SliceEndpoint {
    addresses: Vec<String>,
    conditions: Conditions,
    hostname: Option<String>,
    node_name: Option<String>,
    zone: Option<String>,
    target_ref: Option<ObjectRef>,
    deprecated_topology: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Conditions {
    ready: Option<bool>,
    serving: Option<bool>,
    terminating: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlicePort {
    name: Option<String>,
    port: Option<i64>,
    protocol: Option<String>,
    app_protocol: Option<String>,
}

/// The services and pods an endpoints object can name, by `namespace/name`.
#[derive(Debug, Default)]
pub(super) struct Stores<'a> {
    pub(super) services: BTreeMap<(&'a str, &'a str), &'a Service>,
    pub(super) pods: BTreeMap<(&'a str, &'a str), &'a Pod>,
}

impl Stores<'_> {
    fn pod(&self, r: Option<&ObjectRef>) -> Option<&Pod> {
        let r = r.filter(|r| r.kind == "Pod")?;
        self.pods
            .get(&(r.namespace.as_str(), r.name.as_str()))
            .copied()
    }
}

/// The source of an Endpoints object's groups.
pub(super) fn endpoints_source(namespace: &str, name: &str) -> String {
    format!("endpoints/{namespace}/{name}")
}

/// The source of an EndpointSlice's groups.
pub(super) fn endpointslice_source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

fn put(labels: &mut BTreeMap<String, String>, name: &str, value: &str) {
    labels.insert(format!("{META}{name}"), value.to_string());
}

/// One group per target (each has its own labels), all with `source`.
fn group(address: String, labels: BTreeMap<String, String>, source: &str) -> TargetGroup {
    TargetGroup {
        targets: vec![address],
        labels,
        source: source.to_string(),
    }
}

/// Container labels for the container port matching an endpoint port, if any. When several
/// containers declare the port, the last one's labels win, as in Prometheus (which looks at
/// every container and stops only within one).
fn matching_container(
    pod: &Pod,
    port: i64,
    protocol: Option<&str>,
    labels: &mut BTreeMap<String, String>,
) {
    for c in &pod.spec.containers {
        if let Some(cp) = c.ports.iter().find(|cp| cp.container_port == port) {
            put(labels, "pod_container_name", &c.name);
            put(labels, "pod_container_image", &c.image);
            put(labels, "pod_container_port_name", &cp.name);
            put(labels, "pod_container_port_number", &port.to_string());
            // The endpoints role takes the endpoint port's protocol, endpointslice the
            // container port's.
            put(
                labels,
                "pod_container_port_protocol",
                protocol.unwrap_or(&cp.protocol),
            );
        }
    }
}

/// Targets for the container ports of `pods` that no endpoint port covered. A pod without an
/// IP has none (2.42 made `:port` targets of them; later releases skip them, as here).
fn uncovered_ports(
    pods: &BTreeMap<(String, String), (&Pod, Vec<i64>)>,
    common: &BTreeMap<String, String>,
    source: &str,
    out: &mut Vec<TargetGroup>,
) {
    for (pod, seen) in pods.values() {
        if pod.status.pod_ip.is_empty() {
            continue;
        }
        for c in &pod.spec.containers {
            for cp in c
                .ports
                .iter()
                .filter(|cp| !seen.contains(&cp.container_port))
            {
                let number = cp.container_port.to_string();
                let mut labels = common.clone();
                labels.extend(pod_labels(pod));
                put(&mut labels, "pod_container_name", &c.name);
                put(&mut labels, "pod_container_image", &c.image);
                put(&mut labels, "pod_container_port_name", &cp.name);
                put(&mut labels, "pod_container_port_number", &number);
                put(&mut labels, "pod_container_port_protocol", &cp.protocol);
                out.push(group(
                    join_host_port(&pod.status.pod_ip, &number),
                    labels,
                    source,
                ));
            }
        }
    }
}

/// An Endpoints object's targets: one per address and port, ready addresses first, then
/// the pods' container ports no endpoint port covers.
pub(super) fn endpoints_groups(eps: &Endpoints, stores: &Stores) -> Vec<TargetGroup> {
    let m = &eps.metadata;
    let source = endpoints_source(&m.namespace, &m.name);
    let mut common = BTreeMap::new();
    put(&mut common, "namespace", &m.namespace);
    put(&mut common, "endpoints_name", &m.name);
    if let Some(svc) = stores
        .services
        .get(&(m.namespace.as_str(), m.name.as_str()))
    {
        common.extend(service_labels(svc));
    }
    for (k, v) in &m.labels {
        let n = sanitize(k);
        put(&mut common, &format!("endpoints_label_{n}"), v);
        put(&mut common, &format!("endpoints_labelpresent_{n}"), "true");
    }
    let mut out = Vec::new();
    let mut seen: BTreeMap<(String, String), (&Pod, Vec<i64>)> = BTreeMap::new();
    for subset in &eps.subsets {
        for port in &subset.ports {
            let ready = subset.addresses.iter().map(|a| (a, "true"));
            let not_ready = subset.not_ready_addresses.iter().map(|a| (a, "false"));
            for (addr, ready) in ready.chain(not_ready) {
                let mut labels = common.clone();
                put(&mut labels, "endpoint_port_name", &port.name);
                put(&mut labels, "endpoint_port_protocol", &port.protocol);
                put(&mut labels, "endpoint_ready", ready);
                if let Some(r) = &addr.target_ref {
                    put(&mut labels, "endpoint_address_target_kind", &r.kind);
                    put(&mut labels, "endpoint_address_target_name", &r.name);
                }
                if let Some(n) = &addr.node_name {
                    put(&mut labels, "endpoint_node_name", n);
                }
                if !addr.hostname.is_empty() {
                    put(&mut labels, "endpoint_hostname", &addr.hostname);
                }
                if let Some(pod) = stores.pod(addr.target_ref.as_ref()) {
                    labels.extend(pod_labels(pod));
                    matching_container(pod, port.port, Some(&port.protocol), &mut labels);
                    let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
                    seen.entry(key)
                        .or_insert((pod, Vec::new()))
                        .1
                        .push(port.port);
                }
                let address = join_host_port(&addr.ip, &port.port.to_string());
                out.push(group(address, labels, &source));
            }
        }
    }
    uncovered_ports(&seen, &common, &source, &mut out);
    out
}

/// An EndpointSlice's targets: one per endpoint address and port, then the pods' container
/// ports no slice port covers. The service is the one named by the slice's
/// `kubernetes.io/service-name` label.
pub(super) fn endpointslice_groups(slice: &EndpointSlice, stores: &Stores) -> Vec<TargetGroup> {
    let m = &slice.metadata;
    let source = endpointslice_source(&m.namespace, &m.name);
    let mut common = BTreeMap::new();
    put(&mut common, "namespace", &m.namespace);
    put(&mut common, "endpointslice_name", &m.name);
    put(
        &mut common,
        "endpointslice_address_type",
        &slice.address_type,
    );
    if let Some(svc) = m
        .labels
        .get("kubernetes.io/service-name")
        .and_then(|name| stores.services.get(&(m.namespace.as_str(), name.as_str())))
    {
        common.extend(service_labels(svc));
    }
    let mut out = Vec::new();
    let mut seen: BTreeMap<(String, String), (&Pod, Vec<i64>)> = BTreeMap::new();
    for ep in &slice.endpoints {
        for port in &slice.ports {
            for addr in &ep.addresses {
                let mut labels = common.clone();
                let opt = [
                    ("endpointslice_port_name", port.name.clone()),
                    ("endpointslice_port_protocol", port.protocol.clone()),
                    ("endpointslice_port", port.port.map(|p| p.to_string())),
                    ("endpointslice_port_app_protocol", port.app_protocol.clone()),
                    (
                        "endpointslice_endpoint_conditions_ready",
                        ep.conditions.ready.map(|b| b.to_string()),
                    ),
                    (
                        "endpointslice_endpoint_conditions_serving",
                        ep.conditions.serving.map(|b| b.to_string()),
                    ),
                    (
                        "endpointslice_endpoint_conditions_terminating",
                        ep.conditions.terminating.map(|b| b.to_string()),
                    ),
                    ("endpointslice_endpoint_hostname", ep.hostname.clone()),
                    // Prometheus 2.52 added these two.
                    ("endpointslice_endpoint_node_name", ep.node_name.clone()),
                    ("endpointslice_endpoint_zone", ep.zone.clone()),
                ];
                for (name, value) in opt {
                    if let Some(v) = value {
                        put(&mut labels, name, &v);
                    }
                }
                if let Some(r) = &ep.target_ref {
                    put(&mut labels, "endpointslice_address_target_kind", &r.kind);
                    put(&mut labels, "endpointslice_address_target_name", &r.name);
                }
                for (k, v) in &ep.deprecated_topology {
                    let n = sanitize(k);
                    put(
                        &mut labels,
                        &format!("endpointslice_endpoint_topology_{n}"),
                        v,
                    );
                    put(
                        &mut labels,
                        &format!("endpointslice_endpoint_topology_present_{n}"),
                        "true",
                    );
                }
                if let Some(pod) = stores.pod(ep.target_ref.as_ref()) {
                    labels.extend(pod_labels(pod));
                    if let Some(p) = port.port {
                        matching_container(pod, p, None, &mut labels);
                    }
                    let key = (pod.metadata.namespace.clone(), pod.metadata.name.clone());
                    let entry = seen.entry(key).or_insert((pod, Vec::new()));
                    entry.1.extend(port.port);
                }
                let address = match port.port {
                    Some(p) => join_host_port(addr, &p.to_string()),
                    None => addr.clone(),
                };
                out.push(group(address, labels, &source));
            }
        }
    }
    uncovered_ports(&seen, &common, &source, &mut out);
    out
}
