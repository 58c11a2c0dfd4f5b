//! `thermal_zone` (`/sys/class/thermal`) and `rpi_throttled` (the Raspberry Pi firmware's
//! throttling flags).

use alloc::string::String;

use crate::ctx::{Ctx, int_file};
use crate::error::CollectError;
use crate::fs::FsError;
use crate::pattern::glob_match;
use crate::sink::Out;

/// `node_thermal_zone_temp{zone,type}` for each `thermal_zoneN`, and
/// `node_cooling_device_{cur,max}_state{name,type}` for each `cooling_deviceN`.
///
/// A missing `/sys/class/thermal` is not an error (node_exporter globs and finds nothing). A
/// zone whose files cannot be read is skipped; unless that is because the host denied it, the
/// collector reports failure after emitting the readable zones (node_exporter would drop them
/// all).
pub(crate) fn collect_thermal(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let base = ctx.cfg.sys("class/thermal");
    let mut entries = match ctx.read_dir(&base) {
        Ok(entries) => entries,
        Err(CollectError::Fs {
            error: FsError::NotFound,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    entries.sort();
    let mut result = Ok(());
    for entry in &entries {
        let dir = alloc::format!("{base}/{entry}");
        let outcome = if let Some(zone) = entry.strip_prefix("thermal_zone") {
            if !glob_match("#*", zone) {
                continue;
            }
            zone_temp(ctx, &dir).map(|(kind, temp)| {
                out.gauge(
                    "node_thermal_zone_temp",
                    "Zone temperature in Celsius",
                    &[("zone", zone), ("type", &kind)],
                    temp as f64 / 1000.0,
                );
            })
        } else if let Some(name) = entry.strip_prefix("cooling_device") {
            if !glob_match("#*", name) {
                continue;
            }
            cooling_state(ctx, &dir).map(|(kind, cur, max)| {
                let labels = [("name", name), ("type", kind.as_str())];
                out.gauge(
                    "node_cooling_device_cur_state",
                    "Current throttle state of the cooling device",
                    &labels,
                    cur as f64,
                );
                out.gauge(
                    "node_cooling_device_max_state",
                    "Maximum throttle state of the cooling device",
                    &labels,
                    max as f64,
                );
            })
        } else {
            continue;
        };
        match outcome {
            Ok(()) => {}
            Err(e) if e.is_denied() => {}
            Err(e) => result = Err(e),
        }
    }
    result
}

/// sysfs attributes end in a newline; procfs's `SysReadFile` trims surrounding whitespace.
fn read_attr(ctx: &mut Ctx<'_>, path: &str) -> Result<String, CollectError> {
    Ok(String::from(ctx.read(path)?.trim()))
}

fn zone_temp(ctx: &mut Ctx<'_>, dir: &str) -> Result<(String, i64), CollectError> {
    let kind = read_attr(ctx, &alloc::format!("{dir}/type"))?;
    let path = alloc::format!("{dir}/temp");
    let temp = int_file(&ctx.read(&path)?, &path)?;
    Ok((kind, temp))
}

fn cooling_state(ctx: &mut Ctx<'_>, dir: &str) -> Result<(String, i64, i64), CollectError> {
    let kind = read_attr(ctx, &alloc::format!("{dir}/type"))?;
    let max_path = alloc::format!("{dir}/max_state");
    let max = int_file(&ctx.read(&max_path)?, &max_path)?;
    // cur_state may be -1 (intel_powerclamp), hence signed.
    let cur_path = alloc::format!("{dir}/cur_state");
    let cur = int_file(&ctx.read(&cur_path)?, &cur_path)?;
    Ok((kind, cur, max))
}

/// The bits of the firmware's throttling word, as `flag` label values.
///
/// Bits 0–3 describe now, bits 16–19 latch since boot. See the Raspberry Pi documentation of
/// `vcgencmd get_throttled`.
pub const RPI_THROTTLED_FLAGS: [(u32, &str); 8] = [
    (0, "under_voltage_now"),
    (1, "arm_freq_capped_now"),
    (2, "throttled_now"),
    (3, "soft_temp_limit_now"),
    (16, "under_voltage_occurred"),
    (17, "arm_freq_capped_occurred"),
    (18, "throttled_occurred"),
    (19, "soft_temp_limit_occurred"),
];

/// `node_rpi_throttled{flag}` (0/1 per [`RPI_THROTTLED_FLAGS`]) and `node_rpi_throttled_raw`
/// (the whole word) from [`Config::rpi_get_throttled`](crate::Config::rpi_get_throttled),
/// which the firmware driver prints in hexadecimal. On hosts without the file the collector succeeds
/// with no samples: it is not applicable there, which is not a failure.
pub(crate) fn collect_rpi(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.sys(&ctx.cfg.rpi_get_throttled);
    let text = match ctx.read(&path) {
        Ok(text) => text,
        Err(CollectError::Fs {
            error: FsError::NotFound,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let word = parse_throttled(&text).ok_or_else(|| CollectError::parse(&path, "expected hex"))?;
    for (bit, flag) in RPI_THROTTLED_FLAGS {
        out.gauge(
            "node_rpi_throttled",
            "Raspberry Pi firmware throttling flag (get_throttled), 1 if set.",
            &[("flag", flag)],
            f64::from((word >> bit) & 1),
        );
    }
    out.gauge(
        "node_rpi_throttled_raw",
        "Raspberry Pi firmware throttling word (get_throttled) as a number.",
        &[],
        f64::from(word),
    );
    Ok(())
}

/// Parses the `get_throttled` word: hex digits, with or without `0x`.
pub(crate) fn parse_throttled(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u32::from_str_radix(t, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_word() {
        assert_eq!(parse_throttled("50005\n"), Some(0x50005));
        assert_eq!(parse_throttled("0x0"), Some(0));
        assert_eq!(parse_throttled(""), None);
        assert_eq!(parse_throttled("zz"), None);
    }
}
