//! The OTLP metrics messages as `prost` types, written by hand from the public
//! opentelemetry-proto schemas (`collector/metrics/v1/metrics_service.proto`,
//! `metrics/v1/metrics.proto`, `common/v1/common.proto`, `resource/v1/resource.proto`).
//!
//! Only the fields the decoder reads are declared: a protobuf reader skips the others
//! (exemplars, metadata, min/max, entity refs) by their wire type, as protobuf requires. The
//! same types read OTLP/JSON through `serde`: keys in lowerCamelCase, 64-bit integers as
//! strings or numbers, enums as integers; unknown keys are ignored, as the OTLP spec asks of
//! receivers. A `oneof` arrives in JSON as whichever of its fields is present, so the
//! messages holding one are read through a flat JSON shape ([`crate::json`]) and converted.

use crate::json;
use serde::Deserialize;

/// `ExportMetricsServiceRequest`: what `POST /v1/metrics` carries.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExportMetricsServiceRequest {
    /// `repeated ResourceMetrics resource_metrics = 1`.
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

/// `ResourceMetrics`: the metrics of one resource (a service instance).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceMetrics {
    /// `Resource resource = 1`.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// `repeated ScopeMetrics scope_metrics = 2`.
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    /// `repeated KeyValue attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeMetrics`: the metrics of one instrumentation scope (meter).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopeMetrics {
    /// `InstrumentationScope scope = 1`.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// `repeated Metric metrics = 2`.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstrumentationScope {
    /// `string name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `string version = 2`.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValue {
    /// `string key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `AnyValue value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(from = "json::AnyValue")]
pub struct AnyValue {
    /// `oneof value`.
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

/// The `oneof` of [`AnyValue`].
pub mod any_value {
    /// `oneof value`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string string_value = 1`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `bool bool_value = 2`.
        #[prost(bool, tag = "2")]
        BoolValue(bool),
        /// `int64 int_value = 3`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
        /// `double double_value = 4`.
        #[prost(double, tag = "4")]
        DoubleValue(f64),
        /// `ArrayValue array_value = 5`.
        #[prost(message, tag = "5")]
        ArrayValue(super::ArrayValue),
        /// `KeyValueList kvlist_value = 6`.
        #[prost(message, tag = "6")]
        KvlistValue(super::KeyValueList),
        /// `bytes bytes_value = 7`.
        #[prost(bytes, tag = "7")]
        BytesValue(Vec<u8>),
    }
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArrayValue {
    /// `repeated AnyValue values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyValueList {
    /// `repeated KeyValue values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `Metric`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(from = "json::Metric")]
pub struct Metric {
    /// `string name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `string unit = 3`.
    #[prost(string, tag = "3")]
    pub unit: String,
    /// `oneof data`.
    #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10, 11")]
    pub data: Option<metric::Data>,
}

/// The `oneof` of [`Metric`].
pub mod metric {
    /// `oneof data`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        /// `Gauge gauge = 5`.
        #[prost(message, tag = "5")]
        Gauge(super::Gauge),
        /// `Sum sum = 7`.
        #[prost(message, tag = "7")]
        Sum(super::Sum),
        /// `Histogram histogram = 9`.
        #[prost(message, tag = "9")]
        Histogram(super::Histogram),
        /// `ExponentialHistogram exponential_histogram = 10`: only its presence is read.
        #[prost(message, tag = "10")]
        ExponentialHistogram(super::ExponentialHistogram),
        /// `Summary summary = 11`.
        #[prost(message, tag = "11")]
        Summary(super::Summary),
    }
}

/// `AggregationTemporality`, as the integer the wire carries.
pub mod temporality {
    /// `AGGREGATION_TEMPORALITY_UNSPECIFIED`.
    pub const UNSPECIFIED: i32 = 0;
    /// `AGGREGATION_TEMPORALITY_DELTA`.
    pub const DELTA: i32 = 1;
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
    pub const CUMULATIVE: i32 = 2;
}

/// `DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK`.
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// `Gauge`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Gauge {
    /// `repeated NumberDataPoint data_points = 1`.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

/// `Sum`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Sum {
    /// `repeated NumberDataPoint data_points = 1`.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    /// `AggregationTemporality aggregation_temporality = 2`.
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
    /// `bool is_monotonic = 3`.
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

/// `Histogram` (explicit buckets).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Histogram {
    /// `repeated HistogramDataPoint data_points = 1`.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramDataPoint>,
    /// `AggregationTemporality aggregation_temporality = 2`.
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "json::temporality")]
    pub aggregation_temporality: i32,
}

/// `ExponentialHistogram`: refused, so no field is read.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message, Deserialize)]
pub struct ExponentialHistogram {}

/// `Summary`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    /// `repeated SummaryDataPoint data_points = 1`.
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<SummaryDataPoint>,
}

/// `NumberDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(from = "json::NumberDataPoint")]
pub struct NumberDataPoint {
    /// `repeated KeyValue attributes = 7`.
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    /// `fixed64 time_unix_nano = 3`.
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    /// `oneof value`.
    #[prost(oneof = "number_data_point::Value", tags = "4, 6")]
    pub value: Option<number_data_point::Value>,
    /// `uint32 flags = 8`.
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

/// The `oneof` of [`NumberDataPoint`].
pub mod number_data_point {
    /// `oneof value`.
    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `double as_double = 4`.
        #[prost(double, tag = "4")]
        AsDouble(f64),
        /// `sfixed64 as_int = 6`.
        #[prost(sfixed64, tag = "6")]
        AsInt(i64),
    }
}

/// `HistogramDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistogramDataPoint {
    /// `repeated KeyValue attributes = 9`.
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    /// `fixed64 time_unix_nano = 3`.
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::u64")]
    pub time_unix_nano: u64,
    /// `fixed64 count = 4`.
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64")]
    pub count: u64,
    /// `optional double sum = 5`.
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::opt_f64")]
    pub sum: Option<f64>,
    /// `repeated fixed64 bucket_counts = 6`.
    #[prost(fixed64, repeated, tag = "6")]
    #[serde(deserialize_with = "json::u64_vec")]
    pub bucket_counts: Vec<u64>,
    /// `repeated double explicit_bounds = 7`.
    #[prost(double, repeated, tag = "7")]
    #[serde(deserialize_with = "json::f64_vec")]
    pub explicit_bounds: Vec<f64>,
    /// `uint32 flags = 10`.
    #[prost(uint32, tag = "10")]
    pub flags: u32,
}

/// `SummaryDataPoint`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SummaryDataPoint {
    /// `repeated KeyValue attributes = 7`.
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    /// `fixed64 time_unix_nano = 3`.
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::u64")]
    pub time_unix_nano: u64,
    /// `fixed64 count = 4`.
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64")]
    pub count: u64,
    /// `double sum = 5`.
    #[prost(double, tag = "5")]
    #[serde(deserialize_with = "json::f64")]
    pub sum: f64,
    /// `repeated ValueAtQuantile quantile_values = 6`.
    #[prost(message, repeated, tag = "6")]
    pub quantile_values: Vec<ValueAtQuantile>,
    /// `uint32 flags = 8`.
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

/// `SummaryDataPoint.ValueAtQuantile`.
#[derive(Clone, Copy, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValueAtQuantile {
    /// `double quantile = 1`.
    #[prost(double, tag = "1")]
    #[serde(deserialize_with = "json::f64")]
    pub quantile: f64,
    /// `double value = 2`.
    #[prost(double, tag = "2")]
    #[serde(deserialize_with = "json::f64")]
    pub value: f64,
}
