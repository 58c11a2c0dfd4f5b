//! What the decoder remembers between messages: per edge node the birth certificates of the
//! node and its devices (metric names, aliases, data types), the last `seq` and the `bdSeq`
//! of the node's session, and per metric the time of its last sample, which the staleness
//! markers of a death must not precede.
//!
//! A message is resolved in full before anything is emitted or remembered, so a refused
//! message leaves the births as they were. Only `seq` moves on a refused message: it counts
//! messages the edge node sent, taken or not.

use crate::proto::{DataType, Metric, Payload, Value};
use crate::topic::{self, Kind, Topic};
use prost::Message as _;
use std::collections::HashMap;

/// Prometheus' staleness marker: a NaN with this bit pattern ends a series for queries;
/// remote write receivers store it as such.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Where decoded samples go: (metric name, labels, value, timestamp ms; `None` = receive time).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64, Option<i64>) -> Result<(), String> + 'o;

/// What a taken message did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Samples emitted (staleness markers included).
    pub samples: usize,
    /// Things an operator may want to know that did not refuse the message: `seq` gaps, a
    /// death from an older session, metrics of types that are not numbers.
    pub notes: Vec<String>,
}

/// A metric defined by a birth.
#[derive(Debug, Clone)]
struct Def {
    /// The sanitised metric name.
    name: String,
    datatype: DataType,
    code: u32,
    /// Protocol bookkeeping (`bdSeq`, `Node Control/*`, `Device Control/*`): resolved, not
    /// stored.
    control: bool,
    /// Time of its last sample, once it has one.
    last_ms: Option<i64>,
}

/// The metrics of one birth certificate.
#[derive(Debug, Clone, Default)]
struct Birth {
    defs: Vec<Def>,
    by_alias: HashMap<u64, usize>,
    by_name: HashMap<String, usize>,
}

/// One edge node.
#[derive(Debug, Default)]
struct Node {
    bd_seq: Option<u64>,
    seq: Option<u64>,
    birth: Option<Birth>,
    devices: HashMap<String, Birth>,
}

/// The decoder's memory of all edge nodes it has seen births of.
#[derive(Debug, Default)]
pub struct Sparkplug {
    nodes: HashMap<(String, String), Node>,
}

/// A metric name as Prometheus takes it: every character outside `[a-zA-Z0-9_:]` becomes `_`
/// (Sparkplug names are paths such as `Inputs/Temperature`), and a leading digit gets a `_`.
#[must_use]
pub fn sanitise(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn is_control(name: &str) -> bool {
    name == "bdSeq" || name.starts_with("Node Control/") || name.starts_with("Device Control/")
}

#[allow(clippy::cast_possible_wrap)]
const fn ms(t: u64) -> i64 {
    t as i64
}

impl Birth {
    fn parse(kind: &str, topic: &str, metrics: &[Metric]) -> Result<Self, String> {
        let mut b = Self::default();
        for (i, m) in metrics.iter().enumerate() {
            let name = m
                .name
                .as_deref()
                .ok_or_else(|| format!("{kind} on `{topic}`: metric #{i} has no name"))?;
            let code = m
                .datatype
                .ok_or_else(|| format!("{kind} on `{topic}`: metric `{name}` has no datatype"))?;
            let at = b.defs.len();
            if let Some(alias) = m.alias
                && let Some(prev) = b.by_alias.insert(alias, at)
            {
                return Err(format!(
                    "{kind} on `{topic}`: alias {alias} is given to both `{}` and `{name}`",
                    metrics[prev].name.as_deref().unwrap_or_default()
                ));
            }
            b.by_name.insert(name.to_string(), at);
            b.defs.push(Def {
                name: sanitise(name),
                datatype: DataType::from_code(code),
                code,
                control: is_control(name),
                last_ms: None,
            });
        }
        Ok(b)
    }

    /// The definition `m` refers to: by alias when it has one, else by name.
    fn resolve(&self, m: &Metric) -> Option<usize> {
        match (m.alias, m.name.as_deref()) {
            (Some(a), _) => self.by_alias.get(&a).copied(),
            (None, Some(n)) => self.by_name.get(n).copied(),
            (None, None) => None,
        }
    }

    fn not_numbers(&self) -> Vec<String> {
        self.defs
            .iter()
            .filter(|d| !d.control && !d.datatype.is_numeric())
            .map(|d| format!("`{}` ({})", d.name, DataType::name(d.code)))
            .collect()
    }
}

/// A sample resolved from a message, before it is emitted.
struct Pending {
    def: usize,
    value: f64,
    t_ms: Option<i64>,
}

/// Reads the values of `metrics` against `birth`; metrics without a sample (null, not a
/// number, bookkeeping) are left out.
fn values(
    kind: &str,
    topic: &str,
    birth: &Birth,
    metrics: &[Metric],
    sent_ms: Option<i64>,
    is_birth: bool,
) -> Result<Vec<Pending>, String> {
    let mut out = Vec::with_capacity(metrics.len());
    for (i, m) in metrics.iter().enumerate() {
        let def = if is_birth {
            i
        } else {
            birth.resolve(m).ok_or_else(|| {
                let what = match (m.alias, m.name.as_deref()) {
                    (Some(a), Some(n)) => format!("alias {a} (`{n}`)"),
                    (Some(a), None) => format!("alias {a}"),
                    (None, Some(n)) => format!("`{n}`"),
                    (None, None) => format!("#{i} (neither name nor alias)"),
                };
                format!(
                    "{kind} on `{topic}`: unknown metric {what}: not in the birth seen since the decoder started; the values are dropped until the edge node publishes a new birth (magpie sends no rebirth request)"
                )
            })?
        };
        let d = &birth.defs[def];
        if d.control || !d.datatype.is_numeric() || m.is_null == Some(true) {
            continue;
        }
        let Some(v) = &m.value else { continue };
        let value = d.datatype.value(v).ok_or_else(|| {
            format!(
                "{kind} on `{topic}`: metric `{}` is declared {} but carries a {} value",
                d.name,
                DataType::name(d.code),
                value_kind(v)
            )
        })?;
        out.push(Pending {
            def,
            value,
            t_ms: m.timestamp.map(ms).or(sent_ms),
        });
    }
    Ok(out)
}

const fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "int_value",
        Value::Long(_) => "long_value",
        Value::Float(_) => "float_value",
        Value::Double(_) => "double_value",
        Value::Boolean(_) => "boolean_value",
        Value::String(_) => "string_value",
        Value::Bytes(_) => "bytes_value",
        Value::DataSet(_) => "dataset_value",
        Value::Template(_) => "template_value",
        Value::Extension(_) => "extension_value",
    }
}

