//! Target relabeling on label sets, following the cases of Prometheus 2.42's
//! `TestPopulateLabels` (`scrape/manager_test.go`) and adding magpie's URL targets.

use super::{ScrapeTarget, TargetRules, format_duration, parse_duration, url_labels};
use crate::relabel::{RelabelConfig, compile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Deserialize)]
struct Rules {
    #[serde(default)]
    rule: Vec<RelabelConfig>,
}

fn job(rules: &str) -> TargetRules {
    let r: Rules = toml::from_str(rules).unwrap_or_else(|e| panic!("{e}"));
    TargetRules {
        job: "job".into(),
        scheme: "https".into(),
        metrics_path: "/metrics".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        params: BTreeMap::new(),
        relabel: compile(&r.rule).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn group(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .collect()
}

fn shown(t: &ScrapeTarget) -> Vec<String> {
    t.labels.iter().map(|(n, v)| format!("{n}={v}")).collect()
}

#[track_caller]
fn kept(r: Result<Option<ScrapeTarget>, String>) -> ScrapeTarget {
    match r {
        Ok(Some(t)) => t,
        other => panic!("expected a target, got {other:?}"),
    }
}

#[test]
fn defaults_fill_in_and_instance_is_the_address() {
    let t = kept(job("").populate("1.2.3.4:1000", &group(&[("custom", "value")])));
    assert_eq!(t.url, "https://1.2.3.4:1000/metrics");
    assert_eq!(
        shown(&t),
        ["custom=value", "instance=1.2.3.4:1000", "job=job"]
    );
    assert_eq!(t.interval, Duration::from_secs(1));
}

#[test]
fn group_labels_win_over_the_job() {
    let g = group(&[
        ("__scheme__", "http"),
        ("__metrics_path__", "/custom"),
        ("job", "custom-job"),
        ("__scrape_interval__", "2s"),
        ("__scrape_timeout__", "2s"),
        ("instance", "named"),
    ]);
    let t = kept(job("").populate("1.2.3.4:1000", &g));
    assert_eq!(t.url, "http://1.2.3.4:1000/custom");
    assert_eq!(shown(&t), ["instance=named", "job=custom-job"]);
    assert_eq!(
        (t.interval, t.timeout),
        (Duration::from_secs(2), Duration::from_secs(2))
    );
}

#[test]
fn empty_group_labels_take_the_job_defaults() {
    let g = group(&[("__scheme__", ""), ("__metrics_path__", ""), ("job", "")]);
    let t = kept(job("").populate("h:1", &g));
    assert_eq!(t.url, "https://h:1/metrics");
    assert_eq!(shown(&t), ["instance=h:1", "job=job"]);
}

#[test]
fn no_address_after_relabeling_is_an_error() {
    let rules = r#"
[[rule]]
action = "labeldrop"
regex = "__address__"
"#;
    assert_eq!(
        job(rules).populate("h:1", &group(&[])),
        Err("no address".into())
    );
}

#[test]
fn address_added_by_relabeling() {
    let rules = r#"
[[rule]]
source_labels = ["custom"]
target_label = "__address__"
"#;
    let j = job(rules);
    let t = kept(j.populate("", &group(&[("custom", "host:1234")])));
    assert_eq!(t.url, "https://host:1234/metrics");
    assert_eq!(
        shown(&t),
        ["custom=host:1234", "instance=host:1234", "job=job"]
    );
}

#[test]
fn a_dropped_target_is_none() {
    let rules = r#"
[[rule]]
source_labels = ["__meta_role"]
regex = "test"
action = "drop"
"#;
    let j = job(rules);
    assert_eq!(
        j.populate("h:1", &group(&[("__meta_role", "test")])),
        Ok(None)
    );
    assert!(
        kept(j.populate("h:1", &group(&[("__meta_role", "prod")])))
            .url
            .contains("h:1")
    );
}

#[test]
fn bad_durations_and_limits_are_errors() {
    let cases = [
        (
            ("2notseconds", "1s"),
            "error parsing scrape interval: not a valid duration string: \"2notseconds\"",
        ),
        (
            ("1s", "2notseconds"),
            "error parsing scrape timeout: not a valid duration string: \"2notseconds\"",
        ),
        (("0s", "0s"), "scrape interval cannot be 0"),
        (("1s", "0s"), "scrape timeout cannot be 0"),
        (
            ("1s", "2s"),
            "scrape timeout cannot be greater than scrape interval (\"2s\" > \"1s\")",
        ),
    ];
    for ((i, t), want) in cases {
        let g = group(&[("__scrape_interval__", i), ("__scrape_timeout__", t)]);
        assert_eq!(
            job("").populate("h:1", &g),
            Err(want.to_string()),
            "{i} {t}"
        );
    }
}

#[test]
fn bad_address_and_scheme_are_errors() {
    assert_eq!(
        job("").populate("h:1/x", &group(&[])),
        Err("\"h:1/x\" is not a valid hostname".into())
    );
    assert_eq!(
        job("").populate("h:1", &group(&[("__scheme__", "ftp")])),
        Err("invalid scheme: \"ftp\"".into())
    );
}

#[test]
fn internal_labels_are_removed_and_meta_can_be_mapped() {
    let rules = r#"
[[rule]]
action = "labelmap"
regex = "__meta_(.+)"

[[rule]]
source_labels = ["__address__"]
target_label = "__tmp_host"
regex = "([^:]+):.*"

[[rule]]
source_labels = ["__tmp_host"]
target_label = "host"
"#;
    let g = group(&[("__meta_zone", "attic"), ("__hidden", "x")]);
    let t = kept(job(rules).populate("sensor-1:9100", &g));
    assert_eq!(
        shown(&t),
        [
            "host=sensor-1",
            "instance=sensor-1:9100",
            "job=job",
            "zone=attic"
        ]
    );
}

#[test]
fn params_and_param_labels_make_the_query() {
    let mut j = job(r#"
[[rule]]
source_labels = ["__address__"]
target_label = "__param_target"

[[rule]]
target_label = "__address__"
replacement = "exporter:9116"

[[rule]]
source_labels = ["__param_target"]
target_label = "instance"
"#);
    j.params
        .insert("module".into(), vec!["http 2xx".into(), "second".into()]);
    let t = kept(j.populate("example.com", &group(&[])));
    assert_eq!(
        t.url,
        "https://exporter:9116/metrics?module=http+2xx&module=second&target=example.com"
    );
    assert_eq!(shown(&t), ["instance=example.com", "job=job"]);
}

#[test]
fn param_label_replaces_the_first_value() {
    let mut j = job(r#"
[[rule]]
target_label = "__param_module"
replacement = "icmp"
"#);
    j.params
        .insert("module".into(), vec!["http".into(), "b".into()]);
    let t = kept(j.populate("h:1", &group(&[])));
    assert!(t.url.ends_with("?module=icmp&module=b"), "{}", t.url);
}

#[test]
fn a_static_url_is_kept_as_written_unless_rewritten() {
    let j = job("");
    let url = "http://127.0.0.1:9100/x/metrics?b=2&a=1";
    let t = kept(j.populate_url(url));
    assert_eq!(t.url, url);
    assert_eq!(shown(&t), ["instance=127.0.0.1:9100", "job=job"]);
    let j = job(r#"
[[rule]]
target_label = "__metrics_path__"
replacement = "/other"
"#);
    let t = kept(j.populate_url(url));
    assert_eq!(t.url, "http://127.0.0.1:9100/other?a=1&b=2");
}

#[test]
fn job_params_join_a_static_url() {
    let mut j = job("");
    j.params.insert("module".into(), vec!["if_mib".into()]);
    let t = kept(j.populate_url("http://127.0.0.1:9116/snmp?target=10.0.0.1"));
    assert_eq!(
        t.url,
        "http://127.0.0.1:9116/snmp?module=if_mib&target=10.0.0.1"
    );
}

#[test]
fn url_parts() {
    let l = url_labels("https://[::1]:443/a%20b?x=1+2&x=3&y").unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = l.iter().map(|(n, v)| format!("{n}={v}")).collect();
    assert_eq!(
        got,
        [
            "__address__=[::1]:443",
            "__metrics_path__=/a b",
            "__param_x=1 2",
            "__param_y=",
            "__scheme__=https"
        ]
    );
    assert!(url_labels("ftp://h/").is_err());
    assert!(url_labels("http:///metrics").is_err());
}

#[test]
fn durations_as_prometheus_writes_and_reads_them() {
    for (d, s) in [
        (Duration::from_secs(15), "15s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::ZERO, "0s"),
        (Duration::from_secs(3600 * 25), "1d1h"),
    ] {
        assert_eq!(format_duration(d), s);
        assert_eq!(parse_duration(s), Ok(d));
    }
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    for bad in ["", "1", "s", "1s1m", "1.5s", "1x", "1s1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}
