use super::*;
use magpie_wal::{SampleRef, Wal};
use std::collections::BTreeMap;

fn value(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
}

fn state(up: bool, samples: usize) -> TargetState {
    TargetState {
        up,
        last_scrape_ms: 1_700_000_000_500,
        duration: Duration::from_millis(250),
        samples,
        error: (!up).then(|| "refused".to_string()),
    }
}

fn append(wal: &mut Wal, n: usize) {
    let labels = [("__name__", "t"), ("job", "x")];
    wal.append((0..n).map(|i| SampleRef {
        labels: &labels,
        t_ms: 1_700_000_000_000 + i as i64,
        value: 1.0,
    }))
    .unwrap();
}

/// A telemetry with a scrape, a plugin, an exporter and a WAL snapshot published.
fn populated(dir: &std::path::Path) -> (Telemetry, Wal) {
    let t = Telemetry::default();
    t.record_scrape("node", "10.0.0.1:9100", state(true, 42), true);
    t.record_scrape("node", "10.0.0.2:9100", state(false, 0), false);
    t.add_plugin("prom-scrape#node".into(), Arc::new(PluginStats::default()));
    t.add_exporter("central".into(), Arc::new(ExportStats::default()));
    let mut wal = Wal::open(dir, magpie_wal::Options::default()).unwrap();
    wal.consumer("central").unwrap();
    append(&mut wal, 5);
    t.publish(wal.stats(), t.exporter_counters());
    (t, wal)
}

/// Every family and label set `/metrics` has always had: dashboards rely on them.
const EXPECTED: &[(&str, &str)] = &[
    ("magpie_build_info{version=\"", "gauge"),
    ("magpie_scrapes_total{job=\"node\"} 2", "counter"),
    ("magpie_scrape_failures_total{job=\"node\"} 1", "counter"),
    ("magpie_samples_scraped_total{job=\"node\"} 42", "counter"),
    (
        "magpie_target_up{job=\"node\",instance=\"10.0.0.1:9100\"} 1",
        "gauge",
    ),
    (
        "magpie_target_up{job=\"node\",instance=\"10.0.0.2:9100\"} 0",
        "gauge",
    ),
    (
        "magpie_target_last_scrape_timestamp_seconds{job=\"node\",instance=\"10.0.0.1:9100\"} 1700000000.5",
        "gauge",
    ),
    (
        "magpie_target_scrape_duration_seconds{job=\"node\",instance=\"10.0.0.1:9100\"} 0.25",
        "gauge",
    ),
    ("magpie_wal_oldest_sample_timestamp_seconds ", "gauge"),
    ("magpie_wal_max_bytes ", "gauge"),
    ("magpie_wal_bytes ", "gauge"),
    ("magpie_wal_data_bytes ", "gauge"),
    ("magpie_wal_segments ", "gauge"),
    ("magpie_wal_series 1", "gauge"),
    ("magpie_wal_series_bytes ", "gauge"),
    ("magpie_series_active 0", "gauge"),
    ("magpie_series_bytes ", "gauge"),
    ("magpie_wal_series_log_bytes ", "gauge"),
    ("magpie_wal_samples_appended_total 5", "counter"),
    ("magpie_wal_samples 5", "gauge"),
    ("magpie_wal_samples_rejected_total 0", "counter"),
    ("magpie_wal_segments_dropped_total 0", "counter"),
    ("magpie_wal_label_heavy_segments_total 0", "counter"),
    ("magpie_wal_exemplars_appended_total 0", "counter"),
    ("magpie_wal_exemplars_dropped_total 0", "counter"),
    ("magpie_wal_damaged_regions_total 0", "counter"),
    (
        "magpie_exporter_backlog_samples{exporter=\"central\"} 5",
        "gauge",
    ),
    (
        "magpie_exporter_oldest_unacked_timestamp_seconds{exporter=\"central\"} 1700000000",
        "gauge",
    ),
    (
        "magpie_exporter_dropped_samples_total{exporter=\"central\"} 0",
        "counter",
    ),
    ("magpie_wal_sync_failures_total 0", "counter"),
    ("magpie_wal_append_failures_total 1", "counter"),
    (
        "magpie_exporter_sent_samples_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_retries_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_rejected_samples_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_too_old_samples_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_failed_sends_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_poisoned_samples_total{exporter=\"central\"} 0",
        "counter",
    ),
    (
        "magpie_exporter_fallback_encoding{exporter=\"central\"} 0",
        "gauge",
    ),
    (
        "magpie_exporter_last_success_timestamp_seconds{exporter=\"central\"} 0",
        "gauge",
    ),
    (
        "magpie_plugin_calls_total{plugin=\"prom-scrape#node\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_faults_total{plugin=\"prom-scrape#node\",kind=\"trap\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_faults_total{plugin=\"prom-scrape#node\",kind=\"timeout\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_faults_total{plugin=\"prom-scrape#node\",kind=\"memory_limit\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_faults_total{plugin=\"prom-scrape#node\",kind=\"abi\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_failures_total{plugin=\"prom-scrape#node\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_restarts_total{plugin=\"prom-scrape#node\"} 0",
        "counter",
    ),
    (
        "magpie_plugin_quarantined{plugin=\"prom-scrape#node\"} 0",
        "gauge",
    ),
    ("process_cpu_seconds_total ", "counter"),
    ("process_start_time_seconds ", "gauge"),
    ("process_resident_memory_bytes ", "gauge"),
];

