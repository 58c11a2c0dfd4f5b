//! `meminfo`: every line of `/proc/meminfo` becomes `node_memory_<key>[_bytes]`.
//!
//! Names are built as node_exporter builds them: `Active(anon):` → `Active_anon`, a `kB` unit
//! multiplies by 1024 and appends `_bytes`, and a unitless line (`HugePages_Total:`) keeps its
//! name. Only a key ending in lowercase `_total` would be a counter; none does today.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ctx::{Ctx, f64_field};
use crate::error::CollectError;
use crate::sink::{MetricType, Out};

/// Parses `/proc/meminfo` into `(metric name, value)` pairs, all or nothing.
pub(crate) fn parse(text: &str, path: &str) -> Result<Vec<(String, f64)>, CollectError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(raw_key) = parts.first() else {
            // Some kernels emit blank lines; node_exporter skips them too.
            continue;
        };
        let value = parts
            .get(1)
            .ok_or_else(|| CollectError::parse(path, "line without a value"))?;
        let mut value = f64_field(value, path)?;
        // node_exporter strips the last character, assumed to be the colon.
        let key = raw_key
            .char_indices()
            .last()
            .map_or("", |(i, _)| &raw_key[..i]);
        let mut name = String::from("node_memory_");
        push_key(&mut name, key);
        match parts.len() {
            2 => {}
            3 => {
                value *= 1024.0;
                name.push_str("_bytes");
            }
            _ => return Err(CollectError::parse(path, "line with more than a unit")),
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Appends `key` with its first `(...)` group replaced by `_...`, as the regex `\((.*)\)`
/// (greedy: from the first `(` to the last `)`) does in node_exporter.
fn push_key(name: &mut String, key: &str) {
    match (key.find('('), key.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            name.push_str(&key[..open]);
            name.push('_');
            name.push_str(&key[open + 1..close]);
            name.push_str(&key[close + 1..]);
        }
        _ => name.push_str(key),
    }
}

pub(crate) fn collect(ctx: &mut Ctx<'_>, out: &mut Out<'_>) -> Result<(), CollectError> {
    let path = ctx.cfg.proc("meminfo");
    let text = ctx.read(&path)?;
    for (name, value) in parse(&text, &path)? {
        let kind = if name.ends_with("_total") {
            MetricType::Counter
        } else {
            MetricType::Gauge
        };
        out.emit(&name, kind, "Memory information field.", &[], value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node_exporter() {
        let got = parse(
            "MemTotal:        3884376 kB\nActive(anon):      1024 kB\n\nHugePages_Total:       0\n",
            "/proc/meminfo",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ("node_memory_MemTotal_bytes".into(), 3_884_376.0 * 1024.0),
                ("node_memory_Active_anon_bytes".into(), 1024.0 * 1024.0),
                ("node_memory_HugePages_Total".into(), 0.0),
            ]
        );
    }

    #[test]
    fn malformed_lines_fail_the_file() {
        assert!(parse("MemTotal:\n", "m").is_err());
        assert!(parse("MemTotal: x kB\n", "m").is_err());
        assert!(parse("MemTotal: 1 kB extra\n", "m").is_err());
    }
}
