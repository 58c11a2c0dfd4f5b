//! The `[scrape.config]` table: the unit id and the register map. Every error names the
//! register (its name and index in `registers`) and the key at fault.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use magpie_sdk::abi::Value;

/// Keys of `[scrape.config]`.
pub const CONFIG_KEYS: &[&str] = &["unit_id", "registers", "timeout_ms"];
/// Keys of one `[[scrape.config.registers]]` entry.
pub const REGISTER_KEYS: &[&str] = &[
    "name",
    "kind",
    "address",
    "type",
    "word_order",
    "scale",
    "labels",
];

/// The four Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Read/write bits, function code 1.
    Coil,
    /// Read-only bits, function code 2.
    Discrete,
    /// Read/write 16-bit registers, function code 3.
    Holding,
    /// Read-only 16-bit registers, function code 4.
    Input,
}

impl Kind {
    /// The read function code of this table.
    #[must_use]
    pub const fn function(self) -> u8 {
        match self {
            Self::Coil => 1,
            Self::Discrete => 2,
            Self::Holding => 3,
            Self::Input => 4,
        }
    }

    /// Whether the table holds bits rather than 16-bit words.
    #[must_use]
    pub const fn is_bits(self) -> bool {
        matches!(self, Self::Coil | Self::Discrete)
    }

    /// Most items one read request may ask for (the Modbus application protocol's limits).
    #[must_use]
    pub const fn max_per_request(self) -> u16 {
        if self.is_bits() { 2000 } else { 125 }
    }
}

/// How a register's words are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Signed 16 bits.
    Int16,
    /// Unsigned 16 bits.
    Uint16,
    /// Signed 32 bits, two words.
    Int32,
    /// Unsigned 32 bits, two words.
    Uint32,
    /// Signed 64 bits, four words.
    Int64,
    /// Unsigned 64 bits, four words.
    Uint64,
    /// IEEE 754 single, two words.
    Float32,
    /// IEEE 754 double, four words.
    Float64,
    /// A coil or discrete input; or a register read as 0 / not 0.
    Bool,
}

impl Type {
    const NAMES: &[(&str, Self)] = &[
        ("int16", Self::Int16),
        ("uint16", Self::Uint16),
        ("int32", Self::Int32),
        ("uint32", Self::Uint32),
        ("int64", Self::Int64),
        ("uint64", Self::Uint64),
        ("float32", Self::Float32),
        ("float64", Self::Float64),
        ("bool", Self::Bool),
    ];

    /// 16-bit words the type spans in a register table.
    #[must_use]
    pub const fn words(self) -> u16 {
        match self {
            Self::Int16 | Self::Uint16 | Self::Bool => 1,
            Self::Int32 | Self::Uint32 | Self::Float32 => 2,
            Self::Int64 | Self::Uint64 | Self::Float64 => 4,
        }
    }
}

/// Order of the 16-bit words of a 32- or 64-bit value (bytes within a word are always big
/// endian, as Modbus sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordOrder {
    /// Most significant word first (ABCD).
    Big,
    /// Least significant word first (CDAB).
    Little,
}

/// One entry of the register map.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// The metric name.
    pub name: String,
    /// Its table.
    pub kind: Kind,
    /// Its 0-based address (protocol address, not the 4xxxx reference number).
    pub address: u16,
    /// How its words are read.
    pub ty: Type,
    /// Order of its words.
    pub word_order: WordOrder,
    /// Multiplies the raw value.
    pub scale: f64,
    /// Labels of its sample.
    pub labels: Vec<(String, String)>,
}

impl Register {
    /// Items (words or bits) the register spans.
    #[must_use]
    pub const fn width(&self) -> u16 {
        if self.kind.is_bits() {
            1
        } else {
            self.ty.words()
        }
    }
}

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The unit (slave) id asked when the target has no `?unit=`.
    pub unit_id: u8,
    /// How long to wait for each answer, in ms (the scrape's deadline bounds it too).
    pub timeout_ms: u32,
    /// The register map, in file order.
    pub registers: Vec<Register>,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

