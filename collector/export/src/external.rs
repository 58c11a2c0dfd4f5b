//! Labels an exporter adds to every series it sends (`external_labels`), merged into the WAL's
//! encoded label sets without decoding them.

use magpie_wal::Labels;

/// External labels sorted by name, each with its pair's encoding as the WAL writes pairs.
#[derive(Debug, Clone, Default)]
pub struct ExternalLabels(Vec<External>);

#[derive(Debug, Clone)]
struct External {
    name: String,
    value: String,
    pair: Vec<u8>,
}

impl ExternalLabels {
    /// The labels `pairs` (unique names).
    #[must_use]
    pub fn new(pairs: &[(String, String)]) -> Self {
        let mut all: Vec<External> = (pairs.iter())
            .map(|(name, value)| External {
                name: name.clone(),
                value: value.clone(),
                pair: Labels::new(&[(name, value)]).encoded_pairs().1.to_vec(),
            })
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Self(all)
    }

    /// True without labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|e| (e.name.as_str(), e.value.as_str()))
    }

    /// Writes the pair encoding of `series` ([`Labels::encoded_pairs`]) with each external
    /// label whose name `series` lacks merged in by name, onto `out`; returns the number of
    /// pairs. The series' own values win, as in Prometheus. Runs of the series' encoding
    /// between merged pairs are copied in one piece.
    pub fn write_merged(&self, series: &Labels, out: &mut Vec<u8>) -> u32 {
        let (mut count, pairs) = series.encoded_pairs();
        let mut extra = self.0.iter().peekable();
        let (mut copied, mut start) = (0, 0);
        for (name, end) in series.pair_ends() {
            if extra.peek().is_none() {
                break;
            }
            while let Some(e) = extra.peek() {
                let e_name = e.name.as_bytes();
                if e_name > name {
                    break;
                }
                if e_name < name {
                    out.extend_from_slice(&pairs[copied..start]);
                    out.extend_from_slice(&e.pair);
                    copied = start;
                    count += 1;
                }
                extra.next();
            }
            start = end;
        }
        out.extend_from_slice(&pairs[copied..]);
        for e in extra {
            out.extend_from_slice(&e.pair);
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain way: every pair decoded, the missing external ones added, sorted by name.
    fn merged_by_strings(series: &Labels, external: &[(String, String)]) -> Labels {
        let mut all: Vec<(&str, &str)> = series.iter().collect();
        for (n, v) in external {
            if series.get(n).is_none() {
                all.push((n, v));
            }
        }
        all.sort_by(|a, b| a.0.cmp(b.0));
        Labels::new(&all)
    }

    /// The merge's pair count and bytes, and the plain way's.
    fn both(series: &Labels, external: &[(String, String)]) -> ((u32, Vec<u8>), (u32, Vec<u8>)) {
        let mut out = Vec::new();
        let count = ExternalLabels::new(external).write_merged(series, &mut out);
        let plain = merged_by_strings(series, external);
        let (n, bytes) = plain.encoded_pairs();
        ((count, out), (n, bytes.to_vec()))
    }

    #[test]
    fn external_labels_go_where_their_names_sort_and_never_override() {
        let series = Labels::new(&[("__name__", "up"), ("instance", "a"), ("job", "j")]);
        let external = [
            ("zone".to_string(), "z1".to_string()),
            ("agent".to_string(), "edge".to_string()),
            ("job".to_string(), "ignored".to_string()),
            ("__a".to_string(), "first".to_string()),
        ];
        let ((count, out), plain) = both(&series, &external);
        assert_eq!((count, &out), (plain.0, &plain.1));
        assert_eq!(
            merged_by_strings(&series, &external)
                .iter()
                .collect::<Vec<_>>(),
            [
                ("__a", "first"),
                ("__name__", "up"),
                ("agent", "edge"),
                ("instance", "a"),
                ("job", "j"),
                ("zone", "z1"),
            ]
        );
    }

    proptest! {
        #[test]
        fn merging_encoded_pairs_equals_merging_strings(
            series in proptest::collection::btree_map("[a-e_]{0,3}|[é→x]{1,2}", ".{0,200}", 0..8),
            external in proptest::collection::btree_map("[a-e_]{0,3}|[é→x]{1,2}", ".{0,4}", 0..5),
        ) {
            let pairs: Vec<(&str, &str)> =
                series.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let series = Labels::new(&pairs);
            let external: Vec<(String, String)> = external.into_iter().collect();
            let (merged, plain) = both(&series, &external);
            prop_assert_eq!(merged, plain);
        }
    }
}
