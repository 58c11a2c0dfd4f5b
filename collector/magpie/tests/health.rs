//! Health that tells the truth: with its WAL on a tiny tmpfs that fills up, or in a data_dir
//! that turns read-only, the real binary answers `/-/healthy` with 503 and the cause, says so
//! on the status page (and keeps pinging the systemd watchdog), and recovers by itself once
//! space is free or the directory writable again, delivering what its WAL holds. A real
//! ext4 that an error remounts read-only (open files included) cannot be made writable while
//! mounted, so there magpie is stopped, the file system checked and mounted again, and a
//! restart delivers what was synced before the error.
//!
//! Mounting needs root and must not leak onto the machine: each test re-executes itself under
//! `unshare -m --propagation private`, so its mounts live in a mount namespace that dies with
//! it (and are unmounted at the end anyway; a loop device is released with its mount).

mod common;

use common::{Magpie, label, plugin_dir, read_wal};
use magpie_testkit::{
    Behavior, Prometheus, ScriptedReceiver, TargetServer, http_get, sample_value,
};
use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set in the re-executed test, which runs inside the private mount namespace.
const INNER: &str = "MAGPIE_TEST_PRIVATE_MOUNTS";

/// Runs `test` of this binary again inside a private mount namespace; true when the caller is
/// that inner run and should do the work.
fn in_private_mount_namespace(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status()
        .expect("run unshare (util-linux)");
    assert!(status.success(), "{test} failed in its mount namespace");
    false
}

/// A tmpfs mounted at a directory; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Self(at.into())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn healthy(m: &Magpie) -> (u16, String) {
    http_get(&m.addr, "/-/healthy")
        .unwrap_or_else(|e| panic!("/-/healthy did not answer: {e}; log:\n{}", m.log_text()))
}

/// Polls `/-/healthy` until it answers `status`.
fn wait_health(m: &Magpie, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, body) = healthy(m);
        if s == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/-/healthy stayed {s} ({body}); log:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Takes every free byte of the file system of `dir` into a filler file, again and again,
