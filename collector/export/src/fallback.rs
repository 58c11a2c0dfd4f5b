//! Which exporters send their plugin's fallback encoding.
//!
//! A receiver that refuses the configured encoding (a remote write 1.0 receiver answering 415
//! to a 2.0 request) is not going to learn it while the collector runs, so the choice is kept
//! for the life of the process: across configuration reloads, which build new exporter loops,
//! and instance restarts of the plugin, which lose the plugin's own state. It is keyed by the
//! exporter's name and URL, so pointing an exporter at another receiver tries the configured
//! encoding again. Nothing is written to disk: after a restart the first batch costs one
//! refused request more.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::Arc;

/// The exporters, by name and URL, whose receiver refused the configured encoding. Cheap to
/// clone; clones share the set.
#[derive(Debug, Clone, Default)]
pub struct Fallbacks(Arc<Mutex<HashSet<(String, String)>>>);

impl Fallbacks {
    /// Whether exporter `name` sends the fallback encoding to `url`.
    #[must_use]
    pub fn contains(&self, name: &str, url: &str) -> bool {
        self.0.lock().contains(&(name.to_string(), url.to_string()))
    }

    /// Remembers that exporter `name` sends the fallback encoding to `url`; false when it
    /// already did.
    pub fn insert(&self, name: &str, url: &str) -> bool {
        self.0.lock().insert((name.to_string(), url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_set_and_the_url_counts() {
        let a = Fallbacks::default();
        let b = a.clone();
        assert!(a.insert("rw", "http://a/write"));
        assert!(!b.insert("rw", "http://a/write"));
        assert!(b.contains("rw", "http://a/write"));
        assert!(!b.contains("rw", "http://b/write"));
        assert!(!b.contains("other", "http://a/write"));
    }
}
