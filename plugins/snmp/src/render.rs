//! Walk results to samples, as snmp_exporter names and labels them: each returned OID belongs
//! to the module metric with the longest matching OID prefix; the rest of the OID is its
//! indexes, decoded into labels by type; lookups add labels from other columns of the row;
//! numbers are the value, strings a label named after the metric (value 1), enumerations an
//! `_info` series or a state set. Counters keep their module name (no `_total`) and TYPE
//! counter; everything else is a gauge.

use crate::module::{Index, Kind, Metric, Module};
use crate::pdu::{Value, text};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use magpie_sdk::abi::MetricType;

/// What a walk returned: OID to value, in OID order.
pub type Results = BTreeMap<Vec<u32>, Value>;

/// One sample to emit.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name.
    pub name: String,
    /// Labels, in the order they were set.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A family's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The family (metric) name.
    pub name: String,
    /// counter or gauge.
    pub kind: MetricType,
    /// HELP.
    pub help: String,
}

/// The families a module's metrics produce.
#[must_use]
pub fn families(module: &Module) -> Vec<Family> {
    module
        .metrics
        .iter()
        .map(|m| {
            let (name, kind, help) = match m.kind {
                Kind::Counter => (m.name.clone(), MetricType::Counter, m.help.clone()),
                Kind::EnumAsInfo => (
                    format!("{}_info", m.name),
                    MetricType::Gauge,
                    format!("{} (EnumAsInfo)", m.help),
                ),
                Kind::EnumAsStateSet => (
                    m.name.clone(),
                    MetricType::Gauge,
                    format!("{} (EnumAsStateSet)", m.help),
                ),
                Kind::Bits => (
                    m.name.clone(),
                    MetricType::Gauge,
                    format!("{} (Bits)", m.help),
                ),
                _ => (m.name.clone(), MetricType::Gauge, m.help.clone()),
            };
            Family { name, kind, help }
        })
        .collect()
}

/// The module's metrics by OID, for prefix matching.
#[must_use]
pub fn by_oid(module: &Module) -> BTreeMap<Vec<u32>, usize> {
    module
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| (m.oid.clone(), i))
        .collect()
}

/// Turns `results` into samples, pushed to `out` in OID order.
pub fn render(
    module: &Module,
    index: &BTreeMap<Vec<u32>, usize>,
    results: &Results,
    out: &mut Vec<Sample>,
) {
    for (oid, value) in results {
        if value.is_exception() {
            continue;
        }
        let Some((len, metric)) = (1..=oid.len())
            .rev()
            .find_map(|l| index.get(&oid[..l]).map(|i| (l, &module.metrics[*i])))
        else {
            continue;
        };
        samples(metric, &oid[len..], value, results, out);
    }
}

fn samples(metric: &Metric, sub: &[u32], value: &Value, results: &Results, out: &mut Vec<Sample>) {
    let labels = index_labels(metric, sub, results);
    let mut v = value.as_f64();
    let kind = match metric.kind {
        Kind::InetAddress | Kind::InetAddressMissingSize => address_kind(&metric.oid, sub, results),
        k => k,
    };
    let mut labels = labels;
    let name = match kind {
        Kind::Gauge | Kind::Counter => metric.name.clone(),
        Kind::EnumAsInfo => {
            if labels.iter().any(|(k, _)| *k == metric.name) {
                return;
            }
            labels.push((
                metric.name.clone(),
                enum_name(&metric.enum_values, value.as_i64()),
            ));
            out.push(Sample {
                name: format!("{}_info", metric.name),
                labels,
                value: 1.0,
            });
            return;
        }
        Kind::EnumAsStateSet => {
            let now = value.as_i64();
            let mut push = |state: String, v: f64| {
                let mut l = labels.clone();
                l.push((metric.name.clone(), state));
                out.push(Sample {
                    name: metric.name.clone(),
                    labels: l,
                    value: v,
                });
            };
            push(enum_name(&metric.enum_values, now), 1.0);
            for (k, state) in &metric.enum_values {
                if *k != now {
                    push(state.clone(), 0.0);
                }
            }
            return;
        }
        Kind::Bits => {
            let bytes = match value {
                Value::Octets(b) => b.as_slice(),
                _ => &[],
            };
            for (k, state) in &metric.enum_values {
                let bit = usize::try_from(*k)
                    .ok()
                    .is_some_and(|k| bytes.get(k / 8).is_some_and(|b| b & (0x80 >> (k % 8)) != 0));
                let mut l = labels.clone();
                l.push((metric.name.clone(), state.clone()));
                out.push(Sample {
                    name: metric.name.clone(),
                    labels: l,
                    value: if bit { 1.0 } else { 0.0 },
                });
            }
            return;
        }
        k => {
            v = 1.0;
            if !labels.iter().any(|(n, _)| *n == metric.name) {
                labels.push((metric.name.clone(), value_string(value, k)));
            }
            metric.name.clone()
        }
    };
    if metric.scale != 0.0 {
        v *= metric.scale;
    }
    v += metric.offset;
    out.push(Sample {
        name,
        labels,
        value: v,
    });
}

