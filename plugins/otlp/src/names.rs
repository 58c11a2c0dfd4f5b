//! OTLP names to Prometheus names, per the OpenTelemetry specification "Prometheus and
//! OpenMetrics Compatibility" (OTLP metric points to Prometheus), where it leaves a choice as
//! the OpenTelemetry Collector's Prometheus translator does:
//!
//! - Characters outside `[a-zA-Z0-9_:]` (labels: `[a-zA-Z0-9_]`) become `_`, runs of `_` become
//!   one, a leading digit gets a `_` in front.
//! - The unit is converted (`s` → `seconds`, `By` → `bytes`, `foo/bar` → `foo_per_bar`,
//!   `{packet}` → nothing) and appended unless the name already ends with it; the unit comes
//!   before the type suffix.
//! - Unit `1` becomes `_ratio` on gauges only (the Collector's and Prometheus' own OTLP
//!   receiver's choice; a counter of unit `1` is a count, `_ratio_total` would mislead).
//! - Monotonic cumulative sums end in `_total`, added unless present.

/// What kind of Prometheus metric a name is built for (the suffix rules differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gauge (OTLP gauge or non-monotonic sum).
    Gauge,
    /// A counter (monotonic cumulative sum): `_total`.
    Counter,
    /// A histogram or summary: the `_bucket`/`_sum`/`_count` suffixes are added by the caller.
    Family,
}

/// The Prometheus metric name of an OTLP metric named `name` with `unit`.
#[must_use]
pub fn metric_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut out = sanitize(name, true);
    let unit = if unit == "1" {
        if kind == Kind::Gauge {
            "ratio".to_string()
        } else {
            String::new()
        }
    } else {
        prometheus_unit(unit)
    };
    if !unit.is_empty() && !out.ends_with(&format!("_{unit}")) && out != unit {
        if !out.ends_with('_') {
            out.push('_');
        }
        out.push_str(&unit);
    }
    if kind == Kind::Counter && !out.ends_with("_total") && out != "total" {
        if !out.ends_with('_') {
            out.push('_');
        }
        out.push_str("total");
    }
    out
}

/// A label name from an attribute key.
#[must_use]
pub fn label_name(key: &str) -> String {
    sanitize(key, false)
}

/// Replaces what a metric (`colons`) or label name may not hold with `_`, collapses runs of
/// `_`, and puts `_` before a leading digit. The empty name becomes `_`.
fn sanitize(s: &str, colons: bool) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':');
        let c = if ok { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus spelling of a UCUM unit: `main[/per]`, annotations in braces dropped.
fn prometheus_unit(unit: &str) -> String {
    let (main, per) = unit.split_once('/').unwrap_or((unit, ""));
    let main = word(main, main_unit);
    let per = word(per, per_unit);
    match (main.is_empty(), per.is_empty()) {
        (_, true) => main,
        (true, false) => format!("per_{per}"),
        (false, false) => format!("{main}_per_{per}"),
    }
}

/// One side of a unit: annotations dropped, known abbreviations spelled out, other text
/// sanitised to `[a-zA-Z0-9_]` without leading or trailing `_`.
fn word(part: &str, table: fn(&str) -> Option<&'static str>) -> String {
    let mut plain = String::with_capacity(part.len());
    let mut depth = 0u32;
    for c in part.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.trim();
    if let Some(w) = table(plain) {
        return w.to_string();
    }
    sanitize(plain, false).trim_matches('_').to_string()
}

fn main_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        _ => return None,
    })
}

fn per_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (OTLP name, unit, kind, Prometheus name): the specification's rules and the examples
    /// of the Collector's translator documentation.
    const TABLE: &[(&str, &str, Kind, &str)] = &[
        // Sanitising: dots and other characters, runs of `_`, leading digit. The spec does
        // not trim `_` at the ends (the Collector does).
        (
            "http.server.duration",
            "",
            Kind::Gauge,
            "http_server_duration",
        ),
        (
            "(lambda).function.executions(#)",
            "",
            Kind::Gauge,
            "_lambda_function_executions_",
        ),
        ("a..b__c", "", Kind::Gauge, "a_b_c"),
        ("2xx.responses", "", Kind::Gauge, "_2xx_responses"),
        ("ns:metric", "", Kind::Gauge, "ns:metric"),
        // Units: abbreviations, annotations, per-units, unknown units, already present.
        (
            "system.filesystem.usage",
            "By",
            Kind::Gauge,
            "system_filesystem_usage_bytes",
        ),
        (
            "http.server.duration",
            "ms",
            Kind::Family,
            "http_server_duration_milliseconds",
        ),
        (
            "system.network.dropped",
            "{packets}",
            Kind::Counter,
            "system_network_dropped_total",
        ),
        (
            "system.network.dropped",
            "packets",
            Kind::Gauge,
            "system_network_dropped_packets",
        ),
        (
            "network.io",
            "By/s",
            Kind::Gauge,
            "network_io_bytes_per_second",
        ),
        (
            "requests",
            "{request}/s",
            Kind::Gauge,
            "requests_per_second",
        ),
        (
            "disk.latency_seconds",
            "s",
            Kind::Gauge,
            "disk_latency_seconds",
        ),
        (
            "room.temperature",
            "Cel",
            Kind::Gauge,
            "room_temperature_celsius",
        ),
        ("cpu.load", "%", Kind::Gauge, "cpu_load_percent"),
        // `1`: `_ratio` on gauges only.
        (
            "system.memory.utilization",
            "1",
            Kind::Gauge,
            "system_memory_utilization_ratio",
        ),
        ("hits", "1", Kind::Counter, "hits_total"),
        // `_total` on counters, after the unit, not doubled.
        ("http.requests", "", Kind::Counter, "http_requests_total"),
        (
            "http.requests_total",
            "",
            Kind::Counter,
            "http_requests_total",
        ),
        (
            "process.cpu.time",
            "s",
            Kind::Counter,
            "process_cpu_time_seconds_total",
        ),
        ("bytes.sent", "By", Kind::Counter, "bytes_sent_bytes_total"),
    ];

    #[test]
    fn metric_names_follow_the_compatibility_spec() {
        for (name, unit, kind, want) in TABLE {
            assert_eq!(
                metric_name(name, unit, *kind),
                *want,
                "{name} [{unit}] as {kind:?}"
            );
        }
    }

    #[test]
    fn label_names_are_sanitised() {
        for (key, want) in [
            ("service.version", "service_version"),
            ("http.response.status_code", "http_response_status_code"),
            ("a:b", "a_b"),
            ("1st", "_1st"),
            ("__private", "_private"),
            ("", "_"),
            ("größe", "gr_e"),
        ] {
            assert_eq!(label_name(key), want, "{key}");
        }
    }
}
