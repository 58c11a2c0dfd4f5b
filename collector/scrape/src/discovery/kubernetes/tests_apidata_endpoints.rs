//! The roles endpoints and endpointslice against objects serialized by Kubernetes' own API
//! machinery (see `apidata.rs`), with the API's Service and Pod (both `nameValue` in
//! `namespaceValue`, the names the endpoints refer to) in the other two stores; every
//! target's complete label set checked against what Prometheus 2.42 builds
//! (`discovery/kubernetes/{endpoints,endpointslice}.go` at v2.42.0), plus the two
//! endpointslice labels 2.52 added (`endpoint_node_name`, `endpoint_zone`).

use super::Role;
use super::apidata::{Feed, expect, list_and_watch, object, set};
use serde_json::{Value, json};

/// The service's labels, which both roles add for the service an object belongs to.
const SERVICE: &[&str] = &[
    "service_name=nameValue",
    "service_label_labelsKey=labelsValue",
    "service_labelpresent_labelsKey=true",
    "service_annotation_annotationsKey=annotationsValue",
    "service_annotationpresent_annotationsKey=true",
];

/// The pod's labels (`podLabels`: no namespace, no container).
const POD: &[&str] = &[
    "pod_name=nameValue",
    "pod_ip=podIPValue",
    "pod_ready=unknown",
    "pod_phase=phaseValue",
    "pod_node_name=nodeNameValue",
    "pod_host_ip=hostIPValue",
    "pod_uid=uidValue",
    "pod_controller_kind=kindValue",
    "pod_controller_name=nameValue",
    "pod_label_labelsKey=labelsValue",
    "pod_labelpresent_labelsKey=true",
    "pod_annotation_annotationsKey=annotationsValue",
    "pod_annotationpresent_annotationsKey=true",
];

