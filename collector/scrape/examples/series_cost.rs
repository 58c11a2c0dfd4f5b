//! Memory per series in each structure that holds live series, as `magpie_series_bytes`
//! counts it: a target's scrape cache, the WAL's series table, and a push source's map of
//! recently seen series. Fills each with 10k and 100k series labelled like node_exporter's
//! (plus `instance` and `job`) and prints a markdown table.
//!
//! `cargo run -p magpie-scrape --example series_cost [N ...]` (sizes do not depend on the
//! build profile; a debug build saves compiling wasmtime again for release).

use magpie_metrics::memory::map_bytes;
use magpie_scrape::cost::cache_cost;
use magpie_wal::{Options, SampleRef, Wal};
use std::collections::HashMap;

type Series = Vec<(String, Vec<(String, String)>)>;

/// `n` series in node_exporter's shapes: per CPU and mode, per network device, per
/// filesystem, per disk, and hwmon sensors; 1 to 3 labels each besides the target's.
fn node_like(n: usize) -> Series {
    const MODES: [&str; 8] = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let l = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    };
    (0..n)
        .map(|i| {
            let host = i / 100;
            match i % 5 {
                0 => (
                    "node_cpu_seconds_total".into(),
                    l(&[
                        ("cpu", (i / 5 % 20).to_string()),
                        ("mode", MODES[i / 320 % 8].into()),
                        ("gw", host.to_string()),
                    ]),
                ),
                1 => (
                    "node_network_receive_bytes_total".into(),
                    l(&[
                        ("device", format!("eth{}", i / 5 % 20)),
                        ("gw", host.to_string()),
                    ]),
                ),
                2 => (
                    "node_filesystem_avail_bytes".into(),
                    l(&[
                        ("device", format!("/dev/mmcblk0p{}", i / 5 % 20)),
                        ("fstype", "ext4".into()),
                        ("mountpoint", format!("/data/{}", i / 5 % 20)),
                        ("gw", host.to_string()),
                    ]),
                ),
                3 => (
                    "node_disk_written_bytes_total".into(),
                    l(&[
                        ("device", format!("sd{}", i / 5 % 20)),
                        ("gw", host.to_string()),
                    ]),
                ),
                _ => (
                    "node_hwmon_temp_celsius".into(),
                    l(&[
                        ("chip", format!("platform_coretemp_{}", i / 5 % 4)),
                        ("sensor", format!("temp{}", i / 5 % 20)),
                        ("gw", host.to_string()),
                    ]),
                ),
            }
        })
        .collect()
}

/// Heap bytes of the WAL's series table holding `series`.
fn wal_table_bytes(series: &Series) -> (u64, u64) {
    let dir = std::env::temp_dir().join(format!("magpie-series-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut wal = Wal::open(
        &dir,
        Options {
            max_bytes: 1 << 30,
            ..Options::new()
        },
    )
    .expect("open WAL");
    let owned: Vec<Vec<(&str, &str)>> = series
        .iter()
        .map(|(name, labels)| {
            let mut set: Vec<(&str, &str)> = vec![
                ("__name__", name),
                ("instance", "10.0.0.7:9100"),
                ("job", "node"),
            ];
            set.extend(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            set.sort_unstable();
            set
        })
        .collect();
    for chunk in owned.chunks(1000) {
        wal.append(chunk.iter().map(|labels| SampleRef {
            labels,
            t_ms: 1_700_000_000_000,
            value: 1.0,
        }))
        .expect("append");
    }
    let st = wal.stats();
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
    (st.series, st.series_bytes)
}

/// Heap bytes of a push source's recent-series map holding `n` series.
fn recent_map_bytes(n: usize) -> usize {
    let m: HashMap<u64, i64> = (0..n as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), 0))
        .collect();
    map_bytes(&m)
}

#[allow(clippy::cast_precision_loss)]
fn main() {
    let counts: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![10_000, 100_000]
        } else {
            args
        }
    };
    println!(
        "| series | scrape cache | B/series | WAL series table | B/series | push recent map | B/series | total B/series |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in counts {
        let series = node_like(n);
        let cache = cache_cost("node", "10.0.0.7:9100", &series);
        assert_eq!(cache.series, n, "every series distinct");
        let (wal_series, wal) = wal_table_bytes(&series);
        assert_eq!(wal_series, n as u64);
        let recent = recent_map_bytes(n);
        let per = |b: f64| b / n as f64;
        println!(
            "| {n} | {} | {:.0} | {} | {:.0} | {} | {:.0} | {:.0} |",
            cache.bytes,
            per(cache.bytes as f64),
            wal,
            per(wal as f64),
            recent,
            per(recent as f64),
            per((cache.bytes as u64 + wal) as f64),
        );
    }
    println!(
        "\n(total: a scraped series, in its target's cache and the WAL table; a pushed series costs the WAL table and the recent map instead of the cache)"
    );
}
