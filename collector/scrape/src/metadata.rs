//! The metric metadata of every running target, in memory, keyed by family name: Prometheus'
//! "target metadata", which its remote write sends with `metadata_config`.
//!
//! Metadata is not in the WAL (Prometheus' agent does not send it from its WAL either): a
//! restart learns it again at the first scrape of each target. Scrapers report only changes
//! ([`MetadataUpdate`]), so the store's lock is taken when a target's metadata changed, when a
//! target stops, and when an exporter takes a [`MetadataStore::snapshot`] (once per
//! `send_interval`), never per sample.
//!
//! A store made with [`MetadataStore::accounted`] counts its heap bytes in
//! `magpie_series_bytes`, from a running sum kept as families come and go.
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

use magpie_metrics::memory::{Share, map_bytes};
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
    /// Heap bytes of every target's families (names, texts, their B-tree slots).
    family_bytes: usize,
    /// Where the store's bytes are counted, if anywhere.
    memory: Option<Share>,
}

/// What one family's entry costs: its strings by capacity and its share of a B-tree leaf
/// (11 slots of name and metadata, about two-thirds full on average).
fn entry_bytes(name: &str, m: &Meta) -> usize {
    (size_of::<String>() + size_of::<Meta>()) * 3 / 2
        + name.len()
        + m.help.capacity()
        + m.unit.capacity()
}

impl Inner {
    /// Hands the store's heap bytes to its share of the series account.
    fn publish(&mut self) {
        let bytes = self.heap_bytes();
        if let Some(m) = &mut self.memory {
            m.set(0, bytes);
        }
    }

    fn heap_bytes(&self) -> usize {
        map_bytes(&self.targets) + self.family_bytes
    }
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
    /// An empty store whose heap bytes count in `share` (`magpie_series_bytes`).
    #[must_use]
    pub fn accounted(share: Share) -> Self {
        let store = Self::default();
        let mut inner = store.0.lock();
        inner.memory = Some(share);
        inner.publish();
        drop(inner);
        store
    }

    /// Heap bytes the store holds.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.0.lock().heap_bytes()
    }

    /// A new target with no metadata yet.
    #[must_use]
    pub fn register(&self) -> TargetMetadata {
        let mut inner = self.0.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.targets.insert(id, BTreeMap::new());
        inner.generation += 1;
        inner.publish();
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
        let inner = &mut *inner;
        let families = inner.targets.entry(self.id).or_default();
        let mut moved = false;
        let mut bytes = inner.family_bytes;
        for name in gone {
            if let Some(m) = families.remove(&**name) {
                bytes -= entry_bytes(name, &m);
                moved = true;
            }
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
                    bytes = bytes - entry_bytes(&f.name, m) + entry_bytes(&f.name, &meta);
                    *m = meta;
                    moved = true;
                }
                None => {
                    bytes += entry_bytes(&f.name, &meta);
                    families.insert(f.name.to_string(), meta);
                    moved = true;
                }
            }
        }
        if moved {
            inner.generation += 1;
            inner.family_bytes = bytes;
            inner.publish();
        }
    }
}

impl Drop for TargetMetadata {
    fn drop(&mut self) {
        let mut inner = self.store.0.lock();
        if let Some(families) = inner.targets.remove(&self.id) {
            inner.family_bytes -= families
                .iter()
                .map(|(n, m)| entry_bytes(n, m))
                .sum::<usize>();
        }
        inner.generation += 1;
        inner.publish();
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

    #[test]
    fn bytes_follow_families_and_leave_with_their_target() {
        let account = magpie_metrics::memory::SeriesAccount::new();
        let store = MetadataStore::accounted(account.share());
        let empty = store.heap_bytes();
        let a = store.register();
        let families: Vec<_> = (0..50)
            .map(|i| {
                fam(
                    &format!("node_family_{i}"),
                    MetricType::Gauge,
                    "A help text.",
                )
            })
            .collect();
        a.apply(&MetadataUpdate::V1 {
            changed: families,
            gone: vec![],
        });
        let full = store.heap_bytes();
        assert_eq!(account.bytes(), full as u64);
        // Each family: at least its name, help and B-tree slot.
        assert!(full - empty >= 50 * (14 + 12 + 48), "{empty} then {full}");
        a.apply(&MetadataUpdate::V1 {
            changed: vec![],
            gone: (0..25).map(|i| format!("node_family_{i}").into()).collect(),
        });
        let half = store.heap_bytes();
        assert!(half < full && half > empty, "{empty} {half} {full}");
        drop(a);
        assert_eq!(store.0.lock().family_bytes, 0);
        assert_eq!(account.bytes(), store.heap_bytes() as u64);
        drop(store);
        assert_eq!(account.bytes(), 0);
    }
}
