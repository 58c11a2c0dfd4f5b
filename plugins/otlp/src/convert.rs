//! An `ExportMetricsServiceRequest` to Prometheus samples, per the OpenTelemetry
//! specification "Prometheus and OpenMetrics Compatibility" (names in [`crate::names`]):
//!
//! | OTLP | samples |
//! |---|---|
//! | gauge | `name[_unit][_ratio]` |
//! | sum, cumulative, monotonic | counter `name[_unit]_total` |
//! | sum, cumulative, not monotonic | gauge `name[_unit]` |
//! | histogram, cumulative (explicit buckets) | `_bucket{le}` (cumulative counts, `+Inf` = count), `_sum` (when set), `_count` |
//! | summary | `name{quantile}`, `_sum`, `_count` |
//! | delta sums and histograms, unspecified temporality | the message is refused |
//! | exponential histogram | the message is refused |
//!
//! Delta temporality is refused rather than accumulated: turning deltas into cumulative
//! counters needs state per series across messages and restarts, which a stateless decoder
//! cannot keep correctly (the Collector's `prometheusremotewrite` exporter drops them too).
//! Refusing says why, where dropping would lose data silently; SDKs send cumulative by
//! default. Exponential histograms would be Prometheus native histograms, which the WAL does
//! not store.
//!
//! Labels: point attributes (sanitised; keys that collide join their values with `;` in the
//! order of the original keys), `otel_scope_name` and `otel_scope_version` of the scope (the
//! spec's default; scope attributes are not kept), and `job` (`service.namespace/service.name`)
//! and `instance` (`service.instance.id`) from the resource, which win over point attributes
//! of those names. The other resource attributes go into one `target_info` sample per resource
//! (value 1, with `job` and `instance`, at the resource's latest point time). Timestamps come
//! from `time_unix_nano`; a point flagged "no recorded value" becomes a staleness marker.

use crate::names::{self, Kind};
use crate::proto::{
    self, AnyValue, ExportMetricsServiceRequest, KeyValue, any_value, metric::Data,
    number_data_point::Value, temporality,
};

/// Where samples go: (metric name, labels, value, timestamp ms).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64, Option<i64>) -> Result<(), String> + 'o;

/// Prometheus' staleness marker.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// The resource attributes that make `job` and `instance`, not `target_info`.
const IDENTITY: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

type Labels = Vec<(String, String)>;

/// Converts `req`; returns the number of samples given to `out`.
///
/// # Errors
/// A metric this decoder refuses (delta or unspecified temporality, exponential histogram,
/// a point without a value, bucket counts that do not match the bounds), naming the metric;
/// or `out`'s own refusal.
pub fn convert(req: &ExportMetricsServiceRequest, out: &mut Out<'_>) -> Result<usize, String> {
    let mut n = 0usize;
    let mut emit = |name: &str, labels: &Labels, value: f64, t: Option<i64>| {
        let l: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        n += 1;
        out(name, &l, value, t)
    };
    for rm in &req.resource_metrics {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let (identity, info) = resource_labels(attrs);
        let mut latest: Option<i64> = None;
        for sm in &rm.scope_metrics {
            let mut base = Labels::new();
            if let Some(s) = &sm.scope {
                base.push(("otel_scope_name".into(), s.name.clone()));
                base.push(("otel_scope_version".into(), s.version.clone()));
            }
            base.extend(identity.iter().cloned());
            for m in &sm.metrics {
                let t =
                    metric(m, &base, &mut emit).map_err(|e| format!("metric `{}`: {e}", m.name))?;
                latest = latest.max(t);
            }
        }
        if info.len() > identity.len() && latest.is_some() {
            emit("target_info", &info, 1.0, latest)?;
        }
    }
    Ok(n)
}

