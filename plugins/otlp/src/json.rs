//! The OTLP/JSON encoding rules the derived readers in [`crate::proto`] need beyond serde's
//! defaults: 64-bit integers as decimal strings (numbers accepted too), doubles as numbers or
//! the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, enums as integers (names accepted too),
//! and the flat JSON shapes of the messages that hold a `oneof`.
//!
//! `bytesValue` is base64 in JSON; it is kept as that text, which is what a bytes attribute
//! becomes as a label anyway (the protobuf path encodes the bytes the same way).

use crate::proto;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct U64V;

impl Visitor<'_> for U64V {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unsigned 64-bit integer as a number or decimal string")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse()
            .map_err(|_| E::custom(format!("`{v}` is not an unsigned 64-bit integer")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
}

struct I64V;

impl Visitor<'_> for I64V {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 64-bit integer as a number or decimal string")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse()
            .map_err(|_| E::custom(format!("`{v}` is not a 64-bit integer")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
        Ok(0)
    }
}

struct F64V;

impl Visitor<'_> for F64V {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => v
                .parse()
                .map_err(|_| E::custom(format!("`{v}` is not a number"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(0.0)
    }
}

struct TemporalityV;

impl Visitor<'_> for TemporalityV {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AggregationTemporality (integer)")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("{v} is not an AggregationTemporality")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| E::custom(format!("{v} is not an AggregationTemporality")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        match v {
            "AGGREGATION_TEMPORALITY_UNSPECIFIED" => Ok(proto::temporality::UNSPECIFIED),
            "AGGREGATION_TEMPORALITY_DELTA" => Ok(proto::temporality::DELTA),
            "AGGREGATION_TEMPORALITY_CUMULATIVE" => Ok(proto::temporality::CUMULATIVE),
            _ => Err(E::custom(format!("`{v}` is not an AggregationTemporality"))),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
        Ok(0)
    }
}

/// A `fixed64`/`uint64` field.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(U64V)
}

/// An `int64`/`sfixed64` field.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(I64V)
}

/// A `double` field.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64V)
}

/// An `optional double` field (absent or `null`: unset).
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<F64>::deserialize(d).map(|o| o.map(|v| v.0))
}

/// An `AggregationTemporality` field.
pub fn temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(TemporalityV)
}

struct U64(u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64(d).map(Self)
    }
}

struct F64(f64);

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64(d).map(Self)
    }
}

/// A `repeated fixed64` field.
pub fn u64_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    Vec::<U64>::deserialize(d).map(|v| v.into_iter().map(|x| x.0).collect())
}

/// A `repeated double` field.
pub fn f64_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Vec::<F64>::deserialize(d).map(|v| v.into_iter().map(|x| x.0).collect())
}

/// `AnyValue` in JSON: one of its fields.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct AnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(deserialize_with = "opt_i64")]
    int_value: Option<i64>,
    #[serde(deserialize_with = "opt_f64")]
    double_value: Option<f64>,
    array_value: Option<proto::ArrayValue>,
    kvlist_value: Option<proto::KeyValueList>,
    bytes_value: Option<String>,
}

fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct I(i64);
    impl<'de> Deserialize<'de> for I {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            i64(d).map(Self)
        }
    }
    Option::<I>::deserialize(d).map(|o| o.map(|v| v.0))
}

impl From<AnyValue> for proto::AnyValue {
    fn from(j: AnyValue) -> Self {
        use proto::any_value::Value as V;
        let value = j
            .string_value
            .map(V::StringValue)
            .or(j.bool_value.map(V::BoolValue))
            .or(j.int_value.map(V::IntValue))
            .or(j.double_value.map(V::DoubleValue))
            .or(j.array_value.map(V::ArrayValue))
            .or(j.kvlist_value.map(V::KvlistValue))
            // Base64 text stands for the bytes; see the module docs.
            .or(j.bytes_value.map(V::StringValue));
        Self { value }
    }
}

/// `Metric` in JSON: the `data` oneof is whichever of its fields is present.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Metric {
    name: String,
    unit: String,
    gauge: Option<proto::Gauge>,
    sum: Option<proto::Sum>,
    histogram: Option<proto::Histogram>,
    exponential_histogram: Option<proto::ExponentialHistogram>,
    summary: Option<proto::Summary>,
}

impl From<Metric> for proto::Metric {
    fn from(j: Metric) -> Self {
        use proto::metric::Data;
        let data = j
            .gauge
            .map(Data::Gauge)
            .or(j.sum.map(Data::Sum))
            .or(j.histogram.map(Data::Histogram))
            .or(j.exponential_histogram.map(Data::ExponentialHistogram))
            .or(j.summary.map(Data::Summary));
        Self {
            name: j.name,
            unit: j.unit,
            data,
        }
    }
}

/// `NumberDataPoint` in JSON: `asDouble` or `asInt`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct NumberDataPoint {
    attributes: Vec<proto::KeyValue>,
    #[serde(deserialize_with = "u64")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "opt_f64")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "opt_i64")]
    as_int: Option<i64>,
    flags: u32,
}

impl From<NumberDataPoint> for proto::NumberDataPoint {
    fn from(j: NumberDataPoint) -> Self {
        use proto::number_data_point::Value;
        Self {
            attributes: j.attributes,
            time_unix_nano: j.time_unix_nano,
            value: j
                .as_double
                .map(Value::AsDouble)
                .or(j.as_int.map(Value::AsInt)),
            flags: j.flags,
        }
    }
}
