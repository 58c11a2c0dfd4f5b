//! Bytes per sample on disk and scrapes a full ring holds, for node_exporter-like targets of
//! about 1k, 10k and 100k series, with the default options (4 MiB segments, 64 MiB ring).
//!
//! `cargo run --release -p magpie-wal --features synth --example density`
//!
//! Appends 15 s scrapes until the ring has dropped its first segment (it is full), closes the
//! WAL, and divides the bytes of its files (segments and series log) by the samples they hold.

use magpie_wal::synth::Dataset;
use magpie_wal::{Options, Wal};

fn main() {
    println!(
        "| series | scrapes appended | files (MiB) | samples held | bytes/sample | scrapes held |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for targets in [3, 22, 222] {
        let ds = Dataset::node_exporter(targets, 7);
        let refs = ds.label_refs();
        let dir = std::env::temp_dir().join(format!("magpie-wal-density-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut wal = Wal::open(&dir, Options::default()).expect("open");
        let mut walk = ds.walk(1_700_000_000_000);
        let mut scrapes = 0u64;
        while wal.stats().segments_dropped == 0 && scrapes < 1_000_000 {
            walk.step();
            wal.append(walk.samples(&refs)).expect("append");
            scrapes += 1;
        }
        wal.close().expect("close");
        let report = magpie_wal::inspect(&dir).expect("inspect");
        let samples: u64 = report.segments.iter().map(|s| s.samples).sum();
        let bytes: u64 = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
        let series = ds.series.len() as u64;
        println!(
            "| {series} | {scrapes} | {:.1} | {samples} | {:.2} | {} |",
            bytes as f64 / f64::from(1 << 20),
            bytes as f64 / samples as f64,
            samples / series,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
