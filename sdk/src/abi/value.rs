//! Plugin configuration values: the `[scrape.config]` / `[export.config]` table as the host
//! parsed it, in a self-describing shape that postcard can carry.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// A configuration table a plugin cannot use; names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key at fault.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `key`.
    #[must_use]
    pub fn new(key: &str, reason: String) -> Self {
        Self {
            key: key.into(),
            reason,
        }
    }

    /// The configuration as a whole is not a table; `key` is empty.
    #[must_use]
    pub fn not_table(found: &Value) -> Self {
        Self {
            key: String::new(),
            reason: format!(
                "the plugin's config must be a table, found {}",
                found.described()
            ),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            return f.write_str(&self.reason);
        }
        write!(f, "config key `{}`: {}", self.key, self.reason)
    }
}

impl core::error::Error for ConfigError {}

/// A configuration value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (TOML datetimes arrive as their string form).
    Str(String),
    /// An array.
    List(Vec<Value>),
    /// A table, keys in file order.
    Table(Vec<(String, Value)>),
}

impl Default for Value {
    fn default() -> Self {
        Self::Table(Vec::new())
    }
}

impl Value {
    /// The entry `key` of a table.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Table(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The keys of a table (empty for other values).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        let entries: &[(String, Self)] = match self {
            Self::Table(entries) => entries,
            _ => &[],
        };
        entries.iter().map(|(k, _)| k.as_str())
    }

    /// The string, if this is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub const fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, if this is an integer or a float.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub const fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    #[must_use]
    pub const fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    #[must_use]
    pub fn as_list(&self) -> Option<&[Self]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// A table of these entries, in order: the shape the host hands a plugin, for tests and
    /// for plugins that build configurations.
    #[must_use]
    pub fn table<'k>(entries: impl IntoIterator<Item = (&'k str, Value)>) -> Self {
        Self::Table(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Checks that this is a table holding only the `known` keys: the first step of every
    /// plugin's `from_table`.
    ///
    /// # Errors
    /// [`ConfigError::not_table`], or the first unknown key with the list of known ones.
    pub fn expect_table(&self, known: &[&str]) -> Result<&Self, ConfigError> {
        if !matches!(self, Self::Table(_)) {
            return Err(ConfigError::not_table(self));
        }
        self.check_keys(known)?;
        Ok(self)
    }

    /// The string under `key` in this table, if present.
    ///
    /// # Errors
    /// When it is present but not a string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        self.get(key).map(|v| v.expect_str(key)).transpose()
    }

    /// The positive integer under `key` in this table, if present, at most `max`.
    ///
    /// # Errors
    /// When it is present but not an integer, or outside `1..=max`.
    pub fn opt_positive(
        &self,
        key: &str,
        max: usize,
    ) -> Result<Option<core::num::NonZeroUsize>, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = v.expect_int(key)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= max)
            .and_then(core::num::NonZeroUsize::new)
            .map(Some)
            .ok_or_else(|| {
                ConfigError::new(key, format!("{n} is out of range; expected 1 to {max}"))
            })
    }

    /// Checks that a table holds only the `known` keys.
    ///
    /// # Errors
    /// The first unknown key, with the list of known ones.
    pub fn check_keys(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.keys().find(|k| !known.contains(k)) {
            Some(key) => Err(ConfigError::new(
                key,
                format!("unknown key; the known keys are {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The string under `key`, which is what this value is.
    ///
    /// # Errors
    /// When it is not a string.
    pub fn expect_str(&self, key: &str) -> Result<&str, ConfigError> {
        self.as_str().ok_or_else(|| self.wrong(key, "a string"))
    }

    /// The integer under `key`, which is what this value is.
    ///
    /// # Errors
    /// When it is not an integer.
    pub fn expect_int(&self, key: &str) -> Result<i64, ConfigError> {
        self.as_int().ok_or_else(|| self.wrong(key, "an integer"))
    }

    /// The boolean under `key`, which is what this value is.
    ///
    /// # Errors
    /// When it is not a boolean.
    pub fn expect_bool(&self, key: &str) -> Result<bool, ConfigError> {
        self.as_bool().ok_or_else(|| self.wrong(key, "a boolean"))
    }

    /// The strings of the array under `key`, which is what this value is.
    ///
    /// # Errors
    /// When it is not an array, or an element is not a string (naming its index).
    pub fn expect_strings(&self, key: &str) -> Result<Vec<&str>, ConfigError> {
        let list = self
            .as_list()
            .ok_or_else(|| self.wrong(key, "an array of strings"))?;
        list.iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().ok_or_else(|| {
                    ConfigError::new(
                        key,
                        format!("element {i}: expected a string, found {}", item.described()),
                    )
                })
            })
            .collect()
    }

    /// "expected `what`, found …" about `key`.
    #[must_use]
    pub fn wrong(&self, key: &str, what: &str) -> ConfigError {
        ConfigError::new(key, format!("expected {what}, found {}", self.described()))
    }

    /// The type's name with its article ("an integer", "a table"), for messages.
    #[must_use]
    pub const fn described(&self) -> &'static str {
        match self {
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a float",
            Self::Str(_) => "a string",
            Self::List(_) => "an array",
            Self::Table(_) => "a table",
        }
    }

    /// The name of this value's type, for error messages.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Bool(_) => "boolean",
            Self::Int(_) => "integer",
            Self::Float(_) => "float",
            Self::Str(_) => "string",
            Self::List(_) => "array",
            Self::Table(_) => "table",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn table_lookup_and_round_trip() {
        let v = Value::Table(vec![
            ("encoding".into(), Value::Str("json".into())),
            ("n".into(), Value::Int(3)),
            (
                "xs".into(),
                Value::List(vec![Value::Bool(true), Value::Float(0.5)]),
            ),
        ]);
        assert_eq!(v.get("encoding").and_then(Value::as_str), Some("json"));
        assert_eq!(v.get("n").and_then(Value::as_f64), Some(3.0));
        assert_eq!(v.get("missing"), None);
        assert_eq!(v.keys().collect::<Vec<_>>(), ["encoding", "n", "xs"]);
        let bytes = crate::abi::encode(&v).unwrap();
        assert_eq!(crate::abi::decode::<Value>(&bytes).unwrap(), v);
    }

    #[test]
    fn table_helpers_check_the_shape_and_ranges() {
        use alloc::string::ToString;
        let t = Value::table([("n", Value::Int(0)), ("s", Value::Str("x".into()))]);
        assert!(t.expect_table(&["n", "s"]).is_ok());
        assert_eq!(
            Value::Int(1).expect_table(&[]).unwrap_err().to_string(),
            "the plugin's config must be a table, found an integer"
        );
        assert_eq!(t.opt_str("s"), Ok(Some("x")));
        assert_eq!(t.opt_str("missing"), Ok(None));
        assert_eq!(
            t.opt_positive("n", 10).unwrap_err().to_string(),
            "config key `n`: 0 is out of range; expected 1 to 10"
        );
        let big = Value::table([("n", Value::Int(11))]);
        assert!(big.opt_positive("n", 10).is_err());
        let ok = Value::table([("n", Value::Int(10))]);
        assert_eq!(ok.opt_positive("n", 10).unwrap().map(|n| n.get()), Some(10));
    }

    #[test]
    fn config_checks_name_the_key_and_what_was_found() {
        use alloc::string::ToString;
        let v = Value::Table(vec![
            ("n".into(), Value::Int(3)),
            (
                "xs".into(),
                Value::List(vec![Value::Str("a".into()), Value::Bool(true)]),
            ),
        ]);
        assert_eq!(
            v.check_keys(&["n"]).unwrap_err().to_string(),
            "config key `xs`: unknown key; the known keys are n"
        );
        assert!(v.check_keys(&["n", "xs"]).is_ok());
        let n = v.get("n").unwrap();
        assert_eq!(n.expect_int("n"), Ok(3));
        assert_eq!(
            n.expect_str("n").unwrap_err().to_string(),
            "config key `n`: expected a string, found an integer"
        );
        assert_eq!(
            v.get("xs")
                .unwrap()
                .expect_strings("xs")
                .unwrap_err()
                .reason,
            "element 1: expected a string, found a boolean"
        );
        assert_eq!(
            Value::Str("x".into()).expect_bool("b").unwrap_err().reason,
            "expected a boolean, found a string"
        );
    }
}
