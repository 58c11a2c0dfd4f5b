//! SIGKILL at random moments, a hundred times: the real binary scrapes a target whose values
//! are known (each answer serves its own request number as the value of a few series) and
//! remote writes to a receiver that records every request and answers slowly, so that kills
//! land mid-scrape, mid-append, mid-sync and with a request in flight. It restarts on the same
//! data_dir each time, and at the end an export-only run drains the WAL.
//!
//! What survived a kill is learnt by reading a copy of the WAL with the library after each
//! one (what the next start recovers). A SIGKILL keeps what reached the kernel and loses what
//! was still buffered in the process, so "synced" here means "in the WAL read after the kill".
//! The oracle:
//! - every sample any kill left in the WAL is delivered, and nothing is delivered that the WAL
//!   then forgot (the exporter only reads what is written);
//! - what one kill left, every later kill left too (recovery never takes back a sample);
//! - within one run, the samples kept form an unbroken run of the target's request numbers,
//!   broken only by scrapes that failed (`up` 0): a kill loses the tail of a run, never a hole;
//! - values are the target's: for a request number, one timestamp, the same for every series;
//! - duplicates: the exporter sends one batch at a time and acknowledges it after the receiver
//!   accepted it; the WAL's owner takes acknowledgements in memory and writes the cursor once
//!   `MAX_UNWRITTEN_ACKS` of them wait (or at a tick, an fsync interval after the last write).
//!   So at a kill at most `MAX_UNWRITTEN_ACKS - 1` taken acknowledgements are unwritten, plus
//!   one batch accepted whose acknowledgement the owner has not taken (its next read queues
//!   behind that acknowledgement): `MAX_UNWRITTEN_ACKS` batches past the cursor file. Cursors
//!   only move forward, so whatever earlier run delivered furthest, a run starts at most that
//!   many batches behind it: it resends at most `MAX_UNWRITTEN_ACKS * MAX_SEND` samples
//!   delivered by an earlier run, and none twice on its own (each run carries its number as an
//!   external label, so the receiver knows the sender);
//! - no child ever panics (every child's stderr is scanned) and none exits by itself.
//!
//! `MAGPIE_KILL_SEED` replays a run; the seed is printed either way, with the figures.

mod common;

use common::{Magpie, Stored, label, magpie, plugin_dir, read_wal};
use magpie_testkit::{Behavior, ScriptedReceiver, TargetServer, sample_value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Kills, each followed by a restart (the last by the draining run).
const KILLS: usize = 100;
/// Series the target serves per answer.
const SERIES: usize = 16;
/// `max_samples_per_send`: the largest batch.
const MAX_SEND: usize = 12;
/// The most samples one run may resend (see the module documentation).
const MAX_RESEND: usize = magpie_wal::owner::MAX_UNWRITTEN_ACKS * MAX_SEND;
/// The metric the target serves.
const COUNTED: &str = "counted_scrape";

/// A sample as compared: labels (sorted, without the run label), timestamp, value bits.
type Key = (Vec<(String, String)>, i64, u64);

/// splitmix64: enough randomness for kill timing, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn millis(&mut self, below: u64) -> Duration {
        Duration::from_millis(self.next() % below)
    }
}

