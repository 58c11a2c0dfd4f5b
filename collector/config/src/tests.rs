//! Configuration parsing and validation.

use super::*;

fn errors(text: &str) -> Vec<String> {
    parse(Path::new("m.toml"), text)
        .map(|_| Vec::new())
        .unwrap_or_else(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn builtin_parses_to_the_documented_default() {
    let l = builtin();
    assert_eq!(l.config.collector.data_dir, PathBuf::from("magpie-data"));
    assert_eq!(l.config.collector.listen, "127.0.0.1:9464");
    assert_eq!(l.config.scrape.len(), 1);
    let s = l.config.scrape[0].get_ref();
    assert_eq!(s.plugin.get_ref(), "node");
    assert_eq!(s.interval.0, Duration::from_secs(15));
    assert_eq!(s.timeout(), Duration::from_secs(10));
    let l = parse(
        Path::new("t.toml"),
        "[[scrape]]\njob = \"n\"\nplugin = \"node\"\ninterval = \"2s\"\n",
    )
    .unwrap();
    assert_eq!(
        l.config.scrape[0].get_ref().timeout(),
        Duration::from_secs(2)
    );
    assert_eq!(
        s.file_grants(),
        [PathBuf::from("/proc"), PathBuf::from("/sys")]
    );
}

#[test]
fn design_example_parses() {
    let text = r#"
[collector]
data_dir = "/var/lib/magpie"
listen = "127.0.0.1:9464"
plugin_dir = "/usr/lib/magpie/plugins"
external_labels = { site = "pi-07" }

[wal]
max_bytes = "64MiB"
segment_bytes = "4MiB"
fsync = "1s"

[[scrape]]
job = "node"
plugin = "prom-scrape"
interval = "15s"
timeout = "10s"
targets = ["http://127.0.0.1:9100/metrics"]

[[export]]
name = "central"
plugin = "remote-write"
url = "http://127.0.0.1:9090/api/v1/write"

[[scrape]]
job = "host"
plugin = "node"
interval = "15s"

[[export]]
name = "broker"
plugin = "mqtt"
url = "mqtt://127.0.0.1:1883"
topic = "magpie/{site}/metrics"
[export.config]
encoding = "json"
"#;
    let l = parse(Path::new("d.toml"), text).unwrap();
    assert_eq!(l.config.wal.max_bytes, ByteSize(64 << 20));
    assert_eq!(l.config.scrape.len(), 2);
    assert_eq!(
        l.config.export[1]
            .get_ref()
            .plugin_config()
            .get("encoding")
            .and_then(Value::as_str),
        Some("json")
    );
}

#[test]
fn unknown_keys_name_file_line_and_key() {
    let e = errors("[collector]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("m.toml:3:1: "), "{}", e[0]);
    assert!(e[0].contains("unknown field `listn`"), "{}", e[0]);
    let e = errors(
        "[[scrape]]\njob = \"a\"\nplugin = \"node\"\n\n[[scrape]]\njob = \"b\"\nplugin = \"node\"\nintervl = \"5s\"\n",
    );
    assert!(
        e[0].starts_with("m.toml:8:1: ") && e[0].contains("`intervl`"),
        "{}",
        e[0]
    );
}

#[test]
fn bad_values_name_the_line() {
    let e = errors("[wal]\nfsync = \"soon\"\n");
    assert!(
        e[0].starts_with("m.toml:2:9: ") && e[0].contains("`soon` is not a duration"),
        "{}",
        e[0]
    );
    let e = errors("[wal]\nmax_bytes = \"64 parsecs\"\n");
    assert!(
        e[0].starts_with("m.toml:2:") && e[0].contains("unknown unit"),
        "{}",
        e[0]
    );
}

#[test]
fn semantic_errors_point_at_the_job() {
    let e = errors(
        "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\ninterval = \"5s\"\ntimeout = \"10s\"\ntargets = [\"ftp://x\"]\n\n[[scrape]]\njob = \"a\"\nplugin = \"node\"\n",
    );
    assert!(
        e.iter().any(|m| m.starts_with("m.toml:1:")
            && m.contains("timeout (10s) must not exceed interval (5s)")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.contains("`ftp://x` is not an http")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("m.toml:9:") && m.contains("`a` is defined twice")),
        "{e:?}"
    );
    let e = errors(
        "[[export]]\nname = \"c\"\nplugin = \"remote-write\"\nurl = \"https://x/api/v1/write\"\ntls = { cert_file = \"/etc/c.pem\" }\n",
    );
    assert!(
        e.iter().any(|m| m.starts_with("m.toml:2:")
            && m.contains("exporter `c`: tls needs both cert_file and key_file")),
        "{e:?}"
    );
    for bad in ["my exporter", "c.newest", ".hidden"] {
        let e = errors(&format!(
            "[[export]]\nname = \"{bad}\"\nplugin = \"remote-write\"\nurl = \"http://x/api/v1/write\"\n"
        ));
        assert!(
            e.iter().any(|m| m.starts_with("m.toml:2:")
                && m.contains(&format!("exporter `{bad}`: use 1 to 64"))),
            "{e:?}"
        );
    }
}

#[test]
fn relabel_rules_and_file_sd_are_checked_at_load() {
    let ok = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.metric_relabel_configs]]\nsource_labels = [\"__name__\"]\nregex = \"go_.*\"\naction = \"drop\"\n[[scrape.file_sd_configs]]\nfiles = [\"targets/*.json\"]\n";
    assert!(errors(ok).is_empty(), "{:?}", errors(ok));
    let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.metric_relabel_configs]]\nsource_labels = [\"x\"]\nregex = \"(\"\n";
    let e = errors(bad);
    assert!(
        e[0].starts_with("m.toml:1:") && e[0].contains("metric_relabel_configs: relabel rule #1"),
        "{e:?}"
    );
    let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.file_sd_configs]]\nfiles = [\"t.txt\"]\n";
    assert!(
        errors(bad)[0].contains("file_sd_configs"),
        "{:?}",
        errors(bad)
    );
}

