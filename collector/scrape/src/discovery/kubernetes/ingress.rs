//! The `ingress` role (`networking.k8s.io/v1` Ingress), as Prometheus 2.42's
//! `discovery/kubernetes/ingress.go` builds it: one target per rule host × path, at the host
//! (`__address__` = the rule's host, no port), with
//! `__meta_kubernetes_ingress_{scheme,host,path}` per target and
//! `__meta_kubernetes_namespace`, `__meta_kubernetes_ingress_{name,class_name,label_*,
//! labelpresent_*,annotation_*,annotationpresent_*}` for all of them. The scheme is `https`
//! when a TLS entry of the ingress names the host (or a `*.` wildcard matching it), else
//! `http`; a rule without `http` gives path `/`, as does an empty path, and a rule with
//! `http` but no paths gives no target.

use super::super::TargetGroup;
use super::objects::{META, Meta, labels_and_annotations};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Ingress {
    pub(super) metadata: Meta,
    spec: IngressSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct IngressSpec {
    ingress_class_name: Option<String>,
    tls: Vec<IngressTls>,
    rules: Vec<IngressRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct IngressTls {
    hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct IngressRule {
    host: String,
    http: Option<HttpRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HttpRule {
    paths: Vec<HttpPath>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct HttpPath {
    path: String,
}

/// The source of an ingress's groups.
pub(super) fn ingress_source(namespace: &str, name: &str) -> String {
    format!("ingress/{namespace}/{name}")
}

/// Whether TLS host `pattern` covers `host` (Prometheus' `matchesHostnamePattern`): equal,
/// or a pattern whose first dot-separated label is `*` and whose other labels equal the
/// host's, label for label (so `*` alone covers any host without a dot).
fn matches_host(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let mut p = pattern.split('.');
    if p.next() != Some("*") {
        return false;
    }
    let mut h = host.split('.');
    h.next();
    p.eq(h)
}

/// An ingress's targets, one group each (they differ in their per-target labels).
pub(super) fn ingress_groups(i: &Ingress) -> Vec<TargetGroup> {
    let m = &i.metadata;
    let mut common = BTreeMap::new();
    common.insert(format!("{META}namespace"), m.namespace.clone());
    common.insert(format!("{META}ingress_name"), m.name.clone());
    if let Some(class) = &i.spec.ingress_class_name {
        common.insert(format!("{META}ingress_class_name"), class.clone());
    }
    labels_and_annotations(&mut common, "ingress", m);
    let tls_hosts: Vec<&str> = (i.spec.tls.iter())
        .flat_map(|t| t.hosts.iter().map(String::as_str))
        .collect();
    let source = ingress_source(&m.namespace, &m.name);
    let mut out = Vec::new();
    for rule in &i.spec.rules {
        let scheme = if tls_hosts.iter().any(|p| matches_host(p, &rule.host)) {
            "https"
        } else {
            "http"
        };
        // A rule without `http` is `/`; one with `http` but no paths has no targets.
        let paths: Vec<&str> = match &rule.http {
            Some(h) => h
                .paths
                .iter()
                .map(|p| if p.path.is_empty() { "/" } else { &p.path })
                .collect(),
            None => vec!["/"],
        };
        for path in paths {
            let mut labels = common.clone();
            labels.insert(format!("{META}ingress_scheme"), scheme.into());
            labels.insert(format!("{META}ingress_host"), rule.host.clone());
            labels.insert(format!("{META}ingress_path"), path.into());
            out.push(TargetGroup {
                targets: vec![rule.host.clone()],
                labels,
                source: source.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_host_patterns_match_one_label() {
        assert!(matches_host("a.example.com", "a.example.com"));
        assert!(matches_host("*.example.com", "a.example.com"));
        assert!(!matches_host("*.example.com", "a.b.example.com"));
        assert!(!matches_host("*.example.com", "example.com"));
        assert!(!matches_host("b.example.com", "a.example.com"));
        // As Prometheus: `*` alone covers a host of one label, and the first label may be
        // empty.
        assert!(matches_host("*", "hostValue"));
        assert!(!matches_host("*", "a.example.com"));
        assert!(matches_host("*.example.com", ".example.com"));
        assert!(!matches_host("a.*.com", "a.example.com"));
    }
}

#[cfg(test)]
mod groups {
    use super::*;

    /// An Ingress in the shape of the Kubernetes API reference (`networking.k8s.io/v1`).
    const INGRESS: &str = r#"{"metadata": {"name": "web", "namespace": "shop",
        "labels": {"app.kubernetes.io/name": "web"}, "annotations": {"team": "a"}},
      "spec": {"ingressClassName": "nginx",
        "tls": [{"hosts": ["shop.example.com", "*.api.example.com"], "secretName": "t"}],
        "rules": [
          {"host": "shop.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
          {"host": "v1.api.example.com", "http": {"paths": [
            {"path": "/metrics", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}},
          {"host": "plain.example.com"}]}}"#;

    #[test]
    fn one_target_per_host_and_path_with_prometheus_labels() {
        let i: Ingress = serde_json::from_str(INGRESS).unwrap();
        let got: Vec<(Vec<String>, String, String, String)> = ingress_groups(&i)
            .into_iter()
            .map(|g| {
                let l = |n: &str| g.labels[&format!("{META}ingress_{n}")].clone();
                assert_eq!(g.source, "ingress/shop/web");
                assert_eq!(g.labels[&format!("{META}namespace")], "shop");
                assert_eq!(l("name"), "web");
                assert_eq!(l("class_name"), "nginx");
                assert_eq!(l("label_app_kubernetes_io_name"), "web");
                assert_eq!(l("labelpresent_app_kubernetes_io_name"), "true");
                assert_eq!(l("annotation_team"), "a");
                assert_eq!(l("annotationpresent_team"), "true");
                assert_eq!(l("host"), g.targets[0]);
                (g.targets.clone(), l("scheme"), l("path"), l("host"))
            })
            .collect();
        let t = |h: &str, s: &str, p: &str| (vec![h.to_string()], s.into(), p.into(), h.into());
        assert_eq!(
            got,
            [
                t("shop.example.com", "https", "/"),
                t("shop.example.com", "https", "/"),
                t("v1.api.example.com", "https", "/metrics"),
                t("plain.example.com", "http", "/"),
            ]
        );
        let bare: Ingress = serde_json::from_str(
            r#"{"metadata": {"name": "b", "namespace": "n"}, "spec": {"rules": [{"host": "h"}]}}"#,
        )
        .unwrap();
        let g = ingress_groups(&bare);
        assert!(
            !g[0]
                .labels
                .contains_key(&format!("{META}ingress_class_name"))
        );
    }
}
