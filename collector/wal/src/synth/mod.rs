//! A reproducible, node_exporter-like data set: what a Raspberry Pi-class host exposes
//! (CPU, memory, network, disk, file systems, Go runtime, a histogram, collector timings),
//! scraped every 15 s. Used by this crate's benchmarks and available to other crates' tests
//! behind the `synth` feature.
//!
//! The values behave like the real ones do on the wire: integer counters (bytes, packets)
//! that grow by varying steps or sit still, CPU seconds with two decimals, gauges that move in
//! 4 KiB steps, constants, histogram buckets that grow by small counts, and some full-precision
//! floats (collector durations) that compress badly — as in real data.
//!
//! ```
//! use magpie_wal::synth::Dataset;
//! let ds = Dataset::node_exporter(2, 42);
//! let labels = ds.label_refs();
//! let mut walk = ds.walk(1_700_000_000_000);
//! let (t_ms, values) = walk.step();
//! assert_eq!(values.len(), labels.len());
//! assert!(t_ms > 0);
//! ```

use crate::SampleRef;

mod node;
use node::add_host;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Const(f64),
    /// Grows by about `rate` per second with probability `p` per scrape; `decimals` as printed.
    Counter {
        rate: f64,
        p: f64,
        decimals: i32,
    },
    /// Moves around `mean` by up to `spread`, in steps of `step`, with probability `p`.
    Gauge {
        mean: f64,
        spread: f64,
        step: f64,
        p: f64,
    },
    /// A fresh value every scrape, with nanosecond resolution like Go's durations.
    Noise {
        lo: f64,
        hi: f64,
    },
}

/// The series of a data set and how their values evolve.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Label sets, sorted by name, `__name__` first.
    pub series: Vec<Vec<(String, String)>>,
    kinds: Vec<Kind>,
    seed: u64,
}

/// SplitMix64: tiny, fast, and good enough for synthetic data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (v * m).round() / m
}

struct Builder {
    series: Vec<Vec<(String, String)>>,
    kinds: Vec<Kind>,
    instance: String,
}

impl Builder {
    fn add(&mut self, name: &str, labels: &[(&str, &str)], kind: Kind) {
        let mut set: Vec<(String, String)> = vec![("__name__".into(), name.into())];
        set.push(("instance".into(), self.instance.clone()));
        set.push(("job".into(), "node".into()));
        set.extend(
            labels
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        set.sort();
        self.series.push(set);
        self.kinds.push(kind);
    }
}

fn counter(rate: f64, p: f64, decimals: i32) -> Kind {
    Kind::Counter { rate, p, decimals }
}

impl Dataset {
    /// `targets` hosts of about 450 series each, values seeded by `seed`.
    #[must_use]
    pub fn node_exporter(targets: usize, seed: u64) -> Self {
        let mut b = Builder {
            series: Vec::new(),
            kinds: Vec::new(),
            instance: String::new(),
        };
        for t in 0..targets {
            b.instance = format!("pi-{t:03}:9100");
            add_host(&mut b);
        }
        Dataset {
            series: b.series,
            kinds: b.kinds,
            seed,
        }
    }

    /// The label sets in the shape [`SampleRef`] wants.
    #[must_use]
    pub fn label_refs(&self) -> Vec<Vec<(&str, &str)>> {
        self.series
            .iter()
            .map(|s| s.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
            .collect()
    }

    /// Starts a walk of scrapes at `start_ms`.
    #[must_use]
    pub fn walk(&self, start_ms: i64) -> Walk {
        let mut rng = Rng(self.seed);
        let values = self
            .kinds
            .iter()
            .map(|k| match *k {
                Kind::Const(v) => v,
                Kind::Counter { rate, decimals, .. } => {
                    round_to(rate * 86_400.0 * (1.0 + rng.unit()), decimals)
                }
                Kind::Gauge { mean, .. } => mean,
                Kind::Noise { lo, .. } => lo,
            })
            .collect();
        Walk {
            kinds: self.kinds.clone(),
            values,
            t_ms: start_ms,
            rng,
            interval_ms: 15_000,
        }
    }
}

/// Successive scrapes of a [`Dataset`].
#[derive(Debug, Clone)]
pub struct Walk {
    kinds: Vec<Kind>,
    values: Vec<f64>,
    t_ms: i64,
    rng: Rng,
    interval_ms: i64,
}

impl Walk {
    /// Advances one scrape interval and returns its timestamp and values (one per series).
    pub fn step(&mut self) -> (i64, &[f64]) {
        self.t_ms += self.interval_ms;
        let secs = self.interval_ms as f64 / 1000.0;
        for (v, k) in self.values.iter_mut().zip(&self.kinds) {
            let r = &mut self.rng;
            match *k {
                Kind::Const(_) => {}
                Kind::Counter { rate, p, decimals } => {
                    if r.unit() < p {
                        let inc = rate * secs * (0.2 + 1.6 * r.unit());
                        *v = round_to(*v + inc, decimals);
                    }
                }
                Kind::Gauge {
                    mean,
                    spread,
                    step,
                    p,
                } => {
                    if r.unit() < p {
                        *v = mean + ((r.unit() - 0.5) * spread / step).round() * step;
                    }
                }
                Kind::Noise { lo, hi } => *v = round_to(lo + (hi - lo) * r.unit(), 9),
            }
        }
        (self.t_ms, &self.values)
    }

    /// Samples of the current scrape, for [`crate::Wal::append`].
    pub fn samples<'a>(
        &'a self,
        labels: &'a [Vec<(&'a str, &'a str)>],
    ) -> impl Iterator<Item = SampleRef<'a>> + 'a {
        labels
            .iter()
            .zip(&self.values)
            .map(move |(l, &value)| SampleRef {
                labels: l,
                t_ms: self.t_ms,
                value,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_labels_and_realistic_size() {
        let ds = Dataset::node_exporter(2, 1);
        assert!(ds.series.len() > 800, "{}", ds.series.len());
        let mut seen = std::collections::HashSet::new();
        for s in &ds.series {
            assert!(s.windows(2).all(|w| w[0].0 < w[1].0), "{s:?}");
            assert!(seen.insert(s.clone()), "duplicate {s:?}");
        }
    }
}