/// `job` and `instance` (empty when absent), and the `target_info` labels (those two plus the
/// other attributes).
fn resource_labels(attrs: &[KeyValue]) -> (Labels, Labels) {
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a.key == k)
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default()
    };
    let (ns, name) = (get("service.namespace"), get("service.name"));
    let job = if ns.is_empty() {
        name
    } else {
        format!("{ns}/{name}")
    };
    let identity = vec![
        ("job".to_string(), job),
        ("instance".to_string(), get("service.instance.id")),
    ];
    let others: Vec<KeyValue> = attrs
        .iter()
        .filter(|a| !IDENTITY.contains(&a.key.as_str()))
        .cloned()
        .collect();
    let mut info = attributes(&others);
    for (k, v) in &identity {
        set(&mut info, k, v.clone());
    }
    (identity, info)
}

/// Point attributes as labels: keys sanitised; values of keys that sanitise alike joined with
/// `;` in the order of the original keys.
fn attributes(kvs: &[KeyValue]) -> Labels {
    let mut sorted: Vec<&KeyValue> = kvs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = Labels::with_capacity(sorted.len());
    for kv in sorted {
        let k = names::label_name(&kv.key);
        let v = text(kv.value.as_ref());
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, old)) => {
                old.push(';');
                old.push_str(&v);
            }
            None => out.push((k, v)),
        }
    }
    out
}

/// Sets label `k`, replacing an attribute of that name; an empty `v` replaces nothing.
fn set(labels: &mut Labels, k: &str, v: String) {
    if v.is_empty() {
        return;
    }
    match labels.iter_mut().find(|(n, _)| n == k) {
        Some((_, old)) => *old = v,
        None => labels.push((k.to_string(), v)),
    }
}

/// The labels of a point: its attributes, then the scope's and resource's labels over them.
fn point_labels(attrs: &[KeyValue], base: &Labels) -> Labels {
    let mut l = attributes(attrs);
    for (k, v) in base {
        set(&mut l, k, v.clone());
    }
    l
}

/// An attribute value as label text, per the attribute specification: strings as they are,
/// numbers and booleans as JSON writes them, arrays and maps as JSON, bytes as base64.
fn text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BytesValue(b)) => base64(b),
        Some(other) => json_value(other).to_string(),
    }
}

fn json_value(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or_else(
            || {
                J::String(
                    if d.is_nan() {
                        "NaN"
                    } else if *d > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    }
                    .into(),
                )
            },
            J::Number,
        ),
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map_or(J::Null, json_value))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|p| {
                    let v = p.value.as_ref().and_then(|x| x.value.as_ref());
                    (p.key.clone(), v.map_or(J::Null, json_value))
                })
                .collect(),
        ),
        any_value::Value::BytesValue(b) => J::String(base64(b)),
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn ms(t_nano: u64) -> Option<i64> {
    // u64::MAX / 1e6 fits in i64.
    (t_nano != 0).then(|| i64::try_from(t_nano / 1_000_000).unwrap_or(i64::MAX))
}

fn value_of(flags: u32, v: f64) -> f64 {
    if flags & proto::FLAG_NO_RECORDED_VALUE == 0 {
        v
    } else {
        f64::from_bits(STALE_NAN)
    }
}

