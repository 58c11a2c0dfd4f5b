//! Host metrics from `/proc` and `/sys`, named and labelled as Prometheus' node_exporter 1.5
//! names them on Linux, so dashboards and alerts written for node_exporter work unchanged.
//!
//! The code is pure logic over two small traits, so it runs sandboxed as a WebAssembly plugin
//! (where every file access is a capability-checked host call) and natively in tests:
//!
//! - [`Fs`]: read a file, list a directory, `statvfs` a mount point, resolve a symlink. Paths
//!   are absolute strings. [`MemFs`] is an in-memory implementation; `StdFs` (feature `std`)
//!   reads the real machine.
//! - [`Sink`]: receives `(name, labels, value)` samples and, once per family, its type and help.
//!   [`VecSink`] keeps them in memory.
//!
//! [`collect`] runs the collectors enabled in a [`Config`] and returns a [`Report`] with each
//! collector's outcome; it also emits `node_scrape_collector_success{collector}` as
//! node_exporter does (`node_scrape_collector_duration_seconds` needs a clock, which the
//! sandbox does not have, so the host measures the whole call instead).
//!
//! # The plugin
//!
//! Built for `wasm32-unknown-unknown`, the crate is the `node` scraper. Its `[scrape.config]`
//! table maps to a [`Config`] through [`Config::from_table`] (keys in [`CONFIG_KEYS`]; an
//! unknown key or a wrong type fails initialisation with a [`ConfigError`] naming the key).
//! Files are reached through the host's `file_open`, `dir_list`, `statvfs` and `real_path`
//! calls, so the job's file grants decide what each collector sees: a refused path is
//! [`FsError::Denied`], and the collectors that need it report
//! `node_scrape_collector_success 0` while the scrape as a whole succeeds. Grant `/proc` and
//! `/sys`, and each mount point to report (`statvfs` needs its own grant).
//!
//! # Collectors and metrics
//!
//! | collector | source | metrics |
//! |---|---|---|
//! | `cpu` | `/proc/stat`, `/sys/devices/system/cpu` | `node_cpu_seconds_total{cpu,mode}`, `node_cpu_guest_seconds_total{cpu,mode}`, `node_cpu_isolated{cpu}`, `node_cpu_{core,package}_throttles_total` (x86) |
//! | `stat` | `/proc/stat` | `node_boot_time_seconds`, `node_context_switches_total`, `node_forks_total`, `node_intr_total`, `node_procs_running`, `node_procs_blocked` |
//! | `meminfo` | `/proc/meminfo` | `node_memory_<Field>[_bytes]`, e.g. `node_memory_MemTotal_bytes`, `node_memory_Active_anon_bytes`, `node_memory_HugePages_Total` |
//! | `loadavg` | `/proc/loadavg` | `node_load1`, `node_load5`, `node_load15` |
//! | `diskstats` | `/proc/diskstats`, udev data | `node_disk_{reads,writes}_completed_total`, `..._merged_total`, `node_disk_{read,written}_bytes_total`, `node_disk_{read,write,io,io_time_weighted,discard,flush_requests}_..._seconds_total`, `node_disk_io_now`, `node_disk_discard*`, `node_disk_flush_requests_total`, `node_disk_info`, udev-derived `node_disk_{filesystem,device_mapper}_info`, `node_disk_ata_*` |
//! | `netdev` | `/proc/net/dev`, `/sys/class/net` | `node_network_{receive,transmit}_<counter>_total{device}` |
//! | `filesystem` | `/proc/1/mounts`, `statvfs` | `node_filesystem_{size,free,avail}_bytes`, `_files`, `_files_free`, `_readonly`, `_device_error` with `device,fstype,mountpoint` |
//! | `hwmon` | `/sys/class/hwmon` | `node_hwmon_temp_celsius{chip,sensor}`, `_temp_{max,crit,...}_celsius`, `_in_volts`, `_fan_rpm`, `_power_watt`, `_curr_amps`, `_chip_names`, `_sensor_label`, ... |
//! | `thermal_zone` | `/sys/class/thermal` | `node_thermal_zone_temp{zone,type}`, `node_cooling_device_{cur,max}_state{name,type}` |
//! | `rpi_throttled` | `/sys/devices/platform/soc/soc:firmware/get_throttled` ([`Config::rpi_get_throttled`]) | `node_rpi_throttled{flag}` (0/1, flags in [`RPI_THROTTLED_FLAGS`]), `node_rpi_throttled_raw` |
//! | `uname` | `/proc/sys/kernel` | `node_uname_info{sysname,release,version,machine,nodename,domainname}` |
//!
//! # Differences from node_exporter
//!
//! - No `node_scrape_collector_duration_seconds` and no `node_time_seconds` (no clock).
//! - netdev reads `/proc/net/dev` instead of netlink; the legacy names and values are the same.
//! - Stateless: node_exporter's cpu collector hides a per-CPU counter that steps back (iowait
//!   can) by remembering its last value; this plugin reports what the kernel says. A CPU missing
//!   from `/proc/stat` (offline) is absent here, where node_exporter reports zeros.
//! - A thermal zone that cannot be read is skipped instead of failing the whole collector.
//! - Defaults follow Debian's package: `lo` is not reported, `/run`, `/mnt` and `/media` are
//!   not (see [`DEFAULT_MOUNT_POINTS_EXCLUDE`]).
//! - Exclusions are globs, not regular expressions (see [`pattern`]).
//! - Not implemented: collectors outside the table (cpufreq, netclass, pressure, vmstat, ...),
//!   `node_cpu_info` (off by default in node_exporter), `node_network_address_info`.
//!
//! # Invariants
//!
//! - Nothing panics on any file content or filesystem error; parsers return
//!   [`CollectError::Parse`].
//! - A path the host refuses ([`FsError::Denied`]) never aborts the collection: an optional
//!   file is skipped, and a collector whose main source is refused reports failure while the
//!   others run.
//! - Every enabled collector appears once in the [`Report`] and once in
//!   `node_scrape_collector_success`, in [`Collector::ALL`] order; once the sink reports
//!   [`Sink::stopped`], the remaining collectors do not run and are reported as
//!   [`CollectError::Stopped`] in the [`Report`] only.
//!
//! # Example
//!
//! ```
//! use node::{collect, Collector, Config, MemFs, VecSink};
//!
//! let mut fs = MemFs::new();
//! fs.file("/proc/loadavg", "0.50 0.25 0.10 1/123 4567\n");
//! let cfg = Config { collectors: vec![Collector::Loadavg], ..Config::default() };
//! let mut sink = VecSink::default();
//! let report = collect(&cfg, &mut fs, &mut sink);
//! assert!(report.succeeded(Collector::Loadavg));
//! assert_eq!(sink.get("node_load1", &[]), Some(0.5));
//! assert_eq!(sink.get("node_scrape_collector_success", &[("collector", "loadavg")]), Some(1.0));
//! ```

