//! A Raspberry Pi 4 (4 GB, Raspberry Pi OS 64-bit, kernel 6.1) as an in-memory filesystem.
//!
//! Contents are trimmed copies of the real files; comments say what each part exercises.

#![allow(dead_code)]

use node::{MemFs, StatVfs, VecSink};

/// Four cores; columns: user nice system idle iowait irq softirq steal guest guest_nice.
/// `cpu3` has only the eight columns of pre-2.6.33 kernels: guest reads as zero.
pub const PROC_STAT: &str = "\
cpu  123456 789 45678 9876543 2345 0 678 0 0 0
cpu0 30000 200 11000 2468000 600 0 400 0 0 0
cpu1 31000 190 11500 2470000 580 0 100 0 0 0
cpu2 31456 199 11678 2469543 565 0 90 0 12 3
cpu3 31000 200 11500 2469000 600 0 88 0
intr 98765432 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12 0 0
ctxt 187654321
btime 1700000000
processes 123456
procs_running 2
procs_blocked 1
softirq 12345678 1 2345 3 4567 5 0 6 7 8 9
";

/// Includes the unit-less `HugePages_*` lines and the `(anon)`/`(file)` keys.
pub const PROC_MEMINFO: &str = "\
MemTotal:        3884376 kB
MemFree:         2856708 kB
MemAvailable:    3400256 kB
Buffers:           36528 kB
Cached:           581200 kB
Active(anon):       1188 kB
Inactive(file):   297132 kB
SwapTotal:        102396 kB
CmaTotal:         524288 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
";

pub const PROC_LOADAVG: &str = "0.42 0.31 0.27 2/321 12345\n";

/// RAM disks and loop devices are excluded by default, SD-card partitions are not; `sda1`
/// (a USB SSD partition) is excluded. `sda` has the 14 fields of a pre-4.18 kernel.
pub const PROC_DISKSTATS: &str = "\
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       0 loop0 11 0 22 3 0 0 0 0 0 4 3 0 0 0 0 0 0
 179       0 mmcblk0 22334 9876 1234567 45678 11223 33445 556677 889900 0 123450 935578 7 0 56 3 4567 1234
 179       1 mmcblk0p1 321 1234 45678 567 2 0 2 1 0 600 568 0 0 0 0 0 0
   8       0 sda 100 2 3000 40 5 6 70 8 1 90 100
   8       1 sda1 90 2 2900 39 5 6 70 8 0 80 90
";

pub const PROC_NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456    1000    0    0    0     0          0         0   123456    1000    0    0    0     0       0          0
  eth0: 987654321 765432    1   12    2     3          0      3456 123456789 234567    4    5    6     7       8          0
";

/// The root and boot partitions are reported; pseudo filesystems, `/run` and `/mnt` are not;
/// the boot partition appears twice (bind mount) but is reported once; `/srv/data` is mounted
/// read-only; `/srv/broken`'s `statvfs` fails.
pub const PROC_MOUNTS: &str = "\
/dev/mmcblk0p2 / ext4 rw,noatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=1800000k,nr_inodes=450000,mode=755 0 0
proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=776876k,nr_inodes=819200,mode=755 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,relatime,fmask=0022,dmask=0022 0 0
/dev/mmcblk0p1 /boot/firmware vfat rw,relatime,fmask=0022,dmask=0022 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda2 /srv/data ext4 ro,relatime 0 0
/dev/sda3 /srv/broken ext4 rw,relatime 0 0
//nas/share /mnt/nas cifs rw,relatime 0 0
";

/// The firmware's throttling word: under-voltage and throttling now, and both have occurred.
pub const GET_THROTTLED: &str = "50005\n";

