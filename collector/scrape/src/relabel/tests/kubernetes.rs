//! `BenchmarkRelabel` "kubernetes": a pod's discovery labels through a typical rule set that
//! uses most actions. Prometheus only times it; the outcome here is worked out by hand.

use super::check;

const RULES: &str = r#"
[[rule]]
source_labels = ["__meta_kubernetes_pod_container_port_name"]
regex = ".*-metrics"
action = "keep"

[[rule]]
source_labels = ["__meta_kubernetes_pod_label_name"]
action = "drop"
regex = ""

[[rule]]
source_labels = ["__meta_kubernetes_pod_phase"]
regex = "Succeeded|Failed"
action = "drop"

[[rule]]
source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
regex = "false"
action = "drop"

[[rule]]
source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"]
target_label = "__scheme__"
regex = "(https?)"
replacement = "$1"
action = "replace"

[[rule]]
source_labels = ["__meta_kubernetes_pod_annotation_prometheus_io_path"]
target_label = "__metrics_path__"
regex = "(.+)"
replacement = "$1"
action = "replace"

[[rule]]
source_labels = ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"]
target_label = "__address__"
regex = '(.+?)(\:\d+)?;(\d+)'
replacement = "$1:$3"
action = "replace"

[[rule]]
regex = "__meta_kubernetes_pod_annotation_prometheus_io_param_(.+)"
replacement = "__param_$1"
action = "labelmap"

[[rule]]
regex = "__meta_kubernetes_pod_label_prometheus_io_label_(.+)"
action = "labelmap"

[[rule]]
regex = "__meta_kubernetes_pod_annotation_prometheus_io_label_(.+)"
action = "labelmap"

[[rule]]
source_labels = ["__meta_kubernetes_namespace", "__meta_kubernetes_pod_label_name"]
separator = "/"
target_label = "job"
replacement = "$1"
action = "replace"

[[rule]]
source_labels = ["__meta_kubernetes_namespace"]
target_label = "namespace"
action = "replace"

[[rule]]
source_labels = ["__meta_kubernetes_pod_name"]
target_label = "pod"
action = "replace"

[[rule]]
source_labels = ["__meta_kubernetes_pod_container_name"]
target_label = "container"
action = "replace"

[[rule]]
source_labels = [
  "__meta_kubernetes_pod_name",
  "__meta_kubernetes_pod_container_name",
  "__meta_kubernetes_pod_container_port_name",
]
separator = ":"
target_label = "instance"
action = "replace"

[[rule]]
target_label = "cluster"
replacement = "dev-us-central-0"

[[rule]]
source_labels = ["__meta_kubernetes_namespace"]
regex = "hosted-grafana"
action = "drop"

[[rule]]
source_labels = ["__address__"]
target_label = "__tmp_hash"
modulus = 3
action = "hashmod"

[[rule]]
source_labels = ["__tmp_hash"]
regex = "^0$"
action = "keep"

[[rule]]
regex = "__tmp_hash"
action = "labeldrop"
"#;

const POD: &[(&str, &str)] = &[
    ("__address__", "10.132.183.40:80"),
    ("__meta_kubernetes_namespace", "loki-boltdb-shipper"),
    (
        "__meta_kubernetes_pod_annotation_promtail_loki_boltdb_shipper_hash",
        "50523b9759094a144adcec2eae0aa4ad",
    ),
    (
        "__meta_kubernetes_pod_annotationpresent_promtail_loki_boltdb_shipper_hash",
        "true",
    ),
    ("__meta_kubernetes_pod_container_init", "false"),
    ("__meta_kubernetes_pod_container_name", "promtail"),
    ("__meta_kubernetes_pod_container_port_name", "http-metrics"),
    ("__meta_kubernetes_pod_container_port_number", "80"),
    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
    ("__meta_kubernetes_pod_controller_kind", "DaemonSet"),
    (
        "__meta_kubernetes_pod_controller_name",
        "promtail-loki-boltdb-shipper",
    ),
    ("__meta_kubernetes_pod_host_ip", "10.128.0.178"),
    ("__meta_kubernetes_pod_ip", "10.132.183.40"),
    (
        "__meta_kubernetes_pod_label_controller_revision_hash",
        "555b77cd7d",
    ),
    (
        "__meta_kubernetes_pod_label_name",
        "promtail-loki-boltdb-shipper",
    ),
    ("__meta_kubernetes_pod_label_pod_template_generation", "45"),
    (
        "__meta_kubernetes_pod_labelpresent_controller_revision_hash",
        "true",
    ),
    ("__meta_kubernetes_pod_labelpresent_name", "true"),
    (
        "__meta_kubernetes_pod_labelpresent_pod_template_generation",
        "true",
    ),
    (
        "__meta_kubernetes_pod_name",
        "promtail-loki-boltdb-shipper-jgtr7",
    ),
    (
        "__meta_kubernetes_pod_node_name",
        "gke-dev-us-central-0-main-n2s8-2-14d53341-9hkr",
    ),
    ("__meta_kubernetes_pod_phase", "Running"),
    ("__meta_kubernetes_pod_ready", "true"),
    (
        "__meta_kubernetes_pod_uid",
        "4c586419-7f6c-448d-aeec-ca4fa5b05e60",
    ),
    ("__metrics_path__", "/metrics"),
    ("__scheme__", "http"),
    ("__scrape_interval__", "15s"),
    ("__scrape_timeout__", "10s"),
    ("job", "kubernetes-pods"),
];

#[test]
fn kubernetes_pod_rules() {
    // All but the last two rules: the discovery labels become target labels and a shard.
    let cut = RULES
        .rfind("[[rule]]\nsource_labels = [\"__tmp_hash\"]")
        .expect("the shard filter rule");
    let mut want: Vec<_> = POD.iter().copied().filter(|(n, _)| *n != "job").collect();
    want.extend([
        ("job", "loki-boltdb-shipper/promtail-loki-boltdb-shipper"),
        ("namespace", "loki-boltdb-shipper"),
        ("pod", "promtail-loki-boltdb-shipper-jgtr7"),
        ("container", "promtail"),
        (
            "instance",
            "promtail-loki-boltdb-shipper-jgtr7:promtail:http-metrics",
        ),
        ("cluster", "dev-us-central-0"),
        // md5("10.132.183.40:80") mod 3
        ("__tmp_hash", "1"),
    ]);
    check(POD, &RULES[..cut], Some(&want));
    // With the port annotation, `__address__` is rewritten; the shard changes with it.
    let mut annotated = POD.to_vec();
    annotated.push((
        "__meta_kubernetes_pod_annotation_prometheus_io_port",
        "9102",
    ));
    let mut want2: Vec<_> = want
        .iter()
        .copied()
        .filter(|(n, _)| !matches!(*n, "__address__" | "__tmp_hash"))
        .collect();
    want2.extend([
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "9102",
        ),
        ("__address__", "10.132.183.40:9102"),
        // md5("10.132.183.40:9102") mod 3
        ("__tmp_hash", "0"),
    ]);
    check(&annotated, &RULES[..cut], Some(&want2));
    // The whole set keeps shard 0 only, and drops the shard label.
    check(POD, RULES, None);
    want2.retain(|(n, _)| *n != "__tmp_hash");
    check(&annotated, RULES, Some(&want2));
}