#![no_std]
// `deny` rather than `forbid`: the SDK's export macro allows unsafe code for the `extern "C"`
// functions it generates, and nothing else in this crate uses any.
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
// Native builds (tests, and the `cdylib` a native `cargo build` produces) take their allocator
// and panic handler from `std`; on wasm32 they come from the SDK's guest runtime.
#[cfg(any(test, feature = "std", not(target_arch = "wasm32")))]
extern crate std;

mod collectors;
mod config;
mod ctx;
mod error;
mod fs;
pub mod pattern;
#[cfg(target_arch = "wasm32")]
mod plugin;
mod sink;
#[cfg(feature = "std")]
mod std_fs;
mod table;

use alloc::vec::Vec;

pub use collectors::thermal::RPI_THROTTLED_FLAGS;
pub use config::{
    Collector, Config, DEFAULT_DISK_DEVICES_EXCLUDE, DEFAULT_FS_TYPES_EXCLUDE,
    DEFAULT_MOUNT_POINTS_EXCLUDE, DEFAULT_NET_DEVICES_EXCLUDE, DEFAULT_RPI_GET_THROTTLED,
};
pub use error::{CollectError, Report};
pub use fs::{Fs, FsError, MemFs, StatVfs};
pub use sink::{MetricType, Sample, Sink, VecSink};
#[cfg(feature = "std")]
pub use std_fs::StdFs;
pub use table::{CONFIG_KEYS, ConfigError};

/// Runs every collector enabled in `cfg` (each once, in [`Collector::ALL`] order), sending
/// samples to `sink`, and reports which succeeded.
pub fn collect(cfg: &Config, fs: &mut impl Fs, sink: &mut impl Sink) -> Report {
    collect_dyn(cfg, fs, sink)
}

// One non-generic body keeps a single copy of every collector in the wasm binary.
fn collect_dyn(cfg: &Config, fs: &mut dyn Fs, sink: &mut dyn Sink) -> Report {
    let mut ctx = ctx::Ctx::new(cfg, fs);
    let mut out = sink::Out::new(sink);
    let mut outcomes = Vec::new();
    for which in Collector::ALL {
        if !cfg.collectors.contains(&which) {
            continue;
        }
        if out.stopped() {
            outcomes.push((which, Err(CollectError::Stopped)));
            continue;
        }
        let result = collectors::run(which, &mut ctx, &mut out);
        out.gauge(
            "node_scrape_collector_success",
            "node_exporter: Whether a collector succeeded.",
            &[("collector", which.name())],
            if result.is_ok() { 1.0 } else { 0.0 },
        );
        outcomes.push((which, result));
    }
    Report { outcomes }
}
