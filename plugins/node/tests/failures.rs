//! Refused, missing and failing files: collectors skip, success flags say so, nothing panics.

mod support;

use node::{CollectError, Collector, Config, FsError, MemFs, MetricType, VecSink, collect};
use support::pi4;

fn success(sink: &VecSink, which: Collector) -> Option<f64> {
    sink.get(
        "node_scrape_collector_success",
        &[("collector", which.name())],
    )
}

#[test]
fn denied_sysfs_fails_only_the_sysfs_collectors() {
    let mut fs = pi4();
    fs.deny("/sys");
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), &mut fs, &mut sink);

    for which in [
        Collector::Hwmon,
        Collector::ThermalZone,
        Collector::RpiThrottled,
    ] {
        let outcome = report.outcome(which).unwrap();
        assert!(
            matches!(outcome, Err(e) if e.is_denied()),
            "{}: {outcome:?}",
            which.name()
        );
        assert_eq!(success(&sink, which), Some(0.0), "{}", which.name());
    }
    // /proc collectors are unaffected; netdev just loses the sysfs-only counter and cpu its
    // optional throttle counters.
    for which in [
        Collector::Cpu,
        Collector::Stat,
        Collector::Meminfo,
        Collector::Loadavg,
        Collector::Diskstats,
        Collector::Netdev,
        Collector::Filesystem,
        Collector::Uname,
    ] {
        assert!(report.succeeded(which), "{}", which.name());
        assert_eq!(success(&sink, which), Some(1.0), "{}", which.name());
    }
    assert!(sink.names().contains("node_network_receive_bytes_total"));
    assert!(
        !sink
            .names()
            .contains("node_network_receive_nohandler_total")
    );
    assert!(!sink.names().iter().any(|n| n.starts_with("node_hwmon")));
    assert_eq!(report.failures().count(), 3);
}

#[test]
fn denied_items_inside_a_collector_are_skipped() {
    let mut fs = pi4();
    // One hwmon chip, one statvfs and PID 1's mount table are refused.
    fs.deny("/sys/devices/platform/soc/soc:firmware/raspberrypi-hwmon")
        .deny("/boot/firmware")
        .deny("/proc/1");
    fs.file(
        "/proc/self/mounts",
        "/dev/mmcblk0p2 / ext4 rw 0 0\n/dev/mmcblk0p1 /boot/firmware vfat rw 0 0\n",
    );
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), &mut fs, &mut sink);
    assert!(report.succeeded(Collector::Hwmon));
    assert!(report.succeeded(Collector::Filesystem));
    let chips: Vec<&str> = sink
        .family("node_hwmon_chip_names")
        .filter_map(|s| s.label("chip"))
        .collect();
    assert_eq!(chips, ["thermal_thermal_zone0"]);
    let mounts: Vec<&str> = sink
        .family("node_filesystem_device_error")
        .filter_map(|s| s.label("mountpoint"))
        .collect();
    assert_eq!(mounts, ["/"]);
}

#[test]
fn an_empty_host_reports_every_collector() {
    let mut fs = MemFs::new();
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), &mut fs, &mut sink);
    assert_eq!(report.outcomes.len(), Collector::ALL.len());
    for (which, outcome) in &report.outcomes {
        let expected_ok = matches!(which, Collector::ThermalZone | Collector::RpiThrottled);
        assert_eq!(
            outcome.is_ok(),
            expected_ok,
            "{}: {outcome:?}",
            which.name()
        );
        let flag = if expected_ok { 1.0 } else { 0.0 };
        assert_eq!(success(&sink, *which), Some(flag), "{}", which.name());
    }
    assert_eq!(
        report.outcome(Collector::Hwmon),
        Some(&Err(CollectError::NoData))
    );
    assert_eq!(
        report.outcome(Collector::Meminfo),
        Some(&Err(CollectError::Fs {
            path: "/proc/meminfo".into(),
            error: FsError::NotFound
        }))
    );
    // Only the success flags were emitted.
    assert_eq!(sink.names().len(), 1);
}

#[test]
fn io_errors_and_garbage_fail_one_collector() {
    let mut fs = pi4();
    fs.fail("/proc/meminfo")
        .file("/proc/loadavg", "not a number\n")
        .file("/proc/diskstats", " 8 0 sda x 0 0 0 0 0 0 0 0 0 0\n")
        .fail("/sys/devices/virtual/thermal/thermal_zone0/temp");
    let mut sink = VecSink::default();
    let report = collect(&Config::default(), &mut fs, &mut sink);
    assert_eq!(
        report.outcome(Collector::Meminfo),
        Some(&Err(CollectError::Fs {
            path: "/proc/meminfo".into(),
            error: FsError::Io
        }))
    );
    assert!(matches!(
        report.outcome(Collector::Loadavg),
        Some(Err(CollectError::Parse { .. }))
    ));
    assert!(matches!(
        report.outcome(Collector::Diskstats),
        Some(Err(CollectError::Parse { .. }))
    ));
    // The broken zone fails the collector, but the cooling device is still reported.
    assert!(!report.succeeded(Collector::ThermalZone));
    assert_eq!(
        sink.get(
            "node_cooling_device_max_state",
            &[("name", "0"), ("type", "pwm-fan")]
        ),
        Some(4.0)
    );
    assert!(report.succeeded(Collector::Cpu));
    assert_eq!(success(&sink, Collector::Loadavg), Some(0.0));
}

