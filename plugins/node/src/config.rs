//! What to collect and where to look.
//!
//! Defaults reproduce the `prometheus-node-exporter` 1.5 package of Debian (and so of Raspberry
//! Pi OS), whose exclusion defaults differ slightly from upstream's; each list names the
//! node_exporter flag it mirrors. Exclusion lists are globs (see [`crate::pattern`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One collector. [`Collector::name`] is the `collector` label of
/// `node_scrape_collector_success`, identical to node_exporter's where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collector {
    /// `node_cpu_*` from `/proc/stat` and `/sys/devices/system/cpu`.
    Cpu,
    /// `node_boot_time_seconds`, `node_context_switches_total`, ... from `/proc/stat`.
    Stat,
    /// `node_memory_*` from `/proc/meminfo`.
    Meminfo,
    /// `node_load1/5/15` from `/proc/loadavg`.
    Loadavg,
    /// `node_disk_*` from `/proc/diskstats` (and udev data when readable).
    Diskstats,
    /// `node_network_*_total` from `/proc/net/dev`.
    Netdev,
    /// `node_filesystem_*` from the mount table and `statvfs`.
    Filesystem,
    /// `node_hwmon_*` from `/sys/class/hwmon`.
    Hwmon,
    /// `node_thermal_zone_temp` and `node_cooling_device_*` from `/sys/class/thermal`.
    ThermalZone,
    /// `node_rpi_throttled*` from the Raspberry Pi firmware's `get_throttled`; not part of
    /// node_exporter.
    RpiThrottled,
    /// `node_uname_info` from `/proc/sys/kernel`.
    Uname,
}

impl Collector {
    /// Every collector, in collection order.
    pub const ALL: [Collector; 11] = [
        Collector::Cpu,
        Collector::Stat,
        Collector::Meminfo,
        Collector::Loadavg,
        Collector::Diskstats,
        Collector::Netdev,
        Collector::Filesystem,
        Collector::Hwmon,
        Collector::ThermalZone,
        Collector::RpiThrottled,
        Collector::Uname,
    ];

    /// The collector's name, as node_exporter spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Collector::Cpu => "cpu",
            Collector::Stat => "stat",
            Collector::Meminfo => "meminfo",
            Collector::Loadavg => "loadavg",
            Collector::Diskstats => "diskstats",
            Collector::Netdev => "netdev",
            Collector::Filesystem => "filesystem",
            Collector::Hwmon => "hwmon",
            Collector::ThermalZone => "thermal_zone",
            Collector::RpiThrottled => "rpi_throttled",
            Collector::Uname => "uname",
        }
    }

    /// The collector called `name`, if any.
    pub fn from_name(name: &str) -> Option<Collector> {
        Collector::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// `--collector.filesystem.mount-points-exclude` of Debian's package,
/// `^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`.
/// Upstream excludes `run/credentials/.+` instead of `run`, and keeps `/mnt` and `/media`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &[&str] = &[
    "/dev",
    "/dev/*",
    "/proc",
    "/proc/*",
    "/run",
    "/run/*",
    "/sys",
    "/sys/*",
    "/mnt",
    "/mnt/*",
    "/media",
    "/media/*",
    "/var/lib/docker/?*",
    "/var/lib/containers/storage/?*",
];

