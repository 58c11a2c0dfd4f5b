//! Peak memory while appending 10k series every second: prints VmHWM from /proc/self/status.
//!
//! `cargo run --release -p magpie-wal --example rss -- [SCRAPES]`

use std::time::{Duration, Instant};

use magpie_wal::synth::Dataset;
use magpie_wal::{Options, Wal};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let scrapes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1200);
    let ds = Dataset::node_exporter(25, 1);
    let refs = ds.label_refs();
    let before = vm_hwm_kib();
    let dir = std::env::temp_dir().join(format!("magpie-wal-rss-{}", std::process::id()));
    let mut wal = Wal::open(&dir, Options::default()).expect("open");
    let exporter = wal.consumer("central").expect("consumer");
    let mut walk = ds.walk(1_700_000_000_000);
    let mut now = Instant::now();
    for i in 0..scrapes {
        // 1 s scrape interval, simulated: the WAL takes time from its caller.
        let (_, _) = walk.step();
        wal.append(walk.samples(&refs)).expect("append");
        now += Duration::from_secs(1);
        wal.sync_if_due(now).expect("sync");
        // The exporter keeps up most of the time, with an outage in the middle.
        if !(scrapes / 3..scrapes / 2).contains(&i) {
            while let Some(b) = wal.read(exporter, 2000).expect("read") {
                wal.ack(exporter, b.end).expect("ack");
            }
        }
    }
    let st = wal.stats();
    wal.close().expect("close");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{} series x {scrapes} scrapes: VmHWM {} KiB (data set and labels before the WAL: {} KiB); \
         {} segments, {} bytes on disk",
        ds.series.len(),
        vm_hwm_kib(),
        before,
        st.segments,
        st.bytes_on_disk
    );
}
