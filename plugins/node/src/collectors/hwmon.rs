//! `hwmon`: `/sys/class/hwmon/hwmon*`, named and scaled as node_exporter 1.5 does.
//!
//! Each `hwmonN` is a chip. Its files (and those of its `device` directory) are named
//! `<type><index>_<property>` (`temp1_input`, `in0_label`, `fan2_max`); each type+index is a
//! sensor, and each property becomes `node_hwmon_<type>[_<property>]_<unit>` with the unit and
//! scale the type implies (millidegrees → `_celsius`, millivolts → `_volts`, microwatts →
//! `_watt`, ...). The `chip` label is derived from the resolved device path
//! (`platform_coretemp_0`), so it survives the renumbering of `hwmonN` across boots.

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::ctx::Ctx;
use crate::error::CollectError;
use crate::fs::FsError;
use crate::sink::{MetricType, Out};

const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// node_exporter reads sensor files with one 128-byte `read(2)` (some drivers misbehave on
/// longer reads); longer content is cut the same way.
const VALUE_READ_LIMIT: usize = 128;

/// node_exporter's `cleanMetricName`: lowercase, anything outside `[a-z0-9:_]` becomes `_`,
/// then leading and trailing `_` are trimmed.
pub(crate) fn clean_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    String::from(out.trim_matches('_'))
}

