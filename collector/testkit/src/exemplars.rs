//! Reading exemplars back from a Prometheus started with exemplar storage.

use crate::Prometheus;

/// An exemplar as queried: its series' labels, its own labels (both sorted), value and
/// timestamp in ms.
pub type QueriedExemplar = (Vec<(String, String)>, Vec<(String, String)>, f64, i64);

fn sorted_labels(v: &serde_json::Value) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    l.sort();
    l
}

impl Prometheus {
    /// Every exemplar of the series matching `selector` (`/api/v1/query_exemplars` from the
    /// epoch to a minute ahead), sorted.
    ///
    /// # Panics
    /// When the query fails.
    #[must_use]
    pub fn exemplars(&self, selector: &str) -> Vec<QueriedExemplar> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 60;
        let (status, body) = crate::http_get(
            self.addr(),
            &format!(
                "/api/v1/query_exemplars?query={}&start=1&end={end}",
                crate::prometheus::encode(selector)
            ),
        )
        .expect("query_exemplars");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let mut out = Vec::new();
        for s in v["data"].as_array().cloned().unwrap_or_default() {
            let series = sorted_labels(&s["seriesLabels"]);
            for e in s["exemplars"].as_array().cloned().unwrap_or_default() {
                let value = e["value"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                #[allow(clippy::cast_possible_truncation)]
                let t = (e["timestamp"].as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
                out.push((series.clone(), sorted_labels(&e["labels"]), value, t));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        out
    }
}
