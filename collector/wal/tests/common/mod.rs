//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use magpie_wal::{Error, Options, SampleRef, Wal};

/// One sample as the tests compare it: series name, timestamp, value bits.
pub type Row = (String, i64, u64);

pub fn small_opts() -> Options {
    Options {
        max_bytes: 8 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        ..Options::default()
    }
}

/// SplitMix64.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Appends `scrapes` scrapes of `series` series with hard-to-compress values, so segments fill
/// quickly. Returns what was appended, in order.
pub fn fill(wal: &mut Wal, series: usize, scrapes: usize, seed: u64, t0: i64) -> Vec<Row> {
    let names: Vec<String> = (0..series).map(|i| format!("s{i:04}")).collect();
    let mut rng = Rng(seed);
    let mut rows = Vec::new();
    for k in 0..scrapes {
        let t = t0 + k as i64 * 15_000;
        let vals: Vec<f64> = (0..series)
            .map(|_| match rng.below(4) {
                0 => f64::from_bits(rng.next()),
                1 => f64::from_bits(0x7ff0_0000_0000_0002),
                2 => (rng.below(1000)) as f64,
                _ => rng.below(1 << 40) as f64 / 1000.0,
            })
            .collect();
        let labels: Vec<[(&str, &str); 2]> = names
            .iter()
            .map(|n| [("__name__", n.as_str()), ("job", "t")])
            .collect();
        wal.append(labels.iter().zip(&vals).map(|(l, &v)| SampleRef {
            labels: l,
            t_ms: t,
            value: v,
        }))
        .unwrap();
        for (n, v) in names.iter().zip(&vals) {
            rows.push((n.clone(), t, v.to_bits()));
        }
    }
    rows
}

/// Reads everything a fresh consumer sees.
pub fn read_all(dir: &Path, opts: Options, batch: usize) -> Result<Vec<Row>, Error> {
    let mut wal = Wal::open(dir, opts)?;
    let c = wal.consumer("check")?;
    let mut out = Vec::new();
    while let Some(b) = wal.read(c, batch)? {
        for s in &b.samples {
            let l = &b.series[s.series as usize];
            out.push((
                l.iter().next().unwrap().1.to_string(),
                s.t_ms,
                s.value.to_bits(),
            ));
        }
    }
    Ok(out)
}

/// Asserts that `got` is an in-order subsequence of `want` with identical values: nothing
/// invented, nothing decoded wrong, nothing reordered.
pub fn assert_subsequence(got: &[Row], want: &[Row]) {
    let index: HashMap<(&str, i64), (usize, u64)> = want
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.0.as_str(), r.1), (i, r.2)))
        .collect();
    let mut last = None;
    for g in got {
        let Some(&(i, bits)) = index.get(&(g.0.as_str(), g.1)) else {
            panic!("read a sample that was never written: {g:?}");
        };
        assert_eq!(bits, g.2, "value of {g:?} decoded wrong");
        if let Some(l) = last {
            assert!(i > l, "sample {g:?} out of order");
        }
        last = Some(i);
    }
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}
