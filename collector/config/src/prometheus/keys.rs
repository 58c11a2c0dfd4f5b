//! Which keys of a `prometheus.yml` magpie reads, and why it refuses the others. Every key of
//! the file is looked at here before anything is converted, so none is silently ignored: a key
//! is either mapped (see `schema.rs`) or refused with the reason and what to do instead.
//!
//! Scrape jobs and discovery mechanisms take credentials and TLS material only from files;
//! discovery takes what `magpie_scrape::discovery` implements: Kubernetes roles node, pod,
//! service, endpoints and endpointslice, DNS records SRV, A and AAAA. The rest is refused key
//! by key, with its line.

use super::locate::Seg;
use serde_norway::Value;

/// A key magpie does not accept, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Where the key is.
    pub path: Vec<Seg>,
    /// Why, and what to do.
    pub why: String,
}

/// Every key of `doc` that magpie refuses, in document order.
pub(crate) fn check(doc: &Value) -> Vec<Refusal> {
    let mut c = Checker {
        path: Vec::new(),
        out: Vec::new(),
    };
    c.map(doc, |c, key, v| match key {
        "global" => c.map(v, global),
        "scrape_configs" => c.seq(v, |c, job| c.map(job, scrape_config)),
        "remote_write" => c.seq(v, |c, rw| c.map(rw, remote_write)),
        "rule_files" | "alerting" | "remote_read" => {
            if !is_empty(v) {
                c.refuse(format!(
                    "`{key}` is not allowed in agent mode (Prometheus with --enable-feature=agent refuses it too); magpie evaluates no rules and serves no queries: remove it"
                ));
            }
        }
        "storage" => c.refuse(
            "magpie keeps no TSDB: its write-ahead log is set in magpie's TOML under [wal]; remove it",
        ),
        "tracing" => c.refuse("magpie exports no traces of its own: remove it"),
        _ => c.unknown(key),
    });
    c.out
}

struct Checker {
    path: Vec<Seg>,
    out: Vec<Refusal>,
}

impl Checker {
    fn refuse(&mut self, why: impl Into<String>) {
        self.out.push(Refusal {
            path: self.path.clone(),
            why: why.into(),
        });
    }

    fn unknown(&mut self, key: &str) {
        self.refuse(format!(
            "unknown key `{key}` (it is not part of Prometheus 2.42's configuration here): check its spelling and indentation"
        ));
    }

    /// Calls `f` for each key of a mapping, with the key pushed on the path. Anything but a
    /// mapping is left for the typed reader to report.
    fn map(&mut self, v: &Value, mut f: impl FnMut(&mut Self, &str, &Value)) {
        let Value::Mapping(m) = v else { return };
        for (k, v) in m {
            let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_string);
            self.path.push(Seg::Key(key.clone()));
            f(self, &key, v);
            self.path.pop();
        }
    }

    fn seq(&mut self, v: &Value, mut f: impl FnMut(&mut Self, &Value)) {
        let Value::Sequence(s) = v else { return };
        for (i, v) in s.iter().enumerate() {
            self.path.push(Seg::Index(i));
            f(self, v);
            self.path.pop();
        }
    }

    /// A key whose only value magpie implements is `ok` (Prometheus' default).
    fn only(&mut self, v: &Value, ok: &Value, why: &str) {
        if v != ok && !v.is_null() {
            self.refuse(why.to_string());
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.values().all(is_empty),
        _ => false,
    }
}

fn global(c: &mut Checker, key: &str, _: &Value) {
    match key {
        "scrape_interval" | "scrape_timeout" | "external_labels" => {}
        // Agent mode evaluates no rules, so Prometheus ignores it too.
        "evaluation_interval" => {}
        "query_log_file" => {
            c.refuse("magpie serves no queries, so there is nothing to log: remove it")
        }
        _ => c.unknown(key),
    }
}

