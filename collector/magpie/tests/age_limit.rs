//! `sample_age_limit` against a real Prometheus, which refuses a whole remote-write request
//! when one sample in it is older than its head allows ("out of bounds"): without the limit,
//! the refused batch is sent again in halves of its series, and only the hours-old series is
//! refused (two requests more); with it, the old samples are dropped before encoding and
//! counted, and the batch goes through at once.

mod common;

use common::{Magpie, plugin_dir};
use magpie_testkit::{Behavior, Prometheus, TargetServer, sample_value};
use magpie_wal::{Options, SampleRef, Wal};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const OLD: usize = 10;
const FRESH: usize = 5;

/// A configuration with `scrape` before the exporter and `export` inside it.
fn write_config(
    dir: &Path,
    name: &str,
    data: &Path,
    url: &str,
    scrape: &str,
    export: &str,
) -> std::path::PathBuf {
    let cfg = dir.join(name);
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n{scrape}[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{url}\"\nmax_backoff = \"200ms\"\n{export}",
            dir.join("plugins").display(),
            data.display(),
        ),
    )
    .unwrap();
    cfg
}

/// Waits until the exporter has nothing left to send.
fn drained(m: &Magpie) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = m.metrics();
        if sample_value(
            &body,
            "magpie_exporter_backlog_samples{exporter=\"central\"}",
        ) == Some(0.0)
        {
            return body;
        }
        assert!(Instant::now() < deadline, "{body}\n{}", m.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(prom: &Prometheus, selector: &str) -> usize {
    prom.samples(selector, "5h")
        .iter()
        .map(|(_, points)| points.len())
        .sum()
}

#[test]
fn samples_past_the_age_limit_are_dropped_and_counted_and_fresh_ones_arrive() {
    let prom = Prometheus::start();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\n".into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let data = dir.path().join("data");
    // Prometheus' head learns the present from a scrape delivered first.
    let scrape = format!(
        "[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n",
        target.url("/metrics")
    );
    // Two receivers: one for the run without the limit, one for the run with it (a second
    // delivery of the same samples to one receiver would be refused as out of order).
    let bare = Prometheus::start();
    for (receiver, data, name) in [
        (&prom, data.clone(), "scrape.toml"),
        (&bare, dir.path().join("teach"), "teach.toml"),
    ] {
        let m = Magpie::start(&write_config(
            dir.path(),
            name,
            &data,
            &receiver.write_url(),
            &scrape,
            "",
        ));
        m.wait_for(
            "magpie_exporter_sent_samples_total{exporter=\"central\"}",
            10.0,
        );
        assert!(m.terminate().success());
    }

    // A backlog of one batch: hours-old samples, then fresh ones (as after a long outage
    // with a ring that kept them).
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut wal = Wal::open(&data.join("wal"), Options::default()).unwrap();
    let old: Vec<SampleRef> = (0..OLD)
        .map(|i| SampleRef {
            labels: &[("__name__", "backlog_gauge"), ("age", "old")],
            t_ms: now - 3 * 3_600_000 + i64::try_from(i).unwrap() * 1000,
            value: 1.0,
        })
        .collect();
    let fresh: Vec<SampleRef> = (0..FRESH)
        .map(|i| SampleRef {
            labels: &[("__name__", "backlog_gauge"), ("age", "fresh")],
            t_ms: now - 5000 + i64::try_from(i).unwrap() * 1000,
            value: 2.0,
        })
        .collect();
    wal.append(old.into_iter().chain(fresh)).unwrap();
    wal.close().unwrap();
    let control = dir.path().join("control");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&control)
        .status()
        .unwrap();
    assert!(cp.success());

    // Without the limit: Prometheus refuses the batch for its old samples; sent again in
    // halves of its series, the old series is refused and the fresh one arrives.
    let m = Magpie::start(&write_config(
        dir.path(),
        "control.toml",
        &control,
        &bare.write_url(),
        "",
        "",
    ));
    let body = drained(&m);
    assert!(m.terminate().success());
    let rejected = sample_value(
        &body,
        "magpie_exporter_rejected_samples_total{exporter=\"central\"}",
    )
    .unwrap();
    assert_eq!(rejected, OLD as f64, "{body}");
    assert_eq!(count(&bare, "backlog_gauge{age=\"fresh\"}"), FRESH);
    assert_eq!(count(&bare, "backlog_gauge{age=\"old\"}"), 0);

    // With the limit: the old samples are dropped before encoding, the fresh ones arrive.
    let m = Magpie::start(&write_config(
        dir.path(),
        "limited.toml",
        &data,
        &prom.write_url(),
        "",
        "sample_age_limit = \"1h\"\n",
    ));
    let body = drained(&m);
    assert!(m.terminate().success());
    let get = |name: &str| sample_value(&body, name).unwrap_or_else(|| panic!("{name}: {body}"));
    assert_eq!(
        get("magpie_exporter_too_old_samples_total{exporter=\"central\"}"),
        OLD as f64,
        "{body}"
    );
    assert_eq!(
        get("magpie_exporter_rejected_samples_total{exporter=\"central\"}"),
        0.0,
        "{body}"
    );
    assert_eq!(count(&prom, "backlog_gauge{age=\"fresh\"}"), FRESH);
    assert_eq!(count(&prom, "backlog_gauge{age=\"old\"}"), 0);
}
