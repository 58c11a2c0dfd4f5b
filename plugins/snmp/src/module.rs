//! snmp_exporter's modules (`snmp.yml`, as its generator writes it): what to walk and get,
//! and how each OID becomes a metric. Only the modules a job names are read; anything in them
//! this plugin cannot honour (`regex_extracts`, `filters`, a type it does not know) fails the
//! load with the module, metric and key named, rather than producing different series than
//! snmp_exporter would.

use crate::ber::parse_oid;
use crate::yaml::{self, Node};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// snmp_exporter's defaults for a module's walk parameters.
pub const DEFAULT_MAX_REPETITIONS: u32 = 25;
/// Retries of a request that drew no answer.
pub const DEFAULT_RETRIES: u32 = 3;
/// Wait for one answer, in ms.
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;

/// How a value (or an index, or a looked-up label) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number, TYPE gauge.
    Gauge,
    /// A number, TYPE counter.
    Counter,
    /// Text, as a label named after the metric.
    DisplayString,
    /// Bytes as `0x` and upper-case hex, as a label.
    OctetString,
    /// A MAC address `AA:BB:CC:DD:EE:FF`, as a label.
    PhysAddress48,
    /// Four bytes as a dotted quad.
    InetAddressIPv4,
    /// Sixteen bytes as eight groups of four hex digits.
    InetAddressIPv6,
    /// An address whose type (1 IPv4, 2 IPv6) is the previous column's value (or, in an
    /// index, the sub-identifier before its length).
    InetAddress,
    /// As [`Kind::InetAddress`], but an index without the length sub-identifier.
    InetAddressMissingSize,
    /// `<name>_info{<name>="<enum name>"} 1`.
    EnumAsInfo,
    /// `<name>{<name>="<state>"}` 1 for the current state, 0 for the others.
    EnumAsStateSet,
    /// `<name>{<name>="<bit name>"}` 1 or 0 per named bit.
    Bits,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "gauge" | "Integer32" | "Integer" => Self::Gauge,
            "counter" => Self::Counter,
            "DisplayString" => Self::DisplayString,
            "OctetString" => Self::OctetString,
            "PhysAddress48" => Self::PhysAddress48,
            "InetAddressIPv4" => Self::InetAddressIPv4,
            "InetAddressIPv6" => Self::InetAddressIPv6,
            "InetAddress" => Self::InetAddress,
            "InetAddressMissingSize" => Self::InetAddressMissingSize,
            "EnumAsInfo" => Self::EnumAsInfo,
            "EnumAsStateSet" => Self::EnumAsStateSet,
            "Bits" => Self::Bits,
            _ => return None,
        })
    }
}

/// One index of a table metric: how its sub-identifiers become a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The label.
    pub labelname: String,
    /// How the sub-identifiers read.
    pub kind: Kind,
    /// Length of a fixed-size string index (0: the first sub-identifier is the length).
    pub fixed_size: usize,
    /// The string takes every remaining sub-identifier.
    pub implied: bool,
    /// Names of an `EnumAsInfo` index's values.
    pub enum_values: BTreeMap<i64, String>,
}

/// A label looked up in another column of the same row(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Index labels whose sub-identifiers complete the OID; none removes `labelname`.
    pub labels: Vec<String>,
    /// The label set.
    pub labelname: String,
    /// The column.
    pub oid: Vec<u32>,
    /// How the value reads.
    pub kind: Kind,
    /// Names of an `EnumAsInfo` lookup's values.
    pub enum_values: BTreeMap<i64, String>,
}

/// One metric of a module.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric name.
    pub name: String,
    /// Its OID (a column for table metrics).
    pub oid: Vec<u32>,
    /// How its value reads.
    pub kind: Kind,
    /// The HELP text.
    pub help: String,
    /// The indexes after `oid`, in order.
    pub indexes: Vec<Index>,
    /// Labels from other columns.
    pub lookups: Vec<Lookup>,
    /// Names of enumeration values.
    pub enum_values: BTreeMap<i64, String>,
    /// Multiplies the value (0: not set).
    pub scale: f64,
    /// Added to the value.
    pub offset: f64,
}