/// Prometheus 2.42's other service discovery mechanisms.
const OTHER_SD: &[&str] = &[
    "azure_sd_configs",
    "consul_sd_configs",
    "digitalocean_sd_configs",
    "docker_sd_configs",
    "dockerswarm_sd_configs",
    "ec2_sd_configs",
    "eureka_sd_configs",
    "gce_sd_configs",
    "hetzner_sd_configs",
    "ionos_sd_configs",
    "kuma_sd_configs",
    "lightsail_sd_configs",
    "linode_sd_configs",
    "marathon_sd_configs",
    "nerve_sd_configs",
    "nomad_sd_configs",
    "openstack_sd_configs",
    "ovhcloud_sd_configs",
    "puppetdb_sd_configs",
    "scaleway_sd_configs",
    "serverset_sd_configs",
    "triton_sd_configs",
    "uyuni_sd_configs",
    "vultr_sd_configs",
];

/// HTTP client settings Prometheus accepts on a scrape job that magpie does not implement.
const SCRAPE_CLIENT: &[&str] = &[
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
];

fn scrape_config(c: &mut Checker, key: &str, v: &Value) {
    match key {
        "job_name" | "scrape_interval" | "scrape_timeout" | "metrics_path" | "scheme"
        | "honor_labels" | "sample_limit" | "body_size_limit" | "metric_relabel_configs"
        | "relabel_configs" | "label_limit" | "label_name_length_limit"
        | "label_value_length_limit" | "target_limit" | "params" | "honor_timestamps"
        | "bearer_token_file" => {}
        "basic_auth" | "authorization" => sd_client(c, key, v),
        "tls_config" => c.map(v, tls_named),
        "bearer_token" => c.refuse(
            "a token written in the file is not accepted: put it in a file readable by magpie alone and name it in `bearer_token_file` or `authorization.credentials_file`",
        ),
        "http_sd_configs" => c.seq(v, |c, g| {
            c.map(g, |c, k, v| match k {
                "url" | "refresh_interval" => {}
                _ => sd_client(c, k, v),
            });
        }),
        "dns_sd_configs" => c.seq(v, |c, g| c.map(g, dns_sd)),
        "kubernetes_sd_configs" if !magpie_scrape::discovery::kubernetes::ENABLED => {
            c.refuse(super::NO_KUBERNETES);
        }
        "kubernetes_sd_configs" => c.seq(v, |c, g| c.map(g, kubernetes_sd)),
        "static_configs" => c.seq(v, |c, g| {
            c.map(g, |c, k, _| {
                if !matches!(k, "targets" | "labels") {
                    c.unknown(k);
                }
            });
        }),
        "file_sd_configs" => c.seq(v, |c, g| {
            c.map(g, |c, k, _| {
                if !matches!(k, "files" | "refresh_interval") {
                    c.unknown(k);
                }
            });
        }),
        "enable_compression" => c.only(
            v,
            &Value::Bool(true),
            "`enable_compression: false` is not supported: remove it",
        ),
        "follow_redirects" | "enable_http2" => c.only(
            v,
            &Value::Bool(true),
            &format!("`{key}: false` is not supported for scrapes: remove it"),
        ),
        k if SCRAPE_CLIENT.contains(&k) => c.refuse(format!(
            "`{key}` is not supported for scrapes: use basic_auth, authorization or tls_config, without a proxy"
        )),
        k if OTHER_SD.contains(&k) => c.refuse(format!(
            "`{key}` is not implemented in magpie; list the targets in static_configs or file_sd_configs"
        )),
        _ => c.unknown(key),
    }
}

/// `protobuf_message` of remote write 1.0.
pub(crate) const PROTOBUF_V1: &str = "prometheus.WriteRequest";
/// `protobuf_message` of remote write 2.0.
pub(crate) const PROTOBUF_V2: &str = "io.prometheus.write.v2.Request";

