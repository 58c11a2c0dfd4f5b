//! The `emit_exemplars` import: a module built for ABI version 1 may use it (the import is
//! additive), the report reaches the sink whole, and a report over the per-scrape cap or
//! one that does not decode is an ABI error naming the import.

use std::sync::{Arc, Mutex};

use magpie_host::{Host, InstanceSpec, PluginError, Runner, SampleSink};
use magpie_sdk::abi::{
    self, EmitStatus, ExemplarReport, Grants, Label, MAX_EXEMPLARS_PER_SCRAPE, SampleBatch,
    ScrapeRequest, ScrapedExemplar,
};

/// Exemplars the sink received: (series name, trace id, value, timestamp), and `dropped`.
type Seen = Arc<Mutex<(Vec<(String, String, f64, Option<i64>)>, u32)>>;

struct Keep(Seen);

impl SampleSink for Keep {
    fn push(&mut self, _: &SampleBatch<'_>) -> EmitStatus {
        EmitStatus::Continue
    }

    fn exemplars(&mut self, report: &ExemplarReport<'_>) {
        let ExemplarReport::V1 { exemplars, dropped } = report;
        let mut s = self.0.lock().unwrap();
        s.1 += dropped;
        for e in exemplars {
            s.0.push((
                e.series_name.to_string(),
                e.labels[0].value.to_string(),
                e.value,
                e.timestamp_ms,
            ));
        }
    }
}

fn report(n: usize) -> Vec<u8> {
    let exemplars = (0..n)
        .map(|i| ScrapedExemplar {
            series_name: "req_total".into(),
            series_labels: vec![Label::new("code", "200")],
            labels: vec![Label {
                name: "trace_id".into(),
                value: format!("t{i}").into(),
            }],
            value: 0.5,
            timestamp_ms: (i == 0).then_some(1_700_000_000_123),
        })
        .collect();
    abi::encode(&ExemplarReport::V1 {
        exemplars,
        dropped: 7,
    })
    .unwrap()
}

/// A version-1 scraper whose scrape hands `bytes` to `emit_exemplars` and returns 0.
fn guest(bytes: &[u8]) -> String {
    let data: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    let pages = bytes.len() / 65536 + 2;
    format!(
        r#"(module (import "magpie" "emit_exemplars" (func $ex (param i32 i32) (result i32)))
           (memory (export "memory") {pages})
           (func (export "magpie_abi_version") (result i32) i32.const 1)
           (func (export "magpie_init") (result i32) i32.const 0)
           (data (i32.const 16) "{data}")
           (func (export "magpie_scrape") (result i32)
             (drop (call $ex (i32.const 16) (i32.const {len}))) i32.const 0))"#,
        len = bytes.len()
    )
}

async fn scrape(bytes: &[u8]) -> (Seen, Result<(), PluginError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.wasm");
    std::fs::write(&path, wat::parse_str(guest(bytes)).unwrap()).unwrap();
    let host = Host::new().unwrap();
    let plugin = host.load("ex", &path).await.unwrap();
    let mut runner = Runner::new(host, plugin, InstanceSpec::new("t"));
    let seen = Seen::default();
    let req = ScrapeRequest::V1 {
        target: "".into(),
        scrape_time_ms: 0,
        timeout_ms: 5000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: Grants::default(),
    };
    let (_, r) = runner.scrape(&req, Box::new(Keep(Arc::clone(&seen)))).await;
    (seen, r)
}

#[tokio::test]
async fn a_version_1_module_reports_exemplars_to_the_sink() {
    let (seen, r) = scrape(&report(3)).await;
    r.unwrap();
    let s = seen.lock().unwrap();
    assert_eq!(s.1, 7);
    assert_eq!(
        s.0,
        [
            (
                "req_total".into(),
                "t0".into(),
                0.5,
                Some(1_700_000_000_123)
            ),
            ("req_total".into(), "t1".into(), 0.5, None),
            ("req_total".into(), "t2".into(), 0.5, None),
        ]
    );
}

#[tokio::test]
async fn a_report_over_the_cap_is_an_abi_error_and_reaches_no_sink() {
    let (seen, r) = scrape(&report(MAX_EXEMPLARS_PER_SCRAPE + 1)).await;
    assert!(
        matches!(&r, Err(PluginError::Abi { reason, .. })
            if reason.contains("emit_exemplars") && reason.contains("1001")),
        "{r:?}"
    );
    assert!(seen.lock().unwrap().0.is_empty());
    let (seen, r) = scrape(&report(MAX_EXEMPLARS_PER_SCRAPE)).await;
    r.unwrap();
    assert_eq!(seen.lock().unwrap().0.len(), MAX_EXEMPLARS_PER_SCRAPE);
}

#[tokio::test]
async fn an_undecodable_report_is_an_abi_error() {
    let (_, r) = scrape(&[0xff; 8]).await;
    assert!(
        matches!(&r, Err(PluginError::Abi { reason, .. })
            if reason.contains("emit_exemplars: undecodable")),
        "{r:?}"
    );
}