/// A bound or quantile as Prometheus writes it in `le` and `quantile`.
fn float_label(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

type Emit<'e> = dyn FnMut(&str, &Labels, f64, Option<i64>) -> Result<(), String> + 'e;

/// Emits one metric's samples; returns the latest point time.
fn metric(m: &proto::Metric, base: &Labels, emit: &mut Emit<'_>) -> Result<Option<i64>, String> {
    let mut latest = None;
    match &m.data {
        None => {}
        Some(Data::Gauge(g)) => {
            let name = names::metric_name(&m.name, &m.unit, Kind::Gauge);
            for p in &g.data_points {
                latest = latest.max(number(&name, p, base, emit)?);
            }
        }
        Some(Data::Sum(s)) => {
            match s.aggregation_temporality {
                temporality::CUMULATIVE => {}
                temporality::DELTA => {
                    return Err("delta temporality is not taken; configure the exporter for cumulative temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative)".into());
                }
                t => return Err(format!("aggregation temporality {t} is not cumulative")),
            }
            let kind = if s.is_monotonic {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            let name = names::metric_name(&m.name, &m.unit, kind);
            for p in &s.data_points {
                latest = latest.max(number(&name, p, base, emit)?);
            }
        }
        Some(Data::Histogram(h)) => {
            if h.aggregation_temporality != temporality::CUMULATIVE {
                return Err(format!(
                    "histogram temporality {} is not cumulative (2); configure the exporter for cumulative temporality",
                    h.aggregation_temporality
                ));
            }
            let name = names::metric_name(&m.name, &m.unit, Kind::Family);
            for p in &h.data_points {
                latest = latest.max(histogram(&name, p, base, emit)?);
            }
        }
        Some(Data::Summary(s)) => {
            let name = names::metric_name(&m.name, &m.unit, Kind::Family);
            for p in &s.data_points {
                let mut l = point_labels(&p.attributes, base);
                l.retain(|(k, _)| k != "quantile");
                let t = ms(p.time_unix_nano);
                for q in &p.quantile_values {
                    l.push(("quantile".into(), float_label(q.quantile)));
                    emit(&name, &l, value_of(p.flags, q.value), t)?;
                    l.pop();
                }
                emit(&format!("{name}_sum"), &l, value_of(p.flags, p.sum), t)?;
                #[allow(clippy::cast_precision_loss)]
                emit(
                    &format!("{name}_count"),
                    &l,
                    value_of(p.flags, p.count as f64),
                    t,
                )?;
                latest = latest.max(t);
            }
        }
        Some(Data::ExponentialHistogram(_)) => {
            return Err("exponential histograms are not taken (they would be native histograms, which the WAL does not store); configure the SDK's explicit bucket histogram aggregation".into());
        }
    }
    Ok(latest)
}

fn number(
    name: &str,
    p: &proto::NumberDataPoint,
    base: &Labels,
    emit: &mut Emit<'_>,
) -> Result<Option<i64>, String> {
    #[allow(clippy::cast_precision_loss)]
    let v = match p.value {
        Some(Value::AsDouble(d)) => d,
        Some(Value::AsInt(i)) => i as f64,
        None if p.flags & proto::FLAG_NO_RECORDED_VALUE != 0 => 0.0,
        None => return Err("a data point without a value".into()),
    };
    let t = ms(p.time_unix_nano);
    emit(
        name,
        &point_labels(&p.attributes, base),
        value_of(p.flags, v),
        t,
    )?;
    Ok(t)
}

fn histogram(
    name: &str,
    p: &proto::HistogramDataPoint,
    base: &Labels,
    emit: &mut Emit<'_>,
) -> Result<Option<i64>, String> {
    if !p.bucket_counts.is_empty() && p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
        return Err(format!(
            "{} bucket counts for {} bounds (want one more count than bounds)",
            p.bucket_counts.len(),
            p.explicit_bounds.len()
        ));
    }
    if p.explicit_bounds.windows(2).any(|w| w[0] >= w[1])
        || p.explicit_bounds.iter().any(|b| b.is_nan())
    {
        return Err(format!("bounds {:?} are not increasing", p.explicit_bounds));
    }
    let mut l = point_labels(&p.attributes, base);
    l.retain(|(k, _)| k != "le");
    let t = ms(p.time_unix_nano);
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0u64;
    if !p.bucket_counts.is_empty() {
        for (bound, count) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cumulative = cumulative.saturating_add(*count);
            l.push(("le".into(), float_label(*bound)));
            #[allow(clippy::cast_precision_loss)]
            emit(&bucket, &l, value_of(p.flags, cumulative as f64), t)?;
            l.pop();
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let count = value_of(p.flags, p.count as f64);
    l.push(("le".into(), "+Inf".into()));
    emit(&bucket, &l, count, t)?;
    l.pop();
    if let Some(sum) = p.sum {
        emit(&format!("{name}_sum"), &l, value_of(p.flags, sum), t)?;
    }
    emit(&format!("{name}_count"), &l, count, t)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn colliding_attribute_keys_join_their_values_in_key_order() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
        };
        let l = attributes(&[kv("a.b", "2"), kv("a_b", "3"), kv("a-b", "1")]);
        assert_eq!(l, vec![("a_b".to_string(), "1;2;3".to_string())]);
    }
}