/// `--collector.filesystem.fs-types-exclude` (same upstream and in Debian).
pub const DEFAULT_FS_TYPES_EXCLUDE: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// `--collector.diskstats.device-exclude`,
/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`: RAM disks, loop devices, floppies and
/// partitions of SCSI, virtio, Xen and NVMe disks. SD-card partitions (`mmcblk0p1`) are kept,
/// as node_exporter keeps them.
pub const DEFAULT_DISK_DEVICES_EXCLUDE: &[&str] = &[
    "ram#",
    "loop#",
    "fd#",
    "[hsv]d[a-z]#",
    "xvd[a-z]#",
    "nvme#n#p#",
];

/// `--collector.netdev.device-exclude` of Debian's package, `^lo$` (upstream excludes nothing).
pub const DEFAULT_NET_DEVICES_EXCLUDE: &[&str] = &["lo"];

/// Default of [`Config::rpi_get_throttled`].
pub const DEFAULT_RPI_GET_THROTTLED: &str = "devices/platform/soc/soc:firmware/get_throttled";

/// Configuration of one [`collect`](crate::collect) call. `Default` enables everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Collectors to run; the rest are neither run nor reported.
    pub collectors: Vec<Collector>,
    /// Where procfs is mounted (`--path.procfs`).
    pub procfs: String,
    /// Where sysfs is mounted (`--path.sysfs`).
    pub sysfs: String,
    /// The host's root filesystem (`--path.rootfs`): mount points are `statvfs`ed under it and
    /// reported with it stripped, for running in a container that mounts the host at `/host`.
    pub rootfs: String,
    /// udev's database (`--collector.diskstats.udev-data-path` in later releases), for the
    /// `path`, `model`, `serial`... labels of `node_disk_info`; absent or denied means empty
    /// labels.
    pub udev_data: String,
    /// Mount points not reported (globs over the mount point, after stripping `rootfs`).
    pub mount_points_exclude: Vec<String>,
    /// Filesystem types not reported (globs).
    pub fs_types_exclude: Vec<String>,
    /// Block devices not reported (globs).
    pub disk_devices_exclude: Vec<String>,
    /// Network devices not reported (globs).
    pub net_devices_exclude: Vec<String>,
    /// The firmware's `get_throttled` attribute, relative to `sysfs`. The default is where the
    /// Raspberry Pi 1–4 kernels put it; boards whose device tree names the firmware node
    /// differently can point elsewhere.
    pub rpi_get_throttled: String,
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            collectors: Collector::ALL.to_vec(),
            procfs: "/proc".to_string(),
            sysfs: "/sys".to_string(),
            rootfs: "/".to_string(),
            udev_data: "/run/udev/data".to_string(),
            mount_points_exclude: owned(DEFAULT_MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: owned(DEFAULT_FS_TYPES_EXCLUDE),
            disk_devices_exclude: owned(DEFAULT_DISK_DEVICES_EXCLUDE),
            net_devices_exclude: owned(DEFAULT_NET_DEVICES_EXCLUDE),
            rpi_get_throttled: DEFAULT_RPI_GET_THROTTLED.to_string(),
        }
    }
}

impl Config {
    /// A path under procfs, e.g. `proc("stat")`.
    pub(crate) fn proc(&self, rel: &str) -> String {
        join(&self.procfs, rel)
    }

    /// A path under sysfs, e.g. `sys("class/hwmon")`.
    pub(crate) fn sys(&self, rel: &str) -> String {
        join(&self.sysfs, rel)
    }
}

/// Joins a base directory and a relative path with exactly one slash.
pub(crate) fn join(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return if base.is_empty() {
            "/".into()
        } else {
            base.into()
        };
    }
    let mut out = String::with_capacity(base.len() + rel.len() + 1);
    out.push_str(base);
    out.push('/');
    out.push_str(rel);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::any_match;

    #[test]
    fn default_exclusions_follow_node_exporter() {
        let c = Config::default();
        for (dev, excluded) in [
            ("sda", false),
            ("sda1", true),
            ("vda", false),
            ("xvdb3", true),
            ("nvme0n1", false),
            ("nvme0n1p2", true),
            ("mmcblk0", false),
            ("mmcblk0p2", false),
            ("loop7", true),
            ("ram0", true),
            ("zram0", false),
            ("dm-0", false),
        ] {
            assert_eq!(any_match(&c.disk_devices_exclude, dev), excluded, "{dev}");
        }
        for (mp, excluded) in [
            ("/", false),
            ("/boot/firmware", false),
            ("/dev/shm", true),
            ("/run", true),
            ("/running", false),
            ("/var/lib/docker", false),
            ("/var/lib/docker/overlay2/x", true),
            ("/sys/fs/cgroup", true),
        ] {
            assert_eq!(any_match(&c.mount_points_exclude, mp), excluded, "{mp}");
        }
        assert!(any_match(&c.fs_types_exclude, "cgroup2"));
        assert!(!any_match(&c.fs_types_exclude, "ext4"));
        assert!(any_match(&c.net_devices_exclude, "lo"));
        assert!(!any_match(&c.net_devices_exclude, "lo0"));
    }

    #[test]
    fn names_round_trip() {
        for c in Collector::ALL {
            assert_eq!(Collector::from_name(c.name()), Some(c));
        }
        assert_eq!(join("/proc/", "/stat"), "/proc/stat");
        assert_eq!(join("/", "/"), "/");
        assert_eq!(join("/host", "/"), "/host");
        assert_eq!(join("/", "/boot"), "/boot");
    }
}
