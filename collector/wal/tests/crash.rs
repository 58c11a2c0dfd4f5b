//! Crash loop: a child process (this test binary, re-executed with `MAGPIE_CRASH_CHILD` set)
//! appends, syncs, reads and acknowledges until it is SIGKILLed at a random moment. The parent
//! then reopens the WAL and checks the invariants:
//! - every sample the child reported as synced is readable;
//! - every position the child reported as acknowledged is still acknowledged;
//! - nothing decodes wrong: sample `k` has series `k % 50`, time `k * 1000` and value bits
//!   `mix(k)`, and samples come back contiguous and in order.
//!
//! A second loop runs a ring small enough to drop segments while the names of the series
//! change every few scrapes, so that series die and the series log is checkpointed again and
//! again under the kills; every sample left in the ring must still read back with its own
//! name.
//!
//! `MAGPIE_CRASH_ROUNDS` sets the number of rounds (default 100), `MAGPIE_CRASH_SEED` the
//! random seed of the kill times.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use magpie_wal::{ConsumerId, Options, SampleRef, Wal};

const CHILD_ENV: &str = "MAGPIE_CRASH_CHILD";
const CHURN_CHILD_ENV: &str = "MAGPIE_CRASH_CHURN_CHILD";
/// The churn child's first sample number (the parent's last verified end).
const CHURN_NEXT_ENV: &str = "MAGPIE_CRASH_CHURN_NEXT";
/// Series per scrape in the churn loop: enough that a child's short life fills segments.
const CHURN_SERIES: u64 = 1000;
/// Scrapes per generation of series names in the churn loop.
const CHURN: u64 = 5;
const SERIES: u64 = 50;

