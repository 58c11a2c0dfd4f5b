//! Running compiled rules on a label set.
//!
//! A label set is a `Vec<(name, value)>` sorted by name, so lookups are binary searches and
//! writes keep the order without a final sort. A rule first computes what it will do from a
//! borrowed view of the labels ([`Edit`]), then the edit is applied: the borrow of the value
//! (possibly a label's own text) ends before the set is changed.

use super::{Action, Relabeler, Rule, is_label_name, md5};
use std::borrow::Cow;
use std::cell::RefCell;

type Labels = Vec<(String, String)>;

/// A joined value longer than this is not kept in the per-thread buffer after use, so one huge
/// sample does not pin its size for the life of the thread.
const SCRATCH_KEEP: usize = 4096;

thread_local! {
    /// Buffer to join several source labels' values in.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The outcome of one rule on one label set.
enum Edit<'r> {
    Keep,
    Drop,
    /// Set a label; an empty value deletes it.
    Set(Cow<'r, str>, Cow<'r, str>),
    /// Set several labels (`labelmap`).
    SetAll(Vec<(String, String)>),
    /// Remove labels by their names' match (`labeldrop`/`labelkeep`): remove a label when
    /// the regex's verdict on its name equals the flag.
    Retain {
        remove_if_match: bool,
    },
}

impl Relabeler {
    /// Runs the rules in order on one sample's labels. Returns `false` when a rule drops the
    /// sample (the labels are then left part-way). On return the labels are sorted by name;
    /// they are sorted first if they come unsorted.
    pub fn apply(&self, labels: &mut Labels) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        if !labels.is_sorted_by(|a, b| a.0 <= b.0) {
            labels.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self.rules.iter().all(|rule| rule.apply(labels))
    }

    /// Whether there are no rules (then [`apply`](Self::apply) changes nothing).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number of rules.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rules.len()
    }
}

impl Rule {
    fn apply(&self, labels: &mut Labels) -> bool {
        let edit = match self.action {
            Action::LabelDrop => Edit::Retain {
                remove_if_match: true,
            },
            Action::LabelKeep => Edit::Retain {
                remove_if_match: false,
            },
            Action::LabelMap => self.label_map(labels),
            _ => self.with_value(labels, |value| self.decide(labels, value)),
        };
        match edit {
            Edit::Keep => {}
            Edit::Drop => return false,
            Edit::Set(name, value) => set(labels, name, value),
            Edit::SetAll(pairs) => {
                for (name, value) in pairs {
                    set(labels, Cow::Owned(name), Cow::Owned(value));
                }
            }
            Edit::Retain { remove_if_match } => {
                labels.retain(|(name, _)| self.matcher.is_match(name) != remove_if_match);
            }
        }
        true
    }

    /// Calls `f` with the rule's value: the source labels' values joined by the separator.
    fn with_value<T>(&self, labels: &Labels, f: impl FnOnce(&str) -> T) -> T {
        match self.sources.as_slice() {
            [] => f(""),
            [one] => f(get(labels, one)),
            many => SCRATCH.with_borrow_mut(|buf| {
                buf.clear();
                for (i, name) in many.iter().enumerate() {
                    if i > 0 {
                        buf.push_str(&self.separator);
                    }
                    buf.push_str(get(labels, name));
                }
                let out = f(buf);
                if buf.capacity() > SCRATCH_KEEP {
                    *buf = String::new();
                }
                out
            }),
        }
    }

