//! The WAL against an in-memory model, over random sequences of append, flush, sync, read,
//! ack, rewind, reopen, crash (drop without close) and power cut (crash, then every write not
//! followed by an fdatasync is undone).

mod common;

use std::sync::Arc;

use common::small_opts;
use magpie_wal::storage::{Fault, FaultStorage};
use magpie_wal::{ConsumerId, Options, Position, SampleRef, Wal};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// `n` samples over series picked from a pool, values from `seed`.
    Append {
        n: usize,
        seed: u64,
        special: bool,
    },
    Flush,
    Sync,
    Read {
        c: usize,
        max: usize,
    },
    Ack {
        c: usize,
    },
    Rewind {
        c: usize,
    },
    Reopen,
    Crash,
    PowerCut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..1500, any::<u64>(), any::<bool>())
            .prop_map(|(n, seed, special)| Op::Append { n, seed, special }),
        1 => Just(Op::Flush),
        1 => Just(Op::Sync),
        4 => (0usize..2, 1usize..3000).prop_map(|(c, max)| Op::Read { c, max }),
        2 => (0usize..2).prop_map(|c| Op::Ack { c }),
        1 => (0usize..2).prop_map(|c| Op::Rewind { c }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => Just(Op::PowerCut),
    ]
}

const NAMES: [&str; 2] = ["alpha", "beta"];

/// A consumer in the model: indexes into the log.
#[derive(Debug, Default, Clone)]
struct Cur {
    read: usize,
    acked: usize,
    /// The last batch's end and its index, offered to the next Ack.
    last: Option<(Position, usize)>,
    /// Where its reads ended after its persisted cursor: a read stops at the first one after
    /// its position (the read journal).
    ends: Vec<usize>,
}

impl Cur {
    fn read_to(&mut self, end: usize) {
        if self.ends.last().is_none_or(|&l| l < end) {
            self.ends.push(end);
        }
    }
}

