//! Target relabeling and the discovery mechanisms: each mapping, Prometheus' defaults, and
//! each refusal with its line.

use super::*;
use crate::{Config, parse};
use magpie_scrape::discovery::dns::RecordType;
use magpie_scrape::discovery::kubernetes::Role;
use std::time::Duration;

fn convert_text(text: &str) -> Result<String, Vec<String>> {
    convert_from(Path::new("p.yml"), text, None)
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn config(text: &str) -> Config {
    let toml = convert_text(text).unwrap_or_else(|e| panic!("{e:#?}"));
    parse(Path::new("converted.toml"), &toml)
        .unwrap_or_else(|e| panic!("{e:#?}\n{toml}"))
        .config
}

/// The single refusal of `job` (the lines of one scrape config under `scrape_configs:\n- `).
fn refusal(job: &str) -> String {
    let errs =
        convert_text(&format!("scrape_configs:\n- job_name: a\n{job}")).expect_err("refused");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.into_iter().next().unwrap_or_default()
}

const SD: &str = r#"
scrape_configs:
  - job_name: sd
    params: {module: [http_2xx]}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__meta_dns_name]
        regex: drop-me.*
        action: drop
      - regex: __meta_kubernetes_pod_label_(.+)
        action: labelmap
      - target_label: __address__
        replacement: 127.0.0.1:9115
    http_sd_configs:
      - url: https://inv.example/targets
        basic_auth: {username: u, password_file: sd.pass}
        tls_config: {ca_file: ca.pem}
      - url: http://inv2.example/t
        refresh_interval: 15s
        authorization: {type: Bearer, credentials_file: /t}
        follow_redirects: true
    dns_sd_configs:
      - names: [_node._tcp.site.example]
      - names: [gw.site.example]
        type: A
        port: 9100
        refresh_interval: 1m
    kubernetes_sd_configs:
      - role: pod
        namespaces: {names: [edge]}
        selectors: [{role: pod, label: app=sensor, field: spec.nodeName=gw-7}]
      - role: node
        api_server: https://k8s.lan:6443
        namespaces: {names: [ignored]}
        authorization: {credentials_file: k8s.token}
        tls_config: {ca_file: /k8s-ca.pem, insecure_skip_verify: false}
      - role: service
"#;

