//! The plugin's `[scrape.config]` table, checked when the plugin is initialised so that a typo
//! fails `magpie check` instead of being ignored at every scrape.
//!
//! ```toml
//! [scrape.config]
//! max_line_len = 131072   # bytes; default 65536
//! ```

use core::num::NonZeroUsize;

use magpie_sdk::abi::Value;

use crate::ParseOptions;

/// The keys the table may hold, for the error on an unknown one.
const KEYS: &[&str] = &["max_line_len"];

/// Largest `max_line_len` accepted: the line buffer lives in the plugin's linear memory, whose
/// default cap is 16 MiB, and a line this long is not a metric anyone means to expose.
pub const MAX_LINE_LEN_CEILING: usize = 4 << 20;

/// The plugin's settings, from its `[scrape.config]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeConfig {
    /// Longest exposition line accepted, in bytes (`max_line_len`). A longer line fails the
    /// scrape. Default: [`ParseOptions::DEFAULT_MAX_LINE_LEN`].
    pub max_line_len: NonZeroUsize,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            max_line_len: ParseOptions::DEFAULT_MAX_LINE_LEN,
        }
    }
}

pub use magpie_sdk::abi::ConfigError;

impl ScrapeConfig {
    /// Reads the `[scrape.config]` table; absent keys keep their defaults.
    ///
    /// # Errors
    /// An unknown key, or a value of the wrong type or out of range.
    pub fn from_table(table: &Value) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        table.expect_table(KEYS)?;
        if let Some(n) = table.opt_positive("max_line_len", MAX_LINE_LEN_CEILING)? {
            config.max_line_len = n;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn empty_table_gives_the_defaults() {
        assert_eq!(
            ScrapeConfig::from_table(&Value::default()),
            Ok(ScrapeConfig::default())
        );
    }

    #[test]
    fn max_line_len_is_read() {
        let c =
            ScrapeConfig::from_table(&Value::table([("max_line_len", Value::Int(1024))])).unwrap();
        assert_eq!(c.max_line_len.get(), 1024);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = ScrapeConfig::from_table(&Value::table([("max_line_length", Value::Int(1))]))
            .unwrap_err();
        assert_eq!(e.key, "max_line_length");
        let msg = e.to_string();
        assert!(
            msg.starts_with("config key `max_line_length`: unknown key"),
            "{msg}"
        );
        assert!(msg.contains("max_line_len"), "{msg}");
    }

    #[test]
    fn wrong_types_and_ranges_are_named() {
        for (v, needle) in [
            (Value::Str("64k".into()), "found a string"),
            (Value::List(vec![]), "found an array"),
            (Value::Int(0), "0 is out of range"),
            (Value::Int(-5), "-5 is out of range"),
            (Value::Int(1 << 40), "out of range"),
        ] {
            let e = ScrapeConfig::from_table(&Value::table([("max_line_len", v)])).unwrap_err();
            assert_eq!(e.key, "max_line_len");
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}
