//! The exporter's `[export.config]` table, checked at init.
//!
//! ```toml
//! [[export]]
//! topic = "magpie/{site}/{job}"   # the host hands this to the plugin as config key `topic`
//! [export.config]
//! encoding = "json"               # "json" (default), "influx" or "remote-write"
//! max_topics = 100                # distinct topics per batch; more go to overflow_topic
//! overflow_topic = "magpie/overflow"
//! max_message_bytes = 262144      # split larger messages; default 256 KiB
//! ```
//!
//! `topic` comes from the `[[export]]` key of the same name: the host inserts it into the table
//! it hands over (it is not allowed in `[export.config]` itself), so the ABI stays unchanged.
//! Without it the topic is `magpie/metrics`.

use std::num::NonZeroUsize;

use magpie_sdk::abi::{ConfigError, Value};

use crate::Error;
use crate::topic::Template;

/// The keys the table may hold, for the error on an unknown one.
const KEYS: &[&str] = &[
    "topic",
    "encoding",
    "max_topics",
    "overflow_topic",
    "max_message_bytes",
];

/// Topic when the export has none.
pub const DEFAULT_TOPIC: &str = "magpie/metrics";
/// Where series go once a batch has `max_topics` distinct topics.
pub const DEFAULT_OVERFLOW_TOPIC: &str = "magpie/overflow";
/// Default bound on distinct topics per batch.
pub const DEFAULT_MAX_TOPICS: usize = 100;
/// Default largest message body: 256 KiB, below common broker limits.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How a message body is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `{"series":[{"labels":{..},"samples":[[t_ms,value],..]}]}`, `application/json`.
    #[default]
    Json,
    /// Influx line protocol, one line per sample, nanosecond timestamps.
    Influx,
    /// A Prometheus remote write 1.0 `WriteRequest`, snappy block compressed.
    RemoteWrite,
}

impl Encoding {
    /// The configuration spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Influx => "influx",
            Self::RemoteWrite => "remote-write",
        }
    }

    /// A content type for the payload (MQTT 3.1.1 does not carry it; kept for the record).
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Influx => "text/plain; charset=utf-8",
            Self::RemoteWrite => "application/x-protobuf",
        }
    }
}

/// The exporter's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Message encoding (`encoding`).
    pub encoding: Encoding,
    /// Topic template (`topic`, from the `[[export]]` key).
    pub topic: Template,
    /// Most distinct topics per batch (`max_topics`).
    pub max_topics: NonZeroUsize,
    /// Topic for series past `max_topics` (`overflow_topic`).
    pub overflow_topic: String,
    /// Largest message body in bytes (`max_message_bytes`); a single sample (JSON, Influx) or
    /// series (remote write) larger than this goes alone.
    pub max_message_bytes: NonZeroUsize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            encoding: Encoding::default(),
            topic: Template::parse("topic", DEFAULT_TOPIC).unwrap_or_else(|_| unreachable!()),
            max_topics: NonZeroUsize::new(DEFAULT_MAX_TOPICS).unwrap_or(NonZeroUsize::MIN),
            overflow_topic: DEFAULT_OVERFLOW_TOPIC.into(),
            max_message_bytes: NonZeroUsize::new(DEFAULT_MAX_MESSAGE_BYTES)
                .unwrap_or(NonZeroUsize::MIN),
        }
    }
}

fn string<'v>(table: &'v Value, key: &str) -> Result<Option<&'v str>, Error> {
    Ok(table.opt_str(key)?)
}

fn positive(table: &Value, key: &str) -> Result<Option<NonZeroUsize>, Error> {
    Ok(table.opt_positive(key, usize::MAX)?)
}

impl Config {
    /// Reads the table; absent keys keep their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key for an unknown key, a wrong type or a bad value;
    /// or when the value is not a table.
    pub fn from_table(table: &Value) -> Result<Self, Error> {
        table.expect_table(KEYS)?;
        let mut c = Self::default();
        if let Some(t) = string(table, "topic")? {
            c.topic = Template::parse("topic", t)?;
        }
        if let Some(e) = string(table, "encoding")? {
            c.encoding = match e {
                "json" => Encoding::Json,
                "influx" => Encoding::Influx,
                "remote-write" => Encoding::RemoteWrite,
                other => {
                    return Err(ConfigError::new(
                        "encoding",
                        format!(
                            "unknown encoding \"{other}\"; expected \"json\", \"influx\" or \"remote-write\""
                        ),
                    ).into());
                }
            };
        }
        if let Some(n) = positive(table, "max_topics")? {
            c.max_topics = n;
        }
        if let Some(t) = string(table, "overflow_topic")? {
            let fixed = Template::parse("overflow_topic", t)?;
            if !fixed.is_fixed() {
                return Err(ConfigError::new(
                    "overflow_topic",
                    "a fixed topic is expected, without placeholders".into(),
                )
                .into());
            }
            c.overflow_topic = t.into();
        }
        if let Some(n) = positive(table, "max_message_bytes")? {
            c.max_message_bytes = n;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_table(&Value::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.encoding, Encoding::Json);
        assert_eq!(c.max_topics.get(), 100);
        assert_eq!(c.max_message_bytes.get(), 256 * 1024);
    }

    #[test]
    fn every_key_is_read() {
        let c = Config::from_table(&Value::table([
            ("topic", Value::Str("m/{job}".into())),
            ("encoding", Value::Str("remote-write".into())),
            ("max_topics", Value::Int(3)),
            ("overflow_topic", Value::Str("m/other".into())),
            ("max_message_bytes", Value::Int(1000)),
        ]))
        .unwrap();
        assert_eq!(c.encoding, Encoding::RemoteWrite);
        assert_eq!(c.max_topics.get(), 3);
        assert_eq!(c.overflow_topic, "m/other");
        assert_eq!(c.max_message_bytes.get(), 1000);
        assert!(!c.topic.is_fixed());
        let c =
            Config::from_table(&Value::table([("encoding", Value::Str("influx".into()))])).unwrap();
        assert_eq!(c.encoding, Encoding::Influx);
    }

    #[test]
    fn errors_name_their_key() {
        for (key, value) in [
            ("encoding", Value::Str("xml".into())),
            ("encoding", Value::Int(1)),
            ("max_topics", Value::Int(0)),
            ("max_message_bytes", Value::Int(-1)),
            ("max_message_bytes", Value::Str("1MiB".into())),
            ("topic", Value::Str("a/#".into())),
            ("overflow_topic", Value::Str("a/{job}".into())),
            ("qos", Value::Int(1)),
        ] {
            match Config::from_table(&Value::table([(key, value.clone())])) {
                Err(Error::Config(e)) => assert_eq!(e.key, key, "{value:?}"),
                other => panic!("{key}={value:?}: {other:?}"),
            }
        }
        assert_eq!(
            Config::from_table(&Value::Int(1)),
            Err(Error::Config(ConfigError::not_table(&Value::Int(1))))
        );
    }
}
