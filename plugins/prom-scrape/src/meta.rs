//! The scraper's memory of a target's metadata, so that the host hears of a family's `TYPE`,
//! `HELP` and `UNIT` only when they change.
//!
//! Prometheus' scrape cache is the model: a field a scrape does not mention keeps its last
//! value, and a family whose metadata lines have not been seen for [`KEEP_SCRAPES`] scrapes
//! is forgotten. A scrape with unchanged metadata costs one or two name comparisons per
//! metadata line and no allocation; [`MetaCache::finish`] then has nothing to report.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use magpie_sdk::abi::{self, FamilyMeta, MetadataUpdate};

use crate::MetricType;

/// Scrapes a family may go without metadata lines before it is forgotten (Prometheus keeps
/// metadata for 10 scrapes after its lines disappear).
pub const KEEP_SCRAPES: u64 = 10;

#[derive(Debug)]
struct Entry {
    name: String,
    kind: abi::MetricType,
    help: String,
    unit: String,
    /// The scrape that last had a metadata line of the family.
    seen: u64,
    /// The scrape that last changed a field.
    changed: u64,
}

/// A target's metadata as last reported to the host.
///
/// A target lists its families in the same order every scrape, with each family's metadata
/// lines together, so a line's family is nearly always the one of the line before or the
/// one after it in the cache: those two are compared first, and the name index is searched
/// only when neither matches (a family new or moved).
#[derive(Debug, Default)]
pub struct MetaCache {
    /// Families in the order they were first seen.
    entries: Vec<Entry>,
    /// Each family's position in `entries`.
    index: BTreeMap<String, usize>,
    /// The position after the last family looked up.
    next: usize,
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
        self.next = 0;
    }

    /// The family's position: the last one looked up, the one after it, or the index's.
    fn position(&self, family: &str) -> Option<usize> {
        let is = |i: usize| self.entries.get(i).is_some_and(|e| e.name == family);
        let last = self.next.wrapping_sub(1);
        if is(last) {
            Some(last)
        } else if is(self.next) {
            Some(self.next)
        } else {
            self.index.get(family).copied()
        }
    }

    fn entry(&mut self, family: &str) -> &mut Entry {
        let scrape = self.scrape;
        let at = self.position(family).unwrap_or_else(|| {
            let at = self.entries.len();
            self.entries.push(Entry {
                name: String::from(family),
                kind: abi::MetricType::default(),
                help: String::new(),
                unit: String::new(),
                seen: scrape,
                changed: scrape,
            });
            self.index.insert(String::from(family), at);
            at
        });
        self.next = at + 1;
        let e = &mut self.entries[at];
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
    /// Both lists are in name order.
    pub fn finish(&mut self) -> Option<MetadataUpdate<'_>> {
        let scrape = self.scrape;
        let index = &mut self.index;
        let mut gone: Vec<Cow<'_, str>> = (self.entries)
            .extract_if(.., |e| scrape - e.seen > KEEP_SCRAPES)
            .map(|e| {
                index.remove(&e.name);
                Cow::Owned(e.name)
            })
            .collect();
        if !gone.is_empty() {
            for (i, e) in self.entries.iter().enumerate() {
                if let Some(at) = self.index.get_mut(&e.name) {
                    *at = i;
                }
            }
            gone.sort_unstable();
        }
        let mut changed: Vec<FamilyMeta<'_>> = (self.entries.iter())
            .filter(|e| e.changed == scrape)
            .map(|e| FamilyMeta {
                name: Cow::Borrowed(&e.name),
                kind: e.kind,
                help: Cow::Borrowed(&e.help),
                unit: Cow::Borrowed(&e.unit),
            })
            .collect();
        if changed.is_empty() && gone.is_empty() {
            return None;
        }
        changed.sort_unstable_by(|a, b| a.name.cmp(&b.name));
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
    fn kind(text: &str) -> MetricType {
        match text {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            _ => MetricType::Histogram,
        }
    }

    /// The cache as a plain map, searched for every line.
    #[derive(Default)]
    struct Model {
        families: BTreeMap<String, (abi::MetricType, String, String, u64, u64)>,
        scrape: u64,
    }

    type Report = (Vec<(String, abi::MetricType, String, String)>, Vec<String>);

    impl Model {
        fn line(&mut self, family: &str, field: u8, text: &str) {
            let scrape = self.scrape;
            let e = (self.families.entry(family.into())).or_insert((
                abi::MetricType::Unknown,
                String::new(),
                String::new(),
                0,
                scrape,
            ));
            e.3 = scrape;
            let changed = match field {
                0 => {
                    let t = abi_type(kind(text));
                    core::mem::replace(&mut e.0, t) != t
                }
                1 => core::mem::replace(&mut e.1, text.into()) != text,
                _ => core::mem::replace(&mut e.2, text.into()) != text,
            };
            if changed {
                e.4 = scrape;
            }
        }

        fn finish(&mut self) -> Option<Report> {
            let scrape = self.scrape;
            let gone: Vec<String> = (self.families.iter())
                .filter(|(_, e)| scrape - e.3 > KEEP_SCRAPES)
                .map(|(n, _)| n.clone())
                .collect();
            self.families.retain(|_, e| scrape - e.3 <= KEEP_SCRAPES);
            let changed: Vec<_> = (self.families.iter())
                .filter(|(_, e)| e.4 == scrape)
                .map(|(n, e)| (n.clone(), e.0, e.1.clone(), e.2.clone()))
                .collect();
            (!changed.is_empty() || !gone.is_empty()).then_some((changed, gone))
        }
    }

    fn report(c: &mut MetaCache) -> Option<Report> {
        c.finish().map(|u| {
            let MetadataUpdate::V1 { changed, gone } = u;
            (
                (changed.into_iter())
                    .map(|f| (f.name.into(), f.kind, f.help.into(), f.unit.into()))
                    .collect(),
                gone.into_iter().map(Cow::into_owned).collect(),
            )
        })
    }

    proptest::proptest! {
        /// Scrapes that list families in changing orders, change their fields, and leave
        /// groups of them out for runs of scrapes long enough to forget them: the cache
        /// reports what a plain map does.
        #[test]
        fn reports_what_a_map_searched_every_line_reports(
            runs in proptest::collection::vec(
                (
                    0..2usize,
                    1..16usize,
                    proptest::collection::vec((0..6usize, 0..3u8, 0..3usize), 0..20),
                ),
                1..8,
            ),
        ) {
            let names = ["a", "b", "c", "d", "e", "f", "g", "h", "ab", "ba", "x_total", "x"];
            let texts = [["counter", "gauge", "histogram"], ["h1", "h2", ""], ["s", "bytes", ""]];
            let mut cache = MetaCache::default();
            let mut model = Model::default();
            for (group, scrapes, lines) in &runs {
                for n in 0..*scrapes {
                    cache.begin();
                    model.scrape += 1;
                    // Each scrape of a run lists the lines rotated by one more.
                    for i in 0..lines.len() {
                        let (f, field, t) = lines[(i + n) % lines.len()];
                        let name = names[group * 6 + f];
                        let text = texts[usize::from(field)][(t + n / 4) % 3];
                        match field {
                            0 => cache.kind(name, kind(text)),
                            1 => cache.help(name, text),
                            _ => cache.unit(name, text),
                        }
                        model.line(name, field, text);
                    }
                    proptest::prop_assert_eq!(report(&mut cache), model.finish());
                }
            }
        }
    }
}
