//! The plugin contract, tested with real guests built from `plugins/` for wasm32: well-behaved
//! guests run, hostile ones are contained and named, and the collector runs on.

use magpie_host::{
    BoxFuture, ByteStream, Fetch, FetchError, FetchRequest, FetchResponse, Grants, Host,
    InstanceSpec, Limits, LoadError, PluginError, Runner, SampleSink,
};
use magpie_sdk::abi::{
    EmitStatus, Grants as AbiGrants, HostError, Role, SampleBatch, ScrapeRequest, Value,
};
use magpie_testkit::guest;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

struct Collect(Seen);

impl SampleSink for Collect {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        let mut seen = self.0.lock().unwrap();
        for (s, labels) in batch.iter() {
            let l = labels
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            seen.push((s.name.to_string(), l, s.value));
        }
        EmitStatus::Continue
    }
}

fn sink() -> (Box<dyn SampleSink>, Seen) {
    let seen = Seen::default();
    (Box::new(Collect(Arc::clone(&seen))), seen)
}

fn request() -> ScrapeRequest<'static> {
    ScrapeRequest::V1 {
        target: "".into(),
        scrape_time_ms: 0,
        timeout_ms: 10_000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: AbiGrants::default(),
    }
}

fn spec(behavior: &str, arg: &str) -> InstanceSpec {
    let mut spec = InstanceSpec::new("test");
    spec.config = Value::Table(vec![
        ("behavior".into(), Value::Str(behavior.into())),
        ("arg".into(), Value::Str(arg.into())),
    ]);
    spec.limits = Limits {
        memory_bytes: 8 << 20,
        cpu: Duration::from_millis(500),
        wall: Duration::from_secs(20),
    };
    spec
}

async fn scrape_once(host: &Host, spec: InstanceSpec) -> (Result<(), PluginError>, Seen) {
    let plugin = host.load("hostile", &guest("hostile")).await.unwrap();
    let mut runner = Runner::new(host.clone(), plugin, spec);
    let (s, seen) = sink();
    let (_, r) = runner.scrape(&request(), s).await;
    (r, seen)
}

#[tokio::test]
async fn hello_loads_and_scrapes() {
    let host = Host::new().unwrap();
    let plugin = host.load("hello", &guest("hello")).await.unwrap();
    assert_eq!(plugin.info().role, Role::Scraper);
    assert_eq!(plugin.info().abi_version, magpie_sdk::abi::ABI_VERSION);
    assert!(
        plugin.info().size < 50 * 1024,
        "hello is {} bytes",
        plugin.info().size
    );
    let mut runner = Runner::new(host, plugin, InstanceSpec::new("hi"));
    let (s, seen) = sink();
    let (_, r) = runner.scrape(&request(), s).await;
    r.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        *seen,
        vec![(
            "hello_world".to_string(),
            vec![("greeting".into(), "hello".into())],
            1.0
        )]
    );
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_its_cpu_budget_while_others_run() {
    let host = Host::new().unwrap();
    let hostile = host.load("hostile", &guest("hostile")).await.unwrap();
    let hello = host.load("hello", &guest("hello")).await.unwrap();
    let mut looping = Runner::new(host.clone(), hostile, spec("loop", ""));
    let mut polite = Runner::new(host, hello, InstanceSpec::new("polite"));
    let order = Mutex::new(Vec::new());
    let looped = async {
        let (_, r) = looping.scrape(&request(), sink().0).await;
        order.lock().unwrap().push("loop");
        r
    };
    let others = async {
        for _ in 0..5 {
            let (_, r) = polite.scrape(&request(), sink().0).await;
            r.unwrap();
        }
        order.lock().unwrap().push("hello");
    };
    let (r, ()) = tokio::join!(looped, others);
    match r {
        Err(PluginError::Timeout { plugin, what, .. }) => {
            assert_eq!(plugin, "hostile:test");
            assert_eq!(what, "CPU time");
        }
        other => panic!("expected a CPU timeout, got {other:?}"),
    }
    // The looping guest yielded at every epoch tick: the polite plugin finished first.
    assert_eq!(*order.lock().unwrap(), ["hello", "loop"]);
}

#[tokio::test]
async fn memory_bomb_hits_its_cap() {
    let host = Host::new().unwrap();
    let (r, _) = scrape_once(&host, spec("bomb", "")).await;
    assert_eq!(
        r,
        Err(PluginError::MemoryLimit {
            plugin: "hostile:test".into(),
            limit: 8 << 20
        })
    );
}

