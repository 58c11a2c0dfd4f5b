//! Random operations on a ring too small for the data: segments are dropped while consumers
//! are in the middle of them, rewinding or restarting. Checked after every step: nothing is
//! invented or garbled, each consumer sees samples in order and never before its last
//! acknowledgement, the budget holds, and the first consumer's (it never acknowledges)
//! dropped + backlog counts equal what was appended, exactly, whenever it holds no batch.

mod common;

use common::Rng;
use magpie_wal::{Options, SampleRef, Wal};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Read { c: usize, max: usize },
    Ack { c: usize },
    Rewind { c: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1usize..6000).prop_map(Op::Append),
        4 => (0usize..2, 1usize..8000).prop_map(|(c, max)| Op::Read { c, max }),
        // Only the second consumer acknowledges; the first stays idle for exact accounting.
        2 => Just(Op::Ack { c: 1 }),
        1 => (0usize..2).prop_map(|c| Op::Rewind { c }),
        1 => Just(Op::Reopen),
    ]
}

/// `PROPTEST_CASES` cases (default 24), failures kept in `proptest-regressions/`.
fn model_config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(24),
        max_shrink_iters: 100,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/ring_model.txt",
            ),
        )),
        ..ProptestConfig::default()
    }
}

fn value(t: i64) -> u64 {
    Rng(t as u64).next()
}

proptest! {
    #![proptest_config(model_config())]

    #[test]
    fn small_ring_stays_consistent(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            max_bytes: 768 << 10,
            segment_bytes: 256 << 10,
            page_bytes: 4096,
            ..Options::default()
        };
        let names: Vec<String> = (0..30).map(|i| format!("q{i}")).collect();
        let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
        let mut wal = Wal::open(dir.path(), opts.clone()).unwrap();
        let mut ids = [wal.consumer("idle").unwrap(), wal.consumer("busy").unwrap()];
        let mut t = 0i64;
        // Appended since the last open: "dropped" counts start at zero with each open.
        let mut appended_since_open = 0u64;
        let mut reopened = false;
        // Per consumer: last t read (in the current read stream), last batch end, acked t.
        let mut last_read: [Option<i64>; 2] = [None, None];
        let mut last_batch = [None, None];
        let mut acked_t: [Option<i64>; 2] = [None, None];
        for op in &ops {
            match *op {
                Op::Append(n) => {
                    let batch: Vec<(usize, i64)> = (0..n as i64).map(|i| (((t + i) % 30) as usize, t + i)).collect();
                    wal.append(batch.iter().map(|&(s, tt)| SampleRef {
                        labels: &labels[s],
                        t_ms: tt,
                        value: f64::from_bits(value(tt)),
                    }))
                    .unwrap();
                    t += n as i64;
                    appended_since_open += n as u64;
                }
                Op::Read { c, max } => {
                    let got = wal.read(ids[c], max).unwrap();
                    if let Some(b) = got {
                        prop_assert!(b.samples.len() <= max);
                        for s in &b.samples {
                            let name = &b.series[s.series as usize].iter().next().unwrap().1;
                            prop_assert_eq!(*name, names[(s.t_ms % 30) as usize].as_str());
                            prop_assert_eq!(s.value.to_bits(), value(s.t_ms));
                            if let Some(prev) = last_read[c] {
                                prop_assert!(s.t_ms > prev, "out of order: {} after {}", s.t_ms, prev);
                            }
                            if let Some(a) = acked_t[c] {
                                prop_assert!(s.t_ms > a, "redelivered an acknowledged sample");
                            }
                            last_read[c] = Some(s.t_ms);
                        }
                        last_batch[c] = Some((b.end, last_read[c]));
                    }
                }
                Op::Ack { c } => {
                    if let Some((pos, lt)) = last_batch[c] {
                        wal.ack(ids[c], pos).unwrap();
                        acked_t[c] = acked_t[c].max(lt);
                    }
                }
                Op::Rewind { c } => {
                    wal.rewind(ids[c]).unwrap();
                    last_read[c] = None;
                    last_batch[c] = None;
                }
                Op::Reopen => {
                    wal.close().unwrap();
                    wal = Wal::open(dir.path(), opts.clone()).unwrap();
                    ids = [wal.consumer("idle").unwrap(), wal.consumer("busy").unwrap()];
                    last_read = [None, None];
                    last_batch = [None, None];
                    appended_since_open = 0;
                    reopened = true;
                }
            }
            let st = wal.stats();
            prop_assert!(st.bytes_on_disk <= opts.max_bytes, "{:?}", st);
            let idle = &st.consumers[0];
            // Samples the first consumer read (never acknowledging) and the ring then dropped are
            // in its hands, counted as dropped only once it rewinds: the count is exact whenever
            // it holds no batch.
            let counted = idle.dropped_samples + idle.backlog_samples;
            match (last_read[0].is_none(), reopened) {
                (true, false) => prop_assert_eq!(counted, appended_since_open),
                (true, true) => prop_assert!(counted >= appended_since_open),
                (false, false) => prop_assert!(counted <= appended_since_open),
                (false, true) => {}
            }
            prop_assert!(idle.backlog_samples <= st.samples_in_ring);
            prop_assert!(st.consumers[1].backlog_samples <= st.samples_in_ring);
        }
    }
}

