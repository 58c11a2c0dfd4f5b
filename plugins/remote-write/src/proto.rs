//! The remote write messages as `prost` types, written by hand from the Prometheus schemas
//! (`prompb/remote.proto` and `prompb/types.proto` for 1.0,
//! `prompb/io/prometheus/write/v2/types.proto` for 2.0).
//!
//! The plugin does not build requests from these types: its writer ([`mod@crate::encode`]) streams
//! the wire bytes straight from a batch's borrowed strings, which saves two allocations per
//! label. These types are the schema that writer is checked against, and what receivers and
//! tests decode with. Only the fields the plugin sends are declared; a decoder skips the
//! others (histograms), as protobuf requires; exemplars are read through views of their own. Metadata requests are rare and
//! small, so [`crate::RemoteWrite::export_metadata`] builds them from these types.

/// `prometheus.WriteRequest` and its parts, remote write 1.0.
pub mod v1 {
    use prost::alloc::string::String;
    use prost::alloc::vec::Vec;

    /// `prometheus.WriteRequest`. Field 2 is reserved, field 3 (metadata) is not sent.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// `repeated TimeSeries timeseries = 1`.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.TimeSeries`: labels sorted by name, samples in timestamp order.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// `repeated Label labels = 1`.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// `repeated Sample samples = 2`.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct Label {
        /// `string name = 1`.
        #[prost(string, tag = "1")]
        pub name: String,
        /// `string value = 2`.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `prometheus.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        /// `double value = 1`.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// `int64 timestamp = 2`, unix ms.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// A `prometheus.WriteRequest` seen for its metadata only (`repeated MetricMetadata
    /// metadata = 3`), as Prometheus sends it with `metadata_config`: such requests carry no
    /// series. Decoding a full request with it skips the series.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetadataWriteRequest {
        /// `repeated MetricMetadata metadata = 3`.
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.MetricMetadata`.
    #[derive(Clone, PartialEq, Eq, prost::Message)]
    pub struct MetricMetadata {
        /// `MetricType type = 1`: `UNKNOWN` 0, `COUNTER` 1, `GAUGE` 2, `HISTOGRAM` 3,
        /// `GAUGEHISTOGRAM` 4, `SUMMARY` 5, `INFO` 6, `STATESET` 7.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// `string metric_family_name = 2`.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// `string help = 4`.
        #[prost(string, tag = "4")]
        pub help: String,
        /// `string unit = 5`.
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// `prometheus.WriteRequest` seen through its series' exemplars only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequestExemplars {
        /// `repeated TimeSeries timeseries = 1`, as [`SeriesExemplars`].
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<SeriesExemplars>,
    }

    /// `prometheus.TimeSeries` seen through its exemplars only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SeriesExemplars {
        /// `repeated Exemplar exemplars = 3`.
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
    }

    /// `prometheus.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// `repeated Label labels = 1`.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// `double value = 2`.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// `int64 timestamp = 3`, unix ms.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }
}

/// `io.prometheus.write.v2.Request` and its parts, remote write 2.0.
pub mod v2 {
    use prost::alloc::string::String;
    use prost::alloc::vec::Vec;

    /// `io.prometheus.write.v2.Request`. Fields 1 to 3 are reserved so that a 1.0 receiver
    /// that misreads it as a `prometheus.WriteRequest` sees an empty request.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        /// `repeated string symbols = 4`; the first is always `""`.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// `repeated TimeSeries timeseries = 5`.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`, float samples only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// `repeated uint32 labels_refs = 1` (packed): name, value, name, value... as indexes
        /// into [`Request::symbols`], names sorted.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// `repeated Sample samples = 2`.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    /// `io.prometheus.write.v2.Request` seen through its series' metadata only: the same
    /// bytes decoded with it give, series by series, what [`Request`] leaves out.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RequestMetadata {
        /// `repeated TimeSeries timeseries = 5`, as [`SeriesMetadata`].
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<SeriesMetadata>,
    }

    /// `io.prometheus.write.v2.TimeSeries` seen through its metadata only.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct SeriesMetadata {
        /// `Metadata metadata = 5`: the series' family type, help and unit.
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    /// `io.prometheus.write.v2.Metadata`.
    #[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
    pub struct Metadata {
        /// `MetricType type = 1`: `UNSPECIFIED` 0, `COUNTER` 1, `GAUGE` 2, `HISTOGRAM` 3,
        /// `GAUGEHISTOGRAM` 4, `SUMMARY` 5, `INFO` 6, `STATESET` 7.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// `uint32 help_ref = 3`, into [`Request::symbols`].
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        /// `uint32 unit_ref = 4`, into [`Request::symbols`].
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// `io.prometheus.write.v2.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        /// `double value = 1`.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// `int64 timestamp = 2`, unix ms.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `io.prometheus.write.v2.Request` seen through its series' exemplars only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RequestExemplars {
        /// `repeated TimeSeries timeseries = 5`, as [`SeriesExemplars`].
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<SeriesExemplars>,
    }

    /// `io.prometheus.write.v2.TimeSeries` seen through its exemplars only.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SeriesExemplars {
        /// `repeated Exemplar exemplars = 4`.
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
    }

    /// `io.prometheus.write.v2.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// `repeated uint32 labels_refs = 1` (packed), into [`Request::symbols`].
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// `double value = 2`.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// `int64 timestamp = 3`, unix ms.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }
}