fn mix(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn opts() -> Options {
    Options {
        max_bytes: 256 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        fsync_interval: Duration::from_millis(2),
        ..Options::default()
    }
}

fn names() -> Vec<String> {
    (0..SERIES).map(|i| format!("c{i:02}")).collect()
}

/// Sample number `k` from what was read back.
fn sample_number(name: &str, t_ms: i64) -> u64 {
    let k = (t_ms / 1000) as u64;
    assert_eq!(name, format!("c{:02}", k % SERIES), "series of sample {k}");
    k
}

/// Reads up to 300 samples for consumer `c`, acknowledges them and reports the number (by
/// `number` of its name and timestamp) of the sample after the last one acknowledged.
fn read_and_ack(wal: &mut Wal, c: ConsumerId, number: fn(&str, i64) -> u64) {
    if let Some(b) = wal.read(c, 300).unwrap() {
        let last = b.samples.last().unwrap();
        let name = &b.series[last.series as usize].iter().next().unwrap().1;
        let n = number(name, last.t_ms) + 1;
        wal.ack(c, b.end).unwrap();
        println!("acked {n}");
    }
}

/// The child: runs until killed. Progress lines go to stdout.
fn child(dir: &Path) -> ! {
    let mut wal = Wal::open(dir, opts()).unwrap();
    let c = wal.consumer("exp").unwrap();
    let mut k = wal.stats().samples_in_ring;
    let names = names();
    let labels: Vec<[(&str, &str); 1]> = names.iter().map(|n| [("__name__", n.as_str())]).collect();
    let mut round = 0u64;
    loop {
        round += 1;
        let batch = (k..k + SERIES).map(|j| SampleRef {
            labels: &labels[(j % SERIES) as usize],
            t_ms: (j * 1000) as i64,
            value: f64::from_bits(mix(j)),
        });
        wal.append(batch).unwrap();
        k += SERIES;
        if wal.sync_if_due(Instant::now()).unwrap() {
            println!("synced {k}");
        }
        if mix(round).is_multiple_of(3) {
            read_and_ack(&mut wal, c, sample_number);
        }
        if mix(round).is_multiple_of(61) {
            wal.rewind(c).unwrap();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn parse_progress(out: &str) -> (u64, u64) {
    let mut synced = 0;
    let mut acked = 0;
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("synced ") {
            synced = synced.max(n.trim().parse().unwrap());
        } else if let Some(n) = line.strip_prefix("acked ") {
            acked = acked.max(n.trim().parse().unwrap());
        }
    }
    (synced, acked)
}

/// Checks the directory after a kill; returns the number of samples verified so far.
fn verify(dir: &Path, verified: u64, synced: u64, acked: u64) -> u64 {
    let mut wal = Wal::open(dir, opts()).unwrap();
    let total = wal.stats().samples_in_ring;
    assert!(total >= synced, "synced samples lost: {total} < {synced}");
    assert!(
        total >= verified,
        "verified samples lost: {total} < {verified}"
    );
    // Everything new since the last round, contiguous and bit-exact.
    let v = wal.consumer("verify").unwrap();
    let mut next = verified;
    while let Some(b) = wal.read(v, 5000).unwrap() {
        for s in &b.samples {
            let k = sample_number(b.series[s.series as usize].iter().next().unwrap().1, s.t_ms);
            assert_eq!(k, next, "samples out of sequence");
            assert_eq!(s.value.to_bits(), mix(k), "sample {k} decoded wrong");
            next += 1;
        }
        wal.ack(v, b.end).unwrap();
    }
    assert_eq!(next, total, "readable samples differ from the ring's count");
    // The child's consumer resumes at or after what it had acknowledged.
    let e = wal.consumer("exp").unwrap();
    match wal.read(e, 1).unwrap() {
        Some(b) => {
            let s = b.samples[0];
            let k = sample_number(b.series[s.series as usize].iter().next().unwrap().1, s.t_ms);
            assert!(
                k >= acked,
                "acknowledged position lost: resumed at {k}, acked {acked}"
            );
        }
        None => assert!(total >= acked),
    }
    wal.close().unwrap();
    total
}

/// The loop's settings: rounds, seed of the kill times, earliest kill (µs after the start).
fn settings() -> (u64, u64, u64) {
    let var = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    (
        var("MAGPIE_CRASH_ROUNDS", 100),
        var("MAGPIE_CRASH_SEED", 1),
        var("MAGPIE_CRASH_MIN_DELAY_US", 2_000),
    )
}

/// Runs this binary's test `test` as a child with `env` set, SIGKILLs it `delay_us` later
/// and returns what it printed.
fn kill_child(test: &str, env: &[(&str, &std::ffi::OsStr)], delay_us: u64, round: u64) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut child = magpie_testkit::runner_command(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_micros(delay_us));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "round {round}: the child exited by itself"
    );
    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_to_string(&mut out)
        .unwrap();
    out
}

#[test]
fn crash_loop() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let (rounds, seed, min_delay) = settings();
    println!("crash loop: {rounds} rounds, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut verified = 0;
    let mut rng = seed;
    let started = Instant::now();
    for round in 0..rounds {
        rng = mix(rng);
        // Random moments: some kills land during the child's own recovery. Under an emulator
        // the child starts slowly; MAGPIE_CRASH_MIN_DELAY_US moves the window later.
        let env = [(CHILD_ENV, dir.path().as_os_str())];
        let out = kill_child("crash_loop", &env, min_delay + rng % 80_000, round);
        let (synced, acked) = parse_progress(&out);
        verified = verify(dir.path(), verified, synced, acked);
    }
    println!(
        "crash loop: {rounds} rounds, {verified} samples verified in {:.1?}",
        started.elapsed()
    );
    assert!(verified > 0);
}

fn churn_opts() -> Options {
    Options {
        max_bytes: 1 << 20,
        segment_bytes: 256 << 10,
        page_bytes: 4096,
        fsync_interval: Duration::from_millis(2),
        ..Options::default()
    }
}

/// Sample `k`'s series name: its slot and the generation of names its scrape belongs to.
fn churn_name(k: u64) -> String {
    format!("g{}_{:03}", k / CHURN_SERIES / CHURN, k % CHURN_SERIES)
}

/// Sample number `k` of a churn sample, checked against its name.
fn churn_number(name: &str, t_ms: i64) -> u64 {
    let k = (t_ms / 1000) as u64;
    assert_eq!(name, churn_name(k), "series of sample {k}");
    k
}

/// The churn child: like [`child`], from sample `next` on, printing `checkpoint` whenever
/// the series table shrank (a checkpoint dropped dead series from the log).
fn churn_child(dir: &Path, mut k: u64) -> ! {
    let mut wal = Wal::open(dir, churn_opts()).unwrap();
    let c = wal.consumer("exp").unwrap();
    let mut series = wal.stats().series;
    let mut round = 0u64;
    loop {
        round += 1;
        let names: Vec<String> = (k..k + CHURN_SERIES).map(churn_name).collect();
        let labels: Vec<[(&str, &str); 1]> =
            names.iter().map(|n| [("__name__", n.as_str())]).collect();
        let batch = (k..k + CHURN_SERIES).zip(&labels).map(|(j, l)| SampleRef {
            labels: l,
            t_ms: (j * 1000) as i64,
            value: f64::from_bits(mix(j)),
        });
        wal.append(batch).unwrap();
        k += CHURN_SERIES;
        if wal.sync_if_due(Instant::now()).unwrap() {
            println!("synced {k}");
        }
        let now = wal.stats().series;
        if now < series {
            println!("checkpoint");
        }
        series = now;
        if mix(round).is_multiple_of(3) {
            read_and_ack(&mut wal, c, churn_number);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Checks the whole ring after a kill: one contiguous run of samples ending at or after
/// `end` (what the last check read) and `synced`, each with its own name and value, and
/// series defined for exactly the names in it. Returns the run's first sample and its end.
fn verify_churn(dir: &Path, end: u64, synced: u64, acked: u64) -> (u64, u64) {
    let mut wal = Wal::open(dir, churn_opts()).unwrap();
    let v = wal.consumer("verify").unwrap();
    wal.rewind(v).unwrap();
    let mut first = None;
    let mut next = 0;
    let mut names = std::collections::HashSet::new();
    while let Some(b) = wal.read(v, 5000).unwrap() {
        for s in &b.samples {
            let name = b.series[s.series as usize].iter().next().unwrap().1;
            names.insert(name.to_owned());
            let k = churn_number(name, s.t_ms);
            if first.is_none() {
                first = Some(k);
                next = k;
            }
            assert_eq!(k, next, "samples missing or out of sequence");
            assert_eq!(s.value.to_bits(), mix(k), "sample {k} decoded wrong");
            next += 1;
        }
    }
    let first = first.unwrap_or(next);
    assert_eq!(
        next - first,
        wal.stats().samples_in_ring,
        "readable samples differ from the ring's count"
    );
    // Opening checkpoints the series log down to the series the segments use.
    assert_eq!(
        wal.stats().series,
        names.len() as u64,
        "series defined besides those the ring's samples name"
    );
    assert!(
        next >= synced,
        "synced samples lost: ends at {next}, synced {synced}"
    );
    assert!(
        next >= end,
        "written samples lost: ends at {next}, read up to {end} before"
    );
    let e = wal.consumer("exp").unwrap();
    if let Some(b) = wal.read(e, 1).unwrap() {
        let s = b.samples[0];
        let k = churn_number(b.series[s.series as usize].iter().next().unwrap().1, s.t_ms);
        assert!(
            k >= acked,
            "acknowledged position lost: resumed at {k}, acked {acked}"
        );
    }
    wal.close().unwrap();
    (first, next)
}

#[test]
fn crash_loop_through_checkpoints() {
    if let Some(dir) = std::env::var_os(CHURN_CHILD_ENV) {
        let next = std::env::var(CHURN_NEXT_ENV).unwrap().parse().unwrap();
        churn_child(Path::new(&dir), next);
    }
    let (rounds, seed, min_delay) = settings();
    let dir = tempfile::tempdir().unwrap();
    let (mut first, mut end, mut checkpoints, mut mid_checkpoint) = (0, 0, 0, 0);
    let mut rng = seed ^ 0x5eed;
    for round in 0..rounds {
        rng = mix(rng);
        let next = end.to_string();
        let env = [
            (CHURN_CHILD_ENV, dir.path().as_os_str()),
            (CHURN_NEXT_ENV, std::ffi::OsStr::new(&next)),
        ];
        let delay = min_delay + rng % 80_000;
        let out = kill_child("crash_loop_through_checkpoints", &env, delay, round);
        checkpoints += out.lines().filter(|l| *l == "checkpoint").count();
        // A kill between a checkpoint's first step and its last leaves a `.tmp` or two logs.
        let logs: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("series-"))
            .collect();
        if logs.len() > 1 {
            mid_checkpoint += 1;
        }
        let (synced, acked) = parse_progress(&out);
        (first, end) = verify_churn(dir.path(), end, synced, acked);
    }
    println!(
        "crash loop through checkpoints: {rounds} rounds, {checkpoints} checkpoints while \
         running (besides one at every open), {mid_checkpoint} kills within one, samples \
         {first}..{end} in the ring at the end"
    );
    // The series of the generations the ring dropped must have left the log for the checks
    // above to pass; unless some did, they prove nothing.
    assert!(
        first >= 2 * CHURN_SERIES * CHURN,
        "the ring dropped no generation of series: its oldest sample is {first}"
    );
}
