//! The mapping of each supported key, Prometheus' defaults, and each refusal's message and line.

use super::schema::{PromDuration, base2_bytes};
use super::*;
use crate::{Config, parse};
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

fn refusals(text: &str) -> Vec<String> {
    convert_text(text).expect_err("refused")
}

#[test]
fn prometheus_durations_and_sizes() {
    let d = |s| PromDuration::parse(s).map(|d| d.0);
    assert_eq!(d("0"), Ok(Duration::ZERO));
    assert_eq!(d("15s"), Ok(Duration::from_secs(15)));
    assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(d("1h5ms"), Ok(Duration::from_millis(3_600_005)));
    assert_eq!(d("2d"), Ok(Duration::from_secs(2 * 86_400)));
    assert_eq!(d("1w"), Ok(Duration::from_secs(7 * 86_400)));
    assert_eq!(d("1y"), Ok(Duration::from_secs(365 * 86_400)));
    for bad in ["", "s", "1", "1x", "1s1m", "1s1s", "-1s", "1.5s"] {
        assert!(d(bad).is_err(), "{bad}");
    }
    assert_eq!(
        PromDuration(Duration::from_millis(1500)).to_toml(),
        "1500ms"
    );
    assert_eq!(PromDuration(Duration::from_secs(60)).to_toml(), "60s");
    assert_eq!(base2_bytes("10MB"), Ok(10 << 20));
    assert_eq!(base2_bytes("1KiB"), Ok(1024));
    assert_eq!(base2_bytes("100"), Ok(100));
    assert!(base2_bytes("10XB").is_err());
}

#[test]
fn yaml_is_told_from_toml() {
    assert!(is_prometheus_yaml(Path::new("p.yml"), ""));
    assert!(is_prometheus_yaml(Path::new("p.yaml"), "[x]"));
    assert!(!is_prometheus_yaml(Path::new("m.toml"), "global:\n"));
    assert!(is_prometheus_yaml(
        Path::new("conf"),
        "# c\n---\nglobal:\n  a: 1\n"
    ));
    assert!(is_prometheus_yaml(
        Path::new("conf"),
        "scrape_configs: []\n"
    ));
    assert!(!is_prometheus_yaml(
        Path::new("conf"),
        "[collector]\nlisten = \"a:1\"\n"
    ));
    assert!(!is_prometheus_yaml(Path::new("conf"), "# c\n[[scrape]]\n"));
}

#[test]
fn defaults_are_prometheus_ones() {
    let c = config("scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['h:1']}]\n");
    let s = c.scrape[0].get_ref();
    assert_eq!(s.plugin.get_ref(), "prom-scrape");
    assert_eq!(s.interval.0, Duration::from_secs(60));
    assert_eq!(s.timeout(), Duration::from_secs(10));
    assert_eq!(
        (s.scheme.as_str(), s.metrics_path.as_str()),
        ("http", "/metrics")
    );
    assert!(!s.honor_labels);
    assert_eq!((s.sample_limit, s.body_size_limit.0), (0, 0));
    // A global interval shorter than the default timeout bounds it, as in Prometheus.
    let c = config("global: {scrape_interval: 5s}\nscrape_configs: [{job_name: a}]\n");
    let s = c.scrape[0].get_ref();
    assert_eq!(
        (s.interval.0, s.timeout()),
        (Duration::from_secs(5), Duration::from_secs(5))
    );
    // A job's interval shorter than the global timeout bounds it too.
    let c = config(
        "global: {scrape_timeout: 20s}\nscrape_configs: [{job_name: a, scrape_interval: 15s}]\n",
    );
    assert_eq!(c.scrape[0].get_ref().timeout(), Duration::from_secs(15));
    let c = config("remote_write: [{url: 'http://r:9/w'}]\n");
    let e = c.export[0].get_ref();
    assert_eq!(e.plugin.get_ref(), "remote-write");
    assert_eq!(e.timeout.0, Duration::from_secs(30));
    assert_eq!(e.max_samples_per_send, 500);
    assert_eq!(
        (e.min_backoff.0, e.max_backoff.0),
        (Duration::from_millis(30), Duration::from_secs(5))
    );
    // Stable across loads and reorderings: the exporter's WAL cursor is kept under it.
    assert_eq!(e.name.get_ref(), &render::default_name("http://r:9/w"));
    assert!(c.collector.external_labels.is_empty());
    // An empty file is a configuration without jobs.
    assert!(config("").scrape.is_empty());
}