#[test]
fn target_relabeling_and_http_sd_are_checked_at_load() {
    let ok = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\nparams = { module = [\"http_2xx\"] }\n[[scrape.relabel_configs]]\nsource_labels = [\"__address__\"]\ntarget_label = \"__param_target\"\n[[scrape.http_sd_configs]]\nurl = \"https://sd.example/targets\"\nrefresh_interval = \"30s\"\nauthorization = { credentials_file = \"/etc/t\" }\n";
    assert!(errors(ok).is_empty(), "{:?}", errors(ok));
    let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.relabel_configs]]\naction = \"hashmod\"\ntarget_label = \"x\"\n";
    let e = errors(bad);
    assert!(
        e[0].contains("scrape job `a`: relabel_configs: relabel rule #1 (action hashmod)"),
        "{e:?}"
    );
    let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.kubernetes_sd_configs]]\nrole = \"node\"\nnamespaces = { names = [\"x\"] }\n";
    let e = errors(bad);
    assert!(
        e[0].contains(
            "scrape job `a`: kubernetes_sd_configs: namespaces: nodes are not namespaced"
        ),
        "{e:?}"
    );
    let bad = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\n[[scrape.http_sd_configs]]\nurl = \"sd.example\"\n";
    let e = errors(bad);
    assert!(
        e[0].contains("scrape job `a`: http_sd_configs: url: `sd.example` is not an http"),
        "{e:?}"
    );
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(ByteSize::parse("64MiB"), Ok(ByteSize(64 << 20)));
    assert_eq!(ByteSize::parse("4 MiB"), Ok(ByteSize(4 << 20)));
    assert_eq!(ByteSize::parse("1GB"), Ok(ByteSize(1_000_000_000)));
    assert_eq!(ByteSize::parse("512"), Ok(ByteSize(512)));
    assert!(ByteSize::parse("MiB").is_err());
    assert!(ByteSize::parse("99999999999999999999GiB").is_err());
}

#[test]
fn plugin_tables_become_abi_values() {
    let l = parse(
        Path::new("p.toml"),
        "[[scrape]]\njob = \"h\"\nplugin = \"hello\"\n[scrape.config]\na = 1\nb = [true, \"x\"]\n",
    )
    .unwrap();
    let v = l.config.scrape[0].get_ref().plugin_config();
    assert_eq!(v.get("a"), Some(&Value::Int(1)));
    assert_eq!(
        v.get("b"),
        Some(&Value::List(vec![
            Value::Bool(true),
            Value::Str("x".into())
        ]))
    );
}

#[test]
fn remote_write_shortcut_adds_an_exporter_to_the_default() {
    let l = builtin_with_remote_write("http://127.0.0.1:9090/api/v1/write").unwrap();
    assert_eq!(l.config.scrape.len(), 1);
    let e = l.config.export[0].get_ref();
    assert_eq!(e.plugin.get_ref(), "remote-write");
    assert_eq!(e.url.get_ref(), "http://127.0.0.1:9090/api/v1/write");
    let bad = builtin_with_remote_write("ftp://x\" = 1").unwrap_err();
    assert!(bad[0].to_string().contains("is not an http(s)"), "{bad:?}");
}

