//! `cpu`, `stat`, `loadavg` and `uname`: the kernel's own counters under `/proc`.
//!
//! Times in `/proc/stat` are in USER_HZ ticks, which the kernel fixes at 100 per second for
//! userspace whatever CONFIG_HZ is; node_exporter's procfs library assumes the same.

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::string::String;
use alloc::vec::Vec;

use crate::ctx::{Ctx, f64_field, itoa, u64_field};
use crate::error::CollectError;
use crate::pattern::glob_match;
use crate::sink::Out;

const USER_HZ: f64 = 100.0;

/// The per-CPU columns of `/proc/stat`, in file order. Later kernels append columns; earlier
/// ones have fewer, which read as zero (as in procfs).
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub(crate) struct CpuTimes {
    pub(crate) cpu: String,
    /// user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice (ticks).
    pub(crate) ticks: [f64; 10],
}

/// Parses the `cpuN` lines of `/proc/stat`; the aggregate `cpu` line is skipped.
pub(crate) fn parse_cpu_lines(text: &str, path: &str) -> Result<Vec<CpuTimes>, CollectError> {
    let mut cpus = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(id) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        if id.is_empty() {
            continue;
        }
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CollectError::parse(path, "malformed cpu line"));
        }
        let mut ticks = [0.0; 10];
        for (slot, field) in ticks.iter_mut().zip(fields) {
            *slot = f64_field(field, path)?;
        }
        cpus.push(CpuTimes {
            cpu: id.into(),
            ticks,
        });
    }
    Ok(cpus)
}

pub(crate) fn collect_cpu(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("stat");
    let text = ctx.read(&path)?;
    let cpus = parse_cpu_lines(&text, &path)?;
    for c in &cpus {
        for (mode, ticks) in MODES.iter().zip(c.ticks) {
            out.counter(
                "node_cpu_seconds_total",
                "Seconds the CPUs spent in each mode.",
                &[("cpu", &c.cpu), ("mode", mode)],
                ticks / USER_HZ,
            );
        }
        // Guest time is also counted in user and nice; node_exporter exposes it separately.
        for (mode, ticks) in [("user", c.ticks[8]), ("nice", c.ticks[9])] {
            out.counter(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                &[("cpu", &c.cpu), ("mode", mode)],
                ticks / USER_HZ,
            );
        }
    }
    thermal_throttles(ctx, out);
    isolated(ctx, out);
    Ok(())
}

/// `node_cpu_isolated{cpu}` for each CPU in `/sys/devices/system/cpu/isolated` (`isolcpus=`).
/// Optional, so unreadable or malformed content just emits nothing.
fn isolated(ctx: &mut Ctx<'_>, out: &mut Out<'_>) {
    let path = ctx.cfg.sys("devices/system/cpu/isolated");
    let Ok(Some(text)) = ctx.read_optional(&path) else {
        return;
    };
    let Some(cpus) = parse_cpu_list(&text) else {
        return;
    };
    for cpu in cpus {
        out.gauge(
            "node_cpu_isolated",
            "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
            &[("cpu", &itoa(u64::from(cpu)))],
            1.0,
        );
    }
}

