//! `diskstats`: `/proc/diskstats` as node_exporter 1.5 reports it on Linux.
//!
//! A line has 14 fields before Linux 4.18, 18 with discard counters, 20 with flush counters;
//! node_exporter emits as many metrics as the line has fields (11, 15 or 17) and skips shorter
//! lines. Sectors are 512 bytes whatever the device's sector size; times are milliseconds.
//! `node_disk_info` and the optional `node_disk_filesystem_info`, `node_disk_device_mapper_info`
//! and `node_disk_ata_*` come from udev's database (`/run/udev/data/b<major>:<minor>`) when it
//! is readable, with empty labels otherwise, exactly as node_exporter does without udev.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::ctx::{Ctx, u64_field};
use crate::error::CollectError;
use crate::pattern::any_match;
use crate::sink::{MetricType, Out};

const SECTOR_BYTES: f64 = 512.0;
const SECONDS_PER_TICK: f64 = 0.001;

/// The statistics columns after major, minor and name: metric name, type, help, scale.
const COLUMNS: [(&str, MetricType, &str, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        MetricType::Counter,
        "The total number of reads completed successfully.",
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        MetricType::Counter,
        "The total number of reads merged.",
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        MetricType::Counter,
        "The total number of bytes read successfully.",
        SECTOR_BYTES,
    ),
    (
        "node_disk_read_time_seconds_total",
        MetricType::Counter,
        "The total number of seconds spent by all reads.",
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_writes_completed_total",
        MetricType::Counter,
        "The total number of writes completed successfully.",
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        MetricType::Counter,
        "The number of writes merged.",
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        MetricType::Counter,
        "The total number of bytes written successfully.",
        SECTOR_BYTES,
    ),
    (
        "node_disk_write_time_seconds_total",
        MetricType::Counter,
        "This is the total number of seconds spent by all writes.",
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_now",
        MetricType::Gauge,
        "The number of I/Os currently in progress.",
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        MetricType::Counter,
        "Total seconds spent doing I/Os.",
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        MetricType::Counter,
        "The weighted # of seconds spent doing I/Os.",
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_discards_completed_total",
        MetricType::Counter,
        "The total number of discards completed successfully.",
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        MetricType::Counter,
        "The total number of discards merged.",
        1.0,
    ),
    (
        // Sectors, not bytes: node_exporter 1.5 does not scale this one.
        "node_disk_discarded_sectors_total",
        MetricType::Counter,
        "The total number of sectors discarded successfully.",
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        MetricType::Counter,
        "This is the total number of seconds spent by all discards.",
        SECONDS_PER_TICK,
    ),
    (
        "node_disk_flush_requests_total",
        MetricType::Counter,
        "The total number of flush requests completed successfully",
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        MetricType::Counter,
        "This is the total number of seconds spent by all flush requests.",
        SECONDS_PER_TICK,
    ),
];

/// One line of `/proc/diskstats`.
#[derive(Debug, PartialEq)]
pub(crate) struct DiskLine {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) device: String,
    /// Between 11 and 17 statistics, in file order.
    pub(crate) stats: Vec<u64>,
}

/// Parses `/proc/diskstats`; lines with fewer than 14 fields are skipped (as in procfs), any
/// non-numeric statistic fails the file.
pub(crate) fn parse(text: &str, path: &str) -> Result<Vec<DiskLine>, CollectError> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 14 {
            continue;
        }
        let stats = fields[3..]
            .iter()
            .take(COLUMNS.len())
            .map(|f| u64_field(f, path))
            .collect::<Result<Vec<_>, _>>()?;
        disks.push(DiskLine {
            major: u64_field(fields[0], path)?,
            minor: u64_field(fields[1], path)?,
            device: fields[2].into(),
            stats,
        });
    }
    Ok(disks)
}

