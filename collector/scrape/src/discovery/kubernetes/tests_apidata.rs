//! The roles node, pod, service and ingress against objects serialized by Kubernetes' own API
//! machinery (see `apidata.rs`), each listed and watched, every target's complete label set
//! checked against what Prometheus 2.42 builds from the same object
//! (`discovery/kubernetes/{node,pod,service,ingress}.go` at v2.42.0, read, not run).

use super::Role;
use super::apidata::{Feed, expect, list_and_watch, object, set};
use serde_json::json;

/// The labels Prometheus gives a pod (`podLabels`) for the API's Pod, namespace included.
const POD: &[&str] = &[
    "namespace=namespaceValue",
    "pod_name=nameValue",
    "pod_ip=podIPValue",
    // No condition of type `Ready`.
    "pod_ready=unknown",
    "pod_phase=phaseValue",
    "pod_node_name=nodeNameValue",
    "pod_host_ip=hostIPValue",
    "pod_uid=uidValue",
    // The owner reference with `controller: true`.
    "pod_controller_kind=kindValue",
    "pod_controller_name=nameValue",
    "pod_label_labelsKey=labelsValue",
    "pod_labelpresent_labelsKey=true",
    "pod_annotation_annotationsKey=annotationsValue",
    "pod_annotationpresent_annotationsKey=true",
];

#[test]
fn pod_role_from_the_apis_pod() {
    let pod = object("core.v1.Pod.json");
    let source = "pod/namespaceValue/nameValue";
    // A target per container port, the init container's included, the ephemeral one's not;
    // the container ID from the status of the same name.
    let container = |init: &str| {
        vec![
            "pod_container_name=nameValue".to_string(),
            "pod_container_id=containerIDValue".into(),
            "pod_container_image=imageValue".into(),
            format!("pod_container_init={init}"),
            "pod_container_port_name=nameValue".into(),
            "pod_container_port_number=3".into(),
            "pod_container_port_protocol=protocolValue".into(),
            "__address__=podIPValue:3".into(),
        ]
    };
    let want = |ready: &str| {
        let mut group: Vec<&str> = POD.to_vec();
        let r = format!("pod_ready={ready}");
        group.retain(|l| !l.starts_with("pod_ready="));
        group.push(&r);
        ["false", "true"]
            .map(|init| {
                let c = container(init);
                let c: Vec<&str> = c.iter().map(String::as_str).collect();
                expect(source, &group, &c)
            })
            .to_vec()
    };
    // The pod turns ready: `Ready` → `True` gives `true`.
    let ready = |p: &mut serde_json::Value| {
        set(p, "/status/conditions/0/type", json!("Ready"));
        set(p, "/status/conditions/0/status", json!("True"));
    };
    list_and_watch(
        &mut Feed::new(Role::Pod),
        "Pod",
        &pod,
        &want("unknown"),
        ready,
        &want("true"),
    );
    // Without an IP (starting, evicted) a pod has no targets; a container without ports is
    // one target at the pod IP; an owner that is not the controller gives no controller
    // labels.
    let mut feed = Feed::new(Role::Pod);
    list_and_watch(
        &mut feed,
        "Pod",
        &pod,
        &want("unknown"),
        |p| set(p, "/status/podIP", json!("")),
        &[],
    );
    let mut bare = pod.clone();
    set(&mut bare, "/spec/initContainers", json!([]));
    set(&mut bare, "/spec/containers/0/ports", json!(null));
    set(
        &mut bare,
        "/metadata/ownerReferences/0/controller",
        json!(false),
    );
    feed.list(0, "Pod", &[bare]);
    let group: Vec<&str> = POD
        .iter()
        .copied()
        .filter(|l| !l.starts_with("pod_controller"))
        .collect();
    let target = [
        "pod_container_name=nameValue",
        "pod_container_id=containerIDValue",
        "pod_container_image=imageValue",
        "pod_container_init=false",
        "__address__=podIPValue",
    ];
    assert_eq!(feed.targets(), [expect(source, &group, &target)]);
}