pub fn pi4() -> MemFs {
    let mut fs = MemFs::new();
    fs.file("/proc/stat", PROC_STAT)
        .file("/proc/meminfo", PROC_MEMINFO)
        .file("/proc/loadavg", PROC_LOADAVG)
        .file("/proc/diskstats", PROC_DISKSTATS)
        .file("/proc/net/dev", PROC_NET_DEV)
        .file("/proc/1/mounts", PROC_MOUNTS)
        .file("/proc/sys/kernel/ostype", "Linux\n")
        .file("/proc/sys/kernel/osrelease", "6.1.21-v8+\n")
        .file(
            "/proc/sys/kernel/version",
            "#1642 SMP PREEMPT Mon Apr  3 17:24:16 BST 2023\n",
        )
        .file("/proc/sys/kernel/hostname", "raspberrypi\n")
        .file("/proc/sys/kernel/domainname", "(none)\n")
        .file("/proc/sys/kernel/arch", "aarch64\n");

    // udev knows the SD card.
    fs.file(
        "/run/udev/data/b179:0",
        "S:disk/by-path/platform-fe340000.mmc\nE:ID_PATH=platform-fe340000.mmc\nE:ID_SERIAL_SHORT=0x1234abcd\nE:ID_NAME=SC32G\n",
    );

    let gib = 1 << 30;
    fs.mount(
        "/",
        StatVfs {
            block_size: 4096,
            blocks: 7_500_000,
            blocks_free: 5_000_000,
            blocks_avail: 4_700_000,
            files: 1_900_000,
            files_free: 1_700_000,
            readonly: false,
        },
    )
    .mount(
        "/boot/firmware",
        StatVfs {
            block_size: 512,
            blocks: 524_288,
            blocks_free: 400_000,
            blocks_avail: 400_000,
            files: 0,
            files_free: 0,
            readonly: false,
        },
    )
    .mount(
        "/srv/data",
        StatVfs {
            block_size: 4096,
            blocks: gib / 4096,
            blocks_free: 0,
            blocks_avail: 0,
            files: 65536,
            files_free: 10,
            readonly: true,
        },
    )
    .fail("/srv/broken");

    // sysfs: eth0 has the netlink-only counter; hwmon0 is the SoC sensor, whose `device`
    // link points at the thermal zone (whose `temp` file becomes sensor `temp0`); hwmon1 is
    // the firmware's under-voltage detector.
    fs.file("/sys/class/net/eth0/statistics/rx_nohandler", "9\n");
    // Booted with `isolcpus=3`, as for a real-time task.
    fs.file("/sys/devices/system/cpu/isolated", "3\n");
    let tz0 = "/sys/devices/virtual/thermal/thermal_zone0";
    fs.link("/sys/class/thermal/thermal_zone0", tz0)
        .file(&format!("{tz0}/type"), "cpu-thermal\n")
        .file(&format!("{tz0}/temp"), "47712\n")
        .file(&format!("{tz0}/policy"), "step_wise\n")
        .file(&format!("{tz0}/mode"), "enabled\n")
        .file(&format!("{tz0}/trip_point_0_temp"), "110000\n")
        .dir(&format!("{tz0}/power"));
    // A Pi 5-style fan as a cooling device.
    let cd0 = "/sys/devices/virtual/thermal/cooling_device0";
    fs.link("/sys/class/thermal/cooling_device0", cd0)
        .file(&format!("{cd0}/type"), "pwm-fan\n")
        .file(&format!("{cd0}/cur_state"), "1\n")
        .file(&format!("{cd0}/max_state"), "4\n");

    let hw0 = format!("{tz0}/hwmon0");
    fs.link("/sys/class/hwmon/hwmon0", &hw0)
        .file(&format!("{hw0}/name"), "cpu_thermal\n")
        .file(&format!("{hw0}/temp1_input"), "47712\n")
        .link(&format!("{hw0}/device"), tz0);
    let rpi_hwmon = "/sys/devices/platform/soc/soc:firmware/raspberrypi-hwmon";
    let hw1 = format!("{rpi_hwmon}/hwmon/hwmon1");
    fs.link("/sys/class/hwmon/hwmon1", &hw1)
        .file(&format!("{hw1}/name"), "rpi_volt\n")
        .file(&format!("{hw1}/in0_lcrit_alarm"), "0\n")
        .link(&format!("{hw1}/device"), rpi_hwmon)
        .file(
            &format!("{rpi_hwmon}/modalias"),
            "platform:raspberrypi-hwmon\n",
        );

    fs.file(
        "/sys/devices/platform/soc/soc:firmware/get_throttled",
        GET_THROTTLED,
    );
    fs
}

/// Samples rendered as exposition-format lines (labels in emission order), sorted, without
/// `node_scrape_collector_success`.
pub fn render(sink: &VecSink) -> Vec<String> {
    let mut lines: Vec<String> = sink
        .samples
        .iter()
        .filter(|s| s.name != "node_scrape_collector_success")
        .map(|s| {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            if labels.is_empty() {
                format!("{} {}", s.name, s.value)
            } else {
                format!("{}{{{}}} {}", s.name, labels.join(","), s.value)
            }
        })
        .collect();
    lines.sort();
    lines
}

/// Splits an expected block into sorted lines.
pub fn expected(block: &str) -> Vec<String> {
    let mut lines: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.sort();
    lines
}
