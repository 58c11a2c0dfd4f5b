//! Kubernetes service discovery against a loopback stand-in for the API server.

use super::*;

/// A loopback stand-in for the Kubernetes API server: each path's list, then watches that
/// stay open with no events.
fn kubernetes_api(lists: Vec<(&'static str, String)>) -> String {
    use std::io::{Read, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut head = Vec::new();
            let mut b = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let line = String::from_utf8_lossy(&head).to_string();
            let target = line.split(' ').nth(1).unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            match lists.iter().find(|(p, _)| *p == path) {
                Some(_) if query.contains("watch=true") => {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                    open.push(s);
                }
                Some((_, body)) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                None => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    addr
}

/// A list response, in the shape of the Kubernetes API reference.
fn k8s_list(kind: &str, items: &str) -> String {
    format!(
        r#"{{"kind": "{kind}", "apiVersion": "v1", "metadata": {{"resourceVersion": "7"}}, "items": [{items}]}}"#
    )
}

/// Pods as the Kubernetes API reference shapes them: `sensor-1` at 127.0.0.1 with its
/// metrics port `port` (and a `debug` port 2 if `debug`), and `batch-1` with port 1 (where
/// nothing listens).
fn k8s_pods(port: &str, debug: bool) -> String {
    let debug = if debug {
        r#", {"name": "debug", "containerPort": 2, "protocol": "TCP"}"#
    } else {
        ""
    };
    k8s_list(
        "PodList",
        &format!(
            r#"
  {{"metadata": {{"name": "sensor-1", "namespace": "edge", "uid": "u1", "labels": {{"app": "sensor"}}}},
    "spec": {{"nodeName": "gw-7", "containers": [{{"name": "app", "image": "sensor:1",
      "ports": [{{"name": "metrics", "containerPort": {port}, "protocol": "TCP"}}{debug}]}}]}},
    "status": {{"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1",
      "conditions": [{{"type": "Ready", "status": "True"}}]}}}},
  {{"metadata": {{"name": "batch-1", "namespace": "edge", "uid": "u2", "labels": {{"app": "batch"}}}},
    "spec": {{"containers": [{{"name": "job", "image": "batch:1",
      "ports": [{{"containerPort": 1, "protocol": "TCP"}}]}}]}},
    "status": {{"phase": "Running", "podIP": "127.0.0.1"}}}}"#
        ),
    )
}

#[test]
fn kubernetes_sd_pods_are_scraped_with_their_labels() {
    let target = serve("/metrics");
    let port = target.addr().rsplit_once(':').unwrap().1.to_string();
    let api = kubernetes_api(vec![(
        "/api/v1/namespaces/edge/pods",
        k8s_pods(&port, false),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[scrape.kubernetes_sd_configs]]
role = "pod"
api_server = "http://{api}"
namespaces = {{ names = ["edge"] }}
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_pod_label_app"]
regex = "sensor"
action = "keep"
[[scrape.relabel_configs]]
action = "labelmap"
regex = "__meta_kubernetes_pod_(name|node_name|ready)"
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_namespace"]
target_label = "namespace"
"#
    );
    let cfg = config(dir.path(), "k8s", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("k8s", target.addr()), 1.0);
    let body = m.wait_for("magpie_scrapes_total{job=\"k8s\"}", 3.0);
    assert!(m.terminate().success());
    assert!(
        !body.contains("127.0.0.1:1\""),
        "the dropped pod is scraped:\n{body}"
    );
    let series = temp_series(dir.path());
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("instance", target.addr()),
        ("job", "k8s"),
        ("name", "sensor-1"),
        ("namespace", "edge"),
        ("node_name", "gw-7"),
        ("ready", "true"),
        ("room", "a"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(series, BTreeSet::from([want]));
}

#[test]
fn kubernetes_sd_endpoints_are_scraped_with_service_and_pod_labels() {
    let target = serve("/metrics");
    let port = target.addr().rsplit_once(':').unwrap().1.to_string();
    let endpoints = k8s_list(
        "EndpointsList",
        &format!(
            r#"{{"metadata": {{"name": "sensor", "namespace": "edge"}},
  "subsets": [{{"addresses": [{{"ip": "127.0.0.1", "nodeName": "gw-7",
      "targetRef": {{"kind": "Pod", "namespace": "edge", "name": "sensor-1"}}}}],
    "ports": [{{"name": "metrics", "port": {port}, "protocol": "TCP"}}]}}]}}"#
        ),
    );
    let services = k8s_list(
        "ServiceList",
        r#"{"metadata": {"name": "sensor", "namespace": "edge", "labels": {"tier": "edge"}},
  "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.10",
    "ports": [{"name": "metrics", "port": 80, "protocol": "TCP"}]}}"#,
    );
    let api = kubernetes_api(vec![
        ("/api/v1/namespaces/edge/endpoints", endpoints),
        ("/api/v1/namespaces/edge/services", services),
        ("/api/v1/namespaces/edge/pods", k8s_pods(&port, true)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    // The pod's debug port (2), not an endpoint port, is a target of its own without
    // `endpoint_ready`: kept out by the first rule.
    let extra = format!(
        r#"
[[scrape.kubernetes_sd_configs]]
role = "endpoints"
api_server = "http://{api}"
namespaces = {{ names = ["edge"] }}
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_endpoint_ready"]
regex = "true"
action = "keep"
[[scrape.relabel_configs]]
action = "labelmap"
regex = "__meta_kubernetes_(service_label_tier|pod_name|endpoint_port_name|pod_container_name)"
"#
    );
    let cfg = config(dir.path(), "k8s", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("k8s", target.addr()), 1.0);
    let body = m.wait_for("magpie_scrapes_total{job=\"k8s\"}", 3.0);
    assert!(m.terminate().success());
    assert!(
        !body.contains("127.0.0.1:2\""),
        "the uncovered container port is scraped:\n{body}"
    );
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("endpoint_port_name", "metrics"),
        ("instance", target.addr()),
        ("job", "k8s"),
        ("pod_container_name", "app"),
        ("pod_name", "sensor-1"),
        ("room", "a"),
        ("service_label_tier", "edge"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    assert_eq!(temp_series(dir.path()), BTreeSet::from([want]));
}

#[test]
fn kubernetes_sd_ingress_rules_are_scraped_per_host_and_path() {
    let target = serve("/metrics");
    let port = target.addr().rsplit_once(':').unwrap().1.to_string();
    // An Ingress in the shape of the Kubernetes API reference (networking.k8s.io/v1): a rule
    // for 127.0.0.1 with two paths, and one for a TLS host (https) without paths.
    let ingresses = format!(
        r#"{{"kind": "IngressList", "apiVersion": "networking.k8s.io/v1", "metadata": {{"resourceVersion": "7"}}, "items": [
  {{"metadata": {{"name": "sensors", "namespace": "edge", "labels": {{"app": "sensor"}}}},
    "spec": {{"ingressClassName": "nginx",
      "tls": [{{"hosts": ["*.example.org"], "secretName": "edge-tls"}}],
      "rules": [
        {{"host": "127.0.0.1", "http": {{"paths": [
          {{"path": "/metrics", "pathType": "Prefix", "backend": {{"service": {{"name": "sensor", "port": {{"number": {port}}}}}}}}},
          {{"path": "/other", "pathType": "Exact", "backend": {{"service": {{"name": "sensor", "port": {{"name": "metrics"}}}}}}}}]}}}},
        {{"host": "gw.example.org"}}]}}}}]}}"#
    );
    let api = kubernetes_api(vec![(
        "/apis/networking.k8s.io/v1/namespaces/edge/ingresses",
        ingresses,
    )]);
    let dir = tempfile::tempdir().unwrap();
    // Addresses are hosts without a port, as in Prometheus: the rules add the target's, take
    // the path and scheme from the ingress, and keep the http targets only.
    let extra = format!(
        r#"
[[scrape.kubernetes_sd_configs]]
role = "ingress"
api_server = "http://{api}"
namespaces = {{ names = ["edge"] }}
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_ingress_scheme"]
regex = "http"
action = "keep"
[[scrape.relabel_configs]]
source_labels = ["__address__"]
target_label = "__address__"
replacement = "$1:{port}"
[[scrape.relabel_configs]]
source_labels = ["__meta_kubernetes_ingress_path"]
target_label = "__metrics_path__"
[[scrape.relabel_configs]]
action = "labelmap"
regex = "__meta_kubernetes_ingress_(name|class_name|host|path|scheme|label_app)"
"#
    );
    let cfg = config(dir.path(), "k8s", &extra);
    let m = Magpie::start(&cfg);
    m.wait_for(&up("k8s", target.addr()), 1.0);
    m.wait_for("magpie_scrapes_total{job=\"k8s\"}", 4.0);
    assert!(m.terminate().success());
    let want: Vec<(String, String)> = [
        ("__name__", "temp_celsius"),
        ("class_name", "nginx"),
        ("host", "127.0.0.1"),
        ("instance", target.addr()),
        ("job", "k8s"),
        ("label_app", "sensor"),
        ("name", "sensors"),
        ("path", "/metrics"),
        ("room", "a"),
        ("scheme", "http"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
    .collect();
    // `/other` is a target too, answering 404: no samples, `up` 0.
    assert_eq!(temp_series(dir.path()), BTreeSet::from([want]));
    let others: Vec<_> = read_wal(&dir.path().join("data/wal"))
        .into_iter()
        .filter(|(l, _, _)| {
            label(l, "__name__") == Some("up") && label(l, "path") == Some("/other")
        })
        .map(|s| s.2)
        .collect();
    assert!(
        !others.is_empty() && others.iter().all(|&v| v == 0.0),
        "{others:?}"
    );
}