#[test]
fn relabel_and_discovery_keys_map_with_prometheus_defaults() {
    let c = config(SD);
    let s = c.scrape[0].get_ref();
    let r = &s.relabel_configs;
    assert_eq!(r.len(), 4);
    assert_eq!(
        (r[0].source_labels.as_slice(), r[0].target_label.as_str()),
        (&["__address__".to_string()][..], "__param_target")
    );
    assert_eq!(
        (r[1].action.as_str(), r[1].regex.as_str()),
        ("drop", "drop-me.*")
    );
    assert_eq!(r[2].action.as_str(), "labelmap");
    assert_eq!(
        (r[3].target_label.as_str(), r[3].replacement.as_str()),
        ("__address__", "127.0.0.1:9115")
    );

    let h = &s.http_sd_configs;
    assert_eq!(h[0].url, "https://inv.example/targets");
    assert_eq!(h[0].refresh_interval(), Duration::from_secs(60));
    let b = h[0].basic_auth.as_ref().unwrap();
    assert_eq!(
        (b.username.as_str(), b.password_file.as_path()),
        ("u", Path::new("sd.pass"))
    );
    let t = h[0].tls_config.as_ref().unwrap();
    assert_eq!(t.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(h[1].refresh_interval(), Duration::from_secs(15));
    let a = h[1].authorization.as_ref().unwrap();
    assert_eq!(
        (a.kind.as_deref(), a.credentials_file.as_path()),
        (Some("Bearer"), Path::new("/t"))
    );

    let d = &s.dns_sd_configs;
    assert_eq!(d[0].names, ["_node._tcp.site.example"]);
    assert_eq!(d[0].kind, RecordType::Srv);
    assert_eq!(
        d[0].refresh_interval.map(|d| d.0),
        Some(Duration::from_secs(30))
    );
    assert_eq!((d[1].kind, d[1].port), (RecordType::A, Some(9100)));
    assert_eq!(
        d[1].refresh_interval.map(|d| d.0),
        Some(Duration::from_secs(60))
    );

    let k = &s.kubernetes_sd_configs;
    assert_eq!(k[0].role, Role::Pod);
    assert_eq!(k[0].namespaces.names, ["edge"]);
    let sel = &k[0].selectors[0];
    assert_eq!(
        (
            sel.role.as_str(),
            sel.label.as_deref(),
            sel.field.as_deref()
        ),
        ("pod", Some("app=sensor"), Some("spec.nodeName=gw-7"))
    );
    assert_eq!(k[1].role, Role::Node);
    assert_eq!(k[1].api_server.as_deref(), Some("https://k8s.lan:6443"));
    // Prometheus ignores namespaces for nodes; magpie's TOML refuses them there.
    assert!(k[1].namespaces.names.is_empty());
    let a = k[1].authorization.as_ref().unwrap();
    assert_eq!(a.credentials_file.as_path(), Path::new("k8s.token"));
    assert_eq!(
        k[1].tls_config.as_ref().unwrap().ca_file.as_deref(),
        Some(Path::new("/k8s-ca.pem"))
    );
    assert_eq!(
        (k[2].role, k[2].api_server.as_deref()),
        (Role::Service, None)
    );

    // Relative credential and CA files are taken from the YAML file's directory.
    let toml = convert(Path::new("/etc/prometheus/prometheus.yml"), SD).unwrap();
    for want in [
        r#"password_file = "/etc/prometheus/sd.pass""#,
        r#""ca_file" = "/etc/prometheus/ca.pem""#,
        r#""credentials_file" = "/etc/prometheus/k8s.token""#,
        r#""credentials_file" = "/t""#,
    ] {
        assert!(toml.contains(want), "{want}\n{toml}");
    }
}

#[test]
fn unsupported_discovery_settings_are_refused_with_their_line() {
    let cases: [(&str, &str); 14] = [
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    basic_auth: {username: u, password: p}\n",
            "p.yml:5:31: scrape_configs[0].http_sd_configs[0].basic_auth.password: a password written in the file",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    basic_auth: {username: u}\n",
            "p.yml:5:5: scrape_configs[0].http_sd_configs[0].basic_auth: `basic_auth` needs a `password_file`",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    authorization:\n      credentials: c\n",
            "p.yml:6:7: scrape_configs[0].http_sd_configs[0].authorization.credentials: credentials written in the file",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    authorization: {type: Basic, credentials_file: f}\n",
            "p.yml:5:21: scrape_configs[0].http_sd_configs[0].authorization.type: only `type: Bearer`",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    tls_config: {insecure_skip_verify: true}\n",
            "p.yml:5:18: scrape_configs[0].http_sd_configs[0].tls_config.insecure_skip_verify: magpie always verifies",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    tls_config: {ca: PEM}\n",
            "p.yml:5:18: scrape_configs[0].http_sd_configs[0].tls_config.ca: inline PEM",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    bearer_token_file: t\n",
            "p.yml:5:5: scrape_configs[0].http_sd_configs[0].bearer_token_file: `bearer_token_file` is not supported for discovery",
        ),
        (
            "  http_sd_configs:\n  - url: http://x:1/\n    proxy_url: http://p:1\n",
            "p.yml:5:5: scrape_configs[0].http_sd_configs[0].proxy_url: `proxy_url` is not supported for discovery",
        ),
        (
            "  dns_sd_configs:\n  - names: [m.example]\n    type: MX\n",
            "p.yml:5:5: scrape_configs[0].dns_sd_configs[0].type: DNS-SD `type: MX` is not supported",
        ),
        (
            "  dns_sd_configs:\n  - names: [m.example]\n    type: TXT\n",
            "p.yml:5:5: scrape_configs[0].dns_sd_configs[0].type: invalid DNS-SD records type `TXT`",
        ),
        (
            "  kubernetes_sd_configs:\n  - role: ingresses\n",
            "p.yml:4:5: scrape_configs[0].kubernetes_sd_configs[0].role: unknown Kubernetes SD role `ingresses`",
        ),
        (
            "  kubernetes_sd_configs:\n  - role: pod\n    kubeconfig_file: /k\n",
            "p.yml:5:5: scrape_configs[0].kubernetes_sd_configs[0].kubeconfig_file: `kubeconfig_file` is not supported",
        ),
        (
            "  kubernetes_sd_configs:\n  - role: pod\n    attach_metadata: {node: true}\n",
            "p.yml:5:5: scrape_configs[0].kubernetes_sd_configs[0].attach_metadata: `attach_metadata` is not supported",
        ),
        (
            "  kubernetes_sd_configs:\n  - role: pod\n    selectors: [{role: pod, labels: x}]\n",
            "p.yml:5:29: scrape_configs[0].kubernetes_sd_configs[0].selectors[0].labels: unknown key `labels`",
        ),
    ];
    for (job, want) in cases {
        let got = refusal(job);
        assert!(got.starts_with(want), "{job}\ngot:  {got}\nwant: {want}");
    }
    assert!(
        refusal("  kubernetes_sd_configs: [{role: nodes}]\n")
            .contains("unknown Kubernetes SD role `nodes`")
    );
}