/// The container labels of the pod's one container port (3).
fn container(protocol: &str) -> Vec<String> {
    vec![
        "pod_container_name=nameValue".into(),
        "pod_container_image=imageValue".into(),
        "pod_container_port_name=nameValue".into(),
        "pod_container_port_number=3".into(),
        format!("pod_container_port_protocol={protocol}"),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A feed for `role` with the API's Service and Pod listed.
fn feed(role: Role) -> Feed {
    let mut feed = Feed::new(role);
    feed.list(1, "Service", &[object("core.v1.Service.json")]);
    feed.list(2, "Pod", &[object("core.v1.Pod.json")]);
    feed
}

#[test]
fn endpoints_role_from_the_apis_endpoints() {
    let eps = object("core.v1.Endpoints.json");
    let source = "endpoints/namespaceValue/nameValue";
    let mut group = vec![
        "namespace=namespaceValue",
        "endpoints_name=nameValue",
        "endpoints_label_labelsKey=labelsValue",
        "endpoints_labelpresent_labelsKey=true",
    ];
    group.extend(SERVICE);
    // Per port, the ready addresses then the not-ready ones; the target reference's kind
    // is not `Pod`, so no pod labels.
    let address = |ready: &str, kind: &str| {
        vec![
            "__address__=ipValue:2".to_string(),
            "endpoint_port_name=nameValue".into(),
            "endpoint_port_protocol=protocolValue".into(),
            format!("endpoint_ready={ready}"),
            format!("endpoint_address_target_kind={kind}"),
            "endpoint_address_target_name=nameValue".into(),
            "endpoint_node_name=nodeNameValue".into(),
            "endpoint_hostname=hostnameValue".into(),
        ]
    };
    let plain: Vec<_> = ["true", "false"]
        .map(|r| expect(source, &group, &strs(&address(r, "kindValue"))))
        .into();
    // Both addresses pointing at the pod: its labels on each; its container port (3) is
    // not the endpoint port (2), so no container labels there, and a target of its own
    // at the pod IP with the container's labels.
    let to_pod = |e: &mut Value| {
        set(e, "/subsets/0/addresses/0/targetRef/kind", json!("Pod"));
        set(
            e,
            "/subsets/0/notReadyAddresses/0/targetRef/kind",
            json!("Pod"),
        );
    };
    let mut with_pod: Vec<_> = ["true", "false"]
        .map(|r| {
            let mut t = address(r, "Pod");
            t.extend(POD.iter().map(|l| (*l).to_string()));
            expect(source, &group, &strs(&t))
        })
        .into();
    let mut own = container("protocolValue");
    own.push("__address__=podIPValue:3".into());
    own.extend(POD.iter().map(|l| (*l).to_string()));
    with_pod.push(expect(source, &group, &strs(&own)));
    let mut f = feed(Role::Endpoints);
    list_and_watch(&mut f, "Endpoints", &eps, &plain, to_pod, &with_pod);

    // The endpoint port is the container's: the container labels go on the endpoint's
    // targets, with the endpoint port's protocol; no extra target.
    let mut on_port = eps.clone();
    to_pod(&mut on_port);
    set(&mut on_port, "/subsets/0/ports/0/port", json!(3));
    set(&mut on_port, "/subsets/0/ports/0/protocol", json!("TCP"));
    let matched: Vec<_> = ["true", "false"]
        .map(|r| {
            let mut t = address(r, "Pod");
            t[0] = "__address__=ipValue:3".into();
            t[2] = "endpoint_port_protocol=TCP".into();
            t.extend(POD.iter().map(|l| (*l).to_string()));
            t.extend(container("TCP"));
            expect(source, &group, &strs(&t))
        })
        .into();
    f.list(0, "Endpoints", &[on_port.clone()]);
    assert_eq!(f.targets(), matched);

    // Two containers with that port: the last one's labels, as Prometheus.
    let mut pod = object("core.v1.Pod.json");
    let mut second = pod.pointer("/spec/containers/0").unwrap().clone();
    set(&mut second, "/name", json!("secondValue"));
    set(&mut second, "/image", json!("secondImageValue"));
    let first = pod.pointer("/spec/containers/0").unwrap().clone();
    set(&mut pod, "/spec/containers", json!([first, second]));
    f.list(2, "Pod", &[pod]);
    let last: Vec<_> = matched
        .iter()
        .map(|(s, labels)| {
            let labels = labels.iter().map(|l| {
                l.replace("container_name=nameValue", "container_name=secondValue")
                    .replace(
                        "container_image=imageValue",
                        "container_image=secondImageValue",
                    )
            });
            let mut labels: Vec<String> = labels.collect();
            labels.sort();
            (s.clone(), labels)
        })
        .collect();
    assert_eq!(f.targets(), last);

    // The service gone: its labels go from every target.
    let svc = object("core.v1.Service.json");
    assert!(f.event(1, "DELETED", &svc).is_ok());
    let no_service = |labels: &Vec<String>| {
        labels
            .iter()
            .filter(|l| !l.starts_with("__meta_kubernetes_service_"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let want: Vec<_> = last
        .iter()
        .map(|(s, l)| (s.clone(), no_service(l)))
        .collect();
    assert_eq!(f.targets(), want);
}

#[test]
fn endpointslice_role_from_the_apis_endpointslice() {
    let slice = object("discovery.k8s.io.v1.EndpointSlice.json");
    let source = "endpointslice/namespaceValue/nameValue";
    let group = [
        "namespace=namespaceValue",
        "endpointslice_name=nameValue",
        "endpointslice_address_type=addressTypeValue",
    ];
    let target = |kind: &str, protocol: &str| {
        vec![
            "__address__=addressesValue:3".to_string(),
            "endpointslice_port=3".into(),
            "endpointslice_port_name=nameValue".into(),
            format!("endpointslice_port_protocol={protocol}"),
            "endpointslice_port_app_protocol=appProtocolValue".into(),
            "endpointslice_endpoint_conditions_ready=true".into(),
            "endpointslice_endpoint_conditions_serving=true".into(),
            "endpointslice_endpoint_conditions_terminating=true".into(),
            "endpointslice_endpoint_hostname=hostnameValue".into(),
            "endpointslice_endpoint_node_name=nodeNameValue".into(),
            "endpointslice_endpoint_zone=zoneValue".into(),
            format!("endpointslice_address_target_kind={kind}"),
            "endpointslice_address_target_name=nameValue".into(),
            "endpointslice_endpoint_topology_deprecatedTopologyKey=deprecatedTopologyValue".into(),
            "endpointslice_endpoint_topology_present_deprecatedTopologyKey=true".into(),
        ]
    };
    // No `kubernetes.io/service-name` label: no service labels; the target is no pod.
    let plain = vec![expect(
        source,
        &group,
        &strs(&target("kindValue", "protocolValue")),
    )];
    // Named service and a pod target on the container's port: service, pod and container
    // labels, the container port's protocol this time (the slice port says TCP).
    let to_pod = |s: &mut Value| {
        set(
            s,
            "/metadata/labels/kubernetes.io~1service-name",
            json!("nameValue"),
        );
        set(s, "/endpoints/0/targetRef/kind", json!("Pod"));
        set(s, "/ports/0/protocol", json!("TCP"));
    };
    let mut full_group = group.to_vec();
    full_group.extend(SERVICE);
    let mut t = target("Pod", "TCP");
    t.extend(POD.iter().map(|l| (*l).to_string()));
    t.extend(container("protocolValue"));
    let with_pod = vec![expect(source, &full_group, &strs(&t))];
    let mut f = feed(Role::EndpointSlice);
    list_and_watch(&mut f, "EndpointSlice", &slice, &plain, to_pod, &with_pod);

    // Optional fields absent (or null): their labels are absent; a port without a number
    // is a target at the bare address.
    let mut bare = slice.clone();
    for at in [
        "/endpoints/0/conditions",
        "/endpoints/0/hostname",
        "/endpoints/0/nodeName",
        "/endpoints/0/zone",
        "/endpoints/0/targetRef",
        "/endpoints/0/deprecatedTopology",
        "/ports/0/port",
        "/ports/0/appProtocol",
    ] {
        set(&mut bare, at, json!(null));
    }
    f.list(0, "EndpointSlice", &[bare]);
    let t = [
        "__address__=addressesValue",
        "endpointslice_port_name=nameValue",
        "endpointslice_port_protocol=protocolValue",
    ];
    assert_eq!(f.targets(), [expect(source, &group, &t)]);
}