/// until `stop`: whatever the WAL frees by dropping old segments is taken too.
fn fill(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("filler"))
            .unwrap();
        let chunk = vec![0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            while f.write_all(&chunk).is_ok() {}
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

#[test]
fn a_full_disk_makes_magpie_unhealthy_until_it_recovers_and_nothing_held_is_lost() {
    if !in_private_mount_namespace(
        "a_full_disk_makes_magpie_unhealthy_until_it_recovers_and_nothing_held_is_lost",
    ) {
        return;
    }
    let prom = Prometheus::start();
    let target = TargetServer::start(vec![(
        "/metrics".into(),
        // Values that do not compress, so the WAL rolls segments every few seconds.
        Behavior::Random(2000),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
    let data = dir.path().join("data");
    let disk = Tmpfs::mount(&data, "4m");
    let cfg = dir.path().join("m.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\nmax_bytes = \"2MiB\"\nunhealthy_after = \"1s\"\n[[scrape]]\njob = \"random\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"500ms\"\nmax_samples_per_send = 10000\n",
            pd.display(),
            data.display(),
            target.url("/metrics"),
            prom.write_url(),
        ),
    )
    .unwrap();
    // The service manager's end of the notify socket, read all along (as systemd does: an
    // unread socket would block the sender). Counts watchdog pings.
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let pings = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&pings);
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = sock.recv(&mut buf) {
            if &buf[..n] == b"WATCHDOG=1" {
                p.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let m = Magpie::start_with_env(
        &cfg,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    m.wait_for(
        "magpie_exporter_sent_samples_total{exporter=\"central\"}",
        4000.0,
    );
    assert_eq!(healthy(&m).0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let filler = fill(data.clone(), Arc::clone(&stop));
    let cause = wait_health(&m, 503);
    assert!(
        cause.starts_with("magpie is unhealthy: WAL ") && cause.contains("failing for"),
        "{cause}"
    );
    let (_, page) = http_get(&m.addr, "/").unwrap();
    assert!(page.contains("id=\"health\">Unhealthy: WAL "), "{page}");
    // The watchdog still hears from the process while it is unhealthy.
    let before = pings.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pings.load(Ordering::Relaxed) < before + 3 {
        assert!(Instant::now() < deadline, "the watchdog pings stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        healthy(&m).0,
        503,
        "recovered while the disk was still full"
    );

    stop.store(true, Ordering::Relaxed);
    filler.join().unwrap();
    std::fs::remove_file(data.join("filler")).unwrap();
    wait_health(&m, 200);
    let appended = |m: &Magpie| sample_value(&m.metrics(), "magpie_wal_samples_appended_total");
    let before = appended(&m).unwrap();
    m.wait_for("magpie_wal_samples_appended_total", before + 4000.0);
    // Everything is delivered once the exporter caught up.
    let deadline = Instant::now() + Duration::from_secs(180);
    while sample_value(
        &m.metrics(),
        "magpie_exporter_backlog_samples{exporter=\"central\"}",
    ) != Some(0.0)
    {
        assert!(Instant::now() < deadline, "{}", m.metrics());
        std::thread::sleep(Duration::from_millis(200));
    }
    // A full disk makes the ring give up its oldest segments, delivered or not (the newest
    // data wins, as when it outgrows max_bytes): every appended sample is either delivered
    // or counted as dropped, none is unaccounted for.
    let body = m.metrics();
    let get = |name: &str| sample_value(&body, name).unwrap_or_else(|| panic!("{name}: {body}"));
    let appended = get("magpie_wal_samples_appended_total");
    let sent = get("magpie_exporter_sent_samples_total{exporter=\"central\"}");
    let dropped = get("magpie_exporter_dropped_samples_total{exporter=\"central\"}");
    assert_eq!(appended, sent + dropped, "{body}");
    assert!(m.terminate().success());

    // Oracle: every sample of one series the WAL holds is in Prometheus.
    let held: BTreeSet<i64> = read_wal(&data.join("wal"))
        .into_iter()
        .filter(|(l, _, _)| label(l, "i") == Some("7"))
        .map(|(_, t, _)| t)
        .collect();
    assert!(!held.is_empty(), "the WAL holds nothing of the series");
    let got: BTreeSet<i64> = prom
        .samples("random_gauge{i=\"7\"}", "1h")
        .into_iter()
        .flat_map(|(_, points)| points.into_iter().map(|(t, _)| t))
        .collect();
    let missing: Vec<_> = held.difference(&got).collect();
    assert!(missing.is_empty(), "not delivered: {missing:?}");
    drop(disk);
}

/// `dir` made read-only by a read-only bind mount of itself on top; writable again when
/// dropped. A `mount -o remount,ro` of the file system (or `remount,bind,ro` of the mount
/// magpie opened its files through) fails with EBUSY while magpie holds files open for
/// writing, and ext4's `errors=remount-ro` cannot be undone while mounted on this kernel (the
/// file system stays `emergency_ro` after `remount,rw`): a mount on top is what can be
/// undone. Every file opened, created or renamed from then on is refused with EROFS; files
/// magpie already holds open stay writable, so the WAL keeps appending to its open segment
/// until it needs the next one.
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn mount(dir: &Path) -> Self {
        let run = |args: &[&str]| {
            let ok = Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mount {args:?} failed (it needs root)");
        };
        run(&["--bind"]);
        let ro = Self(dir.into());
        let ok = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount,bind,ro of the new bind mount failed");
        assert!(
            std::fs::write(dir.join("probe"), b"").is_err(),
            "{} is still writable",
            dir.display()
        );
        ro
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The samples of every request the receiver got: `(labels sorted, t)`.
fn received(recv: &ScriptedReceiver) -> HashSet<(Vec<(String, String)>, i64)> {
    use prost::Message as _;
    let mut out = HashSet::new();
    for r in recv.received() {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&r.body)
            .expect("snappy");
        let req = remote_write::proto::v1::WriteRequest::decode(raw.as_slice()).expect("protobuf");
        for ts in req.timeseries {
            let mut labels: Vec<(String, String)> =
                ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
            labels.sort();
            for s in ts.samples {
                out.insert((labels.clone(), s.timestamp));
            }
        }
    }
    out
}

/// A target of 2000 gauges whose values do not compress (so the WAL needs a new segment
/// every few seconds), a recording receiver, and a configuration for both with `data` as
/// data_dir and a 1 s `unhealthy_after`.
struct Rig {
    recv: ScriptedReceiver,
    _target: TargetServer,
    _dir: tempfile::TempDir,
    data: PathBuf,
    cfg: PathBuf,
}

impl Rig {
    fn new() -> Self {
        let recv = ScriptedReceiver::start(Vec::new());
        let target = TargetServer::start(vec![("/metrics".into(), Behavior::Random(2000))]);
        let dir = tempfile::tempdir().unwrap();
        let pd = plugin_dir(dir.path(), &["prom-scrape", "remote-write"]);
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let cfg = dir.path().join("m.toml");
        std::fs::write(
            &cfg,
            format!(
                "[collector]\nplugin_dir = \"{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n[wal]\nfsync = \"100ms\"\nsegment_bytes = \"256KiB\"\nmax_bytes = \"32MiB\"\nunhealthy_after = \"1s\"\n[[scrape]]\njob = \"random\"\nplugin = \"prom-scrape\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\ntargets = [\"{}\"]\n[[export]]\nname = \"central\"\nplugin = \"remote-write\"\nurl = \"{}\"\nmax_backoff = \"500ms\"\nmax_samples_per_send = 10000\n",
                pd.display(),
                data.display(),
                target.url("/metrics"),
                recv.url(),
            ),
        )
        .unwrap();
        Self {
            recv,
            _target: target,
            _dir: dir,
            data,
            cfg,
        }
    }

    /// Starts magpie and waits for its first deliveries.
    fn start(&self) -> Magpie {
        let m = Magpie::start(&self.cfg);
        m.wait_for(
            "magpie_exporter_sent_samples_total{exporter=\"central\"}",
            4000.0,
        );
        m
    }

    /// Once healthy again: appends resume, the backlog drains with nothing dropped, magpie
    /// stops cleanly, and every sample its WAL holds (from before, during and after the
    /// failure, up to the newest delivered) was delivered. Returns what the WAL holds.
    fn recovers_and_delivers_everything(&self, m: Magpie) -> Vec<common::Stored> {
        wait_health(&m, 200);
        let appended = |m: &Magpie| sample_value(&m.metrics(), "magpie_wal_samples_appended_total");
        // Absent until the first snapshot after a start: none appended yet.
        let before = appended(&m).unwrap_or(0.0);
        m.wait_for("magpie_wal_samples_appended_total", before + 4000.0);
        let deadline = Instant::now() + Duration::from_secs(120);
        while sample_value(
            &m.metrics(),
            "magpie_exporter_backlog_samples{exporter=\"central\"}",
        ) != Some(0.0)
        {
            assert!(Instant::now() < deadline, "{}", m.metrics());
            std::thread::sleep(Duration::from_millis(200));
        }
        let body = m.metrics();
        assert_eq!(
            sample_value(
                &body,
                "magpie_exporter_dropped_samples_total{exporter=\"central\"}"
            ),
            Some(0.0),
            "{body}"
        );
        assert!(m.terminate().success());
        let got = received(&self.recv);
        let held = read_wal(&self.data.join("wal"));
        // magpie scrapes until it stops: a scrape appended after the backlog was seen empty
        // may still wait in the WAL, so the check goes up to the newest delivered sample.
        let newest = got.iter().map(|(_, t)| *t).max().unwrap();
        let missing: Vec<_> = held
            .iter()
            .filter(|(l, t, _)| {
                let mut l = l.clone();
                l.sort();
                *t <= newest && !got.contains(&(l, *t))
            })
            .take(5)
            .collect();
        assert!(missing.is_empty(), "not delivered: {missing:?}");
        held
    }
}

/// Checks `/-/healthy` and the status page name a read-only file system.
fn unhealthy_read_only(m: &Magpie) {
    let cause = wait_health(m, 503);
    assert!(
        cause.starts_with("magpie is unhealthy: WAL ")
            && cause.contains("failing for")
            && cause.contains("Read-only file system"),
        "{cause}"
    );
    let (_, page) = http_get(&m.addr, "/").unwrap();
    assert!(page.contains("id=\"health\">Unhealthy: WAL "), "{page}");
    assert!(page.contains("Read-only file system"), "{page}");
}

#[test]
fn a_read_only_data_dir_makes_magpie_unhealthy_until_it_is_writable_and_nothing_held_is_lost() {
    if !in_private_mount_namespace(
        "a_read_only_data_dir_makes_magpie_unhealthy_until_it_is_writable_and_nothing_held_is_lost",
    ) {
        return;
    }
    let rig = Rig::new();
    let m = rig.start();
    assert_eq!(healthy(&m).0, 200);
    let ro = ReadOnly::mount(&rig.data);
    unhealthy_read_only(&m);
    // The open segment fills up and the next one cannot be created: appends fail too.
    m.wait_for("magpie_wal_append_failures_total", 1.0);
    assert_eq!(healthy(&m).0, 503, "recovered while still read-only");
    drop(ro);
    let held = rig.recovers_and_delivers_everything(m);
    assert!(held.len() > 12_000, "the WAL holds only {}", held.len());
}
