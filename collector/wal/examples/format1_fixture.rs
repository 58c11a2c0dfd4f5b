//! Writes the WAL directory of `tests/data/format1/`: three segments written by three
//! processes (the last one never closed, as after a crash), and two consumers, `alpha` acknowledged
//! in the middle of a record and `beta` at the end of the first segment.
//!
//! The committed fixture was written by the format-1 release of this crate; it is kept so that
//! the upgrade test reads bytes an older collector really wrote.
//!
//! `cargo run -p magpie-wal --example format1_fixture -- DIR`

use magpie_wal::{Options, SampleRef, Wal};

/// Series in the fixture.
pub const SERIES: usize = 20;
/// Scrapes per process.
pub const SCRAPES: usize = 10;

/// Sample number `k` of series `k % SERIES` at scrape `k / SERIES`.
fn value(k: usize) -> f64 {
    match k % 7 {
        0 => f64::from_bits(0x7ff0_0000_0000_0002),
        1 => -0.0,
        2 => k as f64 / 1000.0,
        3 => f64::from_bits((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        _ => k as f64,
    }
}

fn append(wal: &mut Wal, from_scrape: usize) {
    let idx: Vec<String> = (0..SERIES).map(|i| format!("{i:02}")).collect();
    for s in from_scrape..from_scrape + SCRAPES {
        let labels: Vec<[(&str, &str); 3]> = idx
            .iter()
            .map(|i| {
                [
                    ("__name__", "fixture_metric"),
                    ("idx", i.as_str()),
                    ("job", "f1"),
                ]
            })
            .collect();
        wal.append(labels.iter().enumerate().map(|(i, l)| SampleRef {
            labels: l,
            t_ms: 1_700_000_000_000 + s as i64 * 15_000,
            value: value(s * SERIES + i),
        }))
        .expect("append");
    }
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: format1_fixture DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let opts = Options {
        max_bytes: 8 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    };
    let mut wal = Wal::open(&dir, opts.clone()).expect("open");
    append(&mut wal, 0);
    wal.close().expect("close");

    let mut wal = Wal::open(&dir, opts.clone()).expect("open");
    append(&mut wal, SCRAPES);
    let beta = wal.consumer("beta").expect("consumer");
    let b = wal
        .read(beta, SERIES * SCRAPES)
        .expect("read")
        .expect("batch");
    wal.ack(beta, b.end).expect("ack");
    let alpha = wal.consumer("alpha").expect("consumer");
    let a = wal
        .read(alpha, SERIES * SCRAPES + 50)
        .expect("read")
        .expect("batch");
    wal.ack(alpha, a.end).expect("ack");
    wal.close().expect("close");

    let mut wal = Wal::open(&dir, opts).expect("open");
    append(&mut wal, 2 * SCRAPES);
    wal.sync().expect("sync");
    // Dropped without close: the tail segment stays unsealed, as after a crash.
    drop(wal);
}
