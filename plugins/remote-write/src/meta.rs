//! Per-series metadata for remote write 2.0, which carries a family's type, help and unit in
//! every `TimeSeries` instead of in requests of its own.
//!
//! The host hands the exporter the metadata of all running targets (the same snapshot a 1.0
//! exporter sends apart) whenever it changed and every `send_interval`; a 2.0 exporter keeps it
//! here, replacing what it held, and the writer looks each series up by its metric name.
//!
//! A series belongs to a family as in Prometheus' scrape loop (`isSeriesPartOfFamily`): its
//! name is the family's, or the family's plus a suffix its type allows (`_total` and
//! `_created` of a counter; `_bucket`, `_count`, `_sum`, `_created` of a histogram;
//! `_bucket`, `_gcount`, `_gsum` of a gauge histogram; `_count`, `_sum`, `_created` of a
//! summary; `_info` of an info). When targets disagree about a family, the first of the
//! sorted snapshot wins: one series carries one metadata.

use std::collections::HashMap;

use magpie_sdk::abi::{FamilyMeta, MetricType};

/// One family's metadata, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMeta {
    /// The family's type.
    pub kind: MetricType,
    /// `HELP`, empty when absent.
    pub help: String,
    /// `UNIT`, empty when absent.
    pub unit: String,
}

/// The metadata of every family the host reported, by family name.
#[derive(Debug, Clone, Default)]
pub struct MetadataIndex {
    families: HashMap<String, SeriesMeta>,
}

impl MetadataIndex {
    /// An index of `families`; the first of a repeated name wins.
    #[must_use]
    pub fn new(families: &[FamilyMeta<'_>]) -> Self {
        let mut index = Self::default();
        index.replace(families);
        index
    }

    /// Forgets what it held and keeps `families`.
    pub fn replace(&mut self, families: &[FamilyMeta<'_>]) {
        self.families.clear();
        for f in families {
            self.families
                .entry(f.name.to_string())
                .or_insert_with(|| SeriesMeta {
                    kind: f.kind,
                    help: f.help.to_string(),
                    unit: f.unit.to_string(),
                });
        }
    }

    /// Families held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no family is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The metadata of the family series `name` belongs to, if known.
    #[must_use]
    pub fn lookup(&self, name: &str) -> Option<&SeriesMeta> {
        if self.families.is_empty() {
            return None;
        }
        if let Some(m) = self.families.get(name) {
            return Some(m);
        }
        for suffix in [
            "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
        ] {
            let Some(family) = name.strip_suffix(suffix) else {
                continue;
            };
            if let Some(m) = self.families.get(family)
                && allows(m.kind, suffix)
            {
                return Some(m);
            }
        }
        None
    }
}

/// Whether a family of type `kind` has series named with `suffix`.
fn allows(kind: MetricType, suffix: &str) -> bool {
    match kind {
        MetricType::Counter => matches!(suffix, "_total" | "_created"),
        MetricType::Histogram => matches!(suffix, "_bucket" | "_count" | "_sum" | "_created"),
        MetricType::GaugeHistogram => matches!(suffix, "_bucket" | "_gcount" | "_gsum"),
        MetricType::Summary => matches!(suffix, "_count" | "_sum" | "_created"),
        MetricType::Info => suffix == "_info",
        MetricType::Unknown | MetricType::Gauge | MetricType::StateSet => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(name: &'static str, kind: MetricType, help: &'static str) -> FamilyMeta<'static> {
        FamilyMeta {
            name: name.into(),
            kind,
            help: help.into(),
            unit: "".into(),
        }
    }

    #[test]
    fn series_find_their_family_by_the_suffixes_its_type_allows() {
        let index = MetadataIndex::new(&[
            fam("req", MetricType::Counter, "c"),
            fam("lat", MetricType::Histogram, "h"),
            fam("q", MetricType::GaugeHistogram, "gh"),
            fam("rpc", MetricType::Summary, "s"),
            fam("build", MetricType::Info, "i"),
            fam("temp", MetricType::Gauge, "g"),
            fam("old_total", MetricType::Counter, "text format"),
        ]);
        let help = |n: &str| index.lookup(n).map(|m| m.help.as_str());
        assert_eq!(help("req_total"), Some("c"));
        assert_eq!(help("req_created"), Some("c"));
        assert_eq!(help("req_count"), None);
        for s in ["lat_bucket", "lat_count", "lat_sum", "lat_created", "lat"] {
            assert_eq!(help(s), Some("h"), "{s}");
        }
        assert_eq!(help("q_gcount"), Some("gh"));
        assert_eq!(help("q_count"), None);
        assert_eq!(help("rpc_sum"), Some("s"));
        assert_eq!(help("rpc_bucket"), None);
        assert_eq!(help("build_info"), Some("i"));
        assert_eq!(help("temp"), Some("g"));
        assert_eq!(help("temp_total"), None);
        assert_eq!(help("old_total"), Some("text format"));
        assert_eq!(help("nothing"), None);
    }

    #[test]
    fn replace_forgets_and_the_first_of_a_name_wins() {
        let mut index = MetadataIndex::new(&[
            fam("x", MetricType::Gauge, "a"),
            fam("x", MetricType::Gauge, "b"),
        ]);
        assert_eq!(index.lookup("x").unwrap().help, "a");
        index.replace(&[fam("y", MetricType::Gauge, "")]);
        assert!(index.lookup("x").is_none());
        assert_eq!(index.len(), 1);
    }
}