fn emit(
    birth: &mut Birth,
    pending: &[Pending],
    labels: &[(&str, &str)],
    now_ms: i64,
    out: &mut Out<'_>,
) -> Result<usize, String> {
    for p in pending {
        let d = &mut birth.defs[p.def];
        out(&d.name, labels, p.value, p.t_ms)?;
        let t = p.t_ms.unwrap_or(now_ms);
        d.last_ms = Some(d.last_ms.map_or(t, |l| l.max(t)));
    }
    Ok(pending.len())
}

/// Staleness markers for every series of `birth` that has a sample, each after its last one.
fn mark_stale(
    birth: &Birth,
    labels: &[(&str, &str)],
    now_ms: i64,
    out: &mut Out<'_>,
) -> Result<usize, String> {
    let mut n = 0;
    for d in &birth.defs {
        if let Some(last) = d.last_ms {
            out(
                &d.name,
                labels,
                f64::from_bits(STALE_NAN),
                Some(now_ms.max(last + 1)),
            )?;
            n += 1;
        }
    }
    Ok(n)
}

fn bd_seq(p: &Payload) -> Option<u64> {
    p.metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| match m.value {
            Some(Value::Long(v)) => Some(v),
            Some(Value::Int(v)) => Some(u64::from(v)),
            _ => None,
        })
}