#[derive(Debug, Clone)]
enum SplitOp {
    Append(usize),
    Deliver(usize),
    Split,
    Reopen,
}

fn split_op() -> impl Strategy<Value = SplitOp> {
    prop_oneof![
        4 => (1usize..3000).prop_map(SplitOp::Append),
        4 => (1usize..2500).prop_map(SplitOp::Deliver),
        1 => Just(SplitOp::Split),
        1 => Just(SplitOp::Reopen),
    ]
}

/// One exporter step: new data first while split, then the backlog; joins when caught up.
fn deliver(wal: &mut Wal, id: magpie_wal::ConsumerId, max: usize) -> Option<Vec<i64>> {
    let from = match wal.newest(id) {
        Some(n) => {
            if let Some(b) = wal.read(n, max).unwrap() {
                wal.ack(n, b.end).unwrap();
                return Some(b.samples.iter().map(|s| s.t_ms).collect());
            }
            id
        }
        None => id,
    };
    match wal.read(from, max).unwrap() {
        Some(b) => {
            wal.ack(from, b.end).unwrap();
            Some(b.samples.iter().map(|s| s.t_ms).collect())
        }
        None => {
            if wal.caught_up(id) {
                wal.join(id).unwrap();
            }
            None
        }
    }
}

proptest! {
    #![proptest_config(model_config())]

    /// Splits, joins and restarts in any order deliver every sample exactly once (the ring is
    /// large enough to drop nothing, and every batch is acknowledged).
    #[test]
    fn splits_and_joins_deliver_everything_once(ops in proptest::collection::vec(split_op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            max_bytes: 64 << 20,
            segment_bytes: 256 << 10,
            page_bytes: 4096,
            ..Options::default()
        };
        let names: Vec<String> = (0..30).map(|i| format!("q{i}")).collect();
        let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
        let mut wal = Wal::open(dir.path(), opts.clone()).unwrap();
        let mut id = wal.consumer("x").unwrap();
        let mut t = 0i64;
        let mut delivered: Vec<i64> = Vec::new();
        for op in &ops {
            match *op {
                SplitOp::Append(n) => {
                    wal.append((t..t + n as i64).map(|tt| SampleRef {
                        labels: &labels[(tt % 30) as usize],
                        t_ms: tt,
                        value: f64::from_bits(value(tt)),
                    }))
                    .unwrap();
                    t += n as i64;
                }
                SplitOp::Deliver(max) => {
                    if let Some(ts) = deliver(&mut wal, id, max) {
                        prop_assert!(ts.windows(2).all(|w| w[0] < w[1]), "a batch out of order");
                        delivered.extend(ts);
                    }
                }
                SplitOp::Split => {
                    wal.split(id).unwrap();
                }
                SplitOp::Reopen => {
                    wal.close().unwrap();
                    wal = Wal::open(dir.path(), opts.clone()).unwrap();
                    id = wal.consumer("x").unwrap();
                }
            }
            let backlog = wal.stats().consumers[0].backlog_samples;
            prop_assert_eq!(backlog + delivered.len() as u64, t as u64);
            prop_assert_eq!(wal.backlog(id), backlog);
        }
        while let Some(ts) = deliver(&mut wal, id, 4000) {
            delivered.extend(ts);
        }
        deliver(&mut wal, id, 4000);
        prop_assert_eq!(wal.newest(id), None, "a finished backlog is joined");
        delivered.sort_unstable();
        let expected: Vec<i64> = (0..t).collect();
        prop_assert_eq!(delivered, expected);
    }
}