fn remote_write(c: &mut Checker, key: &str, v: &Value) {
    match key {
        "url" | "name" | "remote_timeout" | "headers" | "write_relabel_configs"
        | "bearer_token_file" => {}
        "basic_auth" => c.map(v, |c, k, _| match k {
            "username" | "password_file" => {}
            "password" => c.refuse(
                "a password written in the file is not accepted: put it in a file readable by magpie alone and name it in `password_file`",
            ),
            _ => c.unknown(k),
        }),
        "authorization" => c.map(v, |c, k, v| match k {
            "credentials_file" => {}
            "type" => c.only(
                v,
                &Value::String("Bearer".into()),
                "only `type: Bearer` is supported: remove it or use Bearer",
            ),
            "credentials" => c.refuse(
                "credentials written in the file are not accepted: put them in a file readable by magpie alone and name it in `credentials_file`",
            ),
            _ => c.unknown(k),
        }),
        "bearer_token" => c.refuse(
            "a token written in the file is not accepted: use authorization.credentials_file",
        ),
        "protobuf_message" => {
            if !matches!(v.as_str(), Some(PROTOBUF_V1 | PROTOBUF_V2)) && !v.is_null() {
                c.refuse(format!(
                    "unknown message: expected `{PROTOBUF_V1}` (remote write 1.0) or `{PROTOBUF_V2}` (2.0)"
                ));
            }
        }
        "tls_config" => c.map(v, |c, k, v| match k {
            "ca_file" | "cert_file" | "key_file" | "server_name" => {}
            "insecure_skip_verify" => c.only(
                v,
                &Value::Bool(false),
                "magpie always verifies the receiver's certificate: give its CA in `ca_file` instead",
            ),
            "ca" | "cert" | "key" => c.refuse(format!(
                "inline PEM in `{k}` is not supported: put it in a file and use `{k}_file`"
            )),
            "min_version" | "max_version" => c.refuse(format!(
                "`tls_config.{k}` is not supported: remove it"
            )),
            _ => c.unknown(k),
        }),
        "queue_config" => c.map(v, |c, k, _| match k {
            "max_samples_per_send" | "min_backoff" | "max_backoff" => {}
            "capacity" | "max_shards" | "min_shards" | "batch_send_deadline" => c.refuse(format!(
                "`queue_config.{k}` has no meaning in magpie, which sends from its disk WAL one batch at a time (paced by max_samples_per_send and [[export]] max_samples_per_second): remove it"
            )),
            "retry_on_http_429" => c.refuse(
                "`queue_config.retry_on_http_429`: magpie always retries 429 answers, honouring Retry-After: remove it",
            ),
            _ => c.unknown(k),
        }),
        "metadata_config" => c.map(v, |c, k, _| match k {
            "send" | "send_interval" | "max_samples_per_send" => {}
            _ => c.unknown(k),
        }),
        "send_exemplars" => {}
        "send_native_histograms" => c.only(
            v,
            &Value::Bool(false),
            "`send_native_histograms: true` is not supported: magpie does not store native histograms; remove it",
        ),
        "follow_redirects" | "enable_http2" => c.only(
            v,
            &Value::Bool(true),
            &format!("`{key}: false` is not supported: remove it"),
        ),
        "oauth2" | "sigv4" | "azuread" | "proxy_url" | "no_proxy" | "proxy_from_environment"
        | "proxy_connect_header" => c.refuse(format!(
            "`{key}` is not supported: use basic_auth, authorization or headers, without a proxy"
        )),
        _ => c.unknown(key),
    }
}

fn dns_sd(c: &mut Checker, key: &str, v: &Value) {
    match key {
        "names" | "port" | "refresh_interval" => {}
        "type" => match v.as_str().unwrap_or_default() {
            "SRV" | "A" | "AAAA" => {}
            "MX" => c.refuse(
                "DNS-SD `type: MX` is not supported (SRV, A and AAAA are): list the targets in static_configs or file_sd_configs",
            ),
            other => c.refuse(format!(
                "invalid DNS-SD records type `{other}` (Prometheus 2.42 takes SRV, A, AAAA or MX)"
            )),
        },
        _ => c.unknown(key),
    }
}

