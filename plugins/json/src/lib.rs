//! The `json` decoder: one JSON object per message (a zigbee2mqtt or Tasmota sensor payload)
//! becomes one sample per number in it.
//!
//! - A number at path `a.b` is `<metric_prefix>_a_b`; characters a metric name may not hold
//!   become `_`. Array elements count by index (`a_0`). `true`/`false` are 1 and 0; strings and
//!   `null` are skipped (they are states, not measurements).
//! - `topic_labels = "zigbee2mqtt/{device}"` matches the topic segment by segment: a `{name}`
//!   segment becomes label `name`, other segments must be equal. A topic that does not match
//!   is refused, so a misrouted message is counted rather than mislabelled.
//! - Samples carry the receive time. The host adds `job="<ingest name>"`.
//!
//! [`Json::decode`] is the whole logic and compiles natively for tests; on wasm32 the crate is
//! the plugin.
//!
//! # Example
//!
//! ```toml
//! [[ingest]]
//! name = "sensors"
//! source = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topics = ["zigbee2mqtt/+"]
//! qos = 1
//! plugin = "json"
//! [ingest.config]
//! metric_prefix = "sensor"                  # {"temperature": 21.5} -> sensor_temperature
//! topic_labels = "zigbee2mqtt/{device}"     # the topic's second segment -> device="..."
//! ```
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use magpie_sdk::abi::{ConfigError, Value};
use serde_json::Value as J;

/// Nesting deeper than this is refused (bounds the recursion).
pub const MAX_DEPTH: usize = 32;

/// Where decoded samples go: (metric name, labels sorted by name, value).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64) -> Result<(), String> + 'o;

/// One `{name}` or literal segment of `topic_labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Label(String),
}

/// The decoder with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json {
    prefix: String,
    topic: Option<Vec<Segment>>,
}

impl Json {
    /// Reads `[ingest.config]`: `metric_prefix` (default none), `topic_labels` (default none).
    ///
    /// # Errors
    /// Unknown keys, wrong types, a prefix that is not a metric name, a bad pattern.
    pub fn from_table(config: &Value) -> Result<Self, ConfigError> {
        config.expect_table(&["metric_prefix", "topic_labels"])?;
        let prefix = config.opt_str("metric_prefix")?.unwrap_or_default();
        if !prefix.is_empty() && sanitize(prefix) != prefix {
            return Err(ConfigError::new(
                "metric_prefix",
                format!("`{prefix}` is not a metric name (letters, digits, `_`, `:`)"),
            ));
        }
        let topic = config
            .opt_str("topic_labels")?
            .map(|p| {
                p.split('/')
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) if is_label_name(name) => Ok(Segment::Label(name.into())),
                            Some(name) => Err(ConfigError::new(
                                "topic_labels",
                                format!("`{{{name}}}`: `{name}` is not a label name"),
                            )),
                            None => Ok(Segment::Literal(s.into())),
                        },
                    )
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Self {
            prefix: prefix.into(),
            topic,
        })
    }

    /// The labels `topic` gives, sorted by name.
    ///
    /// # Errors
    /// When the topic does not match `topic_labels`.
    pub fn topic_labels(&self, topic: &str) -> Result<Vec<(String, String)>, String> {
        let Some(pattern) = &self.topic else {
            return Ok(Vec::new());
        };
        let parts: Vec<&str> = topic.split('/').collect();
        let mismatch = || format!("topic `{topic}` does not match topic_labels");
        if parts.len() != pattern.len() {
            return Err(mismatch());
        }
        let mut labels = Vec::new();
        for (seg, part) in pattern.iter().zip(parts) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return Err(mismatch()),
                Segment::Label(name) => labels.push((name.clone(), part.to_string())),
            }
        }
        labels.sort();
        Ok(labels)
    }

    /// Decodes one message: `out` gets (name, labels sorted by name, value) per number.
    ///
    /// # Errors
    /// A message naming what is wrong: not JSON, not an object, too deep, topic mismatch,
    /// more samples than `sample_limit` (0 = none), or `out`'s own refusal.
    pub fn decode(
        &self,
        topic: &str,
        body: &[u8],
        sample_limit: u32,
        out: &mut Out<'_>,
    ) -> Result<usize, String> {
        let labels = self.topic_labels(topic)?;
        let doc: J = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        if !doc.is_object() {
            return Err("not a JSON object".into());
        }
        let mut samples = Vec::new();
        walk(&doc, &mut self.prefix.clone(), 0, &mut samples)?;
        if sample_limit > 0 && samples.len() > sample_limit as usize {
            return Err(format!(
                "{} numbers, more than sample_limit {sample_limit}",
                samples.len()
            ));
        }
        let borrowed: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        for (name, value) in &samples {
            out(name, &borrowed, *value)?;
        }
        Ok(samples.len())
    }
}

