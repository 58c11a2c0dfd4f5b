//! Crash loop: a child process (this test binary, re-executed with `MAGPIE_CRASH_CHILD` set)
//! appends, syncs, reads and acknowledges until it is SIGKILLed at a random moment. The parent
//! then reopens the WAL and checks the invariants:
//! - every sample the child reported as synced is readable;
//! - every position the child reported as acknowledged is still acknowledged;
//! - nothing decodes wrong: sample `k` has series `k % 50`, time `k * 1000` and value bits
//!   `mix(k)`, and samples come back contiguous and in order.
//!
//! `MAGPIE_CRASH_ROUNDS` sets the number of rounds (default 100), `MAGPIE_CRASH_SEED` the
//! random seed of the kill times.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use magpie_wal::{Options, SampleRef, Wal};

const CHILD_ENV: &str = "MAGPIE_CRASH_CHILD";
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
        if mix(round).is_multiple_of(3)
            && let Some(b) = wal.read(c, 300).unwrap()
        {
            let last = b.samples.last().unwrap();
            let name = &b.series[last.series as usize].iter().next().unwrap().1;
            let n = sample_number(name, last.t_ms) + 1;
            wal.ack(c, b.end).unwrap();
            println!("acked {n}");
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

#[test]
fn crash_loop() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let rounds: u64 = std::env::var("MAGPIE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("MAGPIE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let min_delay: u64 = std::env::var("MAGPIE_CRASH_MIN_DELAY_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    println!("crash loop: {rounds} rounds, seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut verified = 0;
    let mut rng = seed;
    let started = Instant::now();
    for round in 0..rounds {
        rng = mix(rng);
        let mut child = magpie_testkit::runner_command(&exe)
            .args(["crash_loop", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Random moments: some kills land during the child's own recovery. Under an emulator
        // the child starts slowly; MAGPIE_CRASH_MIN_DELAY_US moves the window later.
        std::thread::sleep(Duration::from_micros(min_delay + rng % 80_000));
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
        let (synced, acked) = parse_progress(&out);
        verified = verify(dir.path(), verified, synced, acked);
    }
    println!(
        "crash loop: {rounds} rounds, {verified} samples verified in {:.1?}",
        started.elapsed()
    );
    assert!(verified > 0);
}