#[tokio::test]
async fn trap_is_reported_with_the_panic_message() {
    let host = Host::new().unwrap();
    let (r, _) = scrape_once(&host, spec("trap", "")).await;
    match r {
        Err(PluginError::Trap { plugin, reason }) => {
            assert_eq!(plugin, "hostile:test");
            assert!(reason.contains("panic: boom"), "{reason}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_abi_version_is_refused_at_load() {
    let host = Host::new().unwrap();
    let err = host
        .load("future-plugin", &guest("bad-abi"))
        .await
        .unwrap_err();
    match &err {
        LoadError::Refused { plugin, reason, .. } => {
            assert_eq!(plugin, "future-plugin");
            assert!(reason.contains("ABI version 999"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(err.to_string().contains("future-plugin"));
}

/// Answers every fetch with an empty 200 and counts the calls.
#[derive(Default)]
struct CountingFetch(AtomicUsize);

struct Empty;

impl ByteStream for Empty {
    fn read<'a>(&'a mut self, _buf: &'a mut [u8]) -> BoxFuture<'a, Result<usize, HostError>> {
        Box::pin(std::future::ready(Ok(0)))
    }
}

impl Fetch for CountingFetch {
    fn fetch(&self, _req: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(FetchResponse {
            status: 200,
            content_type: String::new(),
            body: Box::new(Empty),
        })))
    }
}

#[tokio::test]
async fn forbidden_url_is_denied_and_never_fetched() {
    let fetch = Arc::new(CountingFetch::default());
    let host = Host::new().unwrap().with_fetcher(fetch.clone());
    let granted = "http://127.0.0.1:9100/metrics";
    let mut s = spec("fetch", "http://169.254.169.254/latest/meta-data/");
    s.grants = Arc::new(Grants::new(vec![granted.into()], &[]).unwrap());
    let (r, _) = scrape_once(&host, s.clone()).await;
    match r {
        Err(PluginError::Failed { plugin, reason }) => {
            assert_eq!(plugin, "hostile:test");
            assert!(reason.contains("denied"), "{reason}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(fetch.0.load(Ordering::SeqCst), 0);
    // The granted URL goes through, so the denial above was the grant check at work.
    s.config = Value::Table(vec![
        ("behavior".into(), Value::Str("fetch".into())),
        ("arg".into(), Value::Str(granted.into())),
    ]);
    let (r, seen) = scrape_once(&host, s).await;
    r.unwrap();
    assert_eq!(fetch.0.load(Ordering::SeqCst), 1);
    assert_eq!(seen.lock().unwrap()[0].2, 200.0);
}

#[tokio::test]
async fn forbidden_file_is_denied() {
    let host = Host::new().unwrap();
    let mut s = spec("read", "/etc/passwd");
    s.grants = Arc::new(Grants::new(vec![], &[PathBuf::from("/proc")]).unwrap());
    let (r, _) = scrape_once(&host, s.clone()).await;
    match r {
        Err(PluginError::Failed { reason, .. }) => assert!(reason.contains("denied"), "{reason}"),
        other => panic!("expected a denial, got {other:?}"),
    }
    for secret in ["/proc/self/environ", "/proc/self/root/etc/passwd"] {
        s.config = Value::Table(vec![
            ("behavior".into(), Value::Str("read".into())),
            ("arg".into(), Value::Str(secret.into())),
        ]);
        let (r, _) = scrape_once(&host, s.clone()).await;
        assert!(
            matches!(&r, Err(PluginError::Failed { reason, .. }) if reason.contains("denied")),
            "{secret}: {r:?}"
        );
    }
    // A granted file is readable through the same path.
    s.config = Value::Table(vec![
        ("behavior".into(), Value::Str("read".into())),
        ("arg".into(), Value::Str("/proc/loadavg".into())),
    ]);
    let (r, seen) = scrape_once(&host, s).await;
    r.unwrap();
    assert!(seen.lock().unwrap()[0].2 > 0.0);
}

#[tokio::test]
async fn faulted_instance_backs_off_recovers_and_is_quarantined_when_it_keeps_faulting() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("trap-now");
    std::fs::write(&flag, "").unwrap();
    let host = Host::new().unwrap();
    let plugin = host.load("hostile", &guest("hostile")).await.unwrap();
    let mut s = spec("trap-if", flag.to_str().unwrap());
    s.grants = Arc::new(Grants::new(vec![], &[dir.path().to_path_buf()]).unwrap());
    let mut runner = Runner::new(host, plugin, s);
    let stats = runner.stats();
    tokio::time::pause();

    let (_, r) = runner.scrape(&request(), sink().0).await;
    assert!(matches!(r, Err(PluginError::Trap { .. })), "{r:?}");
    let (_, r) = runner.scrape(&request(), sink().0).await;
    assert!(matches!(r, Err(PluginError::Backoff { .. })), "{r:?}");

    // Once the cause is gone, the next attempt after the backoff gets a fresh, working instance.
    std::fs::remove_file(&flag).unwrap();
    tokio::time::advance(magpie_host::BACKOFF_BASE).await;
    let (s, seen) = sink();
    let (_, r) = runner.scrape(&request(), s).await;
    r.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(runner.consecutive_faults(), 0);
    assert_eq!(stats.restarts.load(Ordering::Relaxed), 1);

    // Faulting on every attempt leads to quarantine.
    std::fs::write(&flag, "").unwrap();
    for _ in 0..magpie_host::QUARANTINE_AFTER {
        let (_, r) = runner.scrape(&request(), sink().0).await;
        assert!(matches!(r, Err(PluginError::Trap { .. })), "{r:?}");
        tokio::time::advance(magpie_host::BACKOFF_MAX).await;
    }
    let (_, r) = runner.scrape(&request(), sink().0).await;
    assert!(
        matches!(r, Err(PluginError::Quarantined { faults: 5, .. })),
        "{r:?}"
    );
    assert!(stats.quarantined.load(Ordering::Relaxed));
    assert_eq!(stats.traps.load(Ordering::Relaxed), 6);
}

#[tokio::test]
async fn a_config_the_plugin_rejects_is_a_failure_not_a_fault() {
    let host = Host::new().unwrap();
    let plugin = host.load("hostile", &guest("hostile")).await.unwrap();
    let err = host
        .instantiate(&plugin, &spec("init-fail", ""))
        .await
        .unwrap_err();
    assert!(!err.is_fault());
    assert!(err.to_string().contains("config key `behavior`"), "{err}");
}