/// Splits a sensor file name as the regex `^([^0-9]+)([0-9]*)?(_(.+))?$` does, with its
/// leftmost-first backtracking: `temp1_crit_alarm` → (`temp`, 1, `crit_alarm`),
/// `update_interval` → (`update_interval`, 0, ``). `None` if the name does not match or the
/// index overflows.
pub(crate) fn explode(name: &str) -> Option<(&str, i64, &str)> {
    let non_digits = name.bytes().take_while(|b| !b.is_ascii_digit()).count();
    for type_end in (1..=non_digits).rev() {
        if !name.is_char_boundary(type_end) {
            continue;
        }
        let rest = &name[type_end..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        for id_len in (0..=digits).rev() {
            let after = &rest[id_len..];
            let property = if after.is_empty() {
                ""
            } else if after.len() > 1 && after.starts_with('_') {
                &after[1..]
            } else {
                continue;
            };
            let id = if id_len == 0 {
                0
            } else {
                rest[..id_len].parse().ok()?
            };
            return Some((&name[..type_end], id, property));
        }
    }
    None
}

/// Sensor → (type, property → raw value).
type SensorData = BTreeMap<String, (String, BTreeMap<String, String>)>;

fn collect_sensor_data(ctx: &mut Ctx<'_>, dir: &str, data: &mut SensorData) -> Result<(), FsError> {
    let mut files = ctx.fs().read_dir(dir)?;
    // os.ReadDir sorts; when two files map to one sensor property the later one wins.
    files.sort();
    for file in files {
        let Some((kind, id, property)) = explode(&file) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        let Ok(raw) = ctx.read_prefix(&alloc::format!("{dir}/{file}"), VALUE_READ_LIMIT) else {
            continue;
        };
        let sensor = alloc::format!("{kind}{id}");
        let entry = data
            .entry(sensor)
            .or_insert_with(|| (kind.into(), BTreeMap::new()));
        entry
            .1
            .insert(property.into(), String::from(raw.trim_matches('\n')));
    }
    Ok(())
}

/// Last path component and the one before it, as `filepath.Split` twice would give them.
fn last_two(path: &str) -> (&str, &str) {
    let (prefix, name) = path.rsplit_once('/').unwrap_or(("", path));
    let prefix = prefix.trim_end_matches('/');
    let parent = prefix.rsplit_once('/').map_or(prefix, |(_, p)| p);
    (parent, name)
}

/// node_exporter's `hwmonName`: `<bus>_<device>` of the resolved `device` link, else the
/// `name` file, else the resolved directory's own name (`hwmon0`).
fn chip_name(ctx: &mut Ctx<'_>, dir: &str) -> Result<String, CollectError> {
    if let Ok(device) = ctx.fs().real_path(&alloc::format!("{dir}/device")) {
        let (dev_type, dev_name) = last_two(&device);
        let (dev_type, dev_name) = (clean_name(dev_type), clean_name(dev_name));
        if !dev_type.is_empty() && !dev_name.is_empty() {
            return Ok(alloc::format!("{dev_type}_{dev_name}"));
        }
        if !dev_name.is_empty() {
            return Ok(dev_name);
        }
    }
    if let Some(name) = human_name(ctx, dir) {
        return Ok(name);
    }
    let real = ctx
        .fs()
        .real_path(dir)
        .map_err(|e| CollectError::fs(dir, e))?;
    let name = clean_name(last_two(&real).1);
    if name.is_empty() {
        return Err(CollectError::parse(dir, "cannot derive a chip name"));
    }
    Ok(name)
}

/// The cleaned `name` file, if any (`node_hwmon_chip_names`).
fn human_name(ctx: &mut Ctx<'_>, dir: &str) -> Option<String> {
    let raw = ctx.read(&alloc::format!("{dir}/name")).ok()?;
    Some(clean_name(&raw)).filter(|n| !n.is_empty())
}

pub(crate) fn collect(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let base = ctx.cfg.sys("class/hwmon");
    let mut chips = match ctx.read_dir(&base) {
        Ok(chips) => chips,
        Err(CollectError::Fs {
            error: FsError::NotFound,
            ..
        }) => return Err(CollectError::NoData),
        Err(e) => return Err(e),
    };
    chips.sort();
    let mut result = Ok(());
    for chip in chips {
        let dir = alloc::format!("{base}/{chip}");
        if let Err(e) = collect_chip(ctx, out, &dir) {
            // Keep going: one broken driver must not hide the other chips.
            result = Err(e);
        }
    }
    result
}

fn collect_chip(ctx: &mut Ctx<'_>, out: &mut Out<'_>, dir: &str) -> Result<(), CollectError> {
    let mut data = SensorData::new();
    match collect_sensor_data(ctx, dir, &mut data) {
        Ok(()) => {}
        // Not a directory, or not granted: not a chip we can read.
        Err(FsError::NotFound | FsError::Denied) => return Ok(()),
        Err(e) => return Err(CollectError::fs(dir, e)),
    }
    let chip = chip_name(ctx, dir)?;
    let device = alloc::format!("{dir}/device");
    match collect_sensor_data(ctx, &device, &mut data) {
        Ok(()) | Err(FsError::NotFound | FsError::Denied) => {}
        Err(e) => return Err(CollectError::fs(&device, e)),
    }
    if let Some(name) = human_name(ctx, dir) {
        out.gauge(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
            &[("chip", &chip), ("chip_name", &name)],
            1.0,
        );
    }
    for (sensor, (kind, props)) in &data {
        emit_sensor(out, &chip, sensor, kind, props);
    }
    Ok(())
}

fn emit_sensor(
    out: &mut Out<'_>,
    chip: &str,
    sensor: &str,
    kind: &str,
    props: &BTreeMap<String, String>,
) {
    let labels = [("chip", chip), ("sensor", sensor)];
    if let Some(label) = props.get("label") {
        out.gauge(
            "node_hwmon_sensor_label",
            "Label for given chip and sensor",
            &[("chip", chip), ("sensor", sensor), ("label", label)],
            1.0,
        );
    }
    let bare = props.get("").map(String::as_str);
    match kind {
        "beep_enable" => {
            let on = if bare == Some("1") { 1.0 } else { 0.0 };
            out.gauge(
                "node_hwmon_beep_enabled",
                "Hardware beep enabled",
                &labels,
                on,
            );
            return;
        }
        "vrm" | "update_interval" => {
            if let Some(Ok(v)) = bare.map(str::parse::<f64>) {
                if kind == "vrm" {
                    let help = "Hardware voltage regulator";
                    out.gauge("node_hwmon_voltage_regulator_version", help, &labels, v);
                } else {
                    let help = "Hardware monitor update interval";
                    out.gauge(
                        "node_hwmon_update_interval_seconds",
                        help,
                        &labels,
                        v * 0.001,
                    );
                }
            }
            return;
        }
        _ => {}
    }
    for (element, raw) in props {
        if element == "label" {
            continue;
        }
        let mut name = alloc::format!("node_hwmon_{kind}");
        if element == "input" {
            // `temp1` and `temp1_input` both present: keep them apart.
            if bare.is_some() {
                name.push_str("_input");
            }
        } else if !element.is_empty() {
            name.push('_');
            name.push_str(&clean_name(element));
        }
        let Ok(v) = raw.parse::<f64>() else { continue };
        let (suffix, kind_out, value) = scale(kind, element, v);
        name.push_str(suffix);
        let help = "Hardware monitor sensor reading (see node_exporter's hwmon collector).";
        out.emit(&name, kind_out, help, &labels, value);
    }
}

/// Unit suffix, type and scaled value of one sensor property, in node_exporter's rule order.
fn scale(kind: &str, element: &str, v: f64) -> (&'static str, MetricType, f64) {
    use MetricType::{Counter, Gauge};
    match (kind, element) {
        (_, "fault" | "alarm") => ("", Gauge, v),
        (_, "beep") => ("_enabled", Gauge, v),
        ("in" | "cpu", _) => ("_volts", Gauge, v * 0.001),
        ("temp", e) if e != "type" => ("_celsius", Gauge, v * 0.001),
        ("curr", _) => ("_amps", Gauge, v * 0.001),
        ("energy", _) => ("_joule_total", Counter, v / 1_000_000.0),
        ("power", "accuracy") => ("", Gauge, v / 1_000_000.0),
        ("power", "average_interval" | "average_interval_min" | "average_interval_max") => {
            ("_seconds", Gauge, v * 0.001)
        }
        ("power", _) => ("_watt", Gauge, v / 1_000_000.0),
        ("humidity", _) => ("", Gauge, v / 1_000_000.0),
        ("fan", "input" | "min" | "max" | "target") => ("_rpm", Gauge, v),
        _ => ("", Gauge, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_split_like_the_regex() {
        assert_eq!(explode("temp1_input"), Some(("temp", 1, "input")));
        assert_eq!(explode("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(explode("temp"), Some(("temp", 0, "")));
        assert_eq!(explode("in0_input"), Some(("in", 0, "input")));
        assert_eq!(explode("update_interval"), Some(("update_interval", 0, "")));
        assert_eq!(explode("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(explode("foo_bar1x"), Some(("foo", 0, "bar1x")));
        assert_eq!(explode("1abc"), None);
        assert_eq!(explode("in0input"), None);
        assert_eq!(explode("temp1_"), None);
        assert_eq!(explode("temp99999999999999999999_input"), None);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("soc:firmware"), "soc:firmware");
        assert_eq!(clean_name("raspberrypi-hwmon"), "raspberrypi_hwmon");
        assert_eq!(clean_name("cpu_thermal\n"), "cpu_thermal");
        assert_eq!(clean_name("coretemp.0"), "coretemp_0");
        assert_eq!(clean_name("__"), "");
    }

    #[test]
    fn device_path_components() {
        assert_eq!(
            last_two("/sys/devices/platform/coretemp.0"),
            ("platform", "coretemp.0")
        );
        assert_eq!(last_two("/x"), ("", "x"));
    }
}
