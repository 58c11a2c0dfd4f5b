//! Remote write 2.0 to a receiver that does not take it: the exporter sends the refused batch
//! again in 1.0, and 1.0 from then on. Two real refusals: a proxy in front of Prometheus that
//! answers 415 to the 2.0 `Content-Type` (what a 2.0-aware receiver without 2.0 support
//! answers) and forwards 1.0, and Debian's Prometheus 2.42 itself, which predates 2.0, reads
//! a 2.0 body as an empty 1.0 request and answers 204 without the `-Written` headers.

mod common;

use common::{EXPOSITION, Magpie, plugin_dir};
use magpie_testkit::{
    Behavior, Fault, FaultProxy, Handled, Prometheus, TargetServer, sample_value,
};
use prost::Message as _;
use remote_write::proto;
use std::collections::BTreeMap;
use std::path::Path;

const V2: &str = "proto=io.prometheus.write.v2.Request";

/// A sample as a receiver reads it: sorted labels and its timestamp.
type Key = (Vec<(String, String)>, i64);

fn config(dir: &Path, pd: &Path, target: &str, write_url: &str) -> std::path::PathBuf {
    let cfg = dir.join("magpie.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nexternal_labels = {{ site = \"pi-07\" }}\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{target}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{write_url}\"\nmax_backoff = \"500ms\"\n[export.config]\nprotocol = \"2.0\"\n",
            pd.display(),
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

fn raw(h: &Handled) -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(&h.body)
        .expect("a snappy body")
}

fn v1_samples(h: &Handled) -> Vec<(Key, f64)> {
    let req = proto::v1::WriteRequest::decode(raw(h).as_slice()).expect("a 1.0 request");
    let mut out = Vec::new();
    for ts in req.timeseries {
        let mut labels: Vec<(String, String)> =
            ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
        labels.sort();
        for s in ts.samples {
            out.push(((labels.clone(), s.timestamp), s.value));
        }
    }
    out
}

fn v2_samples(h: &Handled) -> Vec<(Key, f64)> {
    let req = proto::v2::Request::decode(raw(h).as_slice()).expect("a 2.0 request");
    let sym = |i: &u32| req.symbols[*i as usize].clone();
    let mut out = Vec::new();
    for ts in &req.timeseries {
        let mut labels: Vec<(String, String)> = ts
            .labels_refs
            .chunks(2)
            .map(|p| (sym(&p[0]), sym(&p[1])))
            .collect();
        labels.sort();
        for s in &ts.samples {
            out.push(((labels.clone(), s.timestamp), s.value));
        }
    }
    out
}

/// Runs a scraping magpie exporting 2.0 through `proxy` (set to `fault`) to a Prometheus
/// 2.42, and checks the fallback: one 2.0 request, then 1.0 only; the refused batch's samples
/// arrive in 1.0, every sample once, none counted as rejected.
fn falls_back(fault: Fault, refusal: &str) {
    let prom = Prometheus::start();
    let proxy = FaultProxy::start(prom.addr());
    proxy.set(fault);
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: EXPOSITION.into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let m = Magpie::start(&config(
        dir.path(),
        &pd,
        &target.url("/metrics"),
        &proxy.url(),
    ));
    let body = m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        100.0,
    );
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_fallback_encoding{exporter=\"central\"}"
        ),
        Some(1.0),
        "{refusal}"
    );
    assert_eq!(
        sample_value(
            &body,
            "magpie_exporter_rejected_samples_total{exporter=\"central\"}"
        ),
        Some(0.0),
        "{refusal}: nothing may be dropped"
    );
    let log = m.log_text();
    assert!(m.terminate().success());

    let handled = proxy.handled();
    let (first, rest) = handled.split_first().expect("no request reached the proxy");
    assert!(first.content_type.contains(V2), "{refusal}: {first:?}");
    assert!(
        rest.iter().all(|h| !h.content_type.contains(V2)),
        "{refusal}: after the refusal every request must be 1.0: {:?}",
        rest.iter().map(|h| &h.content_type).collect::<Vec<_>>()
    );
    assert!(
        rest.iter()
            .all(|h| h.content_type == "application/x-protobuf"),
        "{refusal}"
    );

    // Every sample once across the 1.0 requests, the refused batch among them.
    let mut seen: BTreeMap<Key, f64> = BTreeMap::new();
    for h in rest {
        for (key, v) in v1_samples(h) {
            assert!(
                seen.insert(key.clone(), v).is_none(),
                "{refusal}: sample {key:?} sent twice"
            );
        }
    }
    let refused = v2_samples(first);
    assert!(!refused.is_empty());
    for (key, v) in &refused {
        assert_eq!(
            seen.get(key).map(|x| x.to_bits()),
            Some(v.to_bits()),
            "{refusal}: refused sample {key:?} never sent in 1.0"
        );
    }
    // And the receiver stored them.
    let stored: BTreeMap<Vec<(String, String)>, BTreeMap<i64, f64>> = prom
        .samples("{site=\"pi-07\"}", "1h")
        .into_iter()
        .map(|(l, p)| (l, p.into_iter().collect()))
        .collect();
    for ((labels, t), v) in &refused {
        if v.is_nan() {
            continue;
        }
        assert_eq!(
            stored.get(labels).and_then(|p| p.get(t)),
            Some(v),
            "{refusal}: {labels:?} @ {t} not stored"
        );
    }

    // One warning, naming the exporter and the URL.
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("does not take the plugin's encoding"))
        .collect();
    assert_eq!(warnings.len(), 1, "{refusal}:\n{log}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(warnings[0].contains("`central`"), "{}", warnings[0]);
    assert!(warnings[0].contains(&proxy.url()), "{}", warnings[0]);
    eprintln!(
        "{refusal}: {} requests, {} samples in 1.0, {} in the refused 2.0 request",
        handled.len(),
        seen.len(),
        refused.len()
    );
}

#[test]
fn a_415_to_remote_write_2_sends_the_batch_again_in_1_and_1_from_then_on() {
    falls_back(
        Fault::RefuseContentType {
            containing: V2.into(),
            status: 415,
        },
        "415",
    );
}

#[test]
fn prometheus_2_42_which_ignores_2_0_gets_1_0() {
    falls_back(Fault::Forward, "Prometheus 2.42");
}
