//! Kubernetes discovery against a scripted local API server. The objects are written in the
//! shapes of the Kubernetes API reference (core/v1 `Node`, `Pod`, `NodeList`, `WatchEvent`,
//! `Status` with code 410), trimmed to the fields discovery reads plus a few it must ignore;
//! they are not captures of a live cluster, which cannot run here.

use super::objects::{Node, Pod, Service, node_groups, pod_groups, service_groups};
use super::{KubernetesSd, KubernetesSdConfig};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POD: &str = r#"{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "name": "sensor-7d9f", "namespace": "edge", "uid": "5e0c6b1a-0001",
    "resourceVersion": "4711", "creationTimestamp": "2026-11-02T10:00:00Z",
    "labels": {"app": "sensor", "app.kubernetes.io/part-of": "plant"},
    "annotations": {"prometheus.io/scrape": "true"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "sensor-7d9", "uid": "x", "controller": true, "blockOwnerDeletion": true}]
  },
  "spec": {
    "nodeName": "gw-7",
    "containers": [
      {"name": "app", "image": "sensor:1.2", "ports": [
        {"name": "metrics", "containerPort": 9100, "protocol": "TCP"},
        {"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
      {"name": "sidecar", "image": "envoy:1"}
    ],
    "initContainers": [{"name": "init", "image": "busybox"}]
  },
  "status": {
    "phase": "Running", "podIP": "10.42.0.9", "hostIP": "192.168.1.7",
    "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "app", "containerID": "containerd://abc", "ready": true}],
    "initContainerStatuses": [{"name": "init", "containerID": "containerd://def"}]
  }
}"#;

fn node(name: &str, ip: &str, rv: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Node",
  "metadata": {{"name": "{name}", "uid": "u-{name}", "resourceVersion": "{rv}",
    "labels": {{"kubernetes.io/arch": "arm64", "node-role.kubernetes.io/edge": ""}},
    "annotations": {{"k3s.io/hostname": "{name}"}}}},
  "spec": {{"providerID": "k3s://{name}", "podCIDR": "10.42.0.0/24"}},
  "status": {{"addresses": [{{"type": "Hostname", "address": "{name}"}}, {{"type": "InternalIP", "address": "{ip}"}}],
    "daemonEndpoints": {{"kubeletEndpoint": {{"Port": 10250}}}},
    "nodeInfo": {{"architecture": "arm64"}}}}}}"#
    )
}

fn shown(labels: &BTreeMap<String, String>) -> Vec<String> {
    labels.iter().map(|(n, v)| format!("{n}={v}")).collect()
}

