//! The same unchanged `prometheus.yml` run by the Prometheus agent (Debian's 2.42, agent mode)
//! and by magpie (through `[collector] prometheus_config`), each remote-writing to its own real
//! Prometheus: the series that reach the two receivers must be the same label sets. The file
//! uses static and file_sd targets, metric relabeling with every action, external labels, write
//! relabeling, `params`, `honor_labels`, `label_limit`, `target_limit` and `sample_limit` (one job over it, one under
//! it only after relabeling), target relabeling (dropping a target, rewriting `__address__` and
//! `__metrics_path__`, `__param_`, `labelmap` from `__meta_*`) and `http_sd_configs`. Debian's
//! nginx serves targets behind `basic_auth` (`password_file`), `authorization`
//! (`credentials_file`), mutual TLS (`ca_file`, client certificate) and TLS with a certificate
//! valid only for a name (`server_name`, checked as SNI too), and an exposition with explicit
//! timestamps scraped with `honor_timestamps: false`; `honor_labels: true` meets target labels
//! that conflict with exposed ones.

mod common;

mod prometheus_agent_guarded;

use common::{Magpie, magpie, plugin_dir};
use magpie_testkit::{Behavior, LabelSet, Prometheus, PrometheusAgent, TargetServer, series};
use prometheus_agent_guarded::Guarded;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const EXPOSITION: &str = r#"# TYPE http_requests_total counter
http_requests_total{method="GET",code="200",path="/a"} 10
http_requests_total{method="POST",code="500",path="/b"} 2
# TYPE go_goroutines gauge
go_goroutines 7
# TYPE node_temp gauge
node_temp{sensor="CPU",zone="Z1"} 40
node_temp{sensor="gpu",zone="Z3"} 50
node_temp{sensor="fan",zone="z2"} 30
# TYPE tmp_debug gauge
tmp_debug{a="1"} 1
# TYPE job_info gauge
job_info{job="inner",instance="x:1",team="t"} 1
"#;

/// Every relabel action, each with an effect on some series of [`EXPOSITION`].
const METRIC_RELABEL: &str = r#"
    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'go_.*', action: drop}
      - {source_labels: [__name__], regex: 'http_.*|node_.*|tmp_.*|job_info', action: keep}
      - {source_labels: [method, code], separator: '_', target_label: mc}
      - {source_labels: [sensor], target_label: sensor_lc, action: lowercase}
      - {source_labels: [zone], target_label: zone_uc, action: uppercase}
      - {source_labels: [path], modulus: 8, target_label: shard, action: hashmod}
      - {regex: '(rack)', replacement: 'x_$1', action: labelmap}
      - {source_labels: [zone_uc], target_label: zone, action: keepequal}
      - {source_labels: [path], regex: '/b', target_label: dupname, replacement: http_requests_total}
      - {source_labels: [__name__], target_label: dupname, action: dropequal}
      - {regex: 'a', action: labeldrop}
      - {target_label: scratch, replacement: '1'}
      - {regex: 'scratch', action: labeldrop}
      - {regex: '__name__|job|instance|rack|x_rack|method|code|path|mc|sensor|sensor_lc|zone|zone_uc|shard|team|exported_job|exported_instance|zone_sd', action: labelkeep}
"#;

fn prometheus_yml(t1: &str, t2: &str, write_url: &str, guarded: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  external_labels:
    site: edge1
scrape_configs:
  - job_name: static
    static_configs:
      - targets: ['{t1}']
        labels: {{rack: r1}}
{METRIC_RELABEL}
  - job_name: honored
    honor_labels: true
    static_configs:
      - targets: ['{t1}']
  - job_name: files
    file_sd_configs:
      - files: [targets.json]
        refresh_interval: 1s
  - job_name: limited
    sample_limit: 5
    static_configs:
      - targets: ['{t1}']
  - job_name: label_limited
    label_limit: 5
    static_configs:
      - targets: ['{t1}']
  - job_name: too_many_targets
    target_limit: 1
    static_configs:
      - targets: ['{t1}', '{t2}']
  - job_name: with_params
    params: {{module: ['a b'], 'x&y': ['1']}}
    static_configs:
      - targets: ['{t2}']
  - job_name: relabeled_under_limit
    sample_limit: 3
    static_configs:
      - targets: ['{t1}']
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: node_temp, action: keep}}
  - job_name: probe
    metrics_path: /metrics
    static_configs:
      - targets: ['device-a', 'drop-me:1']
        labels: {{room: lab}}
    relabel_configs:
      - {{source_labels: [__address__], regex: 'drop-me.*', action: drop}}
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: '{t2}'}}
      - {{target_label: __metrics_path__, replacement: /probe}}
      - {{source_labels: [room], regex: '(.*)', target_label: room, replacement: 'room-$1'}}
  - job_name: http_sd
    http_sd_configs:
      - url: http://{t2}/sd
        refresh_interval: 1s
    relabel_configs:
      - {{regex: '__meta_(.+)', action: labelmap}}
      - {{source_labels: [grp], regex: skip, action: drop}}
{guarded}
remote_write:
  - url: {write_url}
    name: central
    write_relabel_configs:
      - {{source_labels: [__name__], regex: tmp_debug, action: drop}}
      - {{target_label: via, replacement: rw}}
      - {{regex: team, action: labeldrop}}