fn walk(
    v: &J,
    name: &mut String,
    depth: usize,
    out: &mut Vec<(String, f64)>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let mut child = |key: &str, v: &J, out: &mut Vec<(String, f64)>| {
        let len = name.len();
        if !name.is_empty() {
            name.push('_');
        }
        name.push_str(&sanitize(key));
        let r = walk(v, name, depth + 1, out);
        name.truncate(len);
        r
    };
    match v {
        J::Object(map) => {
            for (k, v) in map {
                child(k, v, out)?;
            }
        }
        J::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                child(&i.to_string(), v, out)?;
            }
        }
        J::Number(n) => {
            let v = n
                .as_f64()
                .ok_or_else(|| format!("`{name}`: {n} is not a number magpie can hold"))?;
            out.push((metric_name(name), v));
        }
        J::Bool(b) => out.push((metric_name(name), if *b { 1.0 } else { 0.0 })),
        J::String(_) | J::Null => {}
    }
    Ok(())
}

/// Characters a metric name may not hold become `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn metric_name(path: &str) -> String {
    if path.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{path}")
    } else {
        path.into()
    }
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use super::Json;
    use magpie_sdk::abi::{DecodeRequest, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error};

    impl Decoder for Json {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            Json::from_table(config).map_err(Error::new)
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            let ts = req.receive_time_ms();
            Json::decode(
                self,
                req.context(),
                req.body(),
                req.sample_limit(),
                &mut |n, l, v| {
                    out.sample(n, l.iter().copied(), v, Some(ts))
                        .map_err(|_| "the host took no more samples".into())
                },
            )
            .map(drop)
            .map_err(Error::new)
        }
    }

    magpie_sdk::export_decoder!(Json);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    type Got = Vec<(String, Vec<(String, String)>, f64)>;

    fn cfg(prefix: &str, topic: Option<&str>) -> Json {
        let mut t = vec![("metric_prefix", Value::Str(prefix.into()))];
        if let Some(p) = topic {
            t.push(("topic_labels", Value::Str(p.into())));
        }
        Json::from_table(&Value::table(t)).unwrap()
    }

    fn run(j: &Json, topic: &str, body: &str) -> Result<Got, String> {
        let mut got = Vec::new();
        j.decode(topic, body.as_bytes(), 0, &mut |n, l, v| {
            got.push((
                n.into(),
                l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
                v,
            ));
            Ok(())
        })?;
        Ok(got)
    }

    #[test]
    fn numbers_become_samples_named_by_path_with_topic_labels() {
        let j = cfg("sensor", Some("zigbee2mqtt/{device}"));
        let got = run(
            &j,
            "zigbee2mqtt/kitchen",
            r#"{"temperature":21.5,"state":"ON","occupancy":true,"color":{"x":0.3},"v-1":[1,2]}"#,
        )
        .unwrap();
        let dev = vec![("device".to_string(), "kitchen".to_string())];
        let names: Vec<(&str, f64)> = got.iter().map(|(n, _, v)| (n.as_str(), *v)).collect();
        assert!(got.iter().all(|(_, l, _)| *l == dev));
        let mut names = names;
        names.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            names,
            vec![
                ("sensor_color_x", 0.3),
                ("sensor_occupancy", 1.0),
                ("sensor_temperature", 21.5),
                ("sensor_v_1_0", 1.0),
                ("sensor_v_1_1", 2.0),
            ]
        );
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let j = cfg("s", Some("z/{device}"));
        for (topic, body, want) in [
            ("z/a", "{\"t\": 1", "not JSON"),
            ("z/a", "[1]", "not a JSON object"),
            ("y/a", "{}", "does not match topic_labels"),
            ("z/a/b", "{}", "does not match topic_labels"),
        ] {
            let e = run(&j, topic, body).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        let deep = format!("{}1{}", "{\"a\":".repeat(40), "}".repeat(40));
        assert!(run(&j, "z/a", &deep).unwrap_err().contains("deeper"));
        let e = j
            .decode("z/a", b"{\"a\":1,\"b\":2}", 1, &mut |_, _, _| Ok(()))
            .unwrap_err();
        assert!(e.contains("sample_limit"), "{e}");
    }

    #[test]
    fn bad_configuration_names_the_key() {
        for (t, want) in [
            (
                Value::table([("metric_prefx", Value::Str("a".into()))]),
                "metric_prefx",
            ),
            (
                Value::table([("metric_prefix", Value::Str("a b".into()))]),
                "metric_prefix",
            ),
            (
                Value::table([("topic_labels", Value::Str("a/{1}".into()))]),
                "topic_labels",
            ),
        ] {
            let e = Json::from_table(&t).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