/// Parses a kernel CPU list such as `1-3,5`. CPU numbers are 16-bit, as in procfs, which also
/// bounds the output of a hostile range.
pub(crate) fn parse_cpu_list(text: &str) -> Option<Vec<u16>> {
    let mut cpus = Vec::new();
    for part in text.trim_end_matches('\n').split(',') {
        if part.is_empty() {
            continue;
        }
        match part.split_once('-') {
            Some((start, end)) => {
                let (start, end): (u16, u16) = (start.parse().ok()?, end.parse().ok()?);
                cpus.extend(start..=end);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// `node_cpu_{core,package}_throttles_total` from x86's `thermal_throttle` counters. Optional:
/// absent on ARM, so nothing here fails the collector.
fn thermal_throttles(ctx: &mut Ctx<'_>, out: &mut Out<'_>) {
    let base = ctx.cfg.sys("devices/system/cpu");
    let Ok(mut entries) = ctx.read_dir(&base) else {
        return;
    };
    // node_exporter walks the CPUs in glob order and keeps the first reading per package/core.
    entries.sort();
    let mut packages: BTreeMap<u64, u64> = BTreeMap::new();
    let mut cores: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for cpu in entries.iter().filter(|e| glob_match("cpu#*", e)) {
        let mut read_uint = |rel: &str| -> Option<u64> {
            let path = alloc::format!("{base}/{cpu}/{rel}");
            let text = ctx.read(&path).ok()?;
            u64_field(text.trim(), &path).ok()
        };
        let (Some(package), Some(core)) = (
            read_uint("topology/physical_package_id"),
            read_uint("topology/core_id"),
        ) else {
            continue;
        };
        // A counter that cannot be read is looked for again on the next sibling.
        if let Entry::Vacant(slot) = cores.entry((package, core))
            && let Some(n) = read_uint("thermal_throttle/core_throttle_count")
        {
            slot.insert(n);
        }
        if let Entry::Vacant(slot) = packages.entry(package)
            && let Some(n) = read_uint("thermal_throttle/package_throttle_count")
        {
            slot.insert(n);
        }
    }
    for (package, n) in packages {
        out.counter(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            &[("package", &itoa(package))],
            n as f64,
        );
    }
    for ((package, core), n) in cores {
        out.counter(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            &[("package", &itoa(package)), ("core", &itoa(core))],
            n as f64,
        );
    }
}

/// The system-wide lines of `/proc/stat`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SystemStat {
    pub(crate) intr: u64,
    pub(crate) ctxt: u64,
    pub(crate) btime: u64,
    pub(crate) processes: u64,
    pub(crate) procs_running: u64,
    pub(crate) procs_blocked: u64,
}

pub(crate) fn parse_system_stat(text: &str, path: &str) -> Result<SystemStat, CollectError> {
    let mut s = SystemStat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let slot = match key {
            "intr" => &mut s.intr,
            "ctxt" => &mut s.ctxt,
            "btime" => &mut s.btime,
            "processes" => &mut s.processes,
            "procs_running" => &mut s.procs_running,
            "procs_blocked" => &mut s.procs_blocked,
            _ => continue,
        };
        *slot = u64_field(value, path)?;
    }
    Ok(s)
}

pub(crate) fn collect_stat(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("stat");
    let text = ctx.read(&path)?;
    let s = parse_system_stat(&text, &path)?;
    out.counter(
        "node_intr_total",
        "Total number of interrupts serviced.",
        &[],
        s.intr as f64,
    );
    out.counter(
        "node_context_switches_total",
        "Total number of context switches.",
        &[],
        s.ctxt as f64,
    );
    out.counter(
        "node_forks_total",
        "Total number of forks.",
        &[],
        s.processes as f64,
    );
    out.gauge(
        "node_boot_time_seconds",
        "Node boot time, in unixtime.",
        &[],
        s.btime as f64,
    );
    out.gauge(
        "node_procs_running",
        "Number of processes in runnable state.",
        &[],
        s.procs_running as f64,
    );
    out.gauge(
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
        &[],
        s.procs_blocked as f64,
    );
    Ok(())
}

/// `/proc/loadavg`: the first three fields.
pub(crate) fn collect_loadavg(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("loadavg");
    let text = ctx.read(&path)?;
    let mut fields = text.split_ascii_whitespace();
    let mut loads = [0.0; 3];
    for slot in &mut loads {
        let field = fields
            .next()
            .ok_or_else(|| CollectError::parse(&path, "fewer than three load averages"))?;
        *slot = f64_field(field, &path)?;
    }
    for (name, value) in ["node_load1", "node_load5", "node_load15"]
        .iter()
        .zip(loads)
    {
        out.gauge(name, "Load average.", &[], value);
    }
    Ok(())
}

/// `node_uname_info` from the sysctls that hold the `uname(2)` fields. `kernel/arch` exists
/// since Linux 6.1; before that `machine` is empty.
pub(crate) fn collect_uname(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let mut field = |name: &str, required: bool| -> Result<String, CollectError> {
        let path = ctx.cfg.proc(&alloc::format!("sys/kernel/{name}"));
        let text = if required {
            ctx.read(&path)?
        } else {
            ctx.read_optional(&path)?.unwrap_or_default()
        };
        Ok(String::from(text.trim_end_matches('\n')))
    };
    let sysname = field("ostype", true)?;
    let release = field("osrelease", true)?;
    let version = field("version", true)?;
    let machine = field("arch", false)?;
    let nodename = field("hostname", true)?;
    let domainname = field("domainname", false)?;
    out.gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        &[
            ("sysname", &sysname),
            ("release", &release),
            ("version", &version),
            ("machine", &machine),
            ("nodename", &nodename),
            ("domainname", &domainname),
        ],
        1.0,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1-3,5\n"), Some(alloc::vec![1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("\n"), Some(alloc::vec![]));
        assert_eq!(parse_cpu_list("1-x"), None);
        assert_eq!(parse_cpu_list("1-2-3"), None);
    }

    #[test]
    fn cpu_lines_accept_short_rows_and_skip_the_total() {
        let cpus = parse_cpu_lines("cpu  1 2 3 4\ncpu7 100 0 50\nintr 5\n", "s").unwrap();
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].cpu, "7");
        assert_eq!(cpus[0].ticks[..3], [100.0, 0.0, 50.0]);
        assert!(parse_cpu_lines("cpuX 1 2\n", "s").is_err());
        assert!(parse_cpu_lines("cpu0 1 x\n", "s").is_err());
    }
}