impl Config {
    /// Reads the `[scrape.config]` table.
    ///
    /// # Errors
    /// A message naming the key (and for a register, its name and index) at fault.
    pub fn from_table(table: &Value) -> Result<Self, String> {
        let Value::Table(entries) = table else {
            return Err("[scrape.config] must be a table".into());
        };
        for (k, _) in entries {
            if !CONFIG_KEYS.contains(&k.as_str()) {
                return Err(format!(
                    "config key `{k}`: unknown (known: {})",
                    CONFIG_KEYS.join(", ")
                ));
            }
        }
        let unit_id = match table.get("unit_id") {
            None => 1,
            Some(v) => v
                .as_int()
                .and_then(|i| u8::try_from(i).ok())
                .ok_or("config key `unit_id`: must be an integer from 0 to 255")?,
        };
        let timeout_ms = match table.get("timeout_ms") {
            None => u32::MAX,
            Some(v) => v
                .as_int()
                .and_then(|i| u32::try_from(i).ok())
                .filter(|t| *t > 0)
                .ok_or("config key `timeout_ms`: must be a positive integer")?,
        };
        let list = table
            .get("registers")
            .ok_or("config key `registers`: missing; list the registers to read")?
            .as_list()
            .ok_or("config key `registers`: must be an array of tables")?;
        if list.is_empty() {
            return Err("config key `registers`: empty; list the registers to read".into());
        }
        let registers = list
            .iter()
            .enumerate()
            .map(|(i, v)| register(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            unit_id,
            timeout_ms,
            registers,
        })
    }
}

fn register(index: usize, v: &Value) -> Result<Register, String> {
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
    let at = |key: &str, why: &str| {
        if name.is_empty() {
            format!("registers[{index}]: key `{key}`: {why}")
        } else {
            format!("register `{name}` (registers[{index}]): key `{key}`: {why}")
        }
    };
    let Value::Table(entries) = v else {
        return Err(format!("registers[{index}]: must be a table"));
    };
    for (k, _) in entries {
        if !REGISTER_KEYS.contains(&k.as_str()) {
            return Err(at(
                k,
                &format!("unknown (known: {})", REGISTER_KEYS.join(", ")),
            ));
        }
    }
    if !is_metric_name(name) {
        return Err(at(
            "name",
            "missing or not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
        ));
    }
    let kind = match v.get("kind").map(|k| k.as_str()) {
        None => Kind::Holding,
        Some(Some("holding")) => Kind::Holding,
        Some(Some("input")) => Kind::Input,
        Some(Some("coil")) => Kind::Coil,
        Some(Some("discrete")) => Kind::Discrete,
        Some(_) => return Err(at("kind", "must be one of holding, input, coil, discrete")),
    };
    let address = v
        .get("address")
        .ok_or_else(|| at("address", "missing"))?
        .as_int()
        .and_then(|a| u16::try_from(a).ok())
        .ok_or_else(|| at("address", "must be an integer from 0 to 65535"))?;
    let ty = match v.get("type") {
        None if kind.is_bits() => Type::Bool,
        None => Type::Uint16,
        Some(t) => {
            let s = t.as_str().unwrap_or_default();
            Type::NAMES
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    let names: Vec<&str> = Type::NAMES.iter().map(|(n, _)| *n).collect();
                    at("type", &format!("must be one of {}", names.join(", ")))
                })?
        }
    };
    if kind.is_bits() && ty != Type::Bool {
        return Err(at("type", "coils and discrete inputs are bool"));
    }
    if u32::from(address) + u32::from(ty.words()) > 65_536 {
        return Err(at("address", "the value runs past address 65535"));
    }
    let word_order = match v.get("word_order").map(|k| k.as_str()) {
        None | Some(Some("big")) => WordOrder::Big,
        Some(Some("little")) => WordOrder::Little,
        Some(_) => return Err(at("word_order", "must be big or little")),
    };
    let scale = match v.get("scale") {
        None => 1.0,
        Some(s) => s
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| at("scale", "must be a finite number"))?,
    };
    let mut labels = Vec::new();
    match v.get("labels") {
        None => {}
        Some(Value::Table(l)) => {
            for (k, lv) in l {
                if !is_label_name(k) || k == "register" || k == "exception" {
                    return Err(at(
                        "labels",
                        &format!("`{k}` is not a label name this plugin may set"),
                    ));
                }
                let lv = lv
                    .as_str()
                    .ok_or_else(|| at("labels", &format!("`{k}`: values are strings")))?;
                labels.push((k.clone(), lv.to_string()));
            }
        }
        Some(_) => return Err(at("labels", "must be a table of strings")),
    }
    labels.sort();
    Ok(Register {
        name: name.to_string(),
        kind,
        address,
        ty,
        word_order,
        scale,
        labels,
    })
}