impl Sparkplug {
    /// An empty memory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the message `body` published on `topic`, received at `now_ms`.
    ///
    /// # Errors
    /// The reason the message is refused, naming the topic: not a Sparkplug topic or payload,
    /// a birth without names or types or with an alias twice, data for a metric the birth
    /// does not define (or with no birth since the decoder started), a value that does not
    /// match its declared type, or `out`'s own refusal.
    pub fn decode(
        &mut self,
        topic_str: &str,
        body: &[u8],
        now_ms: i64,
        out: &mut Out<'_>,
    ) -> Result<Outcome, String> {
        let t = topic::parse(topic_str)?;
        if t.kind == Kind::Ignored {
            return Ok(Outcome::default());
        }
        let p = Payload::decode(body)
            .map_err(|e| format!("`{topic_str}`: not a Sparkplug B payload: {e}"))?;
        let mut outcome = Outcome::default();
        let key = (t.group.to_string(), t.edge_node.to_string());
        if t.kind != Kind::NDeath {
            self.check_seq(&key, &t, topic_str, &p, &mut outcome);
        }
        let sent_ms = p.timestamp.map(ms);
        let mut labels = vec![("group", t.group), ("edge_node", t.edge_node)];
        if let Some(d) = t.device {
            labels.push(("device", d));
        }
        let kind = topic_str.split('/').nth(2).unwrap_or_default();
        match t.kind {
            Kind::NBirth | Kind::DBirth => {
                let mut birth = Birth::parse(kind, topic_str, &p.metrics)?;
                let pending = values(kind, topic_str, &birth, &p.metrics, sent_ms, true)?;
                outcome.samples = emit(&mut birth, &pending, &labels, now_ms, out)?;
                let skipped = birth.not_numbers();
                if !skipped.is_empty() {
                    outcome.notes.push(format!(
                        "{kind} on `{topic_str}`: {} metrics are not numbers and are not stored: {}",
                        skipped.len(),
                        skipped.join(", ")
                    ));
                }
                let node = self.nodes.entry(key).or_default();
                match t.device {
                    None => {
                        node.bd_seq = bd_seq(&p);
                        node.seq = p.seq;
                        node.birth = Some(birth);
                    }
                    Some(d) => {
                        node.devices.insert(d.to_string(), birth);
                    }
                }
            }
            Kind::NData | Kind::DData => {
                let node = self.nodes.get_mut(&key);
                let birth = match (node, t.device) {
                    (Some(n), None) => n.birth.as_mut(),
                    (Some(n), Some(d)) => n.devices.get_mut(d),
                    (None, _) => None,
                }
                .ok_or_else(|| {
                    format!(
                        "{kind} on `{topic_str}`: no {} seen since the decoder started; the values are dropped until the edge node publishes a new birth (magpie sends no rebirth request)",
                        if t.device.is_some() { "DBIRTH" } else { "NBIRTH" }
                    )
                })?;
                let pending = values(kind, topic_str, birth, &p.metrics, sent_ms, false)?;
                outcome.samples = emit(birth, &pending, &labels, now_ms, out)?;
            }
            Kind::NDeath => {
                self.node_death(key, topic_str, &p, &labels, now_ms, &mut outcome, out)?
            }
            Kind::DDeath => {
                if let Some(d) = t.device
                    && let Some(n) = self.nodes.get_mut(&key)
                    && let Some(birth) = n.devices.get(d)
                {
                    outcome.samples = mark_stale(birth, &labels, now_ms, out)?;
                    n.devices.remove(d);
                }
            }
            Kind::Ignored => {}
        }
        Ok(outcome)
    }

    fn check_seq(
        &mut self,
        key: &(String, String),
        t: &Topic<'_>,
        topic_str: &str,
        p: &Payload,
        outcome: &mut Outcome,
    ) {
        if t.kind == Kind::NBirth {
            return;
        }
        let Some(node) = self.nodes.get_mut(key) else {
            return;
        };
        if let (Some(prev), Some(got)) = (node.seq, p.seq) {
            let expected = (prev + 1) % 256;
            if got != expected {
                outcome.notes.push(format!(
                    "`{topic_str}`: seq {got} where {expected} was due: messages of the edge node were lost, reordered or sent twice"
                ));
            }
        }
        if p.seq.is_some() {
            node.seq = p.seq;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn node_death(
        &mut self,
        key: (String, String),
        topic_str: &str,
        p: &Payload,
        labels: &[(&str, &str)],
        now_ms: i64,
        outcome: &mut Outcome,
        out: &mut Out<'_>,
    ) -> Result<(), String> {
        let Some(node) = self.nodes.get(&key) else {
            return Ok(());
        };
        if let (Some(born), Some(died)) = (node.bd_seq, bd_seq(p))
            && born != died
        {
            outcome.notes.push(format!(
                "`{topic_str}`: NDEATH with bdSeq {died} of an older session (the birth had {born}): ignored"
            ));
            return Ok(());
        }
        let mut n = 0;
        if let Some(b) = &node.birth {
            n += mark_stale(b, labels, now_ms, out)?;
        }
        let mut devices: Vec<_> = node.devices.iter().collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (d, b) in devices {
            let mut l = labels.to_vec();
            l.push(("device", d.as_str()));
            n += mark_stale(b, &l, now_ms, out)?;
        }
        outcome.samples = n;
        self.nodes.remove(&key);
        Ok(())
    }
}