fn kubernetes_sd(c: &mut Checker, key: &str, v: &Value) {
    const ROLES: &str = "node, pod, service, endpoints, endpointslice and ingress are";
    match key {
        "api_server" => {}
        "role" => match v.as_str().unwrap_or_default() {
            "node" | "pod" | "service" | "endpoints" | "endpointslice" | "ingress" => {}
            r => c.refuse(format!("unknown Kubernetes SD role `{r}` ({ROLES})")),
        },
        "namespaces" => c.map(v, |c, k, _| {
            if !matches!(k, "own_namespace" | "names") {
                c.unknown(k);
            }
        }),
        "selectors" => c.seq(v, |c, s| {
            c.map(s, |c, k, _| {
                if !matches!(k, "role" | "label" | "field") {
                    c.unknown(k);
                }
            });
        }),
        "kubeconfig_file" => c.refuse(
            "`kubeconfig_file` is not supported: give the cluster in `api_server` with `authorization.credentials_file` and `tls_config.ca_file`, or run magpie in the cluster",
        ),
        "attach_metadata" => c.refuse(
            "`attach_metadata` is not supported: magpie attaches no node metadata to pods; remove it",
        ),
        _ => sd_client(c, key, v),
    }
}

/// The HTTP client settings of a discovery mechanism: credentials and TLS material from files.
fn sd_client(c: &mut Checker, key: &str, v: &Value) {
    let has = |k: &str| matches!(v, Value::Mapping(m) if m.contains_key(k));
    match key {
        "basic_auth" => {
            if !has("password_file") && !has("password") {
                c.refuse("`basic_auth` needs a `password_file` in magpie: put the password in a file readable by magpie alone");
            }
            c.map(v, |c, k, _| match k {
                "username" | "password_file" => {}
                "password" => c.refuse(
                    "a password written in the file is not accepted: put it in a file readable by magpie alone and name it in `password_file`",
                ),
                _ => c.unknown(k),
            });
        }
        "authorization" => {
            if !has("credentials_file") && !has("credentials") {
                c.refuse("`authorization` needs a `credentials_file` in magpie: put the token in a file readable by magpie alone");
            }
            c.map(v, |c, k, v| match k {
                "credentials_file" => {}
                "type" => c.only(
                    v,
                    &Value::String("Bearer".into()),
                    "only `type: Bearer` is supported: remove it or use Bearer",
                ),
                "credentials" => c.refuse(
                    "credentials written in the file are not accepted: put them in a file readable by magpie alone and name it in `credentials_file`",
                ),
                _ => c.unknown(k),
            });
        }
        "tls_config" => c.map(v, tls_files_only),
        "bearer_token" | "bearer_token_file" => c.refuse(format!(
            "`{key}` is not supported for discovery: put the token in a file and name it in `authorization.credentials_file`"
        )),
        "follow_redirects" | "enable_http2" => c.only(
            v,
            &Value::Bool(true),
            &format!("`{key}: false` is not supported for discovery: remove it"),
        ),
        "oauth2" | "proxy_url" | "no_proxy" | "proxy_from_environment" | "proxy_connect_header" => {
            c.refuse(format!(
                "`{key}` is not supported for discovery: use basic_auth or authorization, without a proxy"
            ))
        }
        _ => c.unknown(key),
    }
}

/// A scrape job's `tls_config`: that of discovery, and `server_name`.
fn tls_named(c: &mut Checker, k: &str, v: &Value) {
    if k != "server_name" {
        tls_files_only(c, k, v);
    }
}

/// `tls_config` with CA and client certificate from files, the server always verified.
fn tls_files_only(c: &mut Checker, k: &str, v: &Value) {
    match k {
        "ca_file" | "cert_file" | "key_file" => {}
        "insecure_skip_verify" => c.only(
            v,
            &Value::Bool(false),
            "magpie always verifies the server's certificate: give its CA in `ca_file` instead",
        ),
        "ca" | "cert" | "key" => c.refuse(format!(
            "inline PEM in `{k}` is not supported: put it in a file and use `{k}_file`"
        )),
        "server_name" | "min_version" | "max_version" => {
            c.refuse(format!("`tls_config.{k}` is not supported: remove it"))
        }
        _ => c.unknown(k),
    }
}
