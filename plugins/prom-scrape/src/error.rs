//! Errors: one enum for the parse as a whole ([`ParseError`]) and one for what was wrong with a
//! line ([`Reason`]), so callers can log a sentence and tests can match the exact rule.

use alloc::string::String;
use core::fmt;

/// How many characters of an offending line an error keeps, so that logs stay readable and an
/// error never holds a copy of a huge line.
const EXCERPT_CHARS: usize = 80;

/// Why a scrape body was rejected. Any error rejects the whole scrape, even if samples were
/// already handed to the [`Sink`](crate::Sink).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line broke a syntax or validity rule of the format.
    #[error("line {line}: {reason}: {excerpt:?}")]
    Invalid {
        /// 1-based line number.
        line: u64,
        /// The rule that was broken.
        reason: Reason,
        /// The start of the offending line (at most 80 characters); for rules checked when a
        /// metric family ends (histogram completeness, name clashes), the family name.
        excerpt: String,
    },
    /// A line was longer than [`ParseOptions::max_line_len`](crate::ParseOptions).
    #[error("line {line}: longer than the limit of {max} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
        /// The configured limit in bytes.
        max: usize,
    },
    /// A line was not valid UTF-8.
    #[error("line {line}: not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: u64,
    },
    /// The body was larger than [`ParseOptions::body_size_limit`](crate::ParseOptions).
    #[error("body exceeds the size limit of {limit} bytes")]
    BodySizeLimit {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The body held more samples than [`ParseOptions::sample_limit`](crate::ParseOptions).
    #[error("line {line}: more than the limit of {limit} samples")]
    SampleLimit {
        /// 1-based line number of the first sample over the limit.
        line: u64,
        /// The configured limit.
        limit: u64,
    },
    /// An OpenMetrics body ended without the mandatory `# EOF` line.
    #[error("OpenMetrics body ends without `# EOF` after line {lines}")]
    MissingEof {
        /// Number of lines read.
        lines: u64,
    },
    /// Something followed `# EOF` in an OpenMetrics body.
    #[error("line {line}: data after `# EOF`")]
    TextAfterEof {
        /// 1-based line number of the first line after `# EOF`.
        line: u64,
    },
    /// The sink refused a sample or metadata.
    #[error("line {line}: sink refused the data: {source}")]
    Sink {
        /// 1-based line number.
        line: u64,
        /// What the sink reported.
        source: SinkError,
    },
    /// The reader failed.
    #[error("reading the body failed after {bytes} bytes: {kind:?}")]
    Io {
        /// Bytes read successfully before the failure.
        bytes: u64,
        /// The kind of failure the reader reported.
        kind: embedded_io::ErrorKind,
    },
}

impl ParseError {
    pub(crate) fn invalid(line: u64, reason: Reason, text: &str) -> Self {
        let end = text
            .char_indices()
            .nth(EXCERPT_CHARS)
            .map_or(text.len(), |(i, _)| i);
        ParseError::Invalid {
            line,
            reason,
            excerpt: String::from(&text[..end]),
        }
    }

    /// The rule that was broken, if the error is about the content of a line.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            ParseError::Invalid { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// Why a [`Sink`](crate::Sink) refused data. The parse stops with [`ParseError::Sink`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The consumer cannot take more data.
    #[error("sink is full")]
    Full,
    /// The consumer refused the data for a reason of its own.
    #[error("{0}")]
    Rejected(String),
}

