//! The exporter's `[export.config]` table, checked at init so that a typo fails `magpie check`
//! instead of being ignored at every send.
//!
//! ```toml
//! [export.config]
//! protocol = "2.0"             # "1.0" (default) or "2.0"
//! max_payload_bytes = 1048576  # split batches whose request would be larger; default: never
//! ```

use std::num::NonZeroUsize;

use magpie_sdk::abi::{ConfigError, Value};

use crate::Error;

/// The keys the table may hold, for the error on an unknown one.
const KEYS: &[&str] = &["protocol", "max_payload_bytes"];

/// Which remote write message the exporter sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Remote write 1.0: `prometheus.WriteRequest`, understood by every receiver.
    #[default]
    V1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`, strings interned in a symbol
    /// table. The receiver must speak 2.0.
    V2,
}

impl Protocol {
    /// The `Content-Type` of a request.
    #[must_use]
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::V1 => "application/x-protobuf",
            Self::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        }
    }

    /// The `X-Prometheus-Remote-Write-Version` header value. 1.0 receivers expect `0.1.0`.
    #[must_use]
    pub const fn version_header(self) -> &'static str {
        match self {
            Self::V1 => "0.1.0",
            Self::V2 => "2.0.0",
        }
    }

    /// The configuration spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }
}

/// The exporter's settings, from its `[export.config]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Config {
    /// Which message to send (`protocol`, `"1.0"` or `"2.0"`). Default: 1.0, which every
    /// receiver accepts.
    pub protocol: Protocol,
    /// Largest uncompressed request, in bytes (`max_payload_bytes`). A batch whose request
    /// would be larger is split into several payloads by whole series; a single series larger
    /// than this goes alone. Default: `None`, one payload per batch.
    pub max_payload_bytes: Option<NonZeroUsize>,
}

impl Config {
    /// Reads the `[export.config]` table; absent keys keep their defaults.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown key or a value of the wrong type or out of range;
    /// or when the value is not a table.
    pub fn from_table(table: &Value) -> Result<Self, Error> {
        table.expect_table(KEYS)?;
        let mut config = Self::default();
        if let Some(v) = table.get("protocol") {
            config.protocol = match v {
                Value::Str(s) if s == "1.0" => Protocol::V1,
                Value::Str(s) if s == "2.0" => Protocol::V2,
                Value::Str(s) => {
                    return Err(ConfigError::new(
                        "protocol",
                        format!("unknown protocol \"{s}\"; expected \"1.0\" or \"2.0\""),
                    )
                    .into());
                }
                // TOML reads `protocol = 2.0` as a float; say how to write it.
                Value::Float(_) | Value::Int(_) => {
                    return Err(ConfigError::new(
                        "protocol",
                        "expected a string; write it quoted, as \"1.0\" or \"2.0\"".into(),
                    )
                    .into());
                }
                other => return Err(other.wrong("protocol", "a string").into()),
            };
        }
        config.max_payload_bytes = table.opt_positive("max_payload_bytes", usize::MAX)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(e: Error) -> String {
        match e {
            Error::Config(e) => e.key,
            other => panic!("expected a config error, got {other}"),
        }
    }

    #[test]
    fn empty_table_gives_the_defaults() {
        let c = Config::from_table(&Value::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.protocol, Protocol::V1);
        assert_eq!(c.max_payload_bytes, None);
    }

    #[test]
    fn both_keys_are_read() {
        let c = Config::from_table(&Value::table([
            ("protocol", Value::Str("2.0".into())),
            ("max_payload_bytes", Value::Int(4096)),
        ]))
        .unwrap();
        assert_eq!(c.protocol, Protocol::V2);
        assert_eq!(c.max_payload_bytes, NonZeroUsize::new(4096));
        let c =
            Config::from_table(&Value::table([("protocol", Value::Str("1.0".into()))])).unwrap();
        assert_eq!(c.protocol, Protocol::V1);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_table(&Value::table([
            ("protocol", Value::Str("1.0".into())),
            ("max_payload_byte", Value::Int(1)),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("max_payload_byte"), "{e}");
        assert!(e.to_string().contains("unknown key"), "{e}");
        assert_eq!(key_of(e), "max_payload_byte");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("protocol", Value::Str("3.0".into())),
            ("protocol", Value::Float(2.0)),
            ("protocol", Value::Bool(true)),
            ("max_payload_bytes", Value::Int(0)),
            ("max_payload_bytes", Value::Int(-5)),
            ("max_payload_bytes", Value::Str("1MiB".into())),
        ] {
            let e = Config::from_table(&Value::table([(key, value.clone())])).unwrap_err();
            assert_eq!(key_of(e), key, "{value:?}");
        }
        let e = Config::from_table(&Value::table([("protocol", Value::Float(2.0))])).unwrap_err();
        assert!(e.to_string().contains("quoted"), "{e}");
    }

    #[test]
    fn a_non_table_is_refused() {
        assert_eq!(
            Config::from_table(&Value::Int(3)),
            Err(Error::Config(ConfigError::not_table(&Value::Int(3))))
        );
    }

    #[test]
    fn headers_follow_the_specs() {
        assert_eq!(Protocol::V1.content_type(), "application/x-protobuf");
        assert_eq!(Protocol::V1.version_header(), "0.1.0");
        assert_eq!(
            Protocol::V2.content_type(),
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
        );
        assert_eq!(Protocol::V2.version_header(), "2.0.0");
    }
}
