//! `newest_first`: after an outage, new samples overtake the backlog, and nothing is lost.

mod common;

use common::{EXPOSITION, Magpie, Stored, plugin_dir, read_wal};
use magpie_testkit::{Behavior, TargetServer};
use std::time::{Duration, Instant};

/// The samples of every request the receiver accepted, in arrival order: `(labels, t, value)`.
fn accepted(recv: &magpie_testkit::ScriptedReceiver) -> Vec<Vec<Stored>> {
    use prost::Message as _;
    recv.received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&r.body)
                .expect("snappy");
            let req =
                remote_write::proto::v1::WriteRequest::decode(raw.as_slice()).expect("protobuf");
            let mut out = Vec::new();
            for ts in req.timeseries {
                let labels: Vec<(String, String)> =
                    ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                for s in ts.samples {
                    out.push((labels.clone(), s.timestamp, s.value));
                }
            }
            out
        })
        .collect()
}

#[test]
fn newest_first_sends_new_samples_before_the_backlog_and_loses_nothing() {
    use magpie_testkit::Answer;
    let outage = vec![
        Answer {
            status: 503,
            retry_after: None,
        };
        25
    ];
    let recv = magpie_testkit::ScriptedReceiver::start(outage);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let cfg = dir.path().join("newest.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"200ms\"\nmax_samples_per_send = 12\nmax_samples_per_second = 120\nnewest_first = true\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
            recv.url(),
        ),
    )
    .unwrap();
    let m = Magpie::start(&cfg);
    m.wait_for("magpie_exporter_retries_total{exporter=\"central\"}", 25.0);
    // The receiver now accepts everything; wait for the backlog to drain.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !m
        .log_text()
        .contains("the backlog is delivered; back to oldest-first order")
    {
        assert!(
            Instant::now() < deadline,
            "the backlog never drained:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        m.log_text()
            .contains("sending new samples first, then a backlog of")
    );
    assert!(m.terminate().success());
    let requests = accepted(&recv);
    let span = |r: &[Stored]| {
        (
            r.iter().map(|s| s.1).min().unwrap(),
            r.iter().map(|s| s.1).max().unwrap(),
        )
    };
    let spans: Vec<(i64, i64)> = requests.iter().map(|r| span(r)).collect();
    // Some request carried samples newer than a request that came after it.
    let overtaken = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans[i + 1..].iter().any(|b| b.1 < a.0));
    assert!(overtaken, "delivery stayed oldest first: {spans:?}");
    // Nothing the WAL holds is missing, up to the newest delivered sample: once the backlog
    // is delivered the order is oldest first again, so only samples scraped after the last
    // delivery (in the moments before the stop) may still wait in the WAL.
    let got: std::collections::HashSet<(Vec<(String, String)>, i64)> = requests
        .into_iter()
        .flatten()
        .map(|(l, t, _)| (l, t))
        .collect();
    let newest = got.iter().map(|(_, t)| *t).max().unwrap();
    let wal = read_wal(&dir.path().join("data/wal"));
    let mut checked = 0;
    for (labels, t, _) in wal.iter().filter(|(_, t, _)| *t <= newest) {
        let mut l = labels.clone();
        l.sort();
        assert!(got.contains(&(l.clone(), *t)), "{l:?} @ {t} never arrived");
        checked += 1;
    }
    assert!(checked > 100, "only {checked} samples checked");
}