const FULL: &str = r#"
global:
  scrape_interval: 30s
  scrape_timeout: 7s
  evaluation_interval: 1m
  external_labels:
    site: pi-07
    home: ${HOME}/x
scrape_configs:
  - job_name: node
    scrape_interval: 10s
    scrape_timeout: 2s
    metrics_path: /m
    scheme: https
    honor_labels: true
    honor_timestamps: true
    sample_limit: 100
    body_size_limit: 1MB
    label_limit: 0
    params: {module: [if_mib, 'a b']}
    target_limit: 4
    label_name_length_limit: 20
    label_value_length_limit: 30
    static_configs:
      - targets: ['h1:9100', 'h2:9100']
        labels: {rack: r1}
      - targets: ['h3:9100']
    file_sd_configs:
      - files: [sd/*.json]
        refresh_interval: 1m
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
      - source_labels: [a, b]
        separator: ','
        target_label: c
        replacement: x$1
        modulus: 0
remote_write:
  - url: https://r.example/api/v1/write
    name: central
    remote_timeout: 5s
    headers: {X-Scope-OrgID: t1}
    basic_auth: {username: u, password_file: /etc/p}
    tls_config: {ca_file: ca.pem, cert_file: /c.pem, key_file: /k.pem, insecure_skip_verify: false}
    write_relabel_configs:
      - regex: tmp_.*
        action: labeldrop
    queue_config: {max_samples_per_send: 1000, min_backoff: 100ms, max_backoff: 10s}
  - url: http://other:9/w
    authorization: {type: Bearer, credentials_file: /t}
"#;

#[test]
fn every_supported_key_maps() {
    let c = config(FULL);
    assert_eq!(c.collector.external_labels["site"], "pi-07");
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(c.collector.external_labels["home"], format!("{home}/x"));
    let s = c.scrape[0].get_ref();
    assert_eq!(s.job.get_ref(), "node");
    assert_eq!(
        (s.interval.0, s.timeout()),
        (Duration::from_secs(10), Duration::from_secs(2))
    );
    assert_eq!(
        (s.scheme.as_str(), s.metrics_path.as_str()),
        ("https", "/m")
    );
    assert!(s.honor_labels);
    assert_eq!((s.sample_limit, s.body_size_limit.0), (100, 1 << 20));
    assert_eq!(
        (
            s.label_limit,
            s.label_name_length_limit,
            s.label_value_length_limit
        ),
        (0, 20, 30)
    );
    assert_eq!(s.target_limit, 4);
    assert_eq!(s.params["module"], ["if_mib", "a b"]);
    assert_eq!(
        magpie_scrape::discovery::query_string(&s.params),
        "module=if_mib&module=a+b"
    );
    assert_eq!(s.static_configs.len(), 2);
    assert_eq!(s.static_configs[0].targets, ["h1:9100", "h2:9100"]);
    assert_eq!(s.static_configs[0].labels["rack"], "r1");
    assert!(s.static_configs[1].labels.is_empty());
    assert_eq!(s.file_sd_configs[0].files, ["sd/*.json"]);
    assert_eq!(
        s.file_sd_configs[0].refresh_interval(),
        Duration::from_secs(60)
    );
    let r = &s.metric_relabel_configs;
    assert_eq!(r[0].action.as_str(), "drop");
    assert_eq!(r[0].regex, "go_.*");
    assert_eq!(
        (r[1].separator.as_str(), r[1].target_label.as_str()),
        (",", "c")
    );
    assert_eq!(
        (r[1].replacement.as_str(), r[1].action.as_str()),
        ("x$1", "replace")
    );
    let e = c.export[0].get_ref();
    assert_eq!(
        (e.name.get_ref().as_str(), e.url.get_ref().as_str()),
        ("central", "https://r.example/api/v1/write")
    );
    assert_eq!(e.timeout.0, Duration::from_secs(5));
    assert_eq!(e.headers["X-Scope-OrgID"], "t1");
    let b = e.basic_auth.as_ref().unwrap();
    assert_eq!(
        (b.username.as_str(), b.password_file.to_str()),
        ("u", Some("/etc/p"))
    );
    let t = e.tls.as_ref().unwrap();
    assert_eq!(t.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(t.key_file.as_deref(), Some(Path::new("/k.pem")));
    assert_eq!(e.write_relabel_configs[0].action.as_str(), "labeldrop");
    assert_eq!(e.max_samples_per_send, 1000);
    assert_eq!(
        (e.min_backoff.0, e.max_backoff.0),
        (Duration::from_millis(100), Duration::from_secs(10))
    );
    let e = c.export[1].get_ref();
    assert_eq!(e.bearer_token_file.as_deref(), Some(Path::new("/t")));
    // Relative paths are taken from the YAML file's directory, as Prometheus does.
    let toml = convert(Path::new("/etc/prometheus/prometheus.yml"), FULL).unwrap();
    assert!(
        toml.contains(r#"files = ["/etc/prometheus/sd/*.json"]"#),
        "{toml}"
    );
    assert!(
        toml.contains(r#""ca_file" = "/etc/prometheus/ca.pem""#),
        "{toml}"
    );
    assert!(toml.contains(r#""key_file" = "/k.pem""#), "{toml}");
}

#[test]
fn env_expansion_follows_go_os_expand() {
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(expand_env("a-${HOME}-b"), format!("a-{home}-b"));
    assert_eq!(expand_env("$HOME/x"), format!("{home}/x"));
    assert_eq!(expand_env("cost $$5"), "cost $5");
    assert_eq!(expand_env("${MAGPIE_SURELY_UNSET_VAR}x"), "x");
    assert_eq!(expand_env("tail $"), "tail $");
    assert_eq!(expand_env("no vars"), "no vars");
}

/// `(line, message start)` of each error.
fn at(errs: &[String]) -> Vec<(String, String)> {
    errs.iter()
        .map(|e| {
            let rest = e.strip_prefix("p.yml:").unwrap_or(e);
            let (line, msg) = rest.split_once(':').unwrap();
            let msg = msg.split_once(": ").map_or(msg, |(_, m)| m);
            (line.to_string(), msg.to_string())
        })
        .collect()
}

#[test]
fn refusals_name_key_and_line() {
    let errs = refusals(
        "global:\n  scrape_interval: 1m\n  query_log_file: q\nrule_files: [r.yml]\nscrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'http://sd:1/', oauth2: {}}]\n    scrape_intervall: 5s\n    basic_auth: {username: u}\n    consul_sd_configs: []\n    proxy_url: http://p\n    bearer_token: x\n    honor_timestamps: false\nremote_write:\n  - url: http://x\n    basic_auth:\n      username: u\n      password: secret\n    authorization: {type: Basic, credentials: c}\n    tls_config: {insecure_skip_verify: true}\n    queue_config: {capacity: 10}\nalerting: {}\nstorage: {tsdb: {}}\n",
    );
    let a = at(&errs);
    let lines: Vec<&str> = a.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        [
            "3", "4", "7", "8", "9", "10", "11", "12", "18", "19", "19", "20", "21", "23"
        ],
        "{errs:#?}"
    );
    assert!(
        errs[0].starts_with("p.yml:3:3: global.query_log_file: "),
        "{}",
        errs[0]
    );
    assert!(errs[1].contains("rule_files: `rule_files` is not allowed in agent mode"));
    assert!(errs[2].contains(
        "scrape_configs[0].http_sd_configs[0].oauth2: `oauth2` is not supported for discovery"
    ));
    assert!(errs[3].contains("unknown key `scrape_intervall`"));
    assert!(errs[4].contains("scrape_configs[0].basic_auth: `basic_auth` needs a `password_file`"));
    assert!(errs[5].contains("`consul_sd_configs` is not implemented"));
    assert!(errs[6].contains("`proxy_url` is not supported for scrapes"));
    assert!(errs[7].contains("bearer_token: a token written in the file is not accepted"));
    assert!(
        errs[8].contains("remote_write[0].basic_auth.password: a password written in the file")
    );
    assert!(errs[9].contains("authorization.type: only `type: Bearer`"));
    assert!(errs[10].contains("authorization.credentials: credentials written in the file"));
    assert!(errs[11].contains("tls_config.insecure_skip_verify: magpie always verifies"));
    assert!(errs[12].contains("queue_config.capacity` has no meaning"));
    assert!(errs[13].contains("storage: magpie keeps no TSDB"));
    // An empty `alerting` (line 22) is allowed by agent mode too.
}

#[test]
fn value_errors_name_the_line() {
    let errs = refusals("scrape_configs:\n  - job_name: a\n    sample_limit: lots\n");
    assert!(errs[0].starts_with("p.yml:3:"), "{errs:?}");
    assert!(errs[0].contains("sample_limit"), "{errs:?}");
    let errs = refusals("scrape_configs:\n  - job_name: a\n    scrape_interval: 5\n");
    assert!(errs[0].starts_with("p.yml:3:"), "{errs:?}");
    let errs = refusals(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 6s\n",
    );
    assert!(
        errs[0].starts_with(
            "p.yml:4:5: scrape_timeout (6s) is greater than scrape_interval (5s) for job `a`"
        ),
        "{errs:?}"
    );
    let errs = refusals("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n");
    assert!(
        errs[0].starts_with("p.yml:3:3: global.scrape_timeout (6s)"),
        "{errs:?}"
    );
    let errs = refusals(
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - action: hashmod\n",
    );
    assert!(
        errs[0].starts_with("p.yml:3:5: metric_relabel_configs: relabel rule #1"),
        "{errs:?}"
    );
    let errs = refusals("remote_write:\n  - url: http://x\n    basic_auth: {username: u}\n");
    assert!(
        errs[0].starts_with("p.yml:3:5: basic_auth: magpie needs the password in `password_file`"),
        "{errs:?}"
    );
    let errs = refusals("global: [\n");
    assert!(errs[0].starts_with("p.yml:"), "{errs:?}");
    assert!(errs[0].contains("not valid YAML"), "{errs:?}");
}

#[test]
fn prometheus_good_config_is_read_or_refused_key_by_key() {
    let text = include_str!("../../testdata/prometheus/conf.good.yml");
    let errs: Vec<String> = convert_from(Path::new("conf.good.yml"), text, None)
        .expect_err("refused keys")
        .iter()
        .map(|e| format!("{}:{}", e.line, e.message.split(": ").next().unwrap_or("")))
        .collect();
    let want: Vec<String> = CONF_GOOD_REFUSED.iter().map(ToString::to_string).collect();
    assert_eq!(errs, want);
    // With the refused keys gone, everything else converts and loads. An inline password
    // takes its `basic_auth` block (lines 105, 191) with it: a username alone is refused too;
    // inline credentials take their `authorization` block (line 179).
    let mut dropped = errs.clone();
    dropped.extend(["105:basic_auth", "179:authorization", "191:basic_auth"].map(String::from));
    let kept = strip_lines(text, &dropped);
    let toml =
        convert_from(Path::new("conf.good.yml"), &kept, None).unwrap_or_else(|e| panic!("{e:#?}"));
    let c = parse(Path::new("converted.toml"), &toml).unwrap_or_else(|e| panic!("{e:#?}\n{toml}"));
    assert_eq!(c.config.scrape.len(), 31);
    assert_eq!(c.config.export.len(), 2);
    assert_eq!(c.config.collector.external_labels.len(), 2);
}

/// Removes each refused key's block (its line and the more indented lines under it).
fn strip_lines(text: &str, errs: &[String]) -> String {
    let drop: Vec<usize> = errs
        .iter()
        .map(|e| e.split(':').next().unwrap().parse().unwrap())
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut out = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    for (i, l) in lines.iter().enumerate() {
        if let Some(d) = skip_deeper_than {
            if l.trim().is_empty()
                || indent(l) > d
                || (indent(l) == d && l.trim_start().starts_with("- "))
            {
                continue;
            }
            skip_deeper_than = None;
        }
        if drop.contains(&(i + 1)) {
            skip_deeper_than = Some(indent(l));
            continue;
        }
        out.push(*l);
    }
    out.join("\n")
}

/// What magpie refuses in Prometheus 2.42's `conf.good.yml`, `line:key`.
const CONF_GOOD_REFUSED: &[&str] = &[
    "11:rule_files",
    "22:remote_write[0].oauth2",
    "38:remote_read",
    "101:scrape_configs[0].tls_config.min_version",
    "107:scrape_configs[1].basic_auth.password",
    "151:scrape_configs[2].consul_sd_configs",
    "180:scrape_configs[3].authorization.credentials",
    "193:scrape_configs[4].kubernetes_sd_configs[0].basic_auth.password",
    "210:scrape_configs[6].kuma_sd_configs",
    "214:scrape_configs[7].marathon_sd_configs",
    "224:scrape_configs[8].nomad_sd_configs",
    "228:scrape_configs[9].ec2_sd_configs",
    "244:scrape_configs[10].lightsail_sd_configs",
    "251:scrape_configs[11].azure_sd_configs",
    "262:scrape_configs[12].nerve_sd_configs",
    "292:scrape_configs[17].triton_sd_configs",
    "304:scrape_configs[18].digitalocean_sd_configs",
    "309:scrape_configs[19].docker_sd_configs",
    "313:scrape_configs[20].dockerswarm_sd_configs",
    "318:scrape_configs[21].openstack_sd_configs",
    "329:scrape_configs[22].puppetdb_sd_configs",
    "345:scrape_configs[23].hetzner_sd_configs",
    "355:scrape_configs[24].eureka_sd_configs",
    "359:scrape_configs[25].ovhcloud_sd_configs",
    "374:scrape_configs[26].scaleway_sd_configs",
    "385:scrape_configs[27].linode_sd_configs",
    "390:scrape_configs[28].uyuni_sd_configs",
    "396:scrape_configs[29].ionos_sd_configs",
    "402:scrape_configs[30].vultr_sd_configs",
    "406:alerting",
    "415:storage",
    "419:tracing",
];

#[test]
fn protobuf_message_picks_the_remote_write_protocol() {
    let c = config(
        "remote_write:\n  - url: http://r:9/w\n    protobuf_message: io.prometheus.write.v2.Request\n    write_relabel_configs: [{action: drop, source_labels: [a], regex: x}]\n  - url: http://s:9/w\n    protobuf_message: prometheus.WriteRequest\n",
    );
    let protocol = |i: usize| {
        (c.export[i].get_ref().config.as_ref())
            .and_then(|t| t.get("protocol"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    assert_eq!(protocol(0).as_deref(), Some("2.0"));
    assert_eq!(c.export[0].get_ref().write_relabel_configs.len(), 1);
    assert_eq!(protocol(1), None);
    let errs = refusals("remote_write:\n  - url: http://r:9/w\n    protobuf_message: v3\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("remote_write[0].protobuf_message")
            && errs[0].contains("io.prometheus.write.v2.Request"),
        "{errs:?}"
    );
}

#[test]
fn send_exemplars_maps_to_the_exporter_and_defaults_to_off() {
    let c = config(
        "remote_write:\n  - url: http://r:9/w\n    send_exemplars: true\n  - url: http://s:9/w\n",
    );
    assert!(c.export[0].get_ref().send_exemplars);
    assert!(!c.export[1].get_ref().send_exemplars);
    let errs = refusals("remote_write:\n  - url: http://r:9/w\n    send_native_histograms: true\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("send_native_histograms"), "{errs:?}");
    let off = config("remote_write:\n  - url: http://r:9/w\n    send_exemplars: false\n");
    assert!(!off.export[0].get_ref().send_exemplars);
}

#[test]
fn a_prometheus_file_sits_beside_magpie_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "global: {external_labels: {site: s1}}\nscrape_configs: [{job_name: a, static_configs: [{targets: ['h:1']}], file_sd_configs: [{files: [t.json]}]}]\nremote_write: [{url: 'http://r:9/w', name: central}]\n",
    )
    .unwrap();
    let toml = dir.path().join("magpie.toml");
    let text = "[collector]\nprometheus_config = \"prometheus.yml\"\nexternal_labels = { device = \"d1\" }\n\n[[scrape]]\njob = \"node\"\nplugin = \"node\"\n";
    std::fs::write(&toml, text).unwrap();
    let c = crate::load(&toml).unwrap().config;
    let jobs: Vec<&str> = c
        .scrape
        .iter()
        .map(|s| s.get_ref().job.get_ref().as_str())
        .collect();
    assert_eq!(jobs, ["node", "a"]);
    assert_eq!(c.export[0].get_ref().name.get_ref(), "central");
    assert_eq!(c.collector.external_labels.len(), 2);
    let files = &c.scrape[1].get_ref().file_sd_configs[0].files;
    assert_eq!(files, &[dir.path().join("t.json").display().to_string()]);
    // The same job, exporter or external label in both files is an error naming the line.
    let clash = "[collector]\nprometheus_config = \"prometheus.yml\"\nexternal_labels = { site = \"x\" }\n\n[[scrape]]\njob = \"a\"\nplugin = \"node\"\n\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"http://r:9/w\"\n";
    std::fs::write(&toml, clash).unwrap();
    let errs: Vec<String> = crate::load(&toml)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    for e in &errs {
        assert!(
            e.contains("magpie.toml:2:21: collector.prometheus_config: "),
            "{e}"
        );
    }
    assert!(errs[0].contains("external label `site` is set both here and in"));
    assert!(errs[1].contains("job `a` is defined both here"));
    assert!(errs[2].contains("exporter `central` is defined both here"));
    // A missing file names the key.
    std::fs::write(&toml, "[collector]\nprometheus_config = \"nope.yml\"\n").unwrap();
    let errs = crate::load(&toml).unwrap_err();
    assert!(
        errs[0]
            .to_string()
            .contains("collector.prometheus_config: cannot read"),
        "{errs:?}"
    );
    // A YAML file given directly loads as a whole configuration.
    let c = crate::load(&dir.path().join("prometheus.yml")).unwrap();
    assert_eq!(c.config.scrape.len(), 1);
    assert_eq!(c.file, dir.path().join("prometheus.yml"));
}

#[test]
fn metadata_config_is_sent_by_default_and_follows_its_keys() {
    let c = config("remote_write: [{url: 'http://r:9/w'}]\n");
    let m = c.export[0]
        .get_ref()
        .metadata
        .clone()
        .expect("sent by default");
    assert!(m.send);
    assert_eq!(m.send_interval.0, Duration::from_secs(60));
    assert_eq!(m.max_samples_per_send, 500);
    let c = config(
        "remote_write: [{url: 'http://r:9/w', metadata_config: {send_interval: 5s, max_samples_per_send: 7}}]\n",
    );
    let m = c.export[0].get_ref().metadata.clone().unwrap();
    assert_eq!(
        (m.send, m.send_interval.0, m.max_samples_per_send),
        (true, Duration::from_secs(5), 7)
    );
    let c = config("remote_write: [{url: 'http://r:9/w', metadata_config: {send: false}}]\n");
    assert!(c.export[0].get_ref().metadata.is_none());
    let errs = refusals("remote_write: [{url: 'http://r:9/w', metadata_config: {sent: true}}]\n");
    assert!(
        errs.iter()
            .any(|e| e.contains("remote_write[0].metadata_config.sent")),
        "{errs:?}"
    );
}
