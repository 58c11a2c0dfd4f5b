//! The scraper's memory of a target's metadata, so that the host hears of a family's `TYPE`,
//! `HELP` and `UNIT` only when they change.
//!
//! Prometheus' scrape cache is the model: a field a scrape does not mention keeps its last
//! value, and a family whose metadata lines have not been seen for [`KEEP_SCRAPES`] scrapes
//! is forgotten. A scrape with unchanged metadata costs one map look-up per metadata line
//! and no allocation; [`MetaCache::finish`] then has nothing to report.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use magpie_sdk::abi::{self, FamilyMeta, MetadataUpdate};

use crate::MetricType;

/// Scrapes a family may go without metadata lines before it is forgotten (Prometheus keeps
/// metadata for 10 scrapes after its lines disappear).
pub const KEEP_SCRAPES: u64 = 10;

#[derive(Debug, Default)]
struct Entry {
    kind: abi::MetricType,
    help: String,
    unit: String,
    /// The scrape that last had a metadata line of the family.
    seen: u64,
    /// The scrape that last changed a field.
    changed: u64,
}

/// A target's metadata as last reported to the host.
#[derive(Debug, Default)]
pub struct MetaCache {
    entries: BTreeMap<String, Entry>,
    scrape: u64,
}

/// The ABI's spelling of a parsed type.
#[must_use]
pub const fn abi_type(t: MetricType) -> abi::MetricType {
    match t {
        MetricType::Counter => abi::MetricType::Counter,
        MetricType::Gauge => abi::MetricType::Gauge,
        MetricType::Histogram => abi::MetricType::Histogram,
        MetricType::GaugeHistogram => abi::MetricType::GaugeHistogram,
        MetricType::Summary => abi::MetricType::Summary,
        MetricType::StateSet => abi::MetricType::StateSet,
        MetricType::Info => abi::MetricType::Info,
        MetricType::Unknown => abi::MetricType::Unknown,
    }
}

impl MetaCache {
    /// Starts a scrape.
    pub fn begin(&mut self) {
        self.scrape += 1;
    }

    fn entry(&mut self, family: &str) -> &mut Entry {
        let scrape = self.scrape;
        if !self.entries.contains_key(family) {
            self.entries.insert(
                String::from(family),
                Entry {
                    changed: scrape,
                    ..Entry::default()
                },
            );
        }
        let e = self
            .entries
            .get_mut(family)
            .unwrap_or_else(|| unreachable!("inserted above"));
        e.seen = scrape;
        e
    }

    /// A `TYPE` line.
    pub fn kind(&mut self, family: &str, t: MetricType) {
        let scrape = self.scrape;
        let e = self.entry(family);
        let t = abi_type(t);
        if e.kind != t {
            e.kind = t;
            e.changed = scrape;
        }
    }

    /// A `HELP` line, unescaped.
    pub fn help(&mut self, family: &str, help: &str) {
        let scrape = self.scrape;
        let e = self.entry(family);
        if e.help != help {
            e.help.clear();
            e.help.push_str(help);
            e.changed = scrape;
        }
    }

    /// A `UNIT` line.
    pub fn unit(&mut self, family: &str, unit: &str) {
        let scrape = self.scrape;
        let e = self.entry(family);
        if e.unit != unit {
            e.unit.clear();
            e.unit.push_str(unit);
            e.changed = scrape;
        }
    }

    /// Ends the scrape: what changed since the last report, or `None` when nothing did.
    /// Families unseen for more than [`KEEP_SCRAPES`] scrapes are forgotten and reported gone.
    pub fn finish(&mut self) -> Option<MetadataUpdate<'_>> {
        let scrape = self.scrape;
        let mut gone = Vec::new();
        self.entries.retain(|name, e| {
            let keep = scrape - e.seen <= KEEP_SCRAPES;
            if !keep {
                gone.push(Cow::Owned(name.clone()));
            }
            keep
        });
        let changed: Vec<FamilyMeta<'_>> = (self.entries.iter())
            .filter(|(_, e)| e.changed == scrape)
            .map(|(name, e)| FamilyMeta {
                name: Cow::Borrowed(name),
                kind: e.kind,
                help: Cow::Borrowed(&e.help),
                unit: Cow::Borrowed(&e.unit),
            })
            .collect();
        if changed.is_empty() && gone.is_empty() {
            return None;
        }
        Some(MetadataUpdate::V1 { changed, gone })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(c: &mut MetaCache) -> Vec<(String, abi::MetricType, String, String)> {
        match c.finish() {
            None => Vec::new(),
            Some(MetadataUpdate::V1 { changed, .. }) => changed
                .into_iter()
                .map(|f| (f.name.into(), f.kind, f.help.into(), f.unit.into()))
                .collect(),
        }
    }

    #[test]
    fn only_changes_are_reported() {
        let mut c = MetaCache::default();
        c.begin();
        c.kind("a", MetricType::Counter);
        c.help("a", "requests");
        c.unit("b", "seconds");
        assert_eq!(
            changed(&mut c),
            [
                (
                    "a".into(),
                    abi::MetricType::Counter,
                    "requests".into(),
                    String::new()
                ),
                (
                    "b".into(),
                    abi::MetricType::Unknown,
                    String::new(),
                    "seconds".into()
                ),
            ]
        );
        c.begin();
        c.kind("a", MetricType::Counter);
        c.help("a", "requests");
        c.unit("b", "seconds");
        assert!(c.finish().is_none(), "nothing changed");
        c.begin();
        c.kind("a", MetricType::Counter);
        c.help("a", "requests served");
        assert_eq!(
            changed(&mut c),
            [(
                "a".into(),
                abi::MetricType::Counter,
                "requests served".into(),
                String::new()
            )]
        );
    }

    #[test]
    fn unmentioned_fields_keep_their_value_and_silent_families_go_after_ten_scrapes() {
        let mut c = MetaCache::default();
        c.begin();
        c.help("a", "h");
        c.kind("a", MetricType::Gauge);
        c.help("b", "x");
        let _ = c.finish();
        c.begin();
        c.kind("a", MetricType::Gauge);
        assert!(
            c.finish().is_none(),
            "a's HELP is kept though this scrape lacks it"
        );
        for _ in 0..KEEP_SCRAPES - 1 {
            c.begin();
            c.kind("a", MetricType::Gauge);
            assert!(c.finish().is_none());
        }
        c.begin();
        c.kind("a", MetricType::Gauge);
        let Some(MetadataUpdate::V1 { changed, gone }) = c.finish() else {
            panic!("b should be gone");
        };
        assert!(changed.is_empty());
        assert_eq!(gone, [Cow::Borrowed("b")]);
    }
}