"#
    )
}

fn show(s: &BTreeSet<LabelSet>) -> String {
    let lines: Vec<String> = s
        .iter()
        .map(|l| {
            let l: Vec<String> = l.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
            format!("{{{}}}", l.join(","))
        })
        .collect();
    lines.join("\n")
}

#[test]
fn magpie_and_the_prometheus_agent_deliver_the_same_series() {
    let t1 = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    // Groups for `http_sd_configs`: one target with `__meta_` labels, one that relabeling drops.
    let sd = format!(
        r#"[{{"targets": ["{t1}"], "labels": {{"__meta_room": "kitchen", "grp": "g1"}}}},
            {{"targets": ["{t1}"], "labels": {{"grp": "skip"}}}}]"#,
        t1 = t1.addr()
    );
    let mut routes: Vec<(String, Behavior)> = [
        "/metrics",
        "/metrics?module=a+b&x%26y=1",
        "/probe?target=device-a",
    ]
    .map(|path| {
        (
            path.to_string(),
            Behavior::Serve {
                content_type: "text/plain; version=0.0.4".into(),
                body: EXPOSITION.into(),
            },
        )
    })
    .to_vec();
    routes.push((
        "/sd".into(),
        Behavior::Serve {
            content_type: "application/json".into(),
            body: sd,
        },
    ));
    let t2 = TargetServer::start(routes);
    let guarded = Guarded::start();
    let for_agent = Prometheus::start();
    let for_magpie = Prometheus::start();

    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    for sub in ["agent", "magpie"] {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("targets.json"),
            format!(
                r#"[{{"targets": ["{}"], "labels": {{"zone_sd": "z"}}}}]"#,
                t2.addr()
            ),
        )
        .unwrap();
    }
    let agent_yml = dir.path().join("agent/prometheus.yml");
    std::fs::write(
        &agent_yml,
        prometheus_yml(
            t1.addr(),
            t2.addr(),
            &for_agent.write_url(),
            &guarded.jobs(),
        ),
    )
    .unwrap();
    let magpie_yml = dir.path().join("magpie/prometheus.yml");
    std::fs::write(
        &magpie_yml,
        prometheus_yml(
            t1.addr(),
            t2.addr(),
            &for_magpie.write_url(),
            &guarded.jobs(),
        ),
    )
    .unwrap();

    // The unchanged file converts, and `magpie check` accepts the result (plugins found in
    // `target/plugins` under the working directory, the default of a source checkout).
    let out = magpie()
        .arg("config")
        .arg("convert")
        .arg(&magpie_yml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted = String::from_utf8(out.stdout).unwrap();
    assert!(
        converted.contains("[[export.write_relabel_configs]]"),
        "{converted}"
    );
    let work = dir.path().join("magpie");
    std::fs::create_dir_all(work.join("target")).unwrap();
    std::fs::rename(&pd, work.join("target/plugins")).unwrap();
    let pd = work.join("target/plugins");
    std::fs::write(work.join("converted.toml"), &converted).unwrap();
    let out = magpie()
        .args(["check", "converted.toml"])
        .current_dir(&work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (16 scrape jobs, 1 exporters)"));

    let toml = dir.path().join("magpie/magpie.toml");
    std::fs::write(
        &toml,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nprometheus_config = \"prometheus.yml\"\n[wal]\nfsync = \"100ms\"\n",
            pd.display(),
            dir.path().join("magpie/data").display()
        ),
    )
    .unwrap();
    let _agent = PrometheusAgent::start(&agent_yml);
    let m = Magpie::start(&toml);

    // Both have delivered every job's series once the sets agree and hold all seventeen `up`s; the
    // deadline only bounds a failing run.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (a, b) = loop {
        let a = series(for_agent.addr());
        let b = series(for_magpie.addr());
        let ups = |s: &BTreeSet<LabelSet>| {
            s.iter()
                .filter(|l| l.iter().any(|(n, v)| n == "__name__" && v == "up"))
                .count()
        };
        if (a == b && ups(&a) == 17) || Instant::now() > deadline {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let only_agent: BTreeSet<_> = a.difference(&b).cloned().collect();
    let only_magpie: BTreeSet<_> = b.difference(&a).cloned().collect();
    assert!(
        only_agent.is_empty() && only_magpie.is_empty(),
        "only from the Prometheus agent:\n{}\n\nonly from magpie:\n{}\n\nmagpie's log ends: {:?}",
        show(&only_agent),
        show(&only_magpie),
        m.log_text().lines().rev().take(10).collect::<Vec<_>>()
    );
    // The comparison is not vacuous: each feature left its mark.
    let has = |pred: &dyn Fn(&LabelSet) -> bool| a.iter().any(pred);
    let get = |l: &LabelSet, n: &str| l.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert!(has(&|l| get(l, "x_rack").as_deref() == Some("r1")
        && get(l, "sensor_lc").as_deref() == Some("cpu")));
    assert!(
        has(&|l| get(l, "job").as_deref() == Some("inner")),
        "honor_labels"
    );
    assert!(has(&|l| get(l, "exported_job").as_deref() == Some("inner")));
    assert!(
        has(&|l| get(l, "zone_sd").as_deref() == Some("z")),
        "file_sd"
    );
    assert!(
        a.iter().all(|l| get(l, "site").as_deref() == Some("edge1")),
        "external labels"
    );
    assert!(
        a.iter().all(|l| get(l, "via").as_deref() == Some("rw")),
        "write relabel"
    );
    assert!(
        !has(&|l| get(l, "__name__").as_deref() == Some("tmp_debug")),
        "write relabel drop"
    );
    assert!(
        !has(&|l| get(l, "job").as_deref() == Some("static")
            && get(l, "__name__").as_deref() == Some("go_goroutines")),
        "metric relabel drop"
    );
    assert!(!has(
        &|l| get(l, "dupname").is_some() || get(l, "a").is_some()
    ));
    assert!(
        !has(&|l| get(l, "job").as_deref() == Some("limited")
            && get(l, "__name__").as_deref() == Some("node_temp")),
        "sample_limit"
    );
    assert!(
        has(
            &|l| get(l, "job").as_deref() == Some("relabeled_under_limit")
                && get(l, "__name__").as_deref() == Some("node_temp")
        ),
        "sample_limit after relabeling"
    );
    assert!(
        !has(&|l| get(l, "job").as_deref() == Some("label_limited")
            && !get(l, "__name__")
                .unwrap_or_default()
                .starts_with("scrape_")
            && get(l, "__name__").as_deref() != Some("up")),
        "label_limit"
    );
    assert!(
        has(&|l| get(l, "job").as_deref() == Some("label_limited")
            && get(l, "__name__").as_deref() == Some("up")),
        "label_limit: up"
    );
    assert!(
        !has(&|l| get(l, "job").as_deref() == Some("too_many_targets")
            && !get(l, "__name__")
                .unwrap_or_default()
                .starts_with("scrape_")
            && get(l, "__name__").as_deref() != Some("up")),
        "target_limit"
    );
    assert!(
        has(&|l| get(l, "job").as_deref() == Some("with_params")
            && get(l, "__name__").as_deref() == Some("go_goroutines")),
        "params"
    );
    let probe = |l: &LabelSet| get(l, "job").as_deref() == Some("probe");
    assert!(
        has(&|l| probe(l)
            && get(l, "instance").as_deref() == Some("device-a")
            && get(l, "room").as_deref() == Some("room-lab")
            && get(l, "__name__").as_deref() == Some("go_goroutines")),
        "target relabeling: __address__, __metrics_path__, __param_target"
    );
    assert!(
        !has(&|l| probe(l) && get(l, "instance").as_deref() == Some("drop-me:1")),
        "target relabeling: drop"
    );
    let from_sd = |l: &LabelSet| get(l, "job").as_deref() == Some("http_sd");
    assert!(
        has(&|l| from_sd(l)
            && get(l, "room").as_deref() == Some("kitchen")
            && get(l, "url").as_deref() == Some(format!("http://{}/sd", t2.addr()).as_str())
            && get(l, "__name__").as_deref() == Some("go_goroutines")),
        "http_sd_configs with labelmap from __meta_*"
    );
    assert!(
        !has(&|l| from_sd(l) && get(l, "grp").as_deref() == Some("skip")),
        "http_sd_configs: a dropped group"
    );
    guarded.assert_delivered(&a, &[&for_agent, &for_magpie]);
    println!("{} series delivered by each", a.len());
}

#[test]
fn check_and_run_name_the_line_of_a_refused_key() {
    let dir = tempfile::tempdir().unwrap();
    let yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &yml,
        "global:\n  scrape_interval: 15s\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: a\n    consul_sd_configs: []\n",
    )
    .unwrap();
    for args in [vec!["check"], vec!["run", "--config"]] {
        let out = magpie().args(&args).arg(&yml).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let at = |line: u32, col: u32| format!("{}:{line}:{col}: ", yml.display());
        assert!(
            err.contains(&format!(
                "{}rule_files: `rule_files` is not allowed in agent mode",
                at(3, 1)
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "{}scrape_configs[0].consul_sd_configs: `consul_sd_configs` is not implemented",
                at(6, 5)
            )),
            "{err}"
        );
    }
    // Found by content too, whatever the file is called.
    let conf = dir.path().join("agent.conf");
    std::fs::copy(&yml, &conf).unwrap();
    let out = magpie().arg("check").arg(&conf).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("agent.conf:3:1: rule_files"));
}
