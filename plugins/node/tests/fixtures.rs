//! Exact samples for a Raspberry Pi 4 fixture (see `support`), one collector at a time.

mod support;

use node::{Collector, Config, VecSink, collect};
use support::{expected, pi4, render};

/// Runs one collector on the Pi 4 fixture and checks it succeeded.
fn run_one(which: Collector) -> VecSink {
    let mut fs = pi4();
    let cfg = Config {
        collectors: vec![which],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    let report = collect(&cfg, &mut fs, &mut sink);
    assert_eq!(report.outcome(which), Some(&Ok(())), "{}", which.name());
    assert_eq!(
        sink.get(
            "node_scrape_collector_success",
            &[("collector", which.name())]
        ),
        Some(1.0)
    );
    sink
}

/// USER_HZ ticks / 100; cpu3's missing guest columns read as zero; CPU 3 is isolated.
#[test]
fn pi4_cpu() {
    let sink = run_one(Collector::Cpu);
    let want = expected(
        r##"
        node_cpu_guest_seconds_total{cpu="0",mode="nice"} 0
        node_cpu_guest_seconds_total{cpu="0",mode="user"} 0
        node_cpu_guest_seconds_total{cpu="1",mode="nice"} 0
        node_cpu_guest_seconds_total{cpu="1",mode="user"} 0
        node_cpu_guest_seconds_total{cpu="2",mode="nice"} 0.03
        node_cpu_guest_seconds_total{cpu="2",mode="user"} 0.12
        node_cpu_guest_seconds_total{cpu="3",mode="nice"} 0
        node_cpu_guest_seconds_total{cpu="3",mode="user"} 0
        node_cpu_seconds_total{cpu="0",mode="idle"} 24680
        node_cpu_seconds_total{cpu="0",mode="iowait"} 6
        node_cpu_seconds_total{cpu="0",mode="irq"} 0
        node_cpu_seconds_total{cpu="0",mode="nice"} 2
        node_cpu_seconds_total{cpu="0",mode="softirq"} 4
        node_cpu_seconds_total{cpu="0",mode="steal"} 0
        node_cpu_seconds_total{cpu="0",mode="system"} 110
        node_cpu_seconds_total{cpu="0",mode="user"} 300
        node_cpu_seconds_total{cpu="1",mode="idle"} 24700
        node_cpu_seconds_total{cpu="1",mode="iowait"} 5.8
        node_cpu_seconds_total{cpu="1",mode="irq"} 0
        node_cpu_seconds_total{cpu="1",mode="nice"} 1.9
        node_cpu_seconds_total{cpu="1",mode="softirq"} 1
        node_cpu_seconds_total{cpu="1",mode="steal"} 0
        node_cpu_seconds_total{cpu="1",mode="system"} 115
        node_cpu_seconds_total{cpu="1",mode="user"} 310
        node_cpu_seconds_total{cpu="2",mode="idle"} 24695.43
        node_cpu_seconds_total{cpu="2",mode="iowait"} 5.65
        node_cpu_seconds_total{cpu="2",mode="irq"} 0
        node_cpu_seconds_total{cpu="2",mode="nice"} 1.99
        node_cpu_seconds_total{cpu="2",mode="softirq"} 0.9
        node_cpu_seconds_total{cpu="2",mode="steal"} 0
        node_cpu_seconds_total{cpu="2",mode="system"} 116.78
        node_cpu_seconds_total{cpu="2",mode="user"} 314.56
        node_cpu_seconds_total{cpu="3",mode="idle"} 24690
        node_cpu_seconds_total{cpu="3",mode="iowait"} 6
        node_cpu_seconds_total{cpu="3",mode="irq"} 0
        node_cpu_seconds_total{cpu="3",mode="nice"} 2
        node_cpu_seconds_total{cpu="3",mode="softirq"} 0.88
        node_cpu_seconds_total{cpu="3",mode="steal"} 0
        node_cpu_seconds_total{cpu="3",mode="system"} 115
        node_cpu_seconds_total{cpu="3",mode="user"} 310
        node_cpu_isolated{cpu="3"} 1
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// The system-wide lines of /proc/stat.
#[test]
fn pi4_stat() {
    let sink = run_one(Collector::Stat);
    let want = expected(
        r##"
        node_boot_time_seconds 1700000000
        node_context_switches_total 187654321
        node_forks_total 123456
        node_intr_total 98765432
        node_procs_blocked 1
        node_procs_running 2
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// kB × 1024 with `_bytes`; `Active(anon)` → `Active_anon`; unit-less lines keep their name.
#[test]
fn pi4_meminfo() {
    let sink = run_one(Collector::Meminfo);
    let want = expected(
        r##"
        node_memory_Active_anon_bytes 1216512
        node_memory_Buffers_bytes 37404672
        node_memory_Cached_bytes 595148800
        node_memory_CmaTotal_bytes 536870912
        node_memory_HugePages_Free 0
        node_memory_HugePages_Total 0
        node_memory_Hugepagesize_bytes 2097152
        node_memory_Inactive_file_bytes 304263168
        node_memory_MemAvailable_bytes 3481862144
        node_memory_MemFree_bytes 2925268992
        node_memory_MemTotal_bytes 3977601024
        node_memory_SwapTotal_bytes 104853504
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// The first three fields.
#[test]
fn pi4_loadavg() {
    let sink = run_one(Collector::Loadavg);
    let want = expected(
        r##"
        node_load1 0.42
        node_load15 0.27
        node_load5 0.31
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// ram0, loop0 and sda1 excluded; sda has 11 statistics (pre-4.18 kernel); sectors × 512;
/// ms / 1000 (with the float rounding node_exporter has too); udev fills mmcblk0's labels.
#[test]
fn pi4_diskstats() {
    let sink = run_one(Collector::Diskstats);
    let want = expected(
        r##"
        node_disk_discard_time_seconds_total{device="mmcblk0"} 0.003
        node_disk_discard_time_seconds_total{device="mmcblk0p1"} 0
        node_disk_discarded_sectors_total{device="mmcblk0"} 56
        node_disk_discarded_sectors_total{device="mmcblk0p1"} 0
        node_disk_discards_completed_total{device="mmcblk0"} 7
        node_disk_discards_completed_total{device="mmcblk0p1"} 0
        node_disk_discards_merged_total{device="mmcblk0"} 0
        node_disk_discards_merged_total{device="mmcblk0p1"} 0
        node_disk_flush_requests_time_seconds_total{device="mmcblk0"} 1.234
        node_disk_flush_requests_time_seconds_total{device="mmcblk0p1"} 0
        node_disk_flush_requests_total{device="mmcblk0"} 4567
        node_disk_flush_requests_total{device="mmcblk0p1"} 0
        node_disk_info{device="mmcblk0",major="179",minor="0",path="platform-fe340000.mmc",wwn="",model="",serial="0x1234abcd",revision=""} 1
        node_disk_info{device="mmcblk0p1",major="179",minor="1",path="",wwn="",model="",serial="",revision=""} 1
        node_disk_info{device="sda",major="8",minor="0",path="",wwn="",model="",serial="",revision=""} 1
        node_disk_io_now{device="mmcblk0"} 0
        node_disk_io_now{device="mmcblk0p1"} 0
        node_disk_io_now{device="sda"} 1
        node_disk_io_time_seconds_total{device="mmcblk0"} 123.45
        node_disk_io_time_seconds_total{device="mmcblk0p1"} 0.6
        node_disk_io_time_seconds_total{device="sda"} 0.09
        node_disk_io_time_weighted_seconds_total{device="mmcblk0"} 935.578
        node_disk_io_time_weighted_seconds_total{device="mmcblk0p1"} 0.5680000000000001
        node_disk_io_time_weighted_seconds_total{device="sda"} 0.1
        node_disk_read_bytes_total{device="mmcblk0"} 632098304
        node_disk_read_bytes_total{device="mmcblk0p1"} 23387136
        node_disk_read_bytes_total{device="sda"} 1536000
        node_disk_read_time_seconds_total{device="mmcblk0"} 45.678000000000004
        node_disk_read_time_seconds_total{device="mmcblk0p1"} 0.5670000000000001
        node_disk_read_time_seconds_total{device="sda"} 0.04
        node_disk_reads_completed_total{device="mmcblk0"} 22334
        node_disk_reads_completed_total{device="mmcblk0p1"} 321
        node_disk_reads_completed_total{device="sda"} 100
        node_disk_reads_merged_total{device="mmcblk0"} 9876
        node_disk_reads_merged_total{device="mmcblk0p1"} 1234
        node_disk_reads_merged_total{device="sda"} 2
        node_disk_write_time_seconds_total{device="mmcblk0"} 889.9
        node_disk_write_time_seconds_total{device="mmcblk0p1"} 0.001
        node_disk_write_time_seconds_total{device="sda"} 0.008
        node_disk_writes_completed_total{device="mmcblk0"} 11223
        node_disk_writes_completed_total{device="mmcblk0p1"} 2
        node_disk_writes_completed_total{device="sda"} 5
        node_disk_writes_merged_total{device="mmcblk0"} 33445
        node_disk_writes_merged_total{device="mmcblk0p1"} 0
        node_disk_writes_merged_total{device="sda"} 6
        node_disk_written_bytes_total{device="mmcblk0"} 285018624
        node_disk_written_bytes_total{device="mmcblk0p1"} 1024
        node_disk_written_bytes_total{device="sda"} 35840
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// lo excluded; rx_nohandler comes from sysfs.
#[test]
fn pi4_netdev() {
    let sink = run_one(Collector::Netdev);
    let want = expected(
        r##"
        node_network_receive_bytes_total{device="eth0"} 987654321
        node_network_receive_compressed_total{device="eth0"} 0
        node_network_receive_drop_total{device="eth0"} 12
        node_network_receive_errs_total{device="eth0"} 1
        node_network_receive_fifo_total{device="eth0"} 2
        node_network_receive_frame_total{device="eth0"} 3
        node_network_receive_multicast_total{device="eth0"} 3456
        node_network_receive_nohandler_total{device="eth0"} 9
        node_network_receive_packets_total{device="eth0"} 765432
        node_network_transmit_bytes_total{device="eth0"} 123456789
        node_network_transmit_carrier_total{device="eth0"} 8
        node_network_transmit_colls_total{device="eth0"} 7
        node_network_transmit_compressed_total{device="eth0"} 0
        node_network_transmit_drop_total{device="eth0"} 5
        node_network_transmit_errs_total{device="eth0"} 4
        node_network_transmit_fifo_total{device="eth0"} 6
        node_network_transmit_packets_total{device="eth0"} 234567
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// Pseudo filesystems, /run and /mnt excluded; the bind-mounted /boot/firmware once;
/// /srv/data read-only from its mount options; /srv/broken only reports a device error.
#[test]
fn pi4_filesystem() {
    let sink = run_one(Collector::Filesystem);
    let want = expected(
        r##"
        node_filesystem_avail_bytes{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 204800000
        node_filesystem_avail_bytes{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 19251200000
        node_filesystem_avail_bytes{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 0
        node_filesystem_device_error{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 0
        node_filesystem_device_error{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 0
        node_filesystem_device_error{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 0
        node_filesystem_device_error{device="/dev/sda3",mountpoint="/srv/broken",fstype="ext4"} 1
        node_filesystem_files_free{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 0
        node_filesystem_files_free{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 1700000
        node_filesystem_files_free{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 10
        node_filesystem_files{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 0
        node_filesystem_files{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 1900000
        node_filesystem_files{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 65536
        node_filesystem_free_bytes{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 204800000
        node_filesystem_free_bytes{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 20480000000
        node_filesystem_free_bytes{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 0
        node_filesystem_readonly{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 0
        node_filesystem_readonly{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 0
        node_filesystem_readonly{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 1
        node_filesystem_size_bytes{device="/dev/mmcblk0p1",mountpoint="/boot/firmware",fstype="vfat"} 268435456
        node_filesystem_size_bytes{device="/dev/mmcblk0p2",mountpoint="/",fstype="ext4"} 30720000000
        node_filesystem_size_bytes{device="/dev/sda2",mountpoint="/srv/data",fstype="ext4"} 1073741824
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// hwmon0's chip is named after its device (the thermal zone), whose `temp` file is sensor
/// temp0; hwmon1's is `soc:firmware` + `raspberrypi-hwmon`, cleaned.
#[test]
fn pi4_hwmon() {
    let sink = run_one(Collector::Hwmon);
    let want = expected(
        r##"
        node_hwmon_chip_names{chip="soc:firmware_raspberrypi_hwmon",chip_name="rpi_volt"} 1
        node_hwmon_chip_names{chip="thermal_thermal_zone0",chip_name="cpu_thermal"} 1
        node_hwmon_in_lcrit_alarm_volts{chip="soc:firmware_raspberrypi_hwmon",sensor="in0"} 0
        node_hwmon_temp_celsius{chip="thermal_thermal_zone0",sensor="temp0"} 47.712
        node_hwmon_temp_celsius{chip="thermal_thermal_zone0",sensor="temp1"} 47.712
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// Millidegrees / 1000.
#[test]
fn pi4_thermal_zone() {
    let sink = run_one(Collector::ThermalZone);
    let want = expected(
        r##"
        node_cooling_device_cur_state{name="0",type="pwm-fan"} 1
        node_cooling_device_max_state{name="0",type="pwm-fan"} 4
        node_thermal_zone_temp{zone="0",type="cpu-thermal"} 47.712
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// 0x50005: bits 0, 2, 16 and 18.
#[test]
fn pi4_rpi_throttled() {
    let sink = run_one(Collector::RpiThrottled);
    let want = expected(
        r##"
        node_rpi_throttled_raw 327685
        node_rpi_throttled{flag="arm_freq_capped_now"} 0
        node_rpi_throttled{flag="arm_freq_capped_occurred"} 0
        node_rpi_throttled{flag="soft_temp_limit_now"} 0
        node_rpi_throttled{flag="soft_temp_limit_occurred"} 0
        node_rpi_throttled{flag="throttled_now"} 1
        node_rpi_throttled{flag="throttled_occurred"} 1
        node_rpi_throttled{flag="under_voltage_now"} 1
        node_rpi_throttled{flag="under_voltage_occurred"} 1
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// Trailing newlines trimmed.
#[test]
fn pi4_uname() {
    let sink = run_one(Collector::Uname);
    let want = expected(
        r##"
        node_uname_info{sysname="Linux",release="6.1.21-v8+",version="#1642 SMP PREEMPT Mon Apr  3 17:24:16 BST 2023",machine="aarch64",nodename="raspberrypi",domainname="(none)"} 1
        "##,
    );
    assert_eq!(render(&sink), want);
}

/// x86 thermal-throttle counters: one reading per package and per (package, core), taken from
/// the first CPU (in name order) that has them; hyperthread siblings share a core.
#[test]
fn x86_thermal_throttle_counters() {
    let mut fs = node::MemFs::new();
    fs.file("/proc/stat", "cpu0 1 0 0 0\n");
    for (cpu, core, core_count) in [("cpu0", "0", "7"), ("cpu1", "1", "9"), ("cpu2", "0", "99")] {
        let dir = format!("/sys/devices/system/cpu/{cpu}");
        fs.file(&format!("{dir}/topology/physical_package_id"), "0\n")
            .file(&format!("{dir}/topology/core_id"), format!("{core}\n"))
            .file(
                &format!("{dir}/thermal_throttle/core_throttle_count"),
                core_count,
            )
            .file(
                &format!("{dir}/thermal_throttle/package_throttle_count"),
                "42\n",
            );
    }
    fs.file("/sys/devices/system/cpu/cpufreq/policy0/x", "");
    let cfg = Config {
        collectors: vec![Collector::Cpu],
        ..Config::default()
    };
    let mut sink = VecSink::default();
    assert!(collect(&cfg, &mut fs, &mut sink).succeeded(Collector::Cpu));
    let core = "node_cpu_core_throttles_total";
    assert_eq!(
        sink.get(core, &[("package", "0"), ("core", "0")]),
        Some(7.0)
    );
    assert_eq!(
        sink.get(core, &[("package", "0"), ("core", "1")]),
        Some(9.0)
    );
    assert_eq!(sink.family(core).count(), 2);
    let package = "node_cpu_package_throttles_total";
    assert_eq!(sink.get(package, &[("package", "0")]), Some(42.0));
    assert_eq!(sink.family(package).count(), 1);
}
