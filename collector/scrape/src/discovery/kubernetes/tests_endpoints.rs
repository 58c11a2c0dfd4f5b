//! The roles endpoints and endpointslice. The objects are written in the shapes of the
//! Kubernetes API reference (core/v1 `Endpoints`, `Service`, `Pod`, discovery.k8s.io/v1
//! `EndpointSlice`, their lists and `WatchEvent`), trimmed to the fields discovery reads
//! plus a few it must ignore; they are not captures of a live cluster, which cannot run here.

use super::endpoints::{EndpointSlice, Endpoints, Stores, endpoints_groups, endpointslice_groups};
use super::objects::{Pod, Service};
use super::{KubernetesSd, KubernetesSdConfig};
use crate::discovery::TargetGroup;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn pod(rv: &str, labels: &str, extra_port: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
  "metadata": {{"name": "sensor-1", "namespace": "edge", "uid": "u1", "resourceVersion": "{rv}",
    "labels": {{{labels}}}, "annotations": {{"team": "ot"}},
    "ownerReferences": [{{"kind": "ReplicaSet", "name": "sensor", "controller": true}}]}},
  "spec": {{"nodeName": "gw-7", "containers": [
    {{"name": "app", "image": "sensor:1", "ports": [
      {{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}}{extra_port}]}}]}},
  "status": {{"phase": "Running", "podIP": "10.42.0.9", "hostIP": "192.168.1.7",
    "conditions": [{{"type": "Ready", "status": "True"}}]}}}}"#
    )
}

const EXTRA_PORT: &str = r#", {"name": "debug", "containerPort": 6060, "protocol": "TCP"}"#;

const SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "sensor", "namespace": "edge", "resourceVersion": "5",
    "labels": {"app.kubernetes.io/name": "sensor"}, "annotations": {"owner": "plant"}},
  "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.10",
    "ports": [{"name": "metrics", "port": 80, "targetPort": 9100, "protocol": "TCP"}]}}"#;

fn endpoints(rv: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Endpoints",
  "metadata": {{"name": "sensor", "namespace": "edge", "resourceVersion": "{rv}",
    "labels": {{"app.kubernetes.io/name": "sensor"}}}},
  "subsets": [{{
    "addresses": [
      {{"ip": "10.42.0.9", "nodeName": "gw-7", "targetRef": {{"kind": "Pod", "namespace": "edge", "name": "sensor-1", "uid": "u1"}}}}],
    "notReadyAddresses": [{{"ip": "192.168.1.50", "hostname": "plc"}}],
    "ports": [{{"name": "metrics", "port": 9100, "protocol": "TCP"}}]}}]}}"#
    )
}

const SLICE: &str = r#"{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {"name": "sensor-abc12", "namespace": "edge", "resourceVersion": "8",
    "labels": {"kubernetes.io/service-name": "sensor", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
  "addressType": "IPv4",
  "endpoints": [
    {"addresses": ["10.42.0.9"], "conditions": {"ready": true, "serving": true, "terminating": false},
     "nodeName": "gw-7", "zone": "hall-a",
     "targetRef": {"kind": "Pod", "namespace": "edge", "name": "sensor-1", "uid": "u1"},
     "deprecatedTopology": {"topology.kubernetes.io/zone": "hall-a"}},
    {"addresses": ["192.168.1.50"], "hostname": "plc", "conditions": {"ready": false}}],
  "ports": [{"name": "metrics", "port": 9100, "protocol": "TCP", "appProtocol": "http"}]}"#;

