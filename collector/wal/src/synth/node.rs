//! The series of one node_exporter-like host and how each behaves.

use super::{Builder, Kind, counter};

/// Adds about 410 series for one host (labelled by `b.instance`).
pub(super) fn add_host(b: &mut Builder) {
    const MODES: [(&str, f64); 8] = [
        ("idle", 0.9),
        ("user", 0.05),
        ("system", 0.02),
        ("iowait", 0.005),
        ("irq", 0.0),
        ("nice", 0.0),
        ("softirq", 0.002),
        ("steal", 0.0),
    ];
    for cpu in ["0", "1", "2", "3"] {
        for (mode, rate) in MODES {
            let k = if rate == 0.0 {
                Kind::Const(0.0)
            } else {
                counter(rate, 1.0, 2)
            };
            b.add("node_cpu_seconds_total", &[("cpu", cpu), ("mode", mode)], k);
        }
        for m in [
            "node_schedstat_running_seconds_total",
            "node_schedstat_waiting_seconds_total",
        ] {
            b.add(m, &[("cpu", cpu)], counter(0.05, 1.0, 9));
        }
        b.add(
            "node_schedstat_timeslices_total",
            &[("cpu", cpu)],
            counter(40.0, 1.0, 0),
        );
        b.add(
            "node_cpu_scaling_frequency_hertz",
            &[("cpu", cpu)],
            Kind::Gauge {
                mean: 1.2e9,
                spread: 1.2e9,
                step: 3e8,
                p: 0.2,
            },
        );
    }
    const MEM: [&str; 40] = [
        "MemTotal",
        "MemFree",
        "MemAvailable",
        "Buffers",
        "Cached",
        "SwapCached",
        "Active",
        "Inactive",
        "Active_anon",
        "Inactive_anon",
        "Active_file",
        "Inactive_file",
        "Unevictable",
        "Mlocked",
        "SwapTotal",
        "SwapFree",
        "Dirty",
        "Writeback",
        "AnonPages",
        "Mapped",
        "Shmem",
        "KReclaimable",
        "Slab",
        "SReclaimable",
        "SUnreclaim",
        "KernelStack",
        "PageTables",
        "NFS_Unstable",
        "Bounce",
        "WritebackTmp",
        "CommitLimit",
        "Committed_AS",
        "VmallocTotal",
        "VmallocUsed",
        "VmallocChunk",
        "Percpu",
        "CmaTotal",
        "CmaFree",
        "HugePages_Total",
        "Hugepagesize",
    ];
    for (i, m) in MEM.iter().enumerate() {
        let name = format!("node_memory_{m}_bytes");
        let k = match i % 4 {
            0 => Kind::Const(((i as f64) + 1.0) * 1_048_576.0),
            1 | 2 => Kind::Gauge {
                mean: 2e8,
                spread: 4e6,
                step: 4096.0,
                p: 0.7,
            },
            _ => Kind::Gauge {
                mean: 5e7,
                spread: 1e5,
                step: 4096.0,
                p: 0.2,
            },
        };
        b.add(&name, &[], k);
    }
    const NET: [(&str, f64, f64); 8] = [
        ("receive_bytes", 3000.0, 1.0),
        ("transmit_bytes", 2000.0, 1.0),
        ("receive_packets", 12.0, 1.0),
        ("transmit_packets", 9.0, 1.0),
        ("receive_errs", 0.01, 0.01),
        ("transmit_errs", 0.01, 0.01),
        ("receive_drop", 0.05, 0.05),
        ("receive_multicast", 0.2, 0.3),
    ];
    for dev in ["eth0", "lo", "wlan0"] {
        for (m, rate, p) in NET {
            b.add(
                &format!("node_network_{m}_total"),
                &[("device", dev)],
                counter(rate, p, 0),
            );
        }
        for m in [
            "transmit_drop",
            "receive_fifo",
            "transmit_fifo",
            "receive_frame",
        ] {
            b.add(
                &format!("node_network_{m}_total"),
                &[("device", dev)],
                Kind::Const(0.0),
            );
        }
        b.add("node_network_up", &[("device", dev)], Kind::Const(1.0));
        b.add(
            "node_network_mtu_bytes",
            &[("device", dev)],
            Kind::Const(1500.0),
        );
        b.add(
            "node_network_info",
            &[("device", dev), ("operstate", "up")],
            Kind::Const(1.0),
        );
    }
    for dev in ["mmcblk0", "mmcblk0p1", "mmcblk0p2"] {
        for (m, rate, p, d) in [
            ("reads_completed_total", 0.5, 0.3, 0),
            ("writes_completed_total", 2.0, 0.9, 0),
            ("read_bytes_total", 2048.0, 0.3, 0),
            ("written_bytes_total", 16384.0, 0.9, 0),
            ("io_time_seconds_total", 0.01, 0.9, 3),
            ("read_time_seconds_total", 0.002, 0.3, 3),
            ("write_time_seconds_total", 0.02, 0.9, 3),
            ("io_time_weighted_seconds_total", 0.03, 0.9, 3),
            ("reads_merged_total", 0.1, 0.1, 0),
            ("writes_merged_total", 1.0, 0.8, 0),
            ("discards_completed_total", 0.0, 0.0, 0),
            ("discarded_sectors_total", 0.0, 0.0, 0),
            ("flush_requests_total", 0.1, 0.2, 0),
        ] {
            b.add(
                &format!("node_disk_{m}"),
                &[("device", dev)],
                counter(rate, p, d),
            );
        }
        b.add(
            "node_disk_io_now",
            &[("device", dev)],
            Kind::Gauge {
                mean: 0.0,
                spread: 2.0,
                step: 1.0,
                p: 0.1,
            },
        );
    }
    for mp in [
        "/",
        "/boot/firmware",
        "/run",
        "/run/lock",
        "/run/user/1000",
        "/tmp",
    ] {
        for (m, k) in [
            ("size_bytes", Kind::Const(3.1e10)),
            (
                "free_bytes",
                Kind::Gauge {
                    mean: 2e10,
                    spread: 1e6,
                    step: 4096.0,
                    p: 0.3,
                },
            ),
            (
                "avail_bytes",
                Kind::Gauge {
                    mean: 1.9e10,
                    spread: 1e6,
                    step: 4096.0,
                    p: 0.3,
                },
            ),
            ("files", Kind::Const(1_900_000.0)),
            (
                "files_free",
                Kind::Gauge {
                    mean: 1.7e6,
                    spread: 40.0,
                    step: 1.0,
                    p: 0.3,
                },
            ),
            ("readonly", Kind::Const(0.0)),
            ("device_error", Kind::Const(0.0)),
        ] {
            b.add(
                &format!("node_filesystem_{m}"),
                &[("fstype", "ext4"), ("mountpoint", mp)],
                k,
            );
        }
    }
    for (m, mean) in [
        ("node_load1", 0.4),
        ("node_load5", 0.35),
        ("node_load15", 0.3),
    ] {
        b.add(
            m,
            &[],
            Kind::Gauge {
                mean,
                spread: 0.3,
                step: 0.01,
                p: 0.9,
            },
        );
    }
    b.add(
        "node_thermal_zone_temp",
        &[("type", "cpu-thermal"), ("zone", "0")],
        Kind::Gauge {
            mean: 48.0,
            spread: 4.0,
            step: 0.001,
            p: 0.9,
        },
    );
    for (m, rate, p) in [
        ("node_context_switches_total", 900.0, 1.0),
        ("node_intr_total", 1500.0, 1.0),
        ("node_forks_total", 1.5, 0.9),
        ("node_vmstat_pgfault", 800.0, 1.0),
        ("node_vmstat_pgmajfault", 0.02, 0.05),
        ("node_vmstat_pgpgin", 2.0, 0.3),
        ("node_vmstat_pgpgout", 16.0, 0.9),
        ("node_vmstat_pswpin", 0.0, 0.0),
        ("node_vmstat_pswpout", 0.0, 0.0),
        ("node_vmstat_oom_kill", 0.0, 0.0),
    ] {
        b.add(m, &[], counter(rate, p, 0));
    }
    for i in 0..40 {
        let m = format!("node_netstat_stat{i:02}_total");
        let rate = [0.0, 0.01, 0.5, 5.0][i % 4];
        b.add(&m, &[], counter(rate, [0.0, 0.05, 0.5, 1.0][i % 4], 0));
    }
    for c in [
        "arp",
        "bcache",
        "bonding",
        "btrfs",
        "conntrack",
        "cpu",
        "cpufreq",
        "diskstats",
        "dmi",
        "edac",
        "entropy",
        "fibrechannel",
        "filefd",
        "filesystem",
        "hwmon",
        "infiniband",
        "ipvs",
        "loadavg",
        "mdadm",
        "meminfo",
        "netclass",
        "netdev",
        "netstat",
        "nfs",
        "nfsd",
        "nvme",
        "os",
        "powersupplyclass",
        "pressure",
        "rapl",
        "schedstat",
        "selinux",
        "sockstat",
        "softnet",
        "stat",
        "tapestats",
        "textfile",
        "thermal_zone",
        "time",
        "timex",
        "udp_queues",
        "uname",
        "vmstat",
        "watchdog",
        "xfs",
        "zfs",
    ] {
        b.add(
            "node_scrape_collector_success",
            &[("collector", c)],
            Kind::Const(1.0),
        );
        b.add(
            "node_scrape_collector_duration_seconds",
            &[("collector", c)],
            Kind::Noise { lo: 1e-5, hi: 5e-3 },
        );
    }
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        b.add(
            "go_gc_duration_seconds",
            &[("quantile", q)],
            Kind::Noise { lo: 2e-5, hi: 4e-4 },
        );
    }
    b.add("go_gc_duration_seconds_sum", &[], counter(0.0005, 0.3, 9));
    b.add("go_gc_duration_seconds_count", &[], counter(0.02, 0.3, 0));
    for (i, m) in [
        "alloc_bytes",
        "heap_alloc_bytes",
        "heap_inuse_bytes",
        "heap_idle_bytes",
        "stack_inuse_bytes",
        "sys_bytes",
        "heap_sys_bytes",
        "mspan_inuse_bytes",
        "next_gc_bytes",
        "heap_objects",
    ]
    .iter()
    .enumerate()
    {
        let k = if i < 5 {
            Kind::Gauge {
                mean: 3e6,
                spread: 1e6,
                step: 8.0,
                p: 1.0,
            }
        } else {
            Kind::Gauge {
                mean: 1.2e7,
                spread: 1e5,
                step: 8192.0,
                p: 0.1,
            }
        };
        b.add(&format!("go_memstats_{m}"), &[], k);
    }
    b.add(
        "go_memstats_alloc_bytes_total",
        &[],
        counter(40_000.0, 1.0, 0),
    );
    b.add(
        "go_goroutines",
        &[],
        Kind::Gauge {
            mean: 8.0,
            spread: 2.0,
            step: 1.0,
            p: 0.1,
        },
    );
    b.add("go_info", &[("version", "go1.22.4")], Kind::Const(1.0));
    b.add("process_cpu_seconds_total", &[], counter(0.004, 1.0, 2));
    b.add(
        "process_resident_memory_bytes",
        &[],
        Kind::Gauge {
            mean: 1.8e7,
            spread: 2e5,
            step: 4096.0,
            p: 0.5,
        },
    );
    b.add(
        "process_open_fds",
        &[],
        Kind::Gauge {
            mean: 9.0,
            spread: 2.0,
            step: 1.0,
            p: 0.1,
        },
    );
    b.add(
        "process_start_time_seconds",
        &[],
        Kind::Const(1.70000123456e9),
    );
    for le in [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ] {
        let rate = match le {
            "0.005" => 0.01,
            "0.01" => 0.03,
            _ => 0.066,
        };
        b.add(
            "http_request_duration_seconds_bucket",
            &[("handler", "/metrics"), ("le", le)],
            counter(rate, 1.0, 0),
        );
    }
    b.add(
        "http_request_duration_seconds_sum",
        &[("handler", "/metrics")],
        counter(0.001, 1.0, 9),
    );
    b.add(
        "http_request_duration_seconds_count",
        &[("handler", "/metrics")],
        counter(0.066, 1.0, 0),
    );
    for code in ["200", "500", "503"] {
        let k = if code == "200" {
            counter(0.066, 1.0, 0)
        } else {
            Kind::Const(0.0)
        };
        b.add(
            "promhttp_metric_handler_requests_total",
            &[("code", code)],
            k,
        );
    }
    b.add(
        "node_uname_info",
        &[("machine", "aarch64"), ("release", "6.6.31")],
        Kind::Const(1.0),
    );
    b.add(
        "node_os_info",
        &[("id", "debian"), ("version_id", "12")],
        Kind::Const(1.0),
    );
    b.add("node_boot_time_seconds", &[], Kind::Const(1.7e9));
    b.add("node_time_seconds", &[], counter(1.0, 1.0, 3));
    b.add("node_entropy_available_bits", &[], Kind::Const(256.0));
    b.add(
        "node_filefd_allocated",
        &[],
        Kind::Gauge {
            mean: 900.0,
            spread: 40.0,
            step: 1.0,
            p: 0.5,
        },
    );
}