#[test]
fn credentials_in_urls_are_refused_at_their_line_and_never_shown() {
    let text = "[[scrape]]\njob = \"a\"\nplugin = \"prom-scrape\"\ntargets = [\n  \"http://h:1/metrics\",\n  \"http://scraper:hunter2@h:2/metrics\",\n]\n\n[[export]]\nname = \"c\"\nplugin = \"remote-write\"\nurl = \"https://pi:s3cret@prom:9090/api/v1/write\"\n\n[[export]]\nname = \"m\"\nplugin = \"mqtt\"\nurl = \"mqtt://gw:0pen@broker\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with("m.toml:6:3: scrape job `a`: targets: `http://<redacted>@h:2/metrics`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(
            "m.toml:12:7: url: exporter `c`: `https://<redacted>@prom:9090/api/v1/write`"
        ),
        "{}",
        e[1]
    );
    assert!(
        e[1].contains("basic_auth") && e[1].contains("password_file"),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with("m.toml:17:7: url: exporter `m`"),
        "{}",
        e[2]
    );
    for m in &e {
        for secret in ["hunter2", "s3cret", "0pen"] {
            assert!(!m.contains(secret), "{m}");
        }
    }
    let e = builtin_with_remote_write("http://u:pw@h/api/v1/write").unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    let m = e[0].to_string();
    assert!(m.contains("basic_auth") && !m.contains(":pw@"), "{m}");
}

#[test]
fn status_history_step_defaults_to_30s_and_refuses_tiny_steps() {
    assert_eq!(
        builtin().config.collector.status_history_step.0,
        Duration::from_secs(30)
    );
    let e = errors("[collector]\nstatus_history_step = \"10ms\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("collector.status_history_step: must be 100ms or longer"),
        "{e:?}"
    );
    assert!(errors("[collector]\nstatus_history_step = \"1s\"\n").is_empty());
}

#[test]
fn a_fleet_url_is_http_or_an_mqtt_topic() {
    let fleet = |rest: &str| errors(&format!("[trust]\nkeys = []\n[fleet]\n{rest}\n"));
    assert!(fleet("url = \"http://h/fleet/\"").is_empty());
    assert!(
        fleet("url = \"mqtts://broker:8883/site-a/manifest\"\ntls = { ca_file = \"ca.pem\" }")
            .is_empty()
    );
    for (rest, why) in [
        ("url = \"mqtt://broker:1883\"", "names no topic"),
        ("url = \"mqtt://broker/site/+\"", "no wildcards"),
        ("url = \"mqtt://broker:0/t\"", "port"),
        ("url = \"ftp://h/\"", "mqtts://"),
        (
            "url = \"https://h/\"\nbasic_auth = { username = \"u\", password_file = \"p\" }",
            "only for an mqtt://",
        ),
    ] {
        let e = fleet(rest).join("\n");
        assert!(e.contains("fleet.") && e.contains(why), "{rest}: {e}");
        assert!(e.contains("m.toml:"), "{rest}: {e}");
    }
    let f: Fleet = toml::from_str("url = \"mqtt://b:1884/a/b\"").unwrap();
    assert_eq!(f.mqtt_topic(), Some(("mqtt://b:1884".into(), "a/b".into())));
}

#[test]
fn the_snmp_plugin_may_read_the_files_its_config_names() {
    let l = parse(
        Path::new("t.toml"),
        "[[scrape]]\njob = \"s\"\nplugin = \"snmp\"\ntargets = [\"udp://127.0.0.1:161\"]\n[scrape.config]\nversion = \"2c\"\ncommunity_file = \"/etc/magpie/snmp-community\"\nmodules_file = \"/etc/magpie/snmp.yml\"\nmodules = [\"if_mib\"]\n",
    )
    .unwrap();
    let mut grants = l.config.scrape[0].get_ref().file_grants();
    grants.sort();
    assert_eq!(
        grants,
        [
            PathBuf::from("/etc/magpie/snmp-community"),
            PathBuf::from("/etc/magpie/snmp.yml")
        ]
    );
}

#[test]
fn send_exemplars_is_an_exporter_switch_off_by_default() {
    let base = "[[export]]\nname = \"c\"\nplugin = \"remote-write\"\nurl = \"http://r:9/w\"\n";
    let on = parse(
        Path::new("m.toml"),
        &format!("{base}send_exemplars = true\n"),
    )
    .unwrap();
    assert!(on.config.export[0].get_ref().send_exemplars);
    let off = parse(Path::new("m.toml"), base).unwrap();
    assert!(!off.config.export[0].get_ref().send_exemplars);
    let e = errors(&format!("{base}send_exemplars = \"yes\"\n"));
    assert!(
        e[0].starts_with("m.toml:5:") && e[0].contains("expected a boolean"),
        "{e:?}"
    );
}