#[test]
fn every_family_and_label_set_is_exposed_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _wal) = populated(dir.path());
    let body = t.render();
    let mut types = BTreeMap::new();
    for l in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = l.split_once(' ').unwrap();
        assert!(
            types.insert(name, kind).is_none(),
            "{name} typed twice:\n{body}"
        );
    }
    for (line, kind) in EXPECTED {
        assert!(
            body.lines().any(|l| l.starts_with(line)),
            "no line starting with {line}:\n{body}"
        );
        let name = line.split(['{', ' ']).next().unwrap();
        assert_eq!(types.get(name), Some(kind), "{name}:\n{body}");
        assert!(body.contains(&format!("# HELP {name} ")), "{name}:\n{body}");
    }
    // Every sample line is `name{labels} value` with a number for value.
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
}

#[test]
fn label_values_are_escaped() {
    let t = Telemetry::default();
    t.record_scrape("a\"b\\c\nd", "i", state(true, 1), true);
    let body = t.render();
    assert!(
        body.contains("magpie_scrapes_total{job=\"a\\\"b\\\\c\\nd\"} 1"),
        "{body}"
    );
    // A job that never failed shows its failures as 0.
    assert!(
        body.contains("magpie_scrape_failures_total{job=\"a\\\"b\\\\c\\nd\"} 0"),
        "{body}"
    );
}

#[test]
fn process_metrics_are_those_of_this_process() {
    // Burn a little CPU so the counter cannot read zero by luck.
    let t = std::time::Instant::now();
    let mut x = 0u64;
    while t.elapsed() < Duration::from_millis(30) {
        x = x.wrapping_mul(31).wrapping_add(1);
    }
    assert_ne!(x, 1);
    let body = Telemetry::default().render();
    let cpu = value(&body, "process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 3600.0, "{cpu}");
    let start = value(&body, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "{start} vs {now}"
    );
    assert!(value(&body, "process_resident_memory_bytes") > 1e6);
}

#[tokio::test]
async fn a_request_waits_for_a_fresh_wal_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (t, mut wal) = populated(dir.path());
    let t = Arc::new(t);
    // The WAL sync loop's part: a snapshot when one is wanted.
    let syncer = {
        let t = Arc::clone(&t);
        tokio::spawn(async move {
            t.snapshot_wanted().await;
            append(&mut wal, 7);
            t.publish(wal.stats(), t.exporter_counters());
            wal
        })
    };
    let req = Request::get("/metrics").body(()).unwrap();
    let resp = t.handle(&req).await;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(value(&body, "magpie_wal_samples_appended_total"), 12.0);
    drop(syncer.await.unwrap());
}

#[tokio::test]
async fn a_request_before_the_first_wal_snapshot_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::default());
    t.add_exporter("central".into(), Arc::new(ExportStats::default()));
    let mut wal = Wal::open(dir.path(), magpie_wal::Options::default()).unwrap();
    wal.consumer("central").unwrap();
    append(&mut wal, 3);
    // The sync loop starts late (the WAL opens and plugins compile after the listener is up).
    let syncer = {
        let t = Arc::clone(&t);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            t.publish(wal.stats(), t.exporter_counters());
        })
    };
    let req = Request::get("/metrics").body(()).unwrap();
    let resp = t.handle(&req).await;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(
        value(
            &body,
            "magpie_exporter_backlog_samples{exporter=\"central\"}"
        ),
        3.0
    );
    syncer.await.unwrap();
}

#[test]
fn the_page_shows_history_the_recorder_took() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _wal) = populated(dir.path());
    t.record_history(1_700_000_001_000);
    t.record_history(1_700_000_002_000);
    let v = t.view(1_700_000_002_000);
    assert_eq!(v.history.exporters.len(), 1);
    assert_eq!(v.history.exporters[0].1.points, vec![5.0, 5.0]);
    assert_eq!(v.history.exporters[0].2.points, vec![1.0, 2.0]);
    assert_eq!(v.history.targets.len(), 2);
    assert_eq!(v.history.targets[0].1.points, vec![42.0, 42.0]);
    assert_eq!(v.history.wal_fill_percent.points.len(), 2);
}

#[test]
fn series_memory_adds_the_holders_to_the_wal_table() {
    let dir = tempfile::tempdir().unwrap();
    let (t, wal) = populated(dir.path());
    let table = wal.stats().series_bytes;
    assert!(table > 0);
    let body = t.render();
    assert_eq!(value(&body, "magpie_series_active"), 0.0);
    #[allow(clippy::cast_precision_loss)]
    let table_f = table as f64;
    assert_eq!(value(&body, "magpie_series_bytes"), table_f);
    let mut target = magpie_scrape::Observer::series_share(&t);
    target.set(105, 40_000);
    let body = t.render();
    assert_eq!(value(&body, "magpie_series_active"), 105.0);
    assert_eq!(value(&body, "magpie_series_bytes"), table_f + 40_000.0);
    let v = t.view(0);
    assert_eq!((v.series.active, v.series.bytes), (105, table + 40_000));
    drop(target);
    assert_eq!(value(&t.render(), "magpie_series_active"), 0.0);
}
