//! What one list-and-watch loop keeps: the objects of one resource, updated from a list
//! response and from watch events, and the target groups built from all loops' objects.
//! No I/O, so the API's own JSON can be fed through it in tests; `watch.rs` does the HTTP.
//!
//! JSON `null` is read as an absent field, as Kubernetes' Go client does (a null slice or
//! map is empty, a null string is ""), so an object a server sends with nulls in it parses.

use super::Role;
use super::endpoints::{self, EndpointSlice, Endpoints, Stores};
use super::ingress::{self, Ingress};
use super::objects::{self, List, Node, Pod, Service, WatchEvent};
use crate::discovery::TargetGroup;
use std::collections::BTreeMap;

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

pub(super) type Objects = BTreeMap<String, Object>;

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

/// What one watch event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Applied; whether the kept objects changed.
    Changed(bool),
    /// A `410 Gone` (or reason `Expired`) error event: the version is too old, list again.
    Gone,
}

/// The objects of one resource, by source.
#[derive(Debug, Clone)]
pub(super) struct Store {
    pub(super) role: Role,
    pub(super) resource: Resource,
    pub(super) objects: Objects,
}

/// Drops every `null` member of every object, so serde's defaults apply to it.
fn without_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(without_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_nulls),
        _ => {}
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    mut v: serde_json::Value,
    what: &str,
) -> Result<T, String> {
    without_nulls(&mut v);
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

impl Store {
    pub(super) fn new(role: Role, resource: Resource) -> Self {
        Self {
            role,
            resource,
            objects: BTreeMap::new(),
        }
    }

    /// Keeps an object: its source and what is kept of it.
    fn build(&self, object: serde_json::Value) -> Result<(String, Object), String> {
        let own = Resource::of(self.role)[0] == self.resource;
        match self.resource {
            Resource::Nodes => {
                let n: Node = parse(object, "a node")?;
                let source = objects::node_source(&n.metadata.name);
                match objects::node_groups(&n) {
                    Ok(groups) => Ok((source, Object::Groups(groups))),
                    // As Prometheus, which sends no update for such a node: the node's
                    // targets stay as last built, none if it never had an address.
                    Err(e) => {
                        log::warn!("kubernetes_sd_configs: {e}");
                        let kept = self.objects.get(&source).cloned();
                        Ok((source, kept.unwrap_or(Object::Groups(Vec::new()))))
                    }
                }
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

    /// Replaces every object with a list response's; returns the version to watch from.
    /// On error the kept objects stay as they were.
    pub(super) fn list(&mut self, body: &[u8]) -> Result<String, String> {
        let list: List<serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| format!("not a list: {e}"))?;
        let mut objects = BTreeMap::new();
        for item in list.items {
            let (source, kept) = self.build(item)?;
            objects.insert(source, kept);
        }
        self.objects = objects;
        Ok(list.metadata.resource_version)
    }

    /// Applies one line of a watch stream; `version` becomes the event object's
    /// `resourceVersion` (bookmarks included).
    ///
    /// # Errors
    /// A line that is not a watch event, an object that does not parse, an `ERROR` event
    /// other than 410.
    pub(super) fn event(&mut self, line: &[u8], version: &mut String) -> Result<Step, String> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(Step::Changed(false));
        }
        let event: WatchEvent =
            serde_json::from_slice(line).map_err(|e| format!("not a watch event: {e}"))?;
        let rv = event
            .object
            .pointer("/metadata/resourceVersion")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let step = match event.kind.as_str() {
            "ADDED" | "MODIFIED" => {
                let (source, kept) = self.build(event.object)?;
                self.objects.insert(source, kept);
                Step::Changed(true)
            }
            "DELETED" => {
                let (source, _) = self.build(event.object)?;
                Step::Changed(self.objects.remove(&source).is_some())
            }
            "BOOKMARK" => Step::Changed(false),
            "ERROR" => {
                let code = event.object.get("code").and_then(serde_json::Value::as_i64);
                let reason = event.object.get("reason").and_then(|r| r.as_str());
                // As client-go's reflector: code 410, or the reason `Expired` or `Gone`.
                if code == Some(410) || matches!(reason, Some("Expired" | "Gone")) {
                    return Ok(Step::Gone);
                }
                let message = event
                    .object
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("");
                return Err(format!("watch error {code:?}: {message}"));
            }
            other => {
                log::warn!("kubernetes_sd_configs: unknown watch event `{other}`");
                Step::Changed(false)
            }
        };
        if let Some(rv) = rv {
            *version = rv;
        }
        Ok(step)
    }
}