#[test]
fn missing_get_throttled_is_not_applicable_not_a_failure() {
    let mut fs = MemFs::new();
    fs.dir("/sys/devices/platform");
    let cfg = Config {
        collectors: vec![Collector::RpiThrottled],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    let report = collect(&cfg, &mut fs, &mut sink);
    assert!(report.succeeded(Collector::RpiThrottled));
    assert_eq!(sink.samples.len(), 1);

    // Elsewhere when configured so; "0x" is accepted too.
    fs.file("/sys/firmware/throttled", "0x80008\n");
    let cfg = Config {
        rpi_get_throttled: "firmware/throttled".into(),
        ..cfg
    };
    let mut sink = VecSink::default();
    assert!(collect(&cfg, &mut fs, &mut sink).succeeded(Collector::RpiThrottled));
    let flag = |f: &str| sink.get("node_rpi_throttled", &[("flag", f)]);
    assert_eq!(flag("soft_temp_limit_now"), Some(1.0));
    assert_eq!(flag("soft_temp_limit_occurred"), Some(1.0));
    assert_eq!(flag("under_voltage_now"), Some(0.0));
    assert_eq!(
        sink.get("node_rpi_throttled_raw", &[]),
        Some(f64::from(0x80008))
    );
}

#[test]
fn metadata_goes_out_once_per_family_before_its_samples() {
    let mut fs = pi4();
    let mut sink = VecSink::default();
    collect(&Config::default(), &mut fs, &mut sink);
    let mut names: Vec<&str> = sink.metadata.iter().map(|(n, _, _)| n.as_str()).collect();
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total, "a family was described twice");
    assert_eq!(sink.names().len(), total, "a family lacks metadata");
    let kind = |name: &str| {
        sink.metadata
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, k, _)| *k)
    };
    assert_eq!(kind("node_cpu_seconds_total"), Some(MetricType::Counter));
    assert_eq!(kind("node_disk_io_now"), Some(MetricType::Gauge));
    assert_eq!(kind("node_memory_MemTotal_bytes"), Some(MetricType::Gauge));
}

#[test]
fn disabled_collectors_neither_run_nor_report() {
    let mut fs = pi4();
    let cfg = Config {
        collectors: vec![Collector::Uname, Collector::Loadavg, Collector::Loadavg],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    let report = collect(&cfg, &mut fs, &mut sink);
    let ran: Vec<Collector> = report.outcomes.iter().map(|(c, _)| *c).collect();
    assert_eq!(ran, [Collector::Loadavg, Collector::Uname]);
    assert_eq!(sink.family("node_scrape_collector_success").count(), 2);
}

#[test]
fn rootfs_prefix_is_stripped_from_mount_points() {
    let mut fs = MemFs::new();
    fs.file(
        "/proc/1/mounts",
        "/dev/sda1 /host ext4 rw 0 0\n/dev/sda2 /host/data xfs rw 0 0\n",
    );
    let stat = node::StatVfs {
        block_size: 1024,
        blocks: 10,
        ..Default::default()
    };
    fs.mount("/host", stat).mount("/host/data", stat);
    let cfg = Config {
        collectors: vec![Collector::Filesystem],
        rootfs: "/host".into(),
        ..Config::default()
    };
    let mut sink = VecSink::default();
    assert!(collect(&cfg, &mut fs, &mut sink).succeeded(Collector::Filesystem));
    let labels = |mp: &'static str, dev: &'static str, ty: &'static str| {
        [("device", dev), ("mountpoint", mp), ("fstype", ty)]
    };
    let size = "node_filesystem_size_bytes";
    assert_eq!(
        sink.get(size, &labels("/", "/dev/sda1", "ext4")),
        Some(10240.0)
    );
    assert_eq!(
        sink.get(size, &labels("/data", "/dev/sda2", "xfs")),
        Some(10240.0)
    );
}

/// Takes `room` samples, then reports itself stopped, as a plugin's sink does once the host
/// refuses more.
struct Stopping {
    inner: VecSink,
    room: usize,
}

impl node::Sink for Stopping {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if self.inner.samples.len() < self.room {
            self.inner.sample(name, labels, value);
        }
    }

    fn stopped(&self) -> bool {
        self.inner.samples.len() >= self.room
    }
}

#[test]
fn a_stopped_sink_ends_the_collection() {
    let mut fs = pi4();
    let mut full = VecSink::default();
    collect(&Config::default(), &mut fs.clone(), &mut full);
    // Room for the cpu collector's first samples only.
    let mut sink = Stopping {
        inner: VecSink::default(),
        room: 3,
    };
    let report = collect(&Config::default(), &mut fs, &mut sink);
    assert!(full.samples.len() > 3);
    assert_eq!(sink.inner.samples.len(), 3);
    assert_eq!(report.outcomes.len(), Collector::ALL.len());
    // cpu was running when the sink filled up; every later collector was skipped.
    for which in &Collector::ALL[1..] {
        assert_eq!(
            report.outcome(*which),
            Some(&Err(CollectError::Stopped)),
            "{}",
            which.name()
        );
    }
}