/// One module.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// Its name in the file.
    pub name: String,
    /// Subtrees walked.
    pub walk: Vec<Vec<u32>>,
    /// OIDs asked for with GET.
    pub get: Vec<Vec<u32>>,
    /// Its metrics.
    pub metrics: Vec<Metric>,
    /// GETBULK max-repetitions.
    pub max_repetitions: u32,
    /// Retries of a request without answer.
    pub retries: u32,
    /// Wait for one answer, ms.
    pub timeout_ms: u32,
}

const MODULE_KEYS: &[&str] = &[
    "walk",
    "get",
    "metrics",
    "max_repetitions",
    "retries",
    "timeout",
    "allow_nonincreasing_oids",
    "use_unconnected_udp_socket",
];
const METRIC_KEYS: &[&str] = &[
    "name",
    "oid",
    "type",
    "help",
    "indexes",
    "lookups",
    "enum_values",
    "scale",
    "offset",
];

/// Reads the modules `names` from a module file's text.
///
/// # Errors
/// A YAML error with its line; a named module missing; a key or type this plugin does not
/// honour, naming the module, metric and key.
pub fn load(text: &str, names: &[String]) -> Result<Vec<Module>, String> {
    let root = yaml::parse(text, |path| {
        path.first() != Some(&"modules") || path.len() < 2 || names.iter().any(|n| n == path[1])
    })?;
    let modules = root
        .get("modules")
        .and_then(Node::as_map)
        .ok_or("no `modules` mapping")?;
    names
        .iter()
        .map(|name| {
            let node = modules
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    let known: Vec<&str> = modules.iter().map(|(k, _)| k.as_str()).collect();
                    format!(
                        "module `{name}`: not in the file (it has {})",
                        known.join(", ")
                    )
                })?;
            module(name, node).map_err(|e| format!("module `{name}`: {e}"))
        })
        .collect()
}

fn str_at<'n>(node: &'n Node, key: &str) -> Result<Option<&'n str>, String> {
    match node.get(key) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Str(s)) => Ok(Some(s)),
        Some(_) => Err(format!("key `{key}`: must be a scalar")),
    }
}

fn num<T: core::str::FromStr>(node: &Node, key: &str) -> Result<Option<T>, String> {
    str_at(node, key)?
        .map(|s| {
            s.parse()
                .map_err(|_| format!("key `{key}`: `{s}` is not a number"))
        })
        .transpose()
}

fn oids(node: &Node, key: &str) -> Result<Vec<Vec<u32>>, String> {
    node.get(key)
        .map_or(Some(&[][..]), Node::as_seq)
        .ok_or_else(|| format!("key `{key}`: must be a list of OIDs"))?
        .iter()
        .map(|o| {
            o.as_str()
                .ok_or_else(|| format!("key `{key}`: must be a list of OIDs"))
                .and_then(|s| parse_oid(s).map_err(|e| format!("key `{key}`: {e}")))
        })
        .collect()
}

/// A Go duration: `5s`, `500ms`, `1m30s`.
fn duration_ms(s: &str) -> Option<u32> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..u] {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "us" | "µs" => 0.001,
            _ => return None,
        };
        total += v * factor;
        rest = &rest[u..];
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (total >= 1.0 && total < f64::from(u32::MAX)).then_some(total as u32)
}

