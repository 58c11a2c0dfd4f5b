//! Metric metadata over remote write 1.0, against the incumbent: the Prometheus agent
//! (Debian's 2.42) and magpie run the same `prometheus.yml` against the same targets (one
//! OpenMetrics, one text 0.0.4), each remote-writing to its own recording receiver; the
//! metadata each sends (family, type, help, unit), decoded from the requests, must be the same
//! set. Prometheus sends metadata in requests of its own every `metadata_config.send_interval`.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, PrometheusAgent, ScriptedReceiver, TargetServer};
use prost::Message as _;
use remote_write::proto::v1::MetadataWriteRequest;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every OpenMetrics type, a unit, a HELP with escapes, a family with HELP and no TYPE.
const OPENMETRICS: &str = r#"# TYPE http_requests counter
# HELP http_requests Requests served, by "code".
http_requests_total{code="200"} 10
http_requests_created{code="200"} 1700000000
# TYPE room_temperature_celsius gauge
# UNIT room_temperature_celsius celsius
# HELP room_temperature_celsius Air in the room.\nSecond line, a \\ backslash.
room_temperature_celsius 21.5
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_count 2
latency_seconds_sum 0.3
# TYPE queue_wait gaugehistogram
queue_wait_bucket{le="1"} 1
queue_wait_bucket{le="+Inf"} 3
queue_wait_gcount 3
queue_wait_gsum 4
# TYPE rpc summary
# HELP rpc RPCs.
rpc{quantile="0.5"} 0.1
rpc_count 4
rpc_sum 0.8
# TYPE build info
build_info{version="1.2"} 1
# TYPE mode stateset
mode{mode="a"} 1
mode{mode="b"} 0
# TYPE other unknown
other 3
# HELP helped_only Only a HELP line.
helped_only 1
# EOF
"#;

const TEXT: &str = r#"# HELP door_opens_total Opens of the door.
# TYPE door_opens_total counter
door_opens_total 7
# TYPE loose untyped
loose 1
# HELP text_help Back\\slash and\nnewline.
# TYPE text_help gauge
text_help 2
no_metadata_here 5
"#;

fn prometheus_yml(om: &str, text: &str, write_url: &str) -> String {
    format!(
        r"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: om
    static_configs: [{{targets: ['{om}']}}]
  - job_name: text
    static_configs: [{{targets: ['{text}']}}]
remote_write:
  - url: {write_url}
    metadata_config:
      send_interval: 1s
"
    )
}

/// (family, type, help, unit) as the receiver got them, from every metadata request.
type Meta = BTreeSet<(String, i32, String, String)>;

fn metadata(r: &ScriptedReceiver) -> Meta {
    let mut set = Meta::new();
    for req in r.received() {
        let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&req.body) else {
            continue;
        };
        let Ok(m) = MetadataWriteRequest::decode(raw.as_slice()) else {
            continue;
        };
        for f in m.metadata {
            set.insert((f.metric_family_name, f.r#type, f.help, f.unit));
        }
    }
    set
}

fn serve(content_type: &str, body: &str) -> TargetServer {
    TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: content_type.into(),
            body: body.into(),
        },
    )])
}

#[test]
fn magpie_sends_the_metadata_the_prometheus_agent_sends() {
    let om = serve(
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        OPENMETRICS,
    );
    let text = serve("text/plain; version=0.0.4", TEXT);
    let for_agent = ScriptedReceiver::start(Vec::new());
    let for_magpie = ScriptedReceiver::start(Vec::new());

    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let agent_yml = dir.path().join("agent.yml");
    std::fs::write(
        &agent_yml,
        prometheus_yml(om.addr(), text.addr(), &for_agent.url()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        prometheus_yml(om.addr(), text.addr(), &for_magpie.url()),
    )
    .unwrap();
    let toml = dir.path().join("magpie.toml");
    std::fs::write(
        &toml,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nprometheus_config = \"prometheus.yml\"\n",
            pd.display(),
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let _agent = PrometheusAgent::start(&agent_yml);
    let m = Magpie::start(&toml);

    // Both scraped every family and sent its metadata once the sets agree and hold all of
    // them; the deadline only bounds a failing run.
    let families = 12;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = loop {
        let a = metadata(&for_agent);
        let b = metadata(&for_magpie);
        if (a == b && a.len() >= families) || Instant::now() > deadline {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        a,
        b,
        "left: the Prometheus agent, right: magpie; magpie's log ends: {:?}",
        m.log_text().lines().rev().take(10).collect::<Vec<_>>()
    );
    // Not vacuous: the sets hold what the expositions say, escapes and units included.
    let has = |name: &str, kind: i32, help: &str, unit: &str| {
        a.contains(&(name.into(), kind, help.into(), unit.into()))
    };
    assert!(
        has("http_requests", 1, "Requests served, by \"code\".", ""),
        "{a:#?}"
    );
    assert!(
        has(
            "room_temperature_celsius",
            2,
            "Air in the room.\nSecond line, a \\ backslash.",
            "celsius"
        ),
        "{a:#?}"
    );
    assert!(
        has("text_help", 2, "Back\\slash and\nnewline.", ""),
        "{a:#?}"
    );
    assert!(has("mode", 7, "", ""), "{a:#?}");
    assert_eq!(a.len(), families, "{a:#?}");
}