/// The plugins, precompiled for this machine when it can (a start then takes tens of
/// milliseconds instead of the second Cranelift needs in a debug build).
fn plugins(dir: &Path) -> PathBuf {
    let pd = plugin_dir(dir, &["prom-scrape", "remote-write"]);
    let triple = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => return pd,
    };
    for p in ["prom-scrape", "remote-write"] {
        let wasm = pd.join(format!("{p}.wasm"));
        let out = magpie()
            .args(["plugin", "compile", "--target", triple])
            .arg(&wasm)
            .arg(pd.join(format!("{p}.cwasm")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::fs::remove_file(wasm).unwrap();
    }
    pd
}

/// The configuration of run `run`: scraping `target` every 50 ms (none: export only).
fn config(dir: &Path, pd: &Path, target: Option<&str>, url: &str, run: usize) -> PathBuf {
    let scrape = target.map_or(String::new(), |t| {
        format!(
            "[[scrape]]\njob = \"counted\"\nplugin = \"prom-scrape\"\ninterval = \"50ms\"\ntimeout = \"50ms\"\ntargets = [\"{t}\"]\n"
        )
    });
    let cfg = dir.join(format!("run{run}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nexternal_labels = {{ run = \"{run}\" }}\n[wal]\nfsync = \"50ms\"\n{scrape}[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{url}\"\ntimeout = \"30s\"\nmax_backoff = \"200ms\"\nmax_samples_per_send = {MAX_SEND}\n[trust]\nrequire_signed_plugins = false\n",
            pd.display(),
            dir.join("data").display(),
        ),
    )
    .unwrap();
    cfg
}

/// A child whose stderr is kept, line by line.
struct Run {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    running: std::sync::mpsc::Receiver<()>,
}

impl Run {
    fn start(cfg: &Path) -> Self {
        let mut child = magpie()
            .args(["run", "--config"])
            .arg(cfg)
            .env("MAGPIE_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, running) = std::sync::mpsc::channel();
        let l = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("magpie is running") {
                    let _ = tx.send(());
                }
                l.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            log,
            running,
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn wait_running(&self) {
        assert!(
            self.running.recv_timeout(Duration::from_secs(60)).is_ok(),
            "magpie did not start; log:\n{}",
            self.log_text()
        );
    }

    /// SIGKILL, after checking the child is still there; the child's stderr, read to its end.
    fn kill(mut self, run: usize) -> String {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "run {run} exited by itself ({status}); log:\n{}",
                self.log_text()
            );
        }
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        // The reader thread ends at EOF, which comes with the child's death.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.log) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.log_text()
    }
}

fn assert_no_panic(run: usize, log: &str) {
    assert!(!log.contains("panicked"), "run {run} panicked; log:\n{log}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn key((labels, t, v): &Stored) -> Key {
    let mut l: Vec<(String, String)> = labels.iter().filter(|(n, _)| n != "run").cloned().collect();
    l.sort();
    (l, *t, v.to_bits())
}

/// What the WAL in `data` holds now, read from a copy (opening it may repair a torn tail; the
/// next start does that itself).
fn survived(data: &Path, scratch: &Path) -> BTreeSet<Key> {
    let _ = std::fs::remove_dir_all(scratch);
    copy_dir(&data.join("wal"), scratch);
    let held = read_wal(scratch).iter().map(key).collect();
    std::fs::remove_dir_all(scratch).unwrap();
    held
}

/// Every sample the receiver got, with the run that sent it, in arrival order.
fn delivered(recv: &ScriptedReceiver) -> Vec<(usize, Key)> {
    use prost::Message as _;
    let mut out = Vec::new();
    for r in recv.received() {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&r.body)
            .expect("snappy");
        let req = remote_write::proto::v1::WriteRequest::decode(raw.as_slice()).expect("protobuf");
        for ts in req.timeseries {
            let labels: Vec<(String, String)> =
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
            let run: usize = label(&labels, "run")
                .expect("the run label")
                .parse()
                .unwrap();
            for s in ts.samples {
                out.push((run, key(&(labels.clone(), s.timestamp, s.value))));
            }
        }
    }
    out
}

fn name(k: &Key) -> &str {
    k.0.iter()
        .find(|(n, _)| n == "__name__")
        .map_or("", |(_, v)| v.as_str())
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn counted(k: &Key) -> Option<u64> {
    let v = f64::from_bits(k.2);
    // Staleness markers (NaN) carry no request number.
    (name(k) == COUNTED && v.is_finite()).then_some(v as u64)
}

/// Request numbers the target answered that a run's new samples skip, and that run's failed
/// scrapes: a kill may cost the tail of a run, and a failed scrape its own number, nothing else.
fn holes(new: &BTreeSet<Key>) -> (Vec<u64>, usize) {
    let kept: BTreeSet<u64> = new.iter().filter_map(counted).collect();
    let failed = new
        .iter()
        .filter(|k| name(k) == "up" && f64::from_bits(k.2) == 0.0)
        .count();
    let (Some(&lo), Some(&hi)) = (kept.first(), kept.last()) else {
        return (Vec::new(), failed);
    };
    ((lo..=hi).filter(|n| !kept.contains(n)).collect(), failed)
}

#[test]
fn a_hundred_sigkills_lose_nothing_synced_and_duplicate_at_most_the_unwritten_acknowledgements() {
    let started = Instant::now();
    let seed = std::env::var("MAGPIE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
                    % u128::from(u64::MAX),
            )
            .unwrap()
        });
    println!("kill loop: MAGPIE_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let served = Arc::new(AtomicU64::new(0));
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Counter {
            series: SERIES,
            served: Arc::clone(&served),
        },
    )]);
    // Accepted requests are answered 15 ms late: a kill often finds one in flight.
    let recv = ScriptedReceiver::start_with_delay(Vec::new(), Duration::from_millis(15));
    let dir = tempfile::tempdir().unwrap();
    let pd = plugins(dir.path());
    let data = dir.path().join("data");
    let scratch = dir.path().join("snapshot");
    let target_url = target.url("/metrics");

    let mut after_kill: Vec<BTreeSet<Key>> = Vec::new();
    let mut early_kills = 0;
    for run in 1..=KILLS {
        let child = Run::start(&config(
            dir.path(),
            &pd,
            Some(&target_url),
            &recv.url(),
            run,
        ));
        // One kill in five may land during the start (WAL recovery, plugin loading); the
        // others come after it reported running.
        if rng.next().is_multiple_of(5) {
            early_kills += 1;
            std::thread::sleep(rng.millis(150));
        } else {
            child.wait_running();
            std::thread::sleep(rng.millis(400));
        }
        let log = child.kill(run);
        assert_no_panic(run, &log);
        let now = survived(&data, &scratch);
        if let Some(before) = after_kill.last() {
            let lost: Vec<_> = before.difference(&now).take(5).collect();
            assert!(
                lost.is_empty(),
                "run {run}: samples an earlier kill left in the WAL are gone: {lost:?}"
            );
        }
        after_kill.push(now);
    }

    // Drain with an export-only run.
    let drain_run = KILLS + 1;
    let m = Magpie::start(&config(dir.path(), &pd, None, &recv.url(), drain_run));
    // Checked after the oracle, which says more about what went wrong.
    let deadline = Instant::now() + Duration::from_secs(60);
    let backlog = loop {
        let backlog = sample_value(
            &m.metrics(),
            "magpie_exporter_backlog_samples{exporter=\"central\"}",
        );
        if backlog == Some(0.0) || Instant::now() > deadline {
            break backlog;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dropped = sample_value(
        &m.metrics(),
        "magpie_exporter_dropped_samples_total{exporter=\"central\"}",
    );
    assert_eq!(dropped, Some(0.0), "the ring dropped samples");
    let drain_log = m.log_text();
    assert!(m.terminate().success(), "{drain_log}");
    assert_no_panic(drain_run, &drain_log);
    let in_wal = after_kill.last().unwrap().clone();
    assert_eq!(
        survived(&data, &scratch),
        in_wal,
        "the draining run changed the WAL's samples"
    );

    // Loss: every sample a kill left in the WAL arrived; nothing arrived the WAL forgot.
    let deliveries = delivered(&recv);
    let got: BTreeSet<Key> = deliveries.iter().map(|(_, k)| k.clone()).collect();
    let missing: Vec<_> = in_wal.difference(&got).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} samples in the WAL were never delivered, e.g. {missing:?}",
        in_wal.difference(&got).count()
    );
    let forgotten: Vec<_> = got.difference(&in_wal).take(5).collect();
    assert!(
        forgotten.is_empty(),
        "delivered but not in the WAL after the kill: {forgotten:?}"
    );

    // A kill loses the tail of a run, never a hole in it.
    let mut prev = BTreeSet::new();
    let mut tail_lost_runs = 0;
    for (i, now) in after_kill.iter().enumerate() {
        let new: BTreeSet<Key> = now.difference(&prev).cloned().collect();
        let (holes, failed) = holes(&new);
        assert!(
            holes.len() <= failed,
            "run {}: request numbers {holes:?} missing inside the run, with {failed} failed scrapes",
            i + 1
        );
        if new.is_empty() {
            tail_lost_runs += 1;
        }
        prev = now.clone();
    }

    // Values are the target's.
    let mut time_of: HashMap<u64, i64> = HashMap::new();
    let mut at: BTreeMap<i64, BTreeSet<u64>> = BTreeMap::new();
    for k in &in_wal {
        if let Some(n) = counted(k) {
            assert!(
                (1..=served.load(Ordering::SeqCst)).contains(&n),
                "value {n} was never served"
            );
            let t = *time_of.entry(n).or_insert(k.1);
            assert_eq!(t, k.1, "request {n} stored at two timestamps");
            at.entry(k.1).or_default().insert(n);
        }
    }
    for (t, ns) in &at {
        assert_eq!(ns.len(), 1, "one scrape at {t} holds values {ns:?}");
    }

    // Duplicates: per run, at most the batches past the cursor file again, nothing twice on its
    // own.
    let mut first_run: HashMap<&Key, usize> = HashMap::new();
    let mut resent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut within = 0;
    for (run, k) in &deliveries {
        match first_run.get(k) {
            None => {
                first_run.insert(k, *run);
            }
            Some(r) if r == run => within += 1,
            Some(_) => *resent.entry(*run).or_default() += 1,
        }
    }
    assert_eq!(within, 0, "samples sent twice by the same run");
    let worst = resent.iter().max_by_key(|(_, n)| **n);
    if let Some((run, n)) = worst {
        assert!(
            *n <= MAX_RESEND,
            "run {run} resent {n} samples, more than the acknowledgements a cursor may lag ({MAX_RESEND})"
        );
    }
    let duplicates: usize = resent.values().sum();
    let scrapes = served.load(Ordering::SeqCst);
    let kept_scrapes = time_of.len();
    assert_eq!(backlog, Some(0.0), "the backlog did not drain");
    println!(
        "kill loop: {KILLS} kills ({early_kills} during start), {scrapes} scrapes served, {kept_scrapes} in the WAL ({} lost to kills; {tail_lost_runs} runs kept none), {} samples in the WAL, {} deliveries, {duplicates} duplicates in {} runs (most in one run: {}), {:.1} s",
        u64::try_from(kept_scrapes).map_or(0, |k| scrapes.saturating_sub(k)),
        in_wal.len(),
        deliveries.len(),
        resent.len(),
        worst.map_or(0, |(_, n)| *n),
        started.elapsed().as_secs_f64()
    );
    assert!(
        kept_scrapes >= KILLS / 2,
        "only {kept_scrapes} scrapes reached the WAL in {KILLS} runs"
    );
}