fn module(name: &str, node: &Node) -> Result<Module, String> {
    let entries = node.as_map().ok_or("must be a mapping")?;
    for (k, _) in entries {
        if !MODULE_KEYS.contains(&k.as_str()) {
            return Err(format!(
                "key `{k}`: not supported by this plugin (supported: {})",
                MODULE_KEYS.join(", ")
            ));
        }
    }
    let metrics = node
        .get("metrics")
        .map_or(Some(&[][..]), Node::as_seq)
        .ok_or("key `metrics`: must be a list")?
        .iter()
        .enumerate()
        .map(|(i, m)| metric(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout_ms = match str_at(node, "timeout")? {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => duration_ms(t)
            .ok_or_else(|| format!("key `timeout`: `{t}` is not a duration such as 5s"))?,
    };
    Ok(Module {
        name: name.to_string(),
        walk: oids(node, "walk")?,
        get: oids(node, "get")?,
        metrics,
        max_repetitions: num(node, "max_repetitions")?
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MAX_REPETITIONS),
        retries: num(node, "retries")?.unwrap_or(DEFAULT_RETRIES),
        timeout_ms,
    })
}

fn enum_values(node: &Node) -> Result<BTreeMap<i64, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in node
        .get("enum_values")
        .map_or(Some(&[][..]), Node::as_map)
        .ok_or("key `enum_values`: must be a mapping")?
    {
        let k: i64 = k
            .parse()
            .map_err(|_| format!("key `enum_values`: `{k}` is not an integer"))?;
        out.insert(k, v.as_str().unwrap_or_default().to_string());
    }
    Ok(out)
}

fn kind(node: &Node, key: &str) -> Result<Kind, String> {
    let t = str_at(node, key)?.ok_or_else(|| format!("key `{key}`: missing"))?;
    Kind::parse(t).ok_or_else(|| format!("key `{key}`: type `{t}` is not supported by this plugin"))
}