fn enum_name(values: &BTreeMap<i64, String>, v: i64) -> String {
    values.get(&v).cloned().unwrap_or_else(|| format!("{v}"))
}

/// The address type of an `InetAddress` column: the column before it, same row.
fn address_kind(column: &[u32], sub: &[u32], results: &Results) -> Kind {
    let Some((last, head)) = column.split_last() else {
        return Kind::OctetString;
    };
    let mut prev = head.to_vec();
    prev.push(last.wrapping_sub(1));
    prev.extend_from_slice(sub);
    match results.get(&prev).map(Value::as_i64) {
        Some(1) => Kind::InetAddressIPv4,
        Some(2) => Kind::InetAddressIPv6,
        _ => Kind::OctetString,
    }
}

/// Takes `n` sub-identifiers, padded with zeros when the OID is short (some agents drop
/// trailing zeros).
fn take(sub: &mut &[u32], n: usize) -> Vec<u32> {
    let k = n.min(sub.len());
    let mut head = sub[..k].to_vec();
    head.resize(n, 0);
    *sub = &sub[k..];
    head
}

fn hex_pairs(bytes: &[u32], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{:02X}", b & 0xff))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Reads one index from `sub`; returns the label value and the sub-identifiers used.
fn index_value(ix: &Index, kind: Kind, sub: &mut &[u32]) -> (String, Vec<u32>) {
    match kind {
        Kind::Gauge | Kind::Counter => {
            let used = take(sub, 1);
            (format!("{}", used[0]), used)
        }
        Kind::EnumAsInfo => {
            let used = take(sub, 1);
            (enum_name(&ix.enum_values, i64::from(used[0])), used)
        }
        Kind::PhysAddress48 => {
            let used = take(sub, 6);
            (hex_pairs(&used, ":"), used)
        }
        Kind::InetAddressIPv4 => {
            let used = take(sub, 4);
            let parts: Vec<String> = used.iter().map(|b| format!("{b}")).collect();
            (parts.join("."), used)
        }
        Kind::InetAddressIPv6 => {
            let used = take(sub, 16);
            (ipv6(&used), used)
        }
        Kind::InetAddress | Kind::InetAddressMissingSize => {
            let head_len = if kind == Kind::InetAddress { 2 } else { 1 };
            let mut head = take(sub, head_len);
            let inner = match head[0] {
                1 => Kind::InetAddressIPv4,
                2 => Kind::InetAddressIPv6,
                _ => Kind::OctetString,
            };
            if inner == Kind::OctetString {
                *sub = &[];
                return (String::new(), head);
            }
            let (s, used) = index_value(ix, inner, sub);
            head.extend(used);
            (s, head)
        }
        _ => {
            let mut used = Vec::new();
            let len = if ix.implied {
                sub.len()
            } else if ix.fixed_size > 0 {
                ix.fixed_size
            } else {
                let l = take(sub, 1);
                used.extend_from_slice(&l);
                l[0] as usize
            };
            let content = take(sub, len.min(128));
            used.extend_from_slice(&content);
            let s = if kind == Kind::DisplayString {
                let bytes: Vec<u8> = content.iter().map(|b| *b as u8).collect();
                text(&bytes)
            } else if content.is_empty() {
                String::new()
            } else {
                format!("0x{}", hex_pairs(&content, ""))
            };
            (s, used)
        }
    }
}

fn ipv6(b: &[u32]) -> String {
    b.chunks(2)
        .map(|p| {
            format!(
                "{:02X}{:02X}",
                p[0] & 0xff,
                p.get(1).copied().unwrap_or(0) & 0xff
            )
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// A value as a label, as snmp_exporter formats it for `kind`.
fn value_string(v: &Value, kind: Kind) -> String {
    match v {
        Value::Int(i) => format!("{i}"),
        Value::Counter32(u) | Value::Gauge32(u) | Value::TimeTicks(u) | Value::Counter64(u) => {
            format!("{u}")
        }
        Value::Oid(o) => crate::ber::oid_string(o),
        Value::IpAddress(b) => {
            let parts: Vec<String> = b.iter().map(|x| format!("{x}")).collect();
            parts.join(".")
        }
        Value::Octets(b) | Value::Opaque(b) => {
            let subs: Vec<u32> = b.iter().map(|x| u32::from(*x)).collect();
            let ix = Index {
                labelname: String::new(),
                kind,
                fixed_size: 0,
                implied: true,
                enum_values: BTreeMap::new(),
            };
            match kind {
                Kind::DisplayString => text(b),
                Kind::PhysAddress48 | Kind::InetAddressIPv4 | Kind::InetAddressIPv6 => {
                    index_value(&ix, kind, &mut subs.as_slice()).0
                }
                _ => index_value(&ix, Kind::OctetString, &mut subs.as_slice()).0,
            }
        }
        _ => String::new(),
    }
}

fn index_labels(metric: &Metric, sub: &[u32], results: &Results) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut oids: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut rest = sub;
    for ix in &metric.indexes {
        let (s, used) = index_value(ix, ix.kind, &mut rest);
        set(&mut labels, &ix.labelname, s);
        oids.insert(ix.labelname.as_str(), used);
    }
    for lk in &metric.lookups {
        if lk.labels.is_empty() {
            labels.retain(|(k, _)| *k != lk.labelname);
            continue;
        }
        let mut oid = lk.oid.clone();
        for l in &lk.labels {
            oid.extend(oids.get(l.as_str()).map_or(&[][..], Vec::as_slice));
        }
        let s = match results.get(&oid) {
            Some(v) if !v.is_exception() => {
                let kind = match lk.kind {
                    Kind::InetAddress | Kind::InetAddressMissingSize => {
                        address_kind(&lk.oid, &oid[lk.oid.len()..], results)
                    }
                    k => k,
                };
                let s = if kind == Kind::EnumAsInfo && !lk.enum_values.is_empty() {
                    enum_name(&lk.enum_values, v.as_i64())
                } else {
                    value_string(v, kind)
                };
                #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
                oids.insert(lk.labelname.as_str(), alloc::vec![v.as_i64() as u32]);
                s
            }
            _ => String::new(),
        };
        set(&mut labels, &lk.labelname, s);
    }
    labels
}

fn set(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    if let Some(slot) = labels.iter_mut().find(|(k, _)| k == name) {
        slot.1 = value;
    } else {
        labels.push((name.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ber::parse_oid;

    fn if_mib() -> Module {
        crate::module::load(include_str!("../testdata/snmp.yml"), &["if_mib".into()])
            .unwrap()
            .remove(0)
    }

    fn o(s: &str) -> Vec<u32> {
        parse_oid(s).unwrap()
    }

    /// Rows as net-snmp's agent answers for `lo` (index 1) and `eth0` (index 2).
    fn table() -> Results {
        let mut r = Results::new();
        r.insert(o("1.3.6.1.2.1.2.1.0"), Value::Int(2));
        for (i, descr, ty, mtu, mac) in [
            (1u32, "lo", 24, 65536, alloc::vec![]),
            (2, "eth0", 6, 1500, alloc::vec![0x02, 0xfc, 0, 0, 0, 1]),
        ] {
            r.insert(
                o(&format!("1.3.6.1.2.1.2.2.1.1.{i}")),
                Value::Int(i64::from(i)),
            );
            r.insert(
                o(&format!("1.3.6.1.2.1.2.2.1.2.{i}")),
                Value::Octets(descr.into()),
            );
            r.insert(o(&format!("1.3.6.1.2.1.2.2.1.3.{i}")), Value::Int(ty));
            r.insert(o(&format!("1.3.6.1.2.1.2.2.1.4.{i}")), Value::Int(mtu));
            r.insert(o(&format!("1.3.6.1.2.1.2.2.1.6.{i}")), Value::Octets(mac));
            r.insert(
                o(&format!("1.3.6.1.2.1.2.2.1.10.{i}")),
                Value::Counter32(1000 + u64::from(i)),
            );
            r.insert(
                o(&format!("1.3.6.1.2.1.31.1.1.1.1.{i}")),
                Value::Octets(descr.into()),
            );
            r.insert(
                o(&format!("1.3.6.1.2.1.31.1.1.1.6.{i}")),
                Value::Counter64(u64::from(u32::MAX) + 7),
            );
        }
        r
    }

    fn find<'a>(s: &'a [Sample], name: &str, ifindex: &str) -> &'a Sample {
        s.iter()
            .find(|x| {
                x.name == name && x.labels.iter().any(|(k, v)| k == "ifIndex" && v == ifindex)
            })
            .unwrap_or_else(|| panic!("no {name} for ifIndex {ifindex}: {s:?}"))
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn the_interface_table_renders_as_snmp_exporter_names_it() {
        let m = if_mib();
        let mut s = Vec::new();
        render(&m, &by_oid(&m), &table(), &mut s);
        let lo = l(&[
            ("ifIndex", "1"),
            ("ifAlias", ""),
            ("ifDescr", "lo"),
            ("ifName", "lo"),
        ]);
        assert_eq!(find(&s, "ifMtu", "1").labels, lo);
        assert_eq!(find(&s, "ifMtu", "1").value, 65536.0);
        assert_eq!(find(&s, "ifInOctets", "2").value, 1002.0);
        assert_eq!(find(&s, "ifHCInOctets", "2").value, 4_294_967_302.0);
        let ty = find(&s, "ifType_info", "1");
        assert_eq!(
            ty.labels.last().unwrap(),
            &("ifType".into(), "softwareLoopback".into())
        );
        assert_eq!(ty.value, 1.0);
        let mac = find(&s, "ifPhysAddress", "2");
        assert_eq!(
            mac.labels.last().unwrap(),
            &("ifPhysAddress".into(), "02:FC:00:00:00:01".into())
        );
        let mac = find(&s, "ifPhysAddress", "1");
        assert_eq!(
            mac.labels.last().unwrap(),
            &("ifPhysAddress".into(), "00:00:00:00:00:00".into())
        );
        let eth0 = l(&[
            ("ifIndex", "2"),
            ("ifAlias", ""),
            ("ifDescr", "eth0"),
            ("ifName", "eth0"),
        ]);
        assert_eq!(find(&s, "ifInOctets", "2").labels, eth0);
        let n = s.iter().find(|x| x.name == "ifNumber").unwrap();
        assert_eq!((n.labels.len(), n.value), (0, 2.0));
        let f = families(&m);
        let c = f.iter().find(|f| f.name == "ifHCInOctets").unwrap();
        assert_eq!(c.kind, MetricType::Counter);
        assert!(
            f.iter()
                .any(|f| f.name == "ifType_info" && f.kind == MetricType::Gauge)
        );
    }

    #[test]
    fn index_types_decode_as_documented() {
        let ix = |kind, fixed_size, implied| Index {
            labelname: "x".into(),
            kind,
            fixed_size,
            implied,
            enum_values: BTreeMap::new(),
        };
        let run = |i: &Index, sub: &[u32]| {
            let mut s = sub;
            let v = index_value(i, i.kind, &mut s).0;
            (v, s.len())
        };
        assert_eq!(
            run(&ix(Kind::DisplayString, 0, false), &[2, 104, 105, 9]),
            ("hi".into(), 1)
        );
        assert_eq!(
            run(&ix(Kind::DisplayString, 0, true), &[104, 105]),
            ("hi".into(), 0)
        );
        assert_eq!(
            run(&ix(Kind::OctetString, 2, false), &[1, 255, 7]),
            ("0x01FF".into(), 1)
        );
        assert_eq!(
            run(&ix(Kind::InetAddress, 0, false), &[1, 4, 10, 0, 0, 1]),
            ("10.0.0.1".into(), 0)
        );
        assert_eq!(
            run(&ix(Kind::InetAddressIPv4, 0, false), &[192, 168]),
            ("192.168.0.0".into(), 0)
        );
        let v6: Vec<u32> = (0..16).collect();
        assert_eq!(
            run(&ix(Kind::InetAddressIPv6, 0, false), &v6).0,
            "0001:0203:0405:0607:0809:0A0B:0C0D:0E0F"
        );
    }

    #[test]
    fn state_sets_bits_and_scale() {
        let mut m = if_mib();
        m.metrics.retain(|x| x.name == "ifAdminStatus");
        let mut enums = BTreeMap::new();
        enums.insert(1, "up".to_string());
        enums.insert(2, "down".to_string());
        m.metrics[0].kind = Kind::EnumAsStateSet;
        m.metrics[0].enum_values = enums;
        m.metrics[0].lookups.clear();
        let mut r = Results::new();
        r.insert(o("1.3.6.1.2.1.2.2.1.7.3"), Value::Int(2));
        let mut s = Vec::new();
        render(&m, &by_oid(&m), &r, &mut s);
        let got: Vec<(String, f64)> = s.iter().map(|x| (x.labels[1].1.clone(), x.value)).collect();
        assert_eq!(got, [("down".into(), 1.0), ("up".into(), 0.0)]);
        m.metrics[0].kind = Kind::Gauge;
        m.metrics[0].scale = 0.5;
        m.metrics[0].offset = 1.0;
        s.clear();
        render(&m, &by_oid(&m), &r, &mut s);
        assert_eq!(s[0].value, 2.0);
    }
}
