//! One module per data source; each `collect*` function emits its samples and returns why it
//! failed, if it did.

pub(crate) mod diskstats;
pub(crate) mod filesystem;
pub(crate) mod hwmon;
pub(crate) mod kernel;
pub(crate) mod meminfo;
pub(crate) mod netdev;
pub(crate) mod thermal;

use crate::config::Collector;
use crate::ctx::Ctx;
use crate::error::CollectError;
use crate::sink::Out;

/// Runs one collector.
pub(crate) fn run(
    which: Collector,
    ctx: &mut Ctx<'_>,
    out: &mut Out<'_>,
) -> Result<(), CollectError> {
    match which {
        Collector::Cpu => kernel::collect_cpu(ctx, out),
        Collector::Stat => kernel::collect_stat(ctx, out),
        Collector::Meminfo => meminfo::collect(ctx, out),
        Collector::Loadavg => kernel::collect_loadavg(ctx, out),
        Collector::Diskstats => diskstats::collect(ctx, out),
        Collector::Netdev => netdev::collect(ctx, out),
        Collector::Filesystem => filesystem::collect(ctx, out),
        Collector::Hwmon => hwmon::collect(ctx, out),
        Collector::ThermalZone => thermal::collect_thermal(ctx, out),
        Collector::RpiThrottled => thermal::collect_rpi(ctx, out),
        Collector::Uname => kernel::collect_uname(ctx, out),
    }
}
