//! Times plugin calls with nothing but the host around them, for comparing machines and
//! engines where criterion is too heavy to build or run (ARM under qemu-user):
//!
//! ```text
//! call_time PLUGIN_DIR [SECONDS]
//! ```
//!
//! `PLUGIN_DIR` holds `hello` and `prom-scrape` as `.cwasm` or `.wasm` (found as `magpie`
//! finds them). Prints the mean time of a `hello` scrape (the cost of crossing the boundary)
//! and of a `prom-scrape` parse of a 1000-sample body served from memory (guest code).
//! `MAGPIE_ENGINE_TARGET=pulley64` runs the guests in the Pulley interpreter instead of
//! compiling them for this machine (`.wasm` only). `MAGPIE_CALLS=N` makes exactly N timed calls
//! after the warm-up instead of filling `SECONDS`, so that an instruction count (callgrind) of two
//! runs with different N gives the cost of one call, whatever the machine's load.

use magpie_host::{Grants, Host, InstanceSpec, Limits, MemFetch, Plugin, SampleSink};
use magpie_sdk::abi::{EmitStatus, Grants as AbiGrants, SampleBatch, ScrapeRequest};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET: &str = "http://timing.invalid/metrics";
const SERIES: u32 = 1000;

struct Count(u64);

impl SampleSink for Count {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        self.0 += batch.samples.len() as u64;
        EmitStatus::Continue
    }
}

fn body() -> Vec<u8> {
    let mut out = String::from("# TYPE node_cpu_seconds_total counter\n");
    for i in 0..SERIES {
        let _ = writeln!(
            out,
            "node_cpu_seconds_total{{cpu=\"{}\",mode=\"m{}\"}} {}.{:02}",
            i / 8,
            i % 8,
            100_000 + i,
            i % 100
        );
    }
    out.into_bytes()
}

/// Mean time of one scrape call, over at least `budget` of calls after a warm-up call.
async fn time(
    host: &Host,
    plugin: &Plugin,
    budget: Duration,
    calls_wanted: Option<u32>,
) -> (Duration, u32) {
    let mut spec = InstanceSpec::new("timing");
    spec.grants = Arc::new(Grants::new(vec![TARGET.into()], &[]).expect("grants"));
    spec.limits = Limits {
        cpu: Duration::from_secs(120),
        wall: Duration::from_secs(240),
        ..Limits::DEFAULT
    };
    let mut instance = host.instantiate(plugin, &spec).await.expect("instantiate");
    let req = ScrapeRequest::V1 {
        target: TARGET.into(),
        scrape_time_ms: 0,
        timeout_ms: 240_000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: AbiGrants::default(),
    };
    let mut sink: Box<dyn SampleSink> = Box::new(Count(0));
    let mut calls = 0u32;
    let mut start = Instant::now();
    loop {
        let (back, r) = instance.scrape(&req, sink).await;
        r.expect("scrape");
        sink = back;
        calls += 1;
        if calls == 1 {
            // The first call warms caches (and, under qemu, translates the code): not counted.
            start = Instant::now();
            continue;
        }
        let done = match calls_wanted {
            Some(n) => calls > n,
            None => start.elapsed() >= budget,
        };
        if done {
            break;
        }
    }
    let measured = calls - 1;
    (start.elapsed() / measured, measured)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: call_time PLUGIN_DIR [SECONDS]")?);
    let secs: f64 = match args.next() {
        Some(s) => s.to_str().ok_or("SECONDS is not a number")?.parse()?,
        None => 3.0,
    };
    let budget = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let target = std::env::var("MAGPIE_ENGINE_TARGET").ok();
    let calls_wanted = match std::env::var("MAGPIE_CALLS") {
        Ok(n) => Some(
            n.parse::<u32>()
                .map_err(|e| format!("MAGPIE_CALLS={n}: {e}"))?,
        ),
        Err(_) => None,
    };
    let host = Host::for_target(target.as_deref())?
        .with_fetcher(Arc::new(MemFetch::new(body(), "text/plain; version=0.0.4")));
    rt.block_on(async {
        for (name, what) in [
            ("hello", "hello scrape (1 sample)"),
            ("prom-scrape", "prom-scrape parse (1000 samples)"),
        ] {
            let plugin = host.load_from_dir(&dir, name).await?;
            let (mean, calls) = time(&host, &plugin, budget, calls_wanted).await;
            println!(
                "{what:<34} {:>10.1} us/call ({calls} calls, {})",
                mean.as_secs_f64() * 1e6,
                plugin.path().display()
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
