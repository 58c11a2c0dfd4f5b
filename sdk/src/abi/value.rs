//! Plugin configuration values: the `[scrape.config]` / `[export.config]` table as the host
//! parsed it, in a self-describing shape that postcard can carry.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

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
}