#[test]
fn pod_targets_and_labels() {
    let pod: Pod = serde_json::from_str(POD).unwrap();
    let groups = pod_groups(&pod);
    let targets: Vec<_> = groups.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(
        targets,
        ["10.42.0.9:9100", "10.42.0.9:53", "10.42.0.9", "10.42.0.9"]
    );
    assert!(groups.iter().all(|g| g.source == "pod/edge/sensor-7d9f"));
    assert_eq!(
        shown(&groups[0].labels),
        [
            "__meta_kubernetes_namespace=edge",
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape=true",
            "__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape=true",
            "__meta_kubernetes_pod_container_id=containerd://abc",
            "__meta_kubernetes_pod_container_image=sensor:1.2",
            "__meta_kubernetes_pod_container_init=false",
            "__meta_kubernetes_pod_container_name=app",
            "__meta_kubernetes_pod_container_port_name=metrics",
            "__meta_kubernetes_pod_container_port_number=9100",
            "__meta_kubernetes_pod_container_port_protocol=TCP",
            "__meta_kubernetes_pod_controller_kind=ReplicaSet",
            "__meta_kubernetes_pod_controller_name=sensor-7d9",
            "__meta_kubernetes_pod_host_ip=192.168.1.7",
            "__meta_kubernetes_pod_ip=10.42.0.9",
            "__meta_kubernetes_pod_label_app=sensor",
            "__meta_kubernetes_pod_label_app_kubernetes_io_part_of=plant",
            "__meta_kubernetes_pod_labelpresent_app=true",
            "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_part_of=true",
            "__meta_kubernetes_pod_name=sensor-7d9f",
            "__meta_kubernetes_pod_node_name=gw-7",
            "__meta_kubernetes_pod_phase=Running",
            "__meta_kubernetes_pod_ready=true",
            "__meta_kubernetes_pod_uid=5e0c6b1a-0001",
        ]
    );
    let init = &groups[3].labels;
    assert_eq!(init["__meta_kubernetes_pod_container_init"], "true");
    assert_eq!(
        init["__meta_kubernetes_pod_container_id"],
        "containerd://def"
    );
    assert!(!init.contains_key("__meta_kubernetes_pod_container_port_number"));
    // No IP yet: no targets.
    let pending: Pod =
        serde_json::from_str(&POD.replace(r#""podIP": "10.42.0.9""#, r#""podIP": """#)).unwrap();
    assert!(pod_groups(&pending).is_empty());
}

#[test]
fn node_target_and_labels() {
    let n: Node = serde_json::from_str(&node("gw-7", "192.168.1.7", "1")).unwrap();
    let g = node_groups(&n).unwrap();
    assert_eq!(g[0].targets, ["192.168.1.7:10250"]);
    assert_eq!(g[0].source, "node/gw-7");
    assert_eq!(
        shown(&g[0].labels),
        [
            "__meta_kubernetes_node_address_Hostname=gw-7",
            "__meta_kubernetes_node_address_InternalIP=192.168.1.7",
            "__meta_kubernetes_node_annotation_k3s_io_hostname=gw-7",
            "__meta_kubernetes_node_annotationpresent_k3s_io_hostname=true",
            "__meta_kubernetes_node_label_kubernetes_io_arch=arm64",
            "__meta_kubernetes_node_label_node_role_kubernetes_io_edge=",
            "__meta_kubernetes_node_labelpresent_kubernetes_io_arch=true",
            "__meta_kubernetes_node_labelpresent_node_role_kubernetes_io_edge=true",
            "__meta_kubernetes_node_name=gw-7",
            "__meta_kubernetes_node_provider_id=k3s://gw-7",
            "instance=gw-7",
        ]
    );
    let bare: Node = serde_json::from_str(r#"{"metadata": {"name": "x"}}"#).unwrap();
    assert!(node_groups(&bare).unwrap_err().contains("no node address"));
}

/// What the scripted server does with one request.
enum Reply {
    /// A complete JSON answer with this status.
    Json(u16, String),
    /// A chunked watch stream: these lines, then the connection breaks mid-chunk.
    Broken(Vec<String>),
    /// A chunked watch stream: these lines, then it stays open.
    Open(Vec<String>),
}

/// Serves `script` in order, one request per connection, each after a token from `gate`;
/// records each request's target.
fn api_server(
    script: Vec<Reply>,
    gate: std::sync::mpsc::Receiver<()>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for reply in script {
            if gate.recv().is_err() {
                return;
            }
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = Vec::new();
            let mut b = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            let line = String::from_utf8_lossy(&head);
            let target = line.split(' ').nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(target);
            let chunked = |s: &mut std::net::TcpStream, lines: &[String]| {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
                for l in lines {
                    let l = format!("{l}\n");
                    let _ = write!(s, "{:x}\r\n{l}\r\n", l.len());
                }
                let _ = s.flush();
            };
            match reply {
                Reply::Json(status, body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Reply::Broken(lines) => {
                    chunked(&mut s, &lines);
                    let _ = s.write_all(b"40\r\n{\"type\": \"ADD");
                    let _ = s.flush();
                    std::thread::sleep(Duration::from_millis(100));
                }
                Reply::Open(lines) => {
                    chunked(&mut s, &lines);
                    open.push(s);
                }
            }
        }
        // Keep open streams open until the test ends.
        std::thread::sleep(Duration::from_secs(600));
        drop(open);
    });
    (addr, seen)
}

fn list(items: &[String], rv: &str) -> String {
    format!(
        r#"{{"kind": "NodeList", "apiVersion": "v1", "metadata": {{"resourceVersion": "{rv}"}}, "items": [{}]}}"#,
        items.join(",")
    )
}

/// One watch event, on one line as the API server sends it.
fn event(kind: &str, object: &str) -> String {
    let object: serde_json::Value = serde_json::from_str(object).unwrap();
    format!(r#"{{"type": "{kind}", "object": {object}}}"#)
}

const GONE: &str = r#"{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version: 100 (150)", "reason": "Expired", "code": 410}"#;

/// Refreshes until the targets are `want`; fails after a minute, or on any error: a
/// broken watch is resumed and a 410 relisted without one.
async fn until_targets(sd: &mut KubernetesSd, want: &[&str], seen: &Mutex<Vec<String>>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Err(e) = sd.refresh().await {
            panic!("{e:?}");
        }
        let mut got: Vec<String> = sd.groups().iter().flat_map(|g| g.targets.clone()).collect();
        got.sort();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "targets {got:?}, want {want:?}; requests {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn list_watch_resume_and_relist_on_410() {
    let a = node("a", "10.0.0.1", "100");
    let b = node("b", "10.0.0.2", "101");
    let c = node("c", "10.0.0.3", "301");
    let script = vec![
        Reply::Json(200, list(std::slice::from_ref(&a), "100")),
        // b appears, then the stream breaks: resume from b's version.
        Reply::Broken(vec![event("ADDED", &b)]),
        // a bookmark moves the version on; then the server says it is too old.
        Reply::Open(vec![
            event(
                "BOOKMARK",
                r#"{"kind": "Node", "metadata": {"resourceVersion": "150"}}"#,
            ),
            event("DELETED", &a),
            event("ERROR", GONE),
        ]),
        // Listed again: only b.
        Reply::Json(200, list(std::slice::from_ref(&b), "200")),
        // The watch itself answered 410: list again.
        Reply::Json(410, GONE.into()),
        Reply::Json(200, list(&[b.clone(), c.clone()], "300")),
        Reply::Open(vec![event("MODIFIED", &c)]),
    ];
    let (gate, open) = std::sync::mpsc::channel();
    let (addr, seen) = api_server(script, open);
    let next = |n: usize| (0..n).for_each(|_| gate.send(()).unwrap());
    let config: KubernetesSdConfig = toml::from_str(&format!(
        "role = \"node\"\napi_server = \"http://{addr}\"\nselectors = [{{ role = \"node\", label = \"arch=arm64\" }}]"
    ))
    .unwrap();
    let mut sd = KubernetesSd::new(&config).unwrap();
    // Each state is seen before the server moves on.
    next(1);
    until_targets(&mut sd, &["10.0.0.1:10250"], &seen).await;
    next(1);
    until_targets(&mut sd, &["10.0.0.1:10250", "10.0.0.2:10250"], &seen).await;
    next(1);
    until_targets(&mut sd, &["10.0.0.2:10250"], &seen).await;
    next(4);
    until_targets(&mut sd, &["10.0.0.2:10250", "10.0.0.3:10250"], &seen).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 7 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let watch = |rv: &str| {
        format!(
            "/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}&labelSelector=arch%3Darm64"
        )
    };
    let list = "/api/v1/nodes?labelSelector=arch%3Darm64".to_string();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            list.clone(),
            watch("100"),
            watch("101"),
            list.clone(),
            watch("200"),
            list,
            watch("300"),
        ]
    );
}

#[test]
fn settings() {
    let bad = |text: &str| match toml::from_str::<KubernetesSdConfig>(text) {
        Ok(c) => c.validate().err().unwrap_or_default().join("; "),
        Err(e) => e.to_string(),
    };
    assert_eq!(bad("role = \"ingress\""), "");
    assert!(bad("role = \"ingresses\"").contains("unknown Kubernetes SD role `ingresses`"));
    assert_eq!(bad("role = \"endpoints\""), "");
    assert_eq!(
        bad(
            "role = \"endpoints\"\nselectors = [{ role = \"pod\", label = \"a=b\" }, { role = \"service\", field = \"x=y\" }]"
        ),
        ""
    );
    assert!(
        bad("role = \"endpointslice\"\nselectors = [{ role = \"endpoints\", label = \"a=b\" }]")
            .contains("role `endpoints` does not apply to the discovery role `endpointslice` (it takes endpointslice, service, pod)")
    );
    assert!(bad("role = \"pods\"").contains("unknown Kubernetes SD role `pods`"));
    assert!(bad("role = \"node\"\nnamespaces = { names = [\"x\"] }").contains("not namespaced"));
    assert!(
        bad("role = \"pod\"\nselectors = [{ role = \"node\", label = \"a=b\" }]")
            .contains("does not apply")
    );
    assert!(bad("role = \"pod\"\napi_server = \"k8s:6443\"").contains("api_server"));
}

#[tokio::test]
async fn dropping_the_source_closes_its_watch() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let a = node("a", "10.0.0.1", "5");
    std::thread::spawn(move || {
        let read_head = |s: &mut std::net::TcpStream| {
            let mut head = Vec::new();
            let mut b = [0; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
        };
        let (mut s, _) = l.accept().unwrap();
        read_head(&mut s);
        let body = list(&[a], "5");
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        drop(s);
        let (mut s, _) = l.accept().unwrap();
        read_head(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        // Blocks until the client closes the watch.
        let mut b = [0; 1];
        let n = s.read(&mut b).unwrap_or(0);
        let _ = closed_tx.send(n);
    });
    let config: KubernetesSdConfig =
        toml::from_str(&format!("role = \"node\"\napi_server = \"http://{addr}\"")).unwrap();
    let mut sd = KubernetesSd::new(&config).unwrap();
    let nobody = Mutex::new(Vec::new());
    until_targets(&mut sd, &["10.0.0.1:10250"], &nobody).await;
    // Let the watch request go out before the source goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(sd);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The runtime has to run for the aborted tasks to drop their connections.
        tokio::time::sleep(Duration::from_millis(20)).await;
        match closed.try_recv() {
            Ok(n) => {
                assert_eq!(n, 0, "the client sent more instead of closing");
                return;
            }
            Err(_) => assert!(Instant::now() < deadline, "the watch stayed open"),
        }
    }
}

#[test]
fn service_targets_and_labels() {
    let svc: Service = serde_json::from_str(
        r#"{"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "broker", "namespace": "edge", "labels": {"app": "mqtt"}},
  "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.10", "loadBalancerIP": "192.168.1.50",
    "ports": [{"name": "mqtt", "port": 1883, "protocol": "TCP", "targetPort": 1883},
              {"name": "metrics", "port": 9234, "protocol": "TCP"}]}}"#,
    )
    .unwrap();
    let g = service_groups(&svc);
    let t: Vec<_> = g.iter().map(|g| g.targets[0].as_str()).collect();
    assert_eq!(t, ["broker.edge.svc:1883", "broker.edge.svc:9234"]);
    assert_eq!(g[0].source, "svc/edge/broker");
    assert_eq!(
        shown(&g[1].labels),
        [
            "__meta_kubernetes_namespace=edge",
            "__meta_kubernetes_service_cluster_ip=10.43.0.10",
            "__meta_kubernetes_service_label_app=mqtt",
            "__meta_kubernetes_service_labelpresent_app=true",
            "__meta_kubernetes_service_loadbalancer_ip=192.168.1.50",
            "__meta_kubernetes_service_name=broker",
            "__meta_kubernetes_service_port_name=metrics",
            "__meta_kubernetes_service_port_number=9234",
            "__meta_kubernetes_service_port_protocol=TCP",
            "__meta_kubernetes_service_type=LoadBalancer",
        ]
    );
    let ext: Service = serde_json::from_str(
        r#"{"metadata": {"name": "db", "namespace": "x"},
  "spec": {"type": "ExternalName", "externalName": "db.example.com", "ports": [{"port": 5432}]}}"#,
    )
    .unwrap();
    let g = service_groups(&ext);
    assert_eq!(
        g[0].labels["__meta_kubernetes_service_external_name"],
        "db.example.com"
    );
    assert!(
        !g[0]
            .labels
            .contains_key("__meta_kubernetes_service_cluster_ip")
    );
}