fn objects() -> (Service, Pod) {
    let svc: Service = serde_json::from_str(SERVICE).unwrap();
    let pod: Pod = serde_json::from_str(&pod("3", r#""app": "sensor""#, EXTRA_PORT)).unwrap();
    (svc, pod)
}

fn stores<'a>(svc: &'a Service, pod: &'a Pod) -> Stores<'a> {
    let mut s = Stores::default();
    s.services.insert(("edge", "sensor"), svc);
    s.pods.insert(("edge", "sensor-1"), pod);
    s
}

/// Each target with its labels, as `name=value` lines.
fn shown(groups: &[TargetGroup]) -> BTreeMap<String, Vec<String>> {
    groups
        .iter()
        .map(|g| {
            assert_eq!(g.targets.len(), 1);
            let labels = g.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
            (g.targets[0].clone(), labels)
        })
        .collect()
}

fn lines(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|l| format!("__meta_kubernetes_{l}")).collect();
    v.sort();
    v
}

const SERVICE_LABELS: [&str; 6] = [
    "namespace=edge",
    "service_name=sensor",
    "service_label_app_kubernetes_io_name=sensor",
    "service_labelpresent_app_kubernetes_io_name=true",
    "service_annotation_owner=plant",
    "service_annotationpresent_owner=true",
];

const POD_LABELS: [&str; 13] = [
    "pod_name=sensor-1",
    "pod_ip=10.42.0.9",
    "pod_phase=Running",
    "pod_ready=true",
    "pod_node_name=gw-7",
    "pod_host_ip=192.168.1.7",
    "pod_uid=u1",
    "pod_controller_kind=ReplicaSet",
    "pod_controller_name=sensor",
    "pod_label_app=sensor",
    "pod_labelpresent_app=true",
    "pod_annotation_team=ot",
    "pod_annotationpresent_team=true",
];

#[test]
fn endpoints_targets_and_labels() {
    let (svc, pod) = objects();
    let eps: Endpoints = serde_json::from_str(&endpoints("6")).unwrap();
    let got = shown(&endpoints_groups(&eps, &stores(&svc, &pod)));
    let common: Vec<&str> = SERVICE_LABELS
        .iter()
        .chain(&[
            "endpoints_name=sensor",
            "endpoints_label_app_kubernetes_io_name=sensor",
            "endpoints_labelpresent_app_kubernetes_io_name=true",
        ])
        .copied()
        .collect();
    let with = |more: &[&str]| {
        let mut v = common.clone();
        v.extend(more);
        lines(&v)
    };
    let pod_part: Vec<&str> = POD_LABELS.to_vec();
    let mut ready = pod_part.clone();
    ready.extend([
        "endpoint_port_name=metrics",
        "endpoint_port_protocol=TCP",
        "endpoint_ready=true",
        "endpoint_address_target_kind=Pod",
        "endpoint_address_target_name=sensor-1",
        "endpoint_node_name=gw-7",
        "pod_container_name=app",
        "pod_container_image=sensor:1",
        "pod_container_port_name=metrics",
        "pod_container_port_number=9100",
        "pod_container_port_protocol=TCP",
    ]);
    let mut extra = pod_part;
    extra.extend([
        "pod_container_name=app",
        "pod_container_image=sensor:1",
        "pod_container_port_name=debug",
        "pod_container_port_number=6060",
        "pod_container_port_protocol=TCP",
    ]);
    let want = BTreeMap::from([
        ("10.42.0.9:9100".to_string(), with(&ready)),
        // The container port no endpoint port covers.
        ("10.42.0.9:6060".to_string(), with(&extra)),
        // Not a pod: the endpoint's own labels only.
        (
            "192.168.1.50:9100".to_string(),
            with(&[
                "endpoint_port_name=metrics",
                "endpoint_port_protocol=TCP",
                "endpoint_ready=false",
                "endpoint_hostname=plc",
            ]),
        ),
    ]);
    assert_eq!(got, want);
    // Without the service and pod known: the endpoint labels alone, no extra target.
    let bare = shown(&endpoints_groups(&eps, &Stores::default()));
    assert_eq!(
        bare.keys().collect::<Vec<_>>(),
        ["10.42.0.9:9100", "192.168.1.50:9100"]
    );
    assert!(
        !bare["10.42.0.9:9100"]
            .iter()
            .any(|l| l.contains("pod_") || l.contains("service_"))
    );
}

#[test]
fn endpointslice_targets_and_labels() {
    let (svc, pod) = objects();
    let slice: EndpointSlice = serde_json::from_str(SLICE).unwrap();
    let got = shown(&endpointslice_groups(&slice, &stores(&svc, &pod)));
    let common: Vec<&str> = SERVICE_LABELS
        .iter()
        .chain(&[
            "endpointslice_name=sensor-abc12",
            "endpointslice_address_type=IPv4",
        ])
        .copied()
        .collect();
    let with = |more: &[&str]| {
        let mut v = common.clone();
        v.extend(more);
        lines(&v)
    };
    let port = [
        "endpointslice_port=9100",
        "endpointslice_port_name=metrics",
        "endpointslice_port_protocol=TCP",
        "endpointslice_port_app_protocol=http",
    ];
    let pod_part: Vec<&str> = POD_LABELS.to_vec();
    let mut ready = pod_part.clone();
    ready.extend(port);
    ready.extend([
        "endpointslice_endpoint_conditions_ready=true",
        "endpointslice_endpoint_conditions_serving=true",
        "endpointslice_endpoint_conditions_terminating=false",
        "endpointslice_address_target_kind=Pod",
        "endpointslice_address_target_name=sensor-1",
        "endpointslice_endpoint_topology_topology_kubernetes_io_zone=hall-a",
        "endpointslice_endpoint_topology_present_topology_kubernetes_io_zone=true",
        // Since Prometheus 2.52.
        "endpointslice_endpoint_node_name=gw-7",
        "endpointslice_endpoint_zone=hall-a",
        "pod_container_name=app",
        "pod_container_image=sensor:1",
        "pod_container_port_name=metrics",
        "pod_container_port_number=9100",
        "pod_container_port_protocol=TCP",
    ]);
    let mut extra = pod_part;
    extra.extend([
        "pod_container_name=app",
        "pod_container_image=sensor:1",
        "pod_container_port_name=debug",
        "pod_container_port_number=6060",
        "pod_container_port_protocol=TCP",
    ]);
    let mut plc = port.to_vec();
    plc.extend([
        "endpointslice_endpoint_conditions_ready=false",
        "endpointslice_endpoint_hostname=plc",
    ]);
    let want = BTreeMap::from([
        ("10.42.0.9:9100".to_string(), with(&ready)),
        ("10.42.0.9:6060".to_string(), with(&extra)),
        ("192.168.1.50:9100".to_string(), with(&plc)),
    ]);
    assert_eq!(got, want);
}

/// A stand-in API server routing by path: lists from `lists`, and watch streams kept open;
/// `push` sends an event to the open watches of a path.
struct Api {
    addr: String,
    watches: Arc<Mutex<Vec<(String, TcpStream)>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Api {
    fn start(lists: Vec<(&'static str, String)>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let watches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (w, log) = (Arc::clone(&watches), Arc::clone(&seen));
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut head = Vec::new();
                let mut b = [0; 1];
                while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                let line = String::from_utf8_lossy(&head);
                let target = line.split(' ').nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(target.clone());
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                if query.contains("watch=true") {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                    w.lock().unwrap().push((path.to_string(), s));
                } else if let Some((_, body)) = lists.iter().find(|(p, _)| *p == path) {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                } else {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        });
        Self {
            addr,
            watches,
            seen,
        }
    }

    fn push(&self, path: &str, kind: &str, object: &str) {
        let object: serde_json::Value = serde_json::from_str(object).unwrap();
        let line = format!("{{\"type\": \"{kind}\", \"object\": {object}}}\n");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut w = self.watches.lock().unwrap();
            if let Some((_, s)) = w.iter_mut().find(|(p, _)| p == path) {
                write!(s, "{:x}\r\n{line}\r\n", line.len()).unwrap();
                s.flush().unwrap();
                return;
            }
            drop(w);
            assert!(
                Instant::now() < deadline,
                "no watch on {path}: {:?}",
                self.seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn list(items: &[String], rv: &str) -> String {
    format!(
        r#"{{"kind": "List", "apiVersion": "v1", "metadata": {{"resourceVersion": "{rv}"}}, "items": [{}]}}"#,
        items.join(",")
    )
}

/// Refreshes until a target has labels satisfying `ok`; fails after a minute or on an error.
async fn until(
    sd: &mut KubernetesSd,
    what: &str,
    ok: impl Fn(&BTreeMap<String, Vec<String>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Err(e) = sd.refresh().await {
            panic!("{e:?}");
        }
        let got = shown(&sd.groups());
        if ok(&got) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: targets {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn endpoints_targets_follow_their_pod() {
    let api = Api::start(vec![
        (
            "/api/v1/namespaces/edge/endpoints",
            list(&[endpoints("6")], "10"),
        ),
        (
            "/api/v1/namespaces/edge/services",
            list(&[SERVICE.to_string()], "11"),
        ),
        // The pod is not there yet.
        ("/api/v1/namespaces/edge/pods", list(&[], "12")),
    ]);
    let config: KubernetesSdConfig = toml::from_str(&format!(
        "role = \"endpoints\"\napi_server = \"http://{}\"\nnamespaces = {{ names = [\"edge\"] }}\nselectors = [{{ role = \"pod\", label = \"app=sensor\" }}]",
        api.addr
    ))
    .unwrap();
    let mut sd = KubernetesSd::new(&config).unwrap();
    let has = |t: &BTreeMap<String, Vec<String>>, target: &str, label: &str| {
        t.get(target).is_some_and(|l| l.iter().any(|x| x == label))
    };
    until(&mut sd, "service labels, no pod yet", |t| {
        t.len() == 2
            && has(t, "10.42.0.9:9100", "__meta_kubernetes_service_name=sensor")
            && !has(t, "10.42.0.9:9100", "__meta_kubernetes_pod_name=sensor-1")
    })
    .await;
    let pods = "/api/v1/namespaces/edge/pods";
    api.push(pods, "ADDED", &pod("13", r#""app": "sensor""#, ""));
    until(&mut sd, "the pod's labels", |t| {
        t.len() == 2
            && has(
                t,
                "10.42.0.9:9100",
                "__meta_kubernetes_pod_label_app=sensor",
            )
    })
    .await;
    // The pod gains a port and a label: a target for the port, the label on both.
    api.push(
        pods,
        "MODIFIED",
        &pod("14", r#""app": "sensor", "rev": "2""#, EXTRA_PORT),
    );
    until(&mut sd, "the pod's new port and label", |t| {
        t.len() == 3
            && has(t, "10.42.0.9:6060", "__meta_kubernetes_pod_label_rev=2")
            && has(t, "10.42.0.9:9100", "__meta_kubernetes_pod_label_rev=2")
    })
    .await;
    api.push(
        pods,
        "DELETED",
        &pod("15", r#""app": "sensor""#, EXTRA_PORT),
    );
    until(&mut sd, "the pod gone", |t| {
        t.len() == 2 && !has(t, "10.42.0.9:9100", "__meta_kubernetes_pod_name=sensor-1")
    })
    .await;
    let seen = api.seen.lock().unwrap().clone();
    for want in [
        "/api/v1/namespaces/edge/endpoints",
        "/api/v1/namespaces/edge/services",
        "/api/v1/namespaces/edge/pods?labelSelector=app%3Dsensor",
    ] {
        assert!(seen.iter().any(|s| s == want), "{want} not in {seen:?}");
    }
}
