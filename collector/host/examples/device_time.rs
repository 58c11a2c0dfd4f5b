//! Times one scrape call of the device plugins against real devices, the way `magpie` makes it
//! (one instance per target, the target URL and the config's files granted):
//!
//! ```text
//! device_time PLUGIN_DIR MODBUS_URL SNMP_URL SNMP_YML COMMUNITY_FILE
//! ```
//!
//! `modbus` reads holding registers 0..100 of `MODBUS_URL` (one uint16 each); `snmp` walks the
//! `if_mib` module of `SNMP_YML` over v2c. Prints, per plugin, the median and the range of 10
//! calls after a warm-up call, and the samples of one call. `MAGPIE_ENGINE_TARGET=pulley64`
//! runs the guests in the Pulley interpreter instead of compiling them for this machine
//! (`.wasm` only). `bench/devices.sh` starts the devices and runs both engines.

use magpie_host::{Grants, Host, InstanceSpec, Limits, Plugin, SampleSink};
use magpie_sdk::abi::{EmitStatus, Grants as AbiGrants, SampleBatch, ScrapeRequest, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CALLS: usize = 10;
const REGISTERS: i64 = 100;

/// Counts the samples of the last call into a shared cell.
struct Count(Arc<AtomicU64>);

impl SampleSink for Count {
    fn push(&mut self, batch: &SampleBatch<'_>) -> EmitStatus {
        self.0
            .fetch_add(batch.samples.len() as u64, Ordering::Relaxed);
        EmitStatus::Continue
    }
}

fn table(entries: Vec<(&str, Value)>) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

fn modbus_config() -> Value {
    let registers = (0..REGISTERS)
        .map(|a| {
            table(vec![
                ("name", Value::Str(format!("reg_{a}"))),
                ("address", Value::Int(a)),
                ("type", Value::Str("uint16".into())),
            ])
        })
        .collect();
    table(vec![
        ("unit_id", Value::Int(1)),
        ("registers", Value::List(registers)),
    ])
}

fn snmp_config(modules: &Path, community: &Path) -> Value {
    let path = |p: &Path| Value::Str(p.display().to_string());
    table(vec![
        ("modules_file", path(modules)),
        ("modules", Value::List(vec![Value::Str("if_mib".into())])),
        ("version", Value::Str("2c".into())),
        ("community_file", path(community)),
    ])
}

/// The median, fastest and slowest of `CALLS` scrape calls after a warm-up call, and the
/// samples of the last.
async fn time(
    host: &Host,
    plugin: &Plugin,
    target: &str,
    config: Value,
    files: &[PathBuf],
) -> Result<([Duration; 3], u64), Box<dyn std::error::Error>> {
    let mut spec = InstanceSpec::new("timing");
    spec.config = config;
    spec.grants = Arc::new(Grants::new(vec![target.into()], files)?);
    spec.limits = Limits {
        cpu: Duration::from_secs(60),
        wall: Duration::from_secs(120),
        ..Limits::DEFAULT
    };
    let mut instance = host.instantiate(plugin, &spec).await?;
    let req = ScrapeRequest::V1 {
        target: target.into(),
        scrape_time_ms: 0,
        timeout_ms: 60_000,
        body_size_limit: 0,
        sample_limit: 0,
        grants: AbiGrants::default(),
    };
    let count = Arc::new(AtomicU64::new(0));
    let mut sink: Box<dyn SampleSink> = Box::new(Count(Arc::clone(&count)));
    let mut times = Vec::with_capacity(CALLS);
    // The first call warms caches and opens the connection: not counted.
    for i in 0..=CALLS {
        count.store(0, Ordering::Relaxed);
        let start = Instant::now();
        let (back, r) = instance.scrape(&req, sink).await;
        let took = start.elapsed();
        r?;
        sink = back;
        if i > 0 {
            times.push(took);
        }
    }
    times.sort();
    // An even count: the median is the mean of the middle two.
    let median = (times[CALLS / 2 - 1] + times[CALLS / 2]) / 2;
    Ok((
        [median, times[0], times[CALLS - 1]],
        count.load(Ordering::Relaxed),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: device_time PLUGIN_DIR MODBUS_URL SNMP_URL SNMP_YML COMMUNITY_FILE";
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [dir, modbus, snmp, modules, community] = args.as_slice() else {
        return Err(usage.into());
    };
    let url = |p: &PathBuf| p.to_str().map(str::to_string).ok_or("URL is not UTF-8");
    let (modbus, snmp) = (url(modbus)?, url(snmp)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let target = std::env::var("MAGPIE_ENGINE_TARGET").ok();
    let host = Host::for_target(target.as_deref())?;
    let engine = target.as_deref().unwrap_or("native");
    rt.block_on(async {
        let runs = [
            ("modbus", modbus, modbus_config(), Vec::new()),
            (
                "snmp",
                snmp,
                snmp_config(modules, community),
                vec![modules.clone(), community.clone()],
            ),
        ];
        for (name, target, config, files) in runs {
            let plugin = host.load_from_dir(dir, name).await?;
            let ([median, min, max], samples) = time(&host, &plugin, &target, config, &files).await?;
            println!(
                "{name:<7} {engine:<9} median {:>9.2} ms  min {:>9.2} ms  max {:>9.2} ms  {samples} samples  {}",
                ms(median),
                ms(min),
                ms(max),
                plugin.path().display()
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
