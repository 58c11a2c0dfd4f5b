//! Helpers shared by the plugin tests.
#![allow(dead_code, unreachable_pub)]

use magpie_host::{Grants, Host, InstanceSpec, Limits, PluginError, SampleSink};
use magpie_sdk::abi::{EmitStatus, Grants as AbiGrants, SampleBatch, ScrapeRequest, Value};
use magpie_testkit::guest;
use prom_scrape::OwnedSample;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// Samples as the host received them, in the parser's owned shape so they compare with a
/// native parse (values bit for bit).
pub type Seen = Arc<Mutex<Vec<OwnedSample>>>;

/// Collects samples; after `stop_after` samples it answers [`EmitStatus::Stop`], as the
/// collector does when a scrape's sample limit is hit.
pub struct Collect {
    seen: Seen,
    stop_after: Option<usize>,
}

impl SampleSink for Collect {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut seen = self.seen.lock().unwrap();
        for (s, labels) in batch.iter() {
            seen.push(OwnedSample {
                name: s.name.to_string(),
                labels: labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            });
        }
        match self.stop_after {
            Some(n) if seen.len() >= n => EmitStatus::Stop,
            _ => EmitStatus::Continue,
        }
    }
}

pub fn sink(stop_after: Option<usize>) -> (Box<dyn SampleSink>, Seen) {
    let seen = Seen::default();
    let sink = Collect {
        seen: Arc::clone(&seen),
        stop_after,
    };
    (Box::new(sink), seen)
}

pub fn request(target: &str, body_size_limit: u64, sample_limit: u32) -> ScrapeRequest<'_> {
    ScrapeRequest::V1 {
        target: target.into(),
        scrape_time_ms: 0,
        timeout_ms: 10_000,
        body_size_limit,
        sample_limit,
        grants: AbiGrants::default(),
    }
}

pub fn table(entries: Vec<(&str, Value)>) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

pub fn strings(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::Str((*s).into())).collect())
}

pub fn spec(name: &str, config: Value, grants: Grants) -> InstanceSpec {
    let mut spec = InstanceSpec::new(name);
    spec.config = config;
    spec.grants = Arc::new(grants);
    // Generous CPU time: tests run an unoptimised host, and share the machine with others.
    spec.limits = Limits {
        cpu: Duration::from_secs(10),
        wall: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    spec
}

/// One scrape with a fresh instance.
pub async fn scrape(
    host: &Host,
    plugin: &str,
    spec: &InstanceSpec,
    req: &ScrapeRequest<'_>,
    stop_after: Option<usize>,
) -> (Result<(), PluginError>, Vec<OwnedSample>) {
    let plugin = host.load(plugin, &guest(plugin)).await.unwrap();
    let mut instance = host.instantiate(&plugin, spec).await.unwrap();
    let (s, seen) = sink(stop_after);
    let (_, r) = instance.scrape(req, s).await;
    let seen = seen.lock().unwrap().clone();
    (r, seen)
}

pub fn failure(r: Result<(), PluginError>) -> String {
    match r {
        Err(PluginError::Failed { reason, .. }) => reason,
        other => panic!("expected the plugin to report a failure, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// node