/// The unit id of a target: its `?unit=N` (or `&unit=N`) when present, else `default`.
///
/// # Errors
/// When `unit` is there but not a number from 0 to 255.
pub fn target_unit(target: &str, default: u8) -> Result<u8, String> {
    let Some((_, query)) = target.split_once('?') else {
        return Ok(default);
    };
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("unit=") {
            return v
                .parse()
                .map_err(|_| format!("target {target}: `unit`: `{v}` is not from 0 to 255"));
        }
    }
    Ok(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(entries: &[(&str, Value)]) -> Value {
        Value::Table(
            entries
                .iter()
                .map(|(k, v)| ((*k).into(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn with(reg: Value) -> Value {
        t(&[("registers", Value::List(alloc::vec![reg]))])
    }

    #[test]
    fn the_documented_example_reads() {
        let reg = t(&[
            ("name", s("inverter_power_watts")),
            ("kind", s("holding")),
            ("address", Value::Int(0)),
            ("type", s("float32")),
            ("word_order", s("big")),
            ("scale", Value::Float(1.0)),
            ("labels", t(&[("phase", s("L1"))])),
        ]);
        let c = Config::from_table(&t(&[
            ("unit_id", Value::Int(1)),
            ("registers", Value::List(alloc::vec![reg])),
        ]))
        .unwrap();
        assert_eq!(c.unit_id, 1);
        let r = &c.registers[0];
        assert_eq!(
            (r.kind, r.ty, r.word_order),
            (Kind::Holding, Type::Float32, WordOrder::Big)
        );
        assert_eq!(r.labels, alloc::vec![("phase".into(), "L1".into())]);
        assert_eq!(r.width(), 2);
    }

    #[test]
    fn errors_name_the_register_its_index_and_the_key() {
        let e = Config::from_table(&with(t(&[
            ("name", s("p")),
            ("address", Value::Int(0)),
            ("type", s("float")),
        ])))
        .unwrap_err();
        assert!(e.contains("register `p` (registers[0]): key `type`"), "{e}");
        let e = Config::from_table(&with(t(&[
            ("name", s("p")),
            ("address", Value::Int(70_000)),
        ])))
        .unwrap_err();
        assert!(e.contains("key `address`"), "{e}");
        let e = Config::from_table(&with(t(&[("address", Value::Int(1))]))).unwrap_err();
        assert!(e.contains("registers[0]: key `name`"), "{e}");
        let e = Config::from_table(&with(t(&[
            ("name", s("c")),
            ("kind", s("coil")),
            ("address", Value::Int(1)),
            ("type", s("uint16")),
        ])))
        .unwrap_err();
        assert!(
            e.contains("register `c`") && e.contains("key `type`"),
            "{e}"
        );
        let e = Config::from_table(&with(t(&[
            ("name", s("c")),
            ("address", Value::Int(1)),
            ("colour", s("red")),
        ])))
        .unwrap_err();
        assert!(e.contains("key `colour`: unknown"), "{e}");
        let e = Config::from_table(&t(&[("unit_id", Value::Int(300))])).unwrap_err();
        assert!(e.contains("`unit_id`"), "{e}");
        let e = Config::from_table(&with(t(&[
            ("name", s("w")),
            ("address", Value::Int(65_535)),
            ("type", s("uint32")),
        ])))
        .unwrap_err();
        assert!(e.contains("past address 65535"), "{e}");
    }

    #[test]
    fn the_target_may_name_its_unit() {
        assert_eq!(target_unit("tcp://h:502", 1), Ok(1));
        assert_eq!(target_unit("tcp://h:502?unit=7", 1), Ok(7));
        assert_eq!(target_unit("rtu:///dev/ttyS0?baud=9600&unit=3", 1), Ok(3));
        assert!(target_unit("tcp://h:502?unit=999", 1).is_err());
    }
}