#[test]
fn node_role_from_the_apis_node() {
    let node = object("core.v1.Node.json");
    let mut feed = Feed::new(Role::Node);
    // Its one address has a type Prometheus does not pick from: no target (a warning).
    feed.list(0, "Node", std::slice::from_ref(&node));
    assert_eq!(feed.targets(), []);
    // A list whose items are `null` (Go's nil slice) is empty; one that is no list, an
    // error that keeps what was listed before.
    let null = r#"{"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": null}, "items": null}"#;
    assert_eq!(feed.list_body(0, null), Ok(String::new()));
    let err = feed.list_body(0, "[1]").expect_err("not a list");
    assert!(err.starts_with("not a list: "), "{err}");
    // With an InternalIP too, that is the kubelet's address; every address is a label by
    // its type, the unknown one too; `instance` is the node's name; no namespace label
    // even though the object carries one.
    let mut with_ip = node.clone();
    let addresses = json!([{"type": "typeValue", "address": "addressValue"},
        {"type": "Hostname", "address": "hostnameValue"},
        {"type": "InternalIP", "address": "internalIPValue"},
        {"type": "InternalIP", "address": "secondIPValue"}]);
    set(&mut with_ip, "/status/addresses", addresses);
    let group = [
        "node_name=nameValue",
        "node_provider_id=providerIDValue",
        "node_label_labelsKey=labelsValue",
        "node_labelpresent_labelsKey=true",
        "node_annotation_annotationsKey=annotationsValue",
        "node_annotationpresent_annotationsKey=true",
    ];
    let want = |addr: &str, more: &[&str]| {
        let mut target = vec![
            "instance=nameValue",
            "node_address_typeValue=addressValue",
            "node_address_Hostname=hostnameValue",
            addr,
        ];
        target.extend(more);
        vec![expect("node/nameValue", &group, &target)]
    };
    // The first address of a type wins.
    let ip = want(
        "__address__=internalIPValue:1",
        &["node_address_InternalIP=internalIPValue"],
    );
    // The InternalIP gone: the Hostname is next in line.
    let host = want("__address__=hostnameValue:1", &[]);
    list_and_watch(
        &mut feed,
        "Node",
        &with_ip,
        &ip,
        |n| {
            let a = n.pointer_mut("/status/addresses").unwrap();
            a.as_array_mut().unwrap().truncate(2);
        },
        &host,
    );
    // An update that leaves no usable address changes nothing (Prometheus sends no group
    // for it), and neither does a list that has it so; deleting the node removes it.
    feed.list(0, "Node", std::slice::from_ref(&with_ip));
    feed.event(0, "MODIFIED", &node).unwrap();
    assert_eq!(feed.targets(), ip);
    feed.list(0, "Node", std::slice::from_ref(&node));
    assert_eq!(feed.targets(), ip);
    feed.event(0, "DELETED", &node).unwrap();
    assert_eq!(feed.targets(), []);
}

#[test]
fn service_role_from_the_apis_service() {
    let svc = object("core.v1.Service.json");
    let group = [
        "namespace=namespaceValue",
        "service_name=nameValue",
        "service_label_labelsKey=labelsValue",
        "service_labelpresent_labelsKey=true",
        "service_annotation_annotationsKey=annotationsValue",
        "service_annotationpresent_annotationsKey=true",
    ];
    let want = |kind: &str, more: &[&str]| {
        let t = format!("service_type={kind}");
        let mut target = vec![
            "__address__=nameValue.namespaceValue.svc:3",
            "service_port_name=nameValue",
            "service_port_number=3",
            "service_port_protocol=protocolValue",
            &t,
        ];
        target.extend(more);
        vec![expect("svc/namespaceValue/nameValue", &group, &target)]
    };
    let mut feed = Feed::new(Role::Service);
    // Any type but ExternalName has its cluster IP; ExternalName its external name instead.
    list_and_watch(
        &mut feed,
        "Service",
        &svc,
        &want("typeValue", &["service_cluster_ip=clusterIPValue"]),
        |s| set(s, "/spec/type", json!("ExternalName")),
        &want("ExternalName", &["service_external_name=externalNameValue"]),
    );
    // A LoadBalancer adds its load balancer IP.
    list_and_watch(
        &mut feed,
        "Service",
        &svc,
        &want("typeValue", &["service_cluster_ip=clusterIPValue"]),
        |s| set(s, "/spec/type", json!("LoadBalancer")),
        &want(
            "LoadBalancer",
            &[
                "service_cluster_ip=clusterIPValue",
                "service_loadbalancer_ip=loadBalancerIPValue",
            ],
        ),
    );
}

#[test]
fn ingress_role_from_the_apis_ingress() {
    let ingress = object("networking.k8s.io.v1.Ingress.json");
    let group = [
        "namespace=namespaceValue",
        "ingress_name=nameValue",
        "ingress_class_name=ingressClassNameValue",
        "ingress_label_labelsKey=labelsValue",
        "ingress_labelpresent_labelsKey=true",
        "ingress_annotation_annotationsKey=annotationsValue",
        "ingress_annotationpresent_annotationsKey=true",
    ];
    let want = |scheme: &str, path: &str| {
        let s = format!("ingress_scheme={scheme}");
        let p = format!("ingress_path={path}");
        let target = [
            "__address__=hostValue",
            "ingress_host=hostValue",
            s.as_str(),
            p.as_str(),
        ];
        expect("ingress/namespaceValue/nameValue", &group, &target)
    };
    let mut feed = Feed::new(Role::Ingress);
    // The TLS entry names another host: http. Named (or `*`), https; an empty path is `/`.
    list_and_watch(
        &mut feed,
        "Ingress",
        &ingress,
        &[want("http", "pathValue")],
        |i| {
            set(i, "/spec/tls/0/hosts/0", json!("*"));
            set(i, "/spec/rules/0/http/paths/0/path", json!(""));
        },
        &[want("https", "/")],
    );
    // A rule without `http` is one target at `/`; one with `http` but no paths is none.
    list_and_watch(
        &mut feed,
        "Ingress",
        &ingress,
        &[want("http", "pathValue")],
        |i| set(i, "/spec/rules/0/http", json!(null)),
        &[want("http", "/")],
    );
    list_and_watch(
        &mut feed,
        "Ingress",
        &ingress,
        &[want("http", "pathValue")],
        |i| set(i, "/spec/rules/0/http/paths", json!([])),
        &[],
    );
}
