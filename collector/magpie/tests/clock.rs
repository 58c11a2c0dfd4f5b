//! The clock policy on the real binary, its wall clock moved by libfaketime (Debian's
//! `faketime`) through a timestamp file it re-reads on every call: a device that boots at
//! 1970 does not scrape until the clock is set, then scrapes with sane timestamps, and follows
//! later steps back and forward without losing or damaging what its WAL holds.

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{Behavior, TargetServer, http_get, sample_value};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

fn real_now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn scrapes(m: &Magpie) -> f64 {
    sample_value(&m.metrics(), "magpie_scrapes_total{job=\"rooms\"}").unwrap_or(0.0)
}

fn set_clock(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

#[test]
fn scrapes_wait_for_a_plausible_clock_then_follow_its_steps() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: install Debian's faketime (ci/setup.sh does)"
    );
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        Behavior::Serve {
            content_type: "text/plain; version=0.0.4".into(),
            body: "# TYPE room_temp_celsius gauge\nroom_temp_celsius{room=\"a\"} 21.5\n".into(),
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape"]);
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\n[[scrape]]\njob = \"rooms\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n",
            pd.display(),
            dir.path().join("data").display(),
            target.url("/metrics"),
        ),
    )
    .unwrap();
    // Booted without a real-time clock: about 1972.
    let clock = dir.path().join("faketime");
    set_clock(&clock, "-20000d");
    let m = Magpie::start_with_env(
        &cfg,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
            ("FAKETIME_NO_CACHE", "1"),
            // Timers run on the monotonic clock, which a wall-clock step does not move.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (_, page) = http_get(&m.addr, "/").unwrap();
        if page.contains("id=\"clock\"") {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(page.contains("before this build"), "{page}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(scrapes(&m), 0.0, "scraped with a 1972 clock");
    assert!(
        m.log_text().contains("waiting for the clock"),
        "{}",
        m.log_text()
    );

    // NTP sets the clock: scrapes start.
    let set_at = real_now_ms();
    set_clock(&clock, "+0");
    m.wait_for("magpie_scrapes_total{job=\"rooms\"}", 3.0);
    let (_, page) = http_get(&m.addr, "/").unwrap();
    assert!(!page.contains("id=\"clock\""), "{page}");
    assert!(m.log_text().contains("the clock is plausible now"));
    // Stepped back an hour, then forward a day: scrapes go on.
    set_clock(&clock, "-1h");
    let n = scrapes(&m);
    m.wait_for("magpie_scrapes_total{job=\"rooms\"}", n + 3.0);
    set_clock(&clock, "+1d");
    let n = scrapes(&m);
    m.wait_for("magpie_scrapes_total{job=\"rooms\"}", n + 3.0);
    assert!(m.terminate().success());

    // The WAL reads back whole, in append order, with every step in it and no 1970 sample.
    let ts: Vec<i64> = read_wal(&dir.path().join("data/wal"))
        .into_iter()
        .filter(|(l, _, _)| label(l, "__name__") == Some("room_temp_celsius"))
        .map(|(_, t, _)| t)
        .collect();
    let hour = 3_600_000;
    assert!(ts.len() >= 9, "{ts:?}");
    assert!(
        ts.iter().all(|&t| t >= set_at - 2 * hour),
        "a sample before the clock was set: {ts:?}"
    );
    assert!(ts[0] >= set_at - 60_000, "{ts:?}");
    let back = ts.windows(2).position(|w| w[1] < w[0] - hour / 2);
    let forward = ts.windows(2).position(|w| w[1] > w[0] + 12 * hour);
    assert!(
        matches!((back, forward), (Some(b), Some(f)) if b < f),
        "steps not in append order: {ts:?}"
    );
}
