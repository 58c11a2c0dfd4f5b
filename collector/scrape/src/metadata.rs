//! The metric metadata of every running target, in memory, keyed by family name: Prometheus'
//! "target metadata", which its remote write sends with `metadata_config`.
//!
//! Metadata is not in the WAL (Prometheus' agent does not send it from its WAL either): a
//! restart learns it again at the first scrape of each target. Scrapers report only changes
//! ([`MetadataUpdate`]), so the store's lock is taken when a target's metadata changed, when a
//! target stops, and when an exporter takes a [`MetadataStore::snapshot`] (once per
//! `send_interval`), never per sample.
//!
//! # Example
//! ```
//! use magpie_scrape::metadata::MetadataStore;
//! use magpie_sdk::abi::{FamilyMeta, MetadataUpdate, MetricType};
//!
//! let store = MetadataStore::default();
//! let target = store.register();
//! let family = FamilyMeta {
//!     name: "http_requests".into(),
//!     kind: MetricType::Counter,
//!     help: "Requests served.".into(),
//!     unit: "".into(),
//! };
//! target.apply(&MetadataUpdate::V1 { changed: vec![family.clone()], gone: vec![] });
//! assert_eq!(store.snapshot(), [family]);
//! drop(target);
//! assert!(store.snapshot().is_empty());
//! ```

use magpie_sdk::abi::{FamilyMeta, MetadataUpdate, MetricType};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    kind: MetricType,
    help: String,
    unit: String,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Bumped by every change, so a reader can tell cheaply whether a snapshot is stale.
    generation: u64,
    targets: HashMap<u64, BTreeMap<String, Meta>>,
}

/// The metadata of all running targets; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct MetadataStore(Arc<Mutex<Inner>>);

/// One target's share of a [`MetadataStore`]; dropping it forgets the target's metadata.
#[derive(Debug)]
pub struct TargetMetadata {
    store: MetadataStore,
    id: u64,
}

impl MetadataStore {
    /// A new target with no metadata yet.
    #[must_use]
    pub fn register(&self) -> TargetMetadata {
        let mut inner = self.0.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.targets.insert(id, BTreeMap::new());
        inner.generation += 1;
        TargetMetadata {
            store: self.clone(),
            id,
        }
    }

    /// Every family's metadata across targets, each distinct (family, type, help, unit) once,
    /// as Prometheus' metadata watcher collects it; sorted.
    #[must_use]
    pub fn snapshot(&self) -> Vec<FamilyMeta<'static>> {
        let inner = self.0.lock();
        let mut set = BTreeSet::new();
        for families in inner.targets.values() {
            for (name, m) in families {
                set.insert((name.as_str(), m.kind, m.help.as_str(), m.unit.as_str()));
            }
        }
        set.into_iter()
            .map(|(name, kind, help, unit)| FamilyMeta {
                name: name.to_string().into(),
                kind,
                help: help.to_string().into(),
                unit: unit.to_string().into(),
            })
            .collect()
    }

    /// A number that changes whenever the metadata does (a family added, changed or gone, a
    /// target registered or dropped): an exporter that hands the metadata on with every
    /// series takes a new snapshot only when it moved.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.0.lock().generation
    }

    /// Families held over all targets (one per target that has it).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.lock().targets.values().map(BTreeMap::len).sum()
    }

    /// Whether no target has metadata.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TargetMetadata {
    /// Applies a scraper's report of what changed.
    pub fn apply(&self, update: &MetadataUpdate<'_>) {
        let MetadataUpdate::V1 { changed, gone } = update;
        let mut inner = self.store.0.lock();
        let families = inner.targets.entry(self.id).or_default();
        let mut moved = false;
        for name in gone {
            moved |= families.remove(&**name).is_some();
        }
        for f in changed {
            let meta = Meta {
                kind: f.kind,
                help: f.help.to_string(),
                unit: f.unit.to_string(),
            };
            match families.get_mut(&*f.name) {
                Some(m) if *m == meta => {}
                Some(m) => {
                    *m = meta;
                    moved = true;
                }
                None => {
                    families.insert(f.name.to_string(), meta);
                    moved = true;
                }
            }
        }
        if moved {
            inner.generation += 1;
        }
    }
}

impl Drop for TargetMetadata {
    fn drop(&mut self) {
        let mut inner = self.store.0.lock();
        inner.targets.remove(&self.id);
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(name: &str, kind: MetricType, help: &str) -> FamilyMeta<'static> {
        FamilyMeta {
            name: name.to_string().into(),
            kind,
            help: help.to_string().into(),
            unit: "".into(),
        }
    }

    #[test]
    fn targets_agreeing_give_one_entry_and_disagreeing_give_both() {
        let store = MetadataStore::default();
        let (a, b) = (store.register(), store.register());
        let up = |changed| MetadataUpdate::V1 {
            changed,
            gone: vec![],
        };
        a.apply(&up(vec![fam("x", MetricType::Gauge, "h")]));
        b.apply(&up(vec![fam("x", MetricType::Gauge, "h")]));
        assert_eq!(store.snapshot(), [fam("x", MetricType::Gauge, "h")]);
        // Reporting what is already known moves nothing; a change does.
        let g = store.generation();
        b.apply(&up(vec![fam("x", MetricType::Gauge, "h")]));
        assert_eq!(store.generation(), g);
        b.apply(&up(vec![fam("x", MetricType::Gauge, "other")]));
        assert_ne!(store.generation(), g);
        assert_eq!(
            store.snapshot(),
            [
                fam("x", MetricType::Gauge, "h"),
                fam("x", MetricType::Gauge, "other")
            ]
        );
        b.apply(&MetadataUpdate::V1 {
            changed: vec![],
            gone: vec!["x".into()],
        });
        assert_eq!(store.snapshot(), [fam("x", MetricType::Gauge, "h")]);
        assert_eq!(store.len(), 1);
        let g = store.generation();
        drop(a);
        assert!(store.is_empty());
        assert_ne!(store.generation(), g);
    }
}