/// The rule a line broke. `Display` gives a short sentence fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    // --- syntax ---
    /// A metric name is missing or holds a character outside `[a-zA-Z0-9_:]`.
    InvalidMetricName,
    /// A label name is missing or holds a character outside `[a-zA-Z0-9_]`.
    InvalidLabelName,
    /// A label name is not followed by `=`.
    MissingEquals,
    /// A label value does not start with `"`.
    MissingQuote,
    /// A label value has no closing `"`.
    UnterminatedLabelValue,
    /// Labels are not separated by exactly one `,`, or a `,` precedes `}`.
    InvalidLabelSeparator,
    /// The same label name appears twice in one label set.
    DuplicateLabel,
    /// The value is missing or is not a number.
    InvalidValue,
    /// The timestamp is missing after a separator, or is not a valid timestamp.
    InvalidTimestamp,
    /// Unexpected characters follow the sample (extra fields, stray spaces or tabs).
    TrailingCharacters,
    /// A blank line, which OpenMetrics forbids.
    BlankLine,
    /// A `#` line that is not `HELP`, `TYPE`, `UNIT` or `EOF` (OpenMetrics), or is malformed.
    InvalidMetadata,
    /// A `TYPE` line names a type that the format does not know.
    InvalidType,
    /// A second `HELP` line for the same metric family.
    DuplicateHelp,
    /// A second `TYPE` line for the same metric family.
    DuplicateType,
    /// A second `UNIT` line for the same metric family.
    DuplicateUnit,
    /// Metadata for a family after its samples.
    MetadataAfterSamples,
    /// The family name does not end with `_` followed by its unit.
    UnitMismatch,
    /// A unit on an `info` or `stateset` family.
    UnitNotAllowed,
    /// A family name (with its type's suffixes) was already used by an earlier family, for
    /// example because the families of two metrics are interleaved.
    ClashingName,
    // --- values and labels required by the type ---
    /// A group of samples (one series or histogram/summary) reappears after another group.
    InvalidGrouping,
    /// Samples of one group mix samples with and without a timestamp.
    MixedTimestamps,
    /// Timestamps decrease within one group.
    TimestampWentBackwards,
    /// A `_bucket` sample without a valid `le` label.
    InvalidLe,
    /// A summary quantile sample without a valid `quantile` label (a number in [0, 1]).
    InvalidQuantile,
    /// A stateset sample without the label named after the family.
    MissingStatesetLabel,
    /// A `_bucket`, `_count` or `_gcount` value that is not an integer.
    NotAnInteger,
    /// A counter-like value (`_total`, `_sum`, `_count`, `_bucket`, `_gcount`) below zero.
    NegativeCounter,
    /// A counter-like value (`_total`, `_sum`, `_count`, `_bucket`, `_gcount`, `_gsum`) that is NaN.
    NanCounter,
    /// A negative summary quantile value.
    NegativeQuantile,
    /// A stateset value other than 0 or 1.
    InvalidStatesetValue,
    /// An info value other than 1.
    InvalidInfoValue,
    // --- histograms ---
    /// Bucket `le` bounds are not strictly increasing.
    BucketsOutOfOrder,
    /// Bucket values decrease as `le` increases.
    BucketValuesDecrease,
    /// A histogram group has no `le="+Inf"` bucket as its last bucket.
    MissingInfBucket,
    /// `_count`/`_gcount` differs from the `+Inf` bucket.
    CountMismatch,
    /// `_sum`/`_gsum` without `_count`/`_gcount`.
    SumWithoutCount,
    /// `_count` without `_sum`/`_gsum`.
    CountWithoutSum,
    /// A histogram with negative buckets and a `_sum`.
    SumWithNegativeBuckets,
    /// A gauge histogram with a negative `_gsum` but no negative bucket.
    NegativeGsum,
    // --- exemplars ---
    /// An exemplar is malformed.
    InvalidExemplar,
    /// An exemplar on a sample other than a counter's `_total` or a histogram's `_bucket`, or in
    /// the text 0.0.4 format.
    ExemplarNotAllowed,
    /// Exemplar label names and values together exceed 128 characters.
    ExemplarTooLong,
}

impl Reason {
    /// A short description of the rule, as used by `Display`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidMetricName => "invalid metric name",
            Reason::InvalidLabelName => "invalid label name",
            Reason::MissingEquals => "label name not followed by `=`",
            Reason::MissingQuote => "label value not quoted with `\"`",
            Reason::UnterminatedLabelValue => "label value without closing `\"`",
            Reason::InvalidLabelSeparator => "labels not separated by a single `,`",
            Reason::DuplicateLabel => "duplicate label name",
            Reason::InvalidValue => "missing or invalid value",
            Reason::InvalidTimestamp => "missing or invalid timestamp",
            Reason::TrailingCharacters => "unexpected characters after the sample",
            Reason::BlankLine => "blank line",
            Reason::InvalidMetadata => "invalid comment or metadata line",
            Reason::InvalidType => "unknown metric type",
            Reason::DuplicateHelp => "second HELP for the same family",
            Reason::DuplicateType => "second TYPE for the same family",
            Reason::DuplicateUnit => "second UNIT for the same family",
            Reason::MetadataAfterSamples => "metadata after the family's samples",
            Reason::UnitMismatch => "family name does not end with its unit",
            Reason::UnitNotAllowed => "unit not allowed for info and stateset",
            Reason::ClashingName => "family name clashes with an earlier family",
            Reason::InvalidGrouping => "samples of one group are not contiguous",
            Reason::MixedTimestamps => "group mixes samples with and without timestamps",
            Reason::TimestampWentBackwards => "timestamps go backwards within a group",
            Reason::InvalidLe => "bucket without a valid `le` label",
            Reason::InvalidQuantile => "summary sample without a valid `quantile` label",
            Reason::MissingStatesetLabel => "stateset sample without its state label",
            Reason::NotAnInteger => "bucket or count value is not an integer",
            Reason::NegativeCounter => "counter-like value is negative",
            Reason::NanCounter => "counter-like value is NaN",
            Reason::NegativeQuantile => "quantile value is negative",
            Reason::InvalidStatesetValue => "stateset value is not 0 or 1",
            Reason::InvalidInfoValue => "info value is not 1",
            Reason::BucketsOutOfOrder => "bucket bounds not increasing",
            Reason::BucketValuesDecrease => "bucket values decrease",
            Reason::MissingInfBucket => "histogram without a final `+Inf` bucket",
            Reason::CountMismatch => "count differs from the `+Inf` bucket",
            Reason::SumWithoutCount => "sum without count",
            Reason::CountWithoutSum => "count without sum",
            Reason::SumWithNegativeBuckets => "histogram with negative buckets has a sum",
            Reason::NegativeGsum => "negative gsum without negative buckets",
            Reason::InvalidExemplar => "malformed exemplar",
            Reason::ExemplarNotAllowed => "exemplar not allowed on this sample",
            Reason::ExemplarTooLong => "exemplar labels longer than 128 characters",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
