//! `netdev`: `/proc/net/dev`, named as node_exporter 1.5 names its default ("legacy") metrics.
//!
//! node_exporter 1.5 reads the counters over netlink, which the sandbox cannot reach; the
//! kernel builds `/proc/net/dev` from the same `rtnl_link_stats64` and folds the detailed error
//! counters exactly as node_exporter's legacy names do (`drop` = dropped + missed, `frame` =
//! length + over + CRC + frame errors, `carrier` = carrier + aborted + heartbeat + window), so
//! the values agree. The one netlink-only counter, `rx_nohandler`, is read from
//! `/sys/class/net/<dev>/statistics/rx_nohandler` when present.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ctx::{Ctx, u64_field};
use crate::error::CollectError;
use crate::pattern::any_match;
use crate::sink::Out;

/// The 16 columns of `/proc/net/dev`: metric name and help, as node_exporter words them.
/// Spelled out rather than formatted per sample, which matters on the Pulley interpreter.
const COLUMNS: [(&str, &str); 16] = [
    (
        "node_network_receive_bytes_total",
        "Network device statistic receive_bytes.",
    ),
    (
        "node_network_receive_packets_total",
        "Network device statistic receive_packets.",
    ),
    (
        "node_network_receive_errs_total",
        "Network device statistic receive_errs.",
    ),
    (
        "node_network_receive_drop_total",
        "Network device statistic receive_drop.",
    ),
    (
        "node_network_receive_fifo_total",
        "Network device statistic receive_fifo.",
    ),
    (
        "node_network_receive_frame_total",
        "Network device statistic receive_frame.",
    ),
    (
        "node_network_receive_compressed_total",
        "Network device statistic receive_compressed.",
    ),
    (
        "node_network_receive_multicast_total",
        "Network device statistic receive_multicast.",
    ),
    (
        "node_network_transmit_bytes_total",
        "Network device statistic transmit_bytes.",
    ),
    (
        "node_network_transmit_packets_total",
        "Network device statistic transmit_packets.",
    ),
    (
        "node_network_transmit_errs_total",
        "Network device statistic transmit_errs.",
    ),
    (
        "node_network_transmit_drop_total",
        "Network device statistic transmit_drop.",
    ),
    (
        "node_network_transmit_fifo_total",
        "Network device statistic transmit_fifo.",
    ),
    (
        "node_network_transmit_colls_total",
        "Network device statistic transmit_colls.",
    ),
    (
        "node_network_transmit_carrier_total",
        "Network device statistic transmit_carrier.",
    ),
    (
        "node_network_transmit_compressed_total",
        "Network device statistic transmit_compressed.",
    ),
];

#[derive(Debug, PartialEq)]
pub(crate) struct NetLine {
    pub(crate) device: String,
    pub(crate) counters: [u64; 16],
}

/// Parses `/proc/net/dev`: two header lines, then `name: 16 counters` per device.
pub(crate) fn parse(text: &str, path: &str) -> Result<Vec<NetLine>, CollectError> {
    let mut devices = Vec::new();
    for line in text.lines().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line
            .rsplit_once(':')
            .ok_or_else(|| CollectError::parse(path, "device line without a colon"))?;
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        if fields.len() != COLUMNS.len() {
            return Err(CollectError::parse(path, "device line without 16 counters"));
        }
        let mut counters = [0; 16];
        for (slot, field) in counters.iter_mut().zip(fields) {
            *slot = u64_field(field, path)?;
        }
        devices.push(NetLine {
            device: name.trim().into(),
            counters,
        });
    }
    Ok(devices)
}

pub(crate) fn collect(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("net/dev");
    let text = ctx.read(&path)?;
    for dev in parse(&text, &path)? {
        if any_match(&ctx.cfg.net_devices_exclude, &dev.device) {
            continue;
        }
        let labels = [("device", dev.device.as_str())];
        for ((name, help), value) in COLUMNS.iter().zip(dev.counters) {
            out.counter(name, help, &labels, value as f64);
        }
        let nohandler = ctx.cfg.sys(&alloc::format!(
            "class/net/{}/statistics/rx_nohandler",
            dev.device
        ));
        // Optional: old kernels lack it and the host may not grant /sys/class/net.
        if let Ok(Some(text)) = ctx.read_optional(&nohandler)
            && let Ok(n) = text.trim().parse::<u64>()
        {
            out.counter(
                "node_network_receive_nohandler_total",
                "Network device statistic receive_nohandler.",
                &labels,
                n as f64,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_devices() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   34066      53    0    0    0     0          0         0    34066      53    0    0    0     0       0          0
  eth0: 262121753    9294    1    2    3     4          5         6   375840    4689    7    8    9    10       11          12
";
        let devs = parse(text, "n").unwrap();
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[1].device, "eth0");
        assert_eq!(devs[1].counters[0], 262_121_753);
        assert_eq!(devs[1].counters[15], 12);
        assert!(parse("h\nh\neth0: 1 2\n", "n").is_err());
    }
}