fn metric(i: usize, node: &Node) -> Result<Metric, String> {
    let name = str_at(node, "name")?.unwrap_or_default().to_string();
    let at = |e: String| format!("metric `{name}` (metrics[{i}]): {e}");
    let entries = node
        .as_map()
        .ok_or_else(|| at("must be a mapping".into()))?;
    for (k, _) in entries {
        if !METRIC_KEYS.contains(&k.as_str()) {
            return Err(at(format!("key `{k}`: not supported by this plugin")));
        }
    }
    if name.is_empty() {
        return Err(at("key `name`: missing".into()));
    }
    let oid = parse_oid(str_at(node, "oid").map_err(at)?.unwrap_or_default())
        .map_err(|e| at(format!("key `oid`: {e}")))?;
    let mut indexes = Vec::new();
    for ix in node.get("indexes").and_then(Node::as_seq).unwrap_or(&[]) {
        indexes.push(Index {
            labelname: str_at(ix, "labelname")
                .map_err(at)?
                .ok_or_else(|| at("indexes: `labelname` missing".into()))?
                .to_string(),
            kind: kind(ix, "type").map_err(|e| at(format!("indexes: {e}")))?,
            fixed_size: num(ix, "fixed_size").map_err(at)?.unwrap_or(0),
            implied: str_at(ix, "implied").map_err(at)? == Some("true"),
            enum_values: enum_values(ix).map_err(at)?,
        });
    }
    let mut lookups = Vec::new();
    for l in node.get("lookups").and_then(Node::as_seq).unwrap_or(&[]) {
        let labels = l
            .get("labels")
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|n| n.as_str().map(ToString::to_string))
            .collect();
        let has_oid = str_at(l, "oid").map_err(at)?.is_some();
        lookups.push(Lookup {
            labels,
            labelname: str_at(l, "labelname")
                .map_err(at)?
                .ok_or_else(|| at("lookups: `labelname` missing".into()))?
                .to_string(),
            oid: if has_oid {
                parse_oid(str_at(l, "oid").map_err(at)?.unwrap_or_default())
                    .map_err(|e| at(format!("lookups: {e}")))?
            } else {
                Vec::new()
            },
            kind: if has_oid {
                kind(l, "type").map_err(|e| at(format!("lookups: {e}")))?
            } else {
                Kind::Gauge
            },
            enum_values: enum_values(l).map_err(at)?,
        });
    }
    Ok(Metric {
        kind: kind(node, "type").map_err(at)?,
        help: str_at(node, "help")
            .map_err(at)?
            .unwrap_or_default()
            .to_string(),
        enum_values: enum_values(node).map_err(at)?,
        scale: num(node, "scale").map_err(at)?.unwrap_or(0.0),
        offset: num(node, "offset").map_err(at)?.unwrap_or(0.0),
        name,
        oid,
        indexes,
        lookups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IF_MIB: &str = include_str!("../testdata/snmp.yml");

    #[test]
    fn the_generated_if_mib_module_reads_whole() {
        let m = &load(IF_MIB, &["if_mib".into()]).unwrap()[0];
        assert_eq!(
            m.walk,
            [
                parse_oid("1.3.6.1.2.1.2").unwrap(),
                parse_oid("1.3.6.1.2.1.31.1.1").unwrap()
            ]
        );
        assert_eq!(m.metrics.len(), 39);
        let by = |n: &str| m.metrics.iter().find(|x| x.name == n).unwrap();
        assert_eq!(by("ifHCInOctets").kind, Kind::Counter);
        assert_eq!(by("ifMtu").kind, Kind::Gauge);
        assert_eq!(by("ifPhysAddress").kind, Kind::PhysAddress48);
        let t = by("ifType");
        assert_eq!(t.kind, Kind::EnumAsInfo);
        assert_eq!(
            t.enum_values.get(&24).map(String::as_str),
            Some("softwareLoopback")
        );
        let lk: Vec<&str> = t.lookups.iter().map(|l| l.labelname.as_str()).collect();
        assert_eq!(lk, ["ifAlias", "ifDescr", "ifName"]);
        assert_eq!(t.indexes[0].labelname, "ifIndex");
        assert_eq!((m.max_repetitions, m.retries, m.timeout_ms), (25, 3, 5000));
    }

    #[test]
    fn the_generated_system_module_reads_beside_if_mib() {
        let ms = load(IF_MIB, &["system".into(), "if_mib".into()]).unwrap();
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["system", "if_mib"]);
        let m = &ms[0];
        assert_eq!(m.walk, [parse_oid("1.3.6.1.2.1.1").unwrap()]);
        assert_eq!(m.metrics.len(), 12);
        let by = |n: &str| m.metrics.iter().find(|x| x.name == n).unwrap();
        assert_eq!(by("sysName").kind, Kind::DisplayString);
        assert_eq!(by("sysObjectID").kind, Kind::OctetString);
        assert_eq!(by("sysUpTime").kind, Kind::Gauge);
        let or = by("sysORID");
        assert_eq!(or.indexes[0].labelname, "sysORIndex");
        assert_eq!(or.lookups[0].labelname, "sysORDescr");
    }

    #[test]
    fn what_cannot_be_honoured_is_named() {
        let e = load(IF_MIB, &["nope".into()]).unwrap_err();
        assert!(
            e.contains("module `nope`: not in the file (it has if_mib"),
            "{e}"
        );
        let text = "modules:\n  m:\n    walk:\n    - 1.3\n    metrics:\n    - name: x\n      oid: 1.3.6\n      type: ParseDateAndTime\n";
        let e = load(text, &["m".into()]).unwrap_err();
        assert!(
            e.contains("module `m`: metric `x` (metrics[0]): key `type`: type `ParseDateAndTime`"),
            "{e}"
        );
        let text = "modules:\n  m:\n    walk:\n    - 1.3\n    filters: {}\n";
        let e = load(text, &["m".into()]).unwrap_err();
        assert!(
            e.contains("module `m`: key `filters`: not supported"),
            "{e}"
        );
        let text = "modules:\n  m:\n    timeout: soon\n";
        let e = load(text, &["m".into()]).unwrap_err();
        assert!(e.contains("key `timeout`"), "{e}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(duration_ms("5s"), Some(5000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("1.5s"), Some(1500));
        assert_eq!(duration_ms("x"), None);
    }
}
