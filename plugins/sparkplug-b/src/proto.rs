//! The Sparkplug B payload as `prost` types, written by hand from the public
//! `sparkplug_b.proto` (Eclipse Tahu / Eclipse Sparkplug 3.0, `org.eclipse.tahu.protobuf`,
//! proto2) so that the build needs no `protoc`.
//!
//! Only what the decoder reads is declared. Protobuf readers skip the other fields (`uuid`,
//! `body`, metric metadata and properties) and the value kinds the decoder does not store are
//! kept as raw bytes: a data set, template or extension value is one length-delimited field on
//! the wire, whatever its inner structure, so declaring it `bytes` reads it without modelling
//! it.

use prost::alloc::string::String;
use prost::alloc::vec::Vec;

/// `Payload`: one Sparkplug message body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// `optional uint64 timestamp = 1`: sending time, unix ms.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// `repeated Metric metrics = 2`.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// `optional uint64 seq = 3`: 0..=255, one more per message of an edge node.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
}

/// `Payload.Metric`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// `optional string name = 1`: in births; data messages may carry the alias only.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `optional uint64 alias = 2`: bound to the name by the birth.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// `optional uint64 timestamp = 3`: acquisition time, unix ms.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// `optional uint32 datatype = 4`: see [`DataType`]; required in births.
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// `optional bool is_null = 7`.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// The `value` oneof.
    #[prost(oneof = "Value", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18, 19")]
    pub value: Option<Value>,
}

/// `Payload.Metric.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// `uint32 int_value = 10`: (U)Int8/16/32; signed types as two's complement.
    #[prost(uint32, tag = "10")]
    Int(u32),
    /// `uint64 long_value = 11`: (U)Int64, DateTime.
    #[prost(uint64, tag = "11")]
    Long(u64),
    /// `float float_value = 12`.
    #[prost(float, tag = "12")]
    Float(f32),
    /// `double double_value = 13`.
    #[prost(double, tag = "13")]
    Double(f64),
    /// `bool boolean_value = 14`.
    #[prost(bool, tag = "14")]
    Boolean(bool),
    /// `string string_value = 15`.
    #[prost(string, tag = "15")]
    String(String),
    /// `bytes bytes_value = 16`.
    #[prost(bytes = "vec", tag = "16")]
    Bytes(Vec<u8>),
    /// `DataSet dataset_value = 17`, kept as its encoded bytes.
    #[prost(bytes = "vec", tag = "17")]
    DataSet(Vec<u8>),
    /// `Template template_value = 18`, kept as its encoded bytes.
    #[prost(bytes = "vec", tag = "18")]
    Template(Vec<u8>),
    /// `MetricValueExtension extension_value = 19`, kept as its encoded bytes.
    #[prost(bytes = "vec", tag = "19")]
    Extension(Vec<u8>),
}

/// The data types of the specification's table (`Payload` comment in the .proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// Int8, Int16, Int32: `int_value`, two's complement.
    Int32,
    /// Int64: `long_value`, two's complement.
    Int64,
    /// UInt8, UInt16, UInt32: `int_value`.
    UInt32,
    /// UInt64: `long_value`.
    UInt64,
    /// Float: `float_value`.
    Float,
    /// Double: `double_value`.
    Double,
    /// Boolean: `boolean_value`, stored as 0 or 1.
    Boolean,
    /// Anything else (strings, text, UUID, DateTime, bytes, files, data sets, templates): not
    /// a number a time series can hold. Carries the code for messages.
    Other(u32),
}

impl DataType {
    /// The type of code `code`.
    #[must_use]
    pub const fn from_code(code: u32) -> Self {
        match code {
            1..=3 => Self::Int32,
            4 => Self::Int64,
            5..=7 => Self::UInt32,
            8 => Self::UInt64,
            9 => Self::Float,
            10 => Self::Double,
            11 => Self::Boolean,
            c => Self::Other(c),
        }
    }

    /// Whether its values become samples.
    #[must_use]
    pub const fn is_numeric(self) -> bool {
        !matches!(self, Self::Other(_))
    }

    /// The specification's name of a code, for messages.
    #[must_use]
    pub const fn name(code: u32) -> &'static str {
        match code {
            1 => "Int8",
            2 => "Int16",
            3 => "Int32",
            4 => "Int64",
            5 => "UInt8",
            6 => "UInt16",
            7 => "UInt32",
            8 => "UInt64",
            9 => "Float",
            10 => "Double",
            11 => "Boolean",
            12 => "String",
            13 => "DateTime",
            14 => "Text",
            15 => "UUID",
            16 => "DataSet",
            17 => "Bytes",
            18 => "File",
            19 => "Template",
            _ => "Unknown",
        }
    }

    /// The sample value of `v` read as this type; `None` when the value field does not match
    /// the type (a malformed metric).
    #[must_use]
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_wrap)]
    pub fn value(self, v: &Value) -> Option<f64> {
        Some(match (self, v) {
            (Self::Int32, Value::Int(i)) => f64::from(*i as i32),
            (Self::UInt32, Value::Int(i)) => f64::from(*i),
            (Self::Int64, Value::Long(l)) => *l as i64 as f64,
            (Self::UInt64, Value::Long(l)) => *l as f64,
            (Self::Float, Value::Float(f)) => f64::from(*f),
            (Self::Double, Value::Double(d)) => *d,
            (Self::Boolean, Value::Boolean(b)) => f64::from(u8::from(*b)),
            _ => return None,
        })
    }
}
