//! Test support: Kubernetes objects as Kubernetes' own API machinery serializes them (the
//! `kubernetes/api` repository's `testdata/HEAD`, copied to `testdata/kubernetes/`, see its
//! NOTICE), fed through [`Store`] as list responses and watch events, and the targets that
//! come out flattened to one sorted `name=value` list each, `__address__` included, for
//! comparison with what Prometheus builds from the same object.
//!
//! Every field of those objects holds a placeholder (`"nameValue"`, `"ipValue"`, port 3);
//! Prometheus does not check addresses, so `ipValue:2` is a target like any other.

use super::Role;
use super::store::{Resource, Step, Store, groups};
use serde_json::{Value, json};

/// A `testdata/kubernetes/` object.
pub(super) fn object(file: &str) -> Value {
    let path = format!("{}/testdata/kubernetes/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sets the member at JSON pointer `at` (its parent must exist; `~1` is a `/` in a name).
pub(super) fn set(v: &mut Value, at: &str, to: Value) {
    let (parent, key) = at.rsplit_once('/').expect("a pointer");
    let key = key.replace("~1", "/").replace("~0", "~");
    let p = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match p {
        Value::Object(m) => {
            m.insert(key, to);
        }
        Value::Array(a) => a[key.parse::<usize>().expect("an index")] = to,
        _ => panic!("{parent} is neither an object nor an array"),
    }
}

/// The stores of one role's loops (its own resource first, then services and pods for the
/// endpoints roles), fed with the API's JSON.
pub(super) struct Feed {
    role: Role,
    stores: Vec<Store>,
}

impl Feed {
    pub(super) fn new(role: Role) -> Self {
        let stores = Resource::of(role)
            .iter()
            .map(|r| Store::new(role, *r))
            .collect();
        Self { role, stores }
    }

    /// Feeds store `i` a list response holding `items`, as the API server writes it.
    pub(super) fn list(&mut self, i: usize, kind: &str, items: &[Value]) {
        let api_version = items
            .first()
            .and_then(|o| o.get("apiVersion").cloned())
            .unwrap_or_else(|| json!("v1"));
        let body = json!({"kind": format!("{kind}List"), "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"}, "items": items});
        let version = self.stores[i]
            .list(body.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{kind} list: {e}"));
        assert_eq!(version, "1");
    }

    /// Feeds store `i` a list response as written.
    pub(super) fn list_body(&mut self, i: usize, body: &str) -> Result<String, String> {
        self.stores[i].list(body.as_bytes())
    }

    /// Feeds store `i` one watch event line.
    pub(super) fn event(&mut self, i: usize, kind: &str, object: &Value) -> Result<Step, String> {
        let line = format!("{}\n", json!({"type": kind, "object": object}));
        let mut version = String::new();
        self.stores[i].event(line.as_bytes(), &mut version)
    }

    /// Every target: its source and its sorted labels.
    pub(super) fn targets(&self) -> Vec<(String, Vec<String>)> {
        let objects: Vec<_> = self.stores.iter().map(|s| s.objects.clone()).collect();
        let mut out = Vec::new();
        for g in groups(self.role, &objects) {
            for t in &g.targets {
                let mut labels: Vec<String> =
                    g.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
                labels.push(format!("__address__={t}"));
                labels.sort();
                out.push((g.source.clone(), labels));
            }
        }
        out
    }
}

/// What Prometheus gives one target: the group's labels and the target's own, sorted; the
/// `__meta_kubernetes_` prefix is left out of the names written here and put back.
pub(super) fn expect(source: &str, group: &[&str], target: &[&str]) -> (String, Vec<String>) {
    let mut labels: Vec<String> = group
        .iter()
        .chain(target)
        .map(|l| {
            if l.starts_with("__address__=") || l.starts_with("instance=") {
                (*l).to_string()
            } else {
                format!("__meta_kubernetes_{l}")
            }
        })
        .collect();
    labels.sort();
    (source.to_string(), labels)
}

/// Feeds `object` (in store 0) through a list and then through watch events, checking the
/// targets after each against `want` (the object as is) and `want_modified` (after
/// `modify`); the other stores hold what the caller listed in them.
pub(super) fn list_and_watch(
    feed: &mut Feed,
    kind: &str,
    object: &Value,
    want: &[(String, Vec<String>)],
    modify: impl Fn(&mut Value),
    want_modified: &[(String, Vec<String>)],
) {
    feed.list(0, kind, std::slice::from_ref(object));
    assert_eq!(feed.targets(), want, "{kind} listed");
    feed.list(0, kind, &[]);
    assert_eq!(feed.targets(), [], "{kind} listed empty");
    assert_eq!(feed.event(0, "ADDED", object), Ok(Step::Changed(true)));
    assert_eq!(feed.targets(), want, "{kind} added");
    let mut changed = object.clone();
    modify(&mut changed);
    assert_eq!(feed.event(0, "MODIFIED", &changed), Ok(Step::Changed(true)));
    assert_eq!(feed.targets(), want_modified, "{kind} modified");
    assert_eq!(feed.event(0, "DELETED", &changed), Ok(Step::Changed(true)));
    assert_eq!(feed.targets(), [], "{kind} deleted");
    assert_eq!(feed.event(0, "DELETED", &changed), Ok(Step::Changed(false)));
    assert_eq!(feed.event(0, "ADDED", object), Ok(Step::Changed(true)));
    // A `410 Gone` error event (the API's own Status object): list again; the targets stay
    // meanwhile, and the new list replaces them.
    let mut gone = object_status();
    set(&mut gone, "/code", json!(410));
    assert_eq!(feed.event(0, "ERROR", &gone), Ok(Step::Gone));
    assert_eq!(feed.targets(), want, "{kind} after 410");
    feed.list(0, kind, std::slice::from_ref(&changed));
    assert_eq!(feed.targets(), want_modified, "{kind} relisted");
    let mut expired = object_status();
    set(&mut expired, "/reason", json!("Expired"));
    assert_eq!(feed.event(0, "ERROR", &expired), Ok(Step::Gone));
    // Any other error event is an error naming its code and message.
    let err = feed
        .event(0, "ERROR", &object_status())
        .expect_err("an error");
    assert_eq!(err, "watch error Some(6): messageValue");
}

fn object_status() -> Value {
    object("core.v1.Status.json")
}