/// The `E:KEY=VALUE` properties of a udev database entry.
fn parse_udev(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

pub(crate) fn collect(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("diskstats");
    let text = ctx.read(&path)?;
    let disks = parse(&text, &path)?;
    for disk in disks {
        if any_match(&ctx.cfg.disk_devices_exclude, &disk.device) {
            continue;
        }
        let dev = disk.device.as_str();
        let udev_path = alloc::format!("{}/b{}:{}", ctx.cfg.udev_data, disk.major, disk.minor);
        // Missing or unreadable udev data only empties labels, as in node_exporter.
        let info = ctx
            .read(&udev_path)
            .map(|t| parse_udev(&t))
            .unwrap_or_default();
        let prop = |key: &str| info.get(key).map_or("", String::as_str);
        let (major, minor) = (crate::ctx::itoa(disk.major), crate::ctx::itoa(disk.minor));
        out.gauge(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            &[
                ("device", dev),
                ("major", &major),
                ("minor", &minor),
                ("path", prop("ID_PATH")),
                ("wwn", prop("ID_WWN")),
                ("model", prop("ID_MODEL")),
                ("serial", prop("ID_SERIAL_SHORT")),
                ("revision", prop("ID_REVISION")),
            ],
            1.0,
        );
        for ((name, kind, help, scale), value) in COLUMNS.iter().zip(&disk.stats) {
            out.emit(name, *kind, help, &[("device", dev)], *value as f64 * scale);
        }
        udev_extras(out, dev, &info);
    }
    Ok(())
}

fn udev_extras(out: &mut Out<'_>, dev: &str, info: &BTreeMap<String, String>) {
    let prop = |key: &str| info.get(key).map_or("", String::as_str);
    if !prop("ID_FS_TYPE").is_empty() {
        out.gauge(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            &[
                ("device", dev),
                ("type", prop("ID_FS_TYPE")),
                ("usage", prop("ID_FS_USAGE")),
                ("uuid", prop("ID_FS_UUID")),
                ("version", prop("ID_FS_VERSION")),
            ],
            1.0,
        );
    }
    if !prop("DM_NAME").is_empty() {
        out.gauge(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            &[
                ("device", dev),
                ("name", prop("DM_NAME")),
                ("uuid", prop("DM_UUID")),
                ("vg_name", prop("DM_VG_NAME")),
                ("lv_name", prop("DM_LV_NAME")),
                ("lv_layer", prop("DM_LV_LAYER")),
            ],
            1.0,
        );
    }
    if !prop("ID_ATA").is_empty() {
        for (key, name, help) in [
            (
                "ID_ATA_WRITE_CACHE",
                "node_disk_ata_write_cache",
                "ATA disk has a write cache.",
            ),
            (
                "ID_ATA_WRITE_CACHE_ENABLED",
                "node_disk_ata_write_cache_enabled",
                "ATA disk has its write cache enabled.",
            ),
            (
                "ID_ATA_ROTATION_RATE_RPM",
                "node_disk_ata_rotation_rate_rpm",
                "ATA disk rotation rate in RPMs (0 for SSDs).",
            ),
        ] {
            if let Some(Ok(v)) = info.get(key).map(|v| v.parse::<f64>()) {
                out.gauge(name, help, &[("device", dev)], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_counts_decide_the_metrics() {
        let text = "\
   8       0 sda 1 2 3 4 5 6 7 8 9 10 11
   8       1 sda1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
 179       0 mmcblk0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17
   8       2 sda2 1 2 3 4
";
        let disks = parse(text, "d").unwrap();
        let counts: Vec<usize> = disks.iter().map(|d| d.stats.len()).collect();
        assert_eq!(counts, [11, 15, 17]);
        assert_eq!(disks[2].device, "mmcblk0");
        assert_eq!((disks[2].major, disks[2].minor), (179, 0));
    }

    #[test]
    fn udev_properties() {
        let info = parse_udev("S:disk/by-id/x\nE:ID_PATH=platform-fe340000.mmc\nE:ID_MODEL=SD\n");
        assert_eq!(info.get("ID_PATH").unwrap(), "platform-fe340000.mmc");
        assert_eq!(info.len(), 2);
    }
}