struct Harness {
    dir: tempfile::TempDir,
    opts: Options,
    wal: Option<Wal>,
    ids: Vec<ConsumerId>,
    log: Vec<(u32, i64, u64)>,
    /// Samples certainly in the files (written by flush, sync, read or close).
    written: usize,
    /// Samples certainly durable (synced by sync or close).
    synced: usize,
    fs: FaultStorage,
    cur: [Cur; 2],
    t: i64,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            max_bytes: 64 << 20,
            ..small_opts()
        };
        let mut h = Harness {
            wal: None,
            opts,
            dir,
            ids: Vec::new(),
            log: Vec::new(),
            written: 0,
            synced: 0,
            fs: FaultStorage::new(Fault::Eio, u64::MAX),
            cur: [Cur::default(), Cur::default()],
            t: 1_000_000,
        };
        h.open();
        h
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().unwrap()
    }

    fn open(&mut self) {
        let mut wal = Wal::open_with(
            self.dir.path(),
            self.opts.clone(),
            Arc::new(self.fs.clone()),
        )
        .unwrap();
        self.ids = NAMES.iter().map(|n| wal.consumer(n).unwrap()).collect();
        self.wal = Some(wal);
        for c in &mut self.cur {
            c.read = c.acked;
            c.last = None;
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { n, seed, special } => {
                let mut rng = common::Rng(seed);
                let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
                let mut rows = Vec::with_capacity(n);
                for _ in 0..n {
                    let s = rng.below(40) as u32;
                    self.t += rng.below(3) as i64 * 1000;
                    let v = if special && rng.below(2) == 0 {
                        [
                            0x7ff0_0000_0000_0002,
                            0x8000_0000_0000_0000,
                            0x7ff8_dead_beef_0001,
                            1,
                        ][rng.below(4) as usize]
                    } else {
                        rng.next()
                    };
                    rows.push((s, self.t, v));
                }
                let labels: Vec<[(&str, &str); 1]> =
                    names.iter().map(|n| [("__name__", n.as_str())]).collect();
                let refs = rows.iter().map(|&(s, t, v)| SampleRef {
                    labels: &labels[s as usize],
                    t_ms: t,
                    value: f64::from_bits(v),
                });
                self.wal.as_mut().unwrap().append(refs).unwrap();
                self.log.extend(rows);
            }
            Op::Flush => {
                self.wal().flush().unwrap();
                self.written = self.log.len();
            }
            Op::Sync => {
                self.wal().sync().unwrap();
                self.written = self.log.len();
                self.synced = self.log.len();
            }
            Op::Read { c, max } => {
                let id = self.ids[c];
                let got = self.wal().read(id, max).unwrap();
                self.written = self.log.len();
                let cur = &mut self.cur[c];
                let cap = cur
                    .ends
                    .iter()
                    .copied()
                    .find(|&e| e > cur.read)
                    .unwrap_or(usize::MAX);
                let want = &self.log[cur.read..self.log.len().min(cur.read + max).min(cap)];
                match got {
                    None => assert!(want.is_empty(), "no batch, expected {}", want.len()),
                    Some(b) => {
                        let rows: Vec<(u32, i64, u64)> = b
                            .samples
                            .iter()
                            .map(|s| {
                                let name = &b.series[s.series as usize].iter().next().unwrap().1;
                                let i: u32 = name[1..].parse().unwrap();
                                (i, s.t_ms, s.value.to_bits())
                            })
                            .collect();
                        assert_eq!(rows.as_slice(), want, "batch differs");
                        cur.read += rows.len();
                        cur.last = Some((b.end, cur.read));
                        let end = cur.read;
                        cur.read_to(end);
                    }
                }
            }
            Op::Ack { c } => {
                if let Some((pos, at)) = self.cur[c].last {
                    let id = self.ids[c];
                    self.wal().ack(id, pos).unwrap();
                    let cur = &mut self.cur[c];
                    if at > cur.acked {
                        cur.ends.retain(|&e| e > at);
                    }
                    cur.acked = cur.acked.max(at);
                }
            }
            Op::Rewind { c } => {
                let id = self.ids[c];
                self.wal().rewind(id).unwrap();
                let cur = &mut self.cur[c];
                cur.read = cur.acked;
                cur.last = None;
            }
            Op::Reopen => {
                self.wal.take().unwrap().close().unwrap();
                self.written = self.log.len();
                self.synced = self.log.len();
                self.open();
            }
            Op::Crash => {
                drop(self.wal.take());
                self.open();
                // What survives is a prefix: at least what was written out, at most all.
                let kept = self.wal().stats().samples_in_ring as usize;
                assert!(
                    kept >= self.written && kept <= self.log.len(),
                    "kept {kept}, written {}, appended {}",
                    self.written,
                    self.log.len()
                );
                self.log.truncate(kept);
                self.written = kept;
                self.synced = self.synced.min(kept);
                // The read journal survives; ends in lost data are forgotten.
                for c in &mut self.cur {
                    c.ends.retain(|&e| e <= kept);
                }
                for c in &self.cur {
                    assert!(c.acked <= kept, "an acknowledged sample was lost");
                }
            }
            Op::PowerCut => {
                drop(self.wal.take());
                self.fs.power_cut().unwrap();
                self.open();
                // What survives is a prefix: at least what was synced, at most all.
                let kept = self.wal().stats().samples_in_ring as usize;
                assert!(
                    kept >= self.synced && kept <= self.log.len(),
                    "kept {kept}, synced {}, appended {}",
                    self.synced,
                    self.log.len()
                );
                self.log.truncate(kept);
                self.written = kept;
                self.synced = kept;
                // A consumer may have acknowledged samples that were never synced. The read
                // journal is never synced: it is gone.
                for c in &mut self.cur {
                    c.acked = c.acked.min(kept);
                    c.read = c.acked;
                    c.ends.clear();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        max_shrink_iters: 200,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/model.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn wal_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut h = Harness::new();
        for op in &ops {
            h.apply(op);
        }
        // Finally every consumer drains exactly the rest of the log.
        for c in 0..2 {
            h.apply(&Op::Rewind { c });
            h.apply(&Op::Read { c, max: usize::MAX / 2 });
        }
    }
}