    /// What the rule does given its value.
    fn decide(&self, labels: &Labels, value: &str) -> Edit<'_> {
        let keep_if = |keep: bool| if keep { Edit::Keep } else { Edit::Drop };
        match self.action {
            Action::Keep => keep_if(self.matcher.is_match(value)),
            Action::Drop => keep_if(!self.matcher.is_match(value)),
            Action::KeepEqual => keep_if(get(labels, &self.target) == value),
            Action::DropEqual => keep_if(get(labels, &self.target) != value),
            Action::Lowercase => self.set_target(value.to_lowercase()),
            Action::Uppercase => self.set_target(value.to_uppercase()),
            Action::HashMod => {
                let d = md5::digest(value.as_bytes());
                let tail =
                    u64::from_be_bytes([d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]]);
                self.set_target((tail % self.modulus).to_string())
            }
            Action::Replace => self.replace(value),
            Action::LabelMap | Action::LabelDrop | Action::LabelKeep => Edit::Keep,
        }
    }

    fn set_target(&self, value: String) -> Edit<'_> {
        Edit::Set(Cow::Borrowed(&self.target), Cow::Owned(value))
    }

    fn replace(&self, value: &str) -> Edit<'_> {
        if self.inert {
            return Edit::Keep;
        }
        let (target, replacement) = (self.target_template.constant(), self.replacement.constant());
        if let (Some(target), Some(replacement)) = (target, replacement) {
            // Nothing refers to a group: a yes/no match is enough, and nothing is allocated
            // unless the label changes.
            return if self.matcher.is_match(value) {
                Edit::Set(Cow::Borrowed(target), Cow::Borrowed(replacement))
            } else {
                Edit::Keep
            };
        }
        let Some(caps) = self.matcher.captures(value) else {
            return Edit::Keep;
        };
        let group = |i| caps.get(value, i);
        let target = match target {
            Some(t) => Cow::Borrowed(t),
            None => {
                let mut t = String::new();
                self.target_template.expand_into(&mut t, group);
                // A reference may expand to anything; Prometheus skips such a write.
                if !is_label_name(&t) {
                    return Edit::Keep;
                }
                Cow::Owned(t)
            }
        };
        let replacement = match replacement {
            Some(r) => Cow::Borrowed(r),
            None => {
                let mut r = String::new();
                self.replacement.expand_into(&mut r, group);
                Cow::Owned(r)
            }
        };
        Edit::Set(target, replacement)
    }

    fn label_map(&self, labels: &Labels) -> Edit<'_> {
        // Every name is matched against the labels as they were before the rule, as
        // Prometheus does; writes are collected, then applied in name order (a later write
        // to the same name wins).
        let mut out = Vec::new();
        for (name, value) in labels {
            let Some(caps) = self.matcher.captures(name) else {
                continue;
            };
            let mut new_name = String::new();
            self.replacement
                .expand_into(&mut new_name, |i| caps.get(name, i));
            if is_label_name(&new_name) {
                out.push((new_name, value.clone()));
            }
        }
        if out.is_empty() {
            Edit::Keep
        } else {
            Edit::SetAll(out)
        }
    }
}

/// The value of label `name`, empty when it is absent (as Prometheus reads missing labels).
fn get<'l>(labels: &'l Labels, name: &str) -> &'l str {
    labels
        .binary_search_by(|(n, _)| n.as_str().cmp(name))
        .map_or("", |i| labels[i].1.as_str())
}

/// Sets label `name` to `value` keeping the order; an empty value deletes the label.
fn set(labels: &mut Labels, name: Cow<'_, str>, value: Cow<'_, str>) {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
        Ok(i) if value.is_empty() => {
            labels.remove(i);
        }
        Ok(i) => {
            if labels[i].1 != *value {
                labels[i].1 = value.into_owned();
            }
        }
        Err(_) if value.is_empty() => {}
        Err(i) => labels.insert(i, (name.into_owned(), value.into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::{SCRATCH, SCRATCH_KEEP};
    use crate::relabel::{Action, RelabelConfig, compile};

    #[test]
    fn the_join_buffer_is_reused_but_not_kept_large() {
        let r = compile(&[RelabelConfig {
            source_labels: vec!["a".into(), "b".into()],
            regex: "x".into(),
            action: Action::Drop,
            ..RelabelConfig::default()
        }])
        .unwrap();
        let mut small = vec![("a".into(), "y".into()), ("b".into(), "z".into())];
        assert!(r.apply(&mut small));
        assert!(SCRATCH.with_borrow(String::capacity) >= "y;z".len());
        let mut huge = vec![("a".into(), "y".repeat(100_000)), ("b".into(), "z".into())];
        assert!(r.apply(&mut huge));
        assert!(SCRATCH.with_borrow(String::capacity) <= SCRATCH_KEEP);
    }
}
